"""Train one fusion variant of the target (CSFT, Fuse, InferFuse, ProFuser, SimulFuse, ...).

Runs as one process (python) or several (accelerate launch --num_processes N): each
process trains its share of every step; only the main process writes.
"""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.train.fusion import train_variant
from fusekit.train.heldout import HELDOUT_DEFAULTS, HELDOUT_FILE

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--variant", type=json_arg, required=True, help="resolved variant (JSON)")
    p.add_argument("--prompts", required=True, help="prompt set Parquet (references)")
    p.add_argument("--votes", required=True, help="votes Parquet (inference mode)")
    p.add_argument("--inference-dumps", type=json_arg, required=True, help="{source: aligned dump}")
    p.add_argument("--training-dumps", type=json_arg, required=True, help="{source: aligned dump}")
    p.add_argument("--target-path", required=True, help="target model (hub id or directory)")
    p.add_argument(
        "--target-spec", type=json_arg, required=True, help="models.<target> config (JSON)"
    )
    p.add_argument(
        "--optim",
        type=json_arg,
        required=True,
        help="optimizer config (JSON); missing keys: the schema's defaults",
    )
    p.add_argument(
        "--training",
        type=json_arg,
        required=True,
        help="trainer config (JSON); missing keys: the schema's defaults",
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--checkpoint-dir",
        required=True,
        help="resumable checkpoints (not the output); locked while training; a checkpoint "
        "of another training (changed config, data or seed) is discarded",
    )
    p.add_argument(
        "--heldout",
        metavar="PATH",
        help="held-out prompt set (prompt_id, prompt, reference, system; no prompt of "
        "--prompts): its per-token loss before training and after every pass is written "
        f"to {HELDOUT_FILE} in --out; absent: no held-out loss",
    )
    p.add_argument(
        "--heldout-max-examples",
        type=int,
        default=HELDOUT_DEFAULTS["max_examples"],
        help="at most this many held-out rows, evenly spaced in the file",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="output model directory")
    a = p.parse_args()
    setup_logging()
    train_variant(
        a.variant,
        a.prompts,
        a.votes,
        a.inference_dumps,
        a.training_dumps,
        a.target_path,
        a.target_spec,
        a.optim,
        a.training,
        a.seed,
        a.out,
        a.checkpoint_dir,
        a.threads,
        a.heldout,
        a.heldout_max_examples,
    )

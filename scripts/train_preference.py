"""Train one preference-study variant (SFT, LN-DPO, WRPO, ...) through the one training loop.

Runs as one process (python) or several (accelerate launch --num_processes N): each
process trains its share of every step; only the main process writes.
"""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.train.preference import train_preference_variant

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--variant", type=json_arg, required=True, help="the variant's config (JSON)")
    p.add_argument("--data", required=True, help="data table Parquet")
    p.add_argument("--reference", default="", help="reference log-probs Parquet ('' for none)")
    p.add_argument("--init", required=True, help="the model training starts from")
    p.add_argument("--spec", type=json_arg, required=True, help="models.<target> config (JSON)")
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
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="output model directory")
    a = p.parse_args()
    setup_logging()
    train_preference_variant(
        a.variant,
        a.data,
        a.reference or None,
        a.init,
        a.spec,
        a.optim,
        a.training,
        a.seed,
        a.out,
        a.checkpoint_dir,
        a.threads,
    )

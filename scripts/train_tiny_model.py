"""Train one tiny-world model (a causal LM or a reward model) from scratch on CPU."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.tiny.world import make_causal_lm, make_reward_model

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--kind", choices=["causal_lm", "reward_model"], required=True)
    p.add_argument("--name", required=True, help="model name (for messages)")
    p.add_argument("--corpus", required=True, help="corpus Parquet")
    p.add_argument("--tokenizer", required=True, help="tokenizer directory")
    p.add_argument(
        "--spec", type=json_arg, required=True, help="the model's tiny_world entry (JSON)"
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--outputs",
        nargs="*",
        default=[],
        help="reward model: world models' output files (generate_world_outputs.py), "
        "for the spec's source_outputs pairs",
    )
    p.add_argument("--out", required=True, help="output model directory")
    a = p.parse_args()
    log = setup_logging()
    if a.kind == "causal_lm":
        make_causal_lm(a.corpus, a.tokenizer, a.spec, a.seed, a.out, a.name)
    else:
        make_reward_model(a.corpus, a.tokenizer, a.spec, a.seed, a.out, a.name, a.outputs)
    log.info("saved %s %s to %s", a.kind, a.name, a.out)

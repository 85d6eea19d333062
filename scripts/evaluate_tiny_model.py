"""Measure one tiny-world model: exact-match accuracy per skill (causal LM) or
held-out preference accuracy per skill (reward model): on corruption pairs, and on
pairs of the world models' own eval responses (one right, one wrong)."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.tiny.world import evaluate_causal_lm, evaluate_reward_model

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--kind", choices=["causal_lm", "reward_model"], required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--corpus", required=True, help="corpus Parquet (its eval split is used)")
    p.add_argument(
        "--meta",
        type=json_arg,
        required=True,
        help="JSON with model, role, architecture, tokenizer for the table",
    )
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out preference pairs")
    p.add_argument(
        "--responses-out", help="causal LM: also write its eval responses here (Parquet)"
    )
    p.add_argument(
        "--outputs",
        nargs="*",
        default=[],
        help="reward model: world models' eval responses, for the source-pair accuracy",
    )
    p.add_argument("--out", required=True, help="output CSV")
    a = p.parse_args()
    log = setup_logging()
    if a.kind == "causal_lm":
        t = evaluate_causal_lm(
            a.model_dir,
            a.corpus,
            a.max_new_tokens,
            a.batch_size,
            a.out,
            a.meta,
            a.responses_out,
        )
    else:
        t = evaluate_reward_model(
            a.model_dir, a.corpus, a.seed, a.batch_size, a.out, a.meta, a.outputs
        )
    log.info(
        "accuracy of %s:\n%s", a.meta["model"], t[["skill", "accuracy", "n"]].to_string(index=False)
    )

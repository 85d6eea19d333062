"""AlpacaEval 2 of one model through alpaca_eval's annotator and metrics: per-item judgments
(Parquet) and LC / raw win rates with standard errors (JSON)."""

from fusekit.chat_eval import judge_alpaca
from fusekit.cli import json_arg, parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--reference", required=True, help="AlpacaEval reference records JSON")
    p.add_argument("--generations", required=True, help="the model's generations Parquet")
    p.add_argument("--judge", type=json_arg, required=True, help="judges.<name> config (JSON)")
    p.add_argument("--cache-dir", help="judge and annotation caches (kept across reruns)")
    p.add_argument(
        "--lc-reference", help="local df_gamed.csv for the LC GLM; omit to let alpaca_eval fetch it"
    )
    p.add_argument("--annotator", help="alpaca_eval annotator config name")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--lc-bootstrap-rounds",
        type=int,
        default=0,
        help="bootstrap rounds of the LC standard error where instruction difficulties are "
        "unknown (0: none)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--metrics-out", required=True, help="output metrics JSON")
    p.add_argument("--out", required=True, help="output per-item judgments Parquet")
    a = p.parse_args()
    setup_logging()
    judge_alpaca(
        a.reference,
        a.generations,
        a.judge,
        a.cache_dir,
        a.lc_reference,
        a.out,
        a.metrics_out,
        a.annotator,
        a.threads,
        a.lc_bootstrap_rounds,
        a.seed,
    )

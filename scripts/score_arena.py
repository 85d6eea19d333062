"""Arena-Hard scores: Bradley-Terry win rates against the baseline with 95% bootstrap
intervals for every model of the given judgment files (JSON)."""

from fusekit.chat_eval import score_arena
from fusekit.cli import parser, setup_logging

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--judgments", nargs="+", required=True, help="judgments Parquet files")
    p.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--weight", type=int, default=3, help="battles per strong verdict")
    p.add_argument("--battles-out", help="also write the battles Parquet")
    p.add_argument("--out", required=True, help="output metrics JSON")
    a = p.parse_args()
    log = setup_logging()
    r = score_arena(a.judgments, a.out, a.rounds, a.seed, a.weight, a.battles_out)
    for s in r["scores"]:
        log.info("%s: %.1f (%.1f, %.1f)", s["model"], s["score"], s["lower"], s["upper"])

"""ProFuser's vote: each reward model picks its best response per prompt, most picks win,
ties go to the strongest reward model's score."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.inference_mode import vote

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--scores", nargs="+", required=True, help="score Parquet files")
    p.add_argument("--generations", nargs="+", required=True, help="generations Parquet files")
    p.add_argument("--reward-models", type=json_arg, required=True, help="voting RMs (JSON list)")
    p.add_argument("--strongest", help="tie-breaking RM; omit to measure it from --world-table")
    p.add_argument("--world-table", help="tiny world skill_accuracy.csv")
    p.add_argument("--out", required=True, help="output Parquet")
    a = p.parse_args()
    setup_logging()
    vote(a.scores, a.generations, a.reward_models, a.strongest, a.out, a.world_table)

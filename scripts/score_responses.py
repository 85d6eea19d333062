"""Score every response of one generations file with one reward model."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.rewards.scoring import score_responses

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--reward-model", required=True, help="reward model name")
    p.add_argument("--rm-path", required=True, help="hub id or local directory")
    p.add_argument(
        "--spec", type=json_arg, required=True, help="reward_models.<name> config (JSON)"
    )
    p.add_argument("--generations", required=True, help="generations Parquet")
    p.add_argument(
        "--empty",
        choices=["error", "lowest"],
        default="error",
        help="what to do with an empty response",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="output Parquet of scores")
    a = p.parse_args()
    setup_logging()
    score_responses(a.reward_model, a.rm_path, a.spec, a.generations, a.out, a.empty, a.threads)

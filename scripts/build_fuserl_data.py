"""FuseRL's training data from sampled source responses and their reward scores: each
source's best and worst response per prompt, split FuseSFT:FusePO(:held-out) by a seeded
permutation (fusesft.parquet, fusepo.parquet, heldout.parquet, fuserl_counts.csv in
--out; heldout.parquet is empty without a heldout part)."""

import json

from fusekit.cli import parser, setup_logging
from fusekit.preference.build import build_fuserl_data

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--prompts", required=True, help="the sources' prompt set Parquet")
    p.add_argument("--generations", nargs="+", required=True, help="every source's generations")
    p.add_argument("--scores", nargs="+", required=True, help="the reward model's scores of them")
    p.add_argument("--reward-model", required=True, help="reward model name")
    p.add_argument("--seed", type=int, required=True, help="seed of the FuseSFT:FusePO split")
    p.add_argument(
        "--split",
        default='{"sft": 4, "po": 6}',
        help="JSON parts of the split: sft, po and optionally heldout (never trained on)",
    )
    p.add_argument(
        "--min-gap", type=float, default=0.0, help="a pair needs best - worst > this score gap"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: fusesft.parquet, fusepo.parquet, heldout.parquet, fuserl_counts.csv",
    )
    a = p.parse_args()
    setup_logging()
    build_fuserl_data(
        a.prompts,
        a.generations,
        a.scores,
        a.reward_model,
        a.seed,
        json.loads(a.split),
        a.min_gap,
        f"{a.out}/fusesft.parquet",
        f"{a.out}/fusepo.parquet",
        f"{a.out}/fuserl_counts.csv",
        f"{a.out}/heldout.parquet",
    )

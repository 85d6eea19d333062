"""WRPO's data: `sft` builds the Target-SFT rows, the prompts the Target-SFT model samples on
and the best-source share; `quadruples` builds (y_ws, y_wt, y_l) once the target has sampled."""

from fusekit.cli import parser, setup_logging
from fusekit.preference.build import build_wrpo_quadruples, build_wrpo_sft_data

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("step", choices=["sft", "quadruples"])
    p.add_argument("--prompts", required=True, help="the sources' prompt set Parquet")
    p.add_argument("--generations", nargs="+", required=True, help="every source's generations")
    p.add_argument("--scores", nargs="+", required=True, help="the reward model's scores of them")
    p.add_argument("--reward-model", required=True, help="reward model name")
    p.add_argument("--seed", type=int, required=True, help="seed of the 1:2 prompt split")
    p.add_argument("--target-generations", help="quadruples: the Target-SFT samples")
    p.add_argument("--target-scores", help="quadruples: their scores")
    p.add_argument("--share", help="sft: output best-source share CSV (WRPO Table 1)")
    p.add_argument(
        "--suffix",
        default="",
        help="quadruples: appended to the output names, e.g. '.one' for a source subset "
        "(quadruples.one.parquet, quadruple_counts.one.csv)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: target_sft.parquet and wrpo_prompts.parquet (sft); "
        "quadruples.parquet and quadruple_counts.csv (quadruples)",
    )
    a = p.parse_args()
    setup_logging()
    if a.step == "sft":
        build_wrpo_sft_data(
            a.prompts,
            a.generations,
            a.scores,
            a.reward_model,
            a.seed,
            f"{a.out}/target_sft.parquet",
            f"{a.out}/wrpo_prompts.parquet",
            a.share,
        )
    else:
        build_wrpo_quadruples(
            a.prompts,
            a.generations,
            a.scores,
            a.target_generations,
            a.target_scores,
            a.reward_model,
            a.seed,
            f"{a.out}/quadruples{a.suffix}.parquet",
            f"{a.out}/quadruple_counts{a.suffix}.csv",
        )

"""Build a preference study's data (FuseChat-3.0): SFT rows and same-source DPO pairs from
sampled source responses and one reward model's scores (code responses also run against
their tests in a sandbox), with counts beside the card's."""

from fusekit.cli import json_arg, parser, setup_logging
from fusekit.preference.build import build_fusechat3_data

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--prompts", required=True, help="prompt set Parquet (with references)")
    p.add_argument("--generations", nargs="+", required=True, help="every source's generations")
    p.add_argument("--scores", nargs="+", required=True, help="the reward model's scores of them")
    p.add_argument("--reward-model", required=True, help="reward model name")
    p.add_argument("--domains", type=json_arg, default={}, help="JSON {prompt source: domain}")
    p.add_argument("--seed", type=int, required=True, help="seed of the SFT:DPO split")
    p.add_argument("--gap", type=json_arg, default=[0.01, 0.1], help="JSON [low, high] RM gap")
    p.add_argument("--split", type=json_arg, default=[4, 6], help="JSON [sft, dpo] prompt shares")
    p.add_argument(
        "--single-source",
        type=json_arg,
        default={},
        help='JSON {"model": source, "domain_name": label} of the single_source domain',
    )
    p.add_argument(
        "--coding",
        type=json_arg,
        default={},
        help='JSON sandbox limits of the coding domain, e.g. {"timeout": 5, "memory_mb": 512}',
    )
    p.add_argument("--workers", type=int, default=1, help="sandbox processes at a time")
    p.add_argument("--reported", default="", help="the card's composition CSV ('' for none)")
    p.add_argument(
        "--out", required=True, help="output folder: sft.parquet, dpo.parquet, counts.csv"
    )
    p.add_argument("--composition", required=True, help="output composition CSV")
    a = p.parse_args()
    setup_logging()
    build_fusechat3_data(
        a.prompts,
        a.generations,
        a.scores,
        a.reward_model,
        a.domains,
        a.seed,
        tuple(a.gap),
        {"sft": a.split[0], "dpo": a.split[1]},
        a.reported or None,
        f"{a.out}/sft.parquet",
        f"{a.out}/dpo.parquet",
        f"{a.out}/counts.csv",
        a.composition,
        single_source=a.single_source,
        code_limits=a.coding,
        workers=a.workers,
    )

"""The budget check of a fusion study's claims run: each compared variant's OpenLLM
average at a multiple of its training budget against its claims seeds at the normal
budget (95% prediction interval, verdict converged / improving / degrading), the
seed-matched held-out losses, a Markdown page and a figure of both held-out curves
(fusekit.report.budget_check)."""

from pathlib import Path

import pandas as pd

from fusekit.checks import DataError
from fusekit.cli import json_arg, parser, setup_logging
from fusekit.io import read_table
from fusekit.report.budget_check import budget_table, write_budget_check
from fusekit.report.claims import RESULT_COLUMNS, results_from_evaluations


def heldout_logs(dirs: list[str], variants: list[str]) -> dict[str, pd.DataFrame]:
    """Each model folder's heldout_log.csv (none where the run wrote none)."""
    out = {}
    for v, d in zip(variants, dirs, strict=True):
        path = Path(d) / "heldout_log.csv"
        if path.exists():
            out[v] = read_table(path, ["step", "epoch", "loss"])
    return out


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--study", required=True, help="the fusion study")
    p.add_argument("--results", required=True, help="the study's claims_results.csv")
    p.add_argument("--variants", type=json_arg, required=True, help="JSON list of variants")
    p.add_argument(
        "--evaluations", nargs="+", required=True, help="each variant's longer run's OpenLLM JSON"
    )
    p.add_argument(
        "--base-models", nargs="+", required=True, help="each variant's seeded normal-run folder"
    )
    p.add_argument(
        "--budget-models", nargs="+", required=True, help="each variant's longer-run folder"
    )
    p.add_argument(
        "--epochs", type=json_arg, required=True, help="JSON {variant: passes at the normal budget}"
    )
    p.add_argument(
        "--single",
        type=json_arg,
        default=[],
        help="JSON list of the variants (among --variants) with one normal run, the default DAG's",
    )
    p.add_argument(
        "--single-evaluations",
        nargs="*",
        default=[],
        help="each --single variant's normal run's OpenLLM JSON",
    )
    p.add_argument("--factor", type=int, required=True, help="budget multiplier of the longer run")
    p.add_argument("--seed", type=int, required=True, help="the claims seed the longer run repeats")
    p.add_argument("--out", required=True, help="table (.csv or .parquet)")
    p.add_argument("--markdown", required=True, help="Markdown page")
    p.add_argument("--figure", required=True, help="PNG of the held-out curves")
    a = p.parse_args()
    log = setup_logging()
    variants = list(a.variants)
    for flag, files in (
        ("--evaluations", a.evaluations),
        ("--base-models", a.base_models),
        ("--budget-models", a.budget_models),
    ):
        if len(files) != len(variants):
            raise SystemExit(f"{flag}: {len(files)} paths for {len(variants)} variants")
    if len(a.single_evaluations) != len(a.single):
        raise SystemExit(
            f"--single-evaluations: {len(a.single_evaluations)} paths for "
            f"{len(a.single)} single-run variants"
        )
    results = read_table(a.results, RESULT_COLUMNS)
    normal = results_from_evaluations(
        [
            {"model": v, "seed": None, "path": f}
            for v, f in zip(a.single, a.single_evaluations, strict=True)
        ],
        a.study,
    )
    single = {
        v: float(normal[(normal.model == v) & (normal.metric == "average")].value.iloc[0])
        for v in a.single
    }
    longer = results_from_evaluations(
        [
            {"model": v, "seed": a.seed, "path": f}
            for v, f in zip(variants, a.evaluations, strict=True)
        ],
        a.study,
    )
    budget = {}
    for v in variants:
        row = longer[(longer.model == v) & (longer.metric == "average")]
        if row.empty:
            raise DataError(f"{a.evaluations[variants.index(v)]}: no average")
        budget[v] = float(row.value.iloc[0])
    base_curves = heldout_logs(a.base_models, variants)
    budget_curves = heldout_logs(a.budget_models, variants)
    table = budget_table(
        a.study,
        results,
        budget,
        a.seed,
        a.factor,
        a.epochs,
        base_curves,
        budget_curves,
        source=a.results,
        single=single,
    )
    write_budget_check(table, a.out, a.markdown, a.figure, base_curves, budget_curves)
    log.info(
        "budget check of %s:\n%s",
        a.study,
        table[["variant", "base_mean", "budget_value", "diff", "pi_high", "verdict"]]
        .round(2)
        .to_string(),
    )

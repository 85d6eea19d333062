"""The budget check of a fusion study's claims run: each compared variant's OpenLLM
average at a multiple of its training budget against its claims seeds at the normal
budget (95% prediction interval, verdict converged / improving / degrading), the
seed-matched held-out losses, a Markdown page and a figure of both held-out curves
(fusekit.report.budget_check)."""

import math
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


def average(results: pd.DataFrame, variant: str, path: str) -> float:
    """``variant``'s OpenLLM average read from ``path``; DataError naming the file when
    it has none or it is not finite."""
    row = results[(results.model == variant) & (results.metric == "average")]
    if row.empty:
        raise DataError(f"{path}: no average")
    value = float(row.value.iloc[0])
    if not math.isfinite(value):
        raise DataError(f"{path}: the average is {value}")
    return value


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--study", required=True, help="the fusion study")
    p.add_argument("--results", required=True, help="the study's claims_results.csv")
    p.add_argument("--variants", type=json_arg, required=True, help="JSON list of variants")
    p.add_argument(
        "--evaluations", nargs="+", required=True, help="each variant's longer run's OpenLLM JSON"
    )
    p.add_argument(
        "--base-models",
        nargs="+",
        required=True,
        help="each variant's normal-run folder: a claims seed's, the default DAG's for --single",
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
    p.add_argument(
        "--seeds",
        type=json_arg,
        default=[],
        help="JSON list of the claims seeds every seeded variant must have in --results",
    )
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
    stray = sorted(set(a.single) - set(variants))
    if stray:
        raise SystemExit(f"--single: {stray} are not among --variants {variants}")
    results = read_table(a.results, RESULT_COLUMNS)
    normal = results_from_evaluations(
        [
            {"model": v, "seed": None, "path": f}
            for v, f in zip(a.single, a.single_evaluations, strict=True)
        ],
        a.study,
    )
    single = {v: average(normal, v, f) for v, f in zip(a.single, a.single_evaluations, strict=True)}
    longer = results_from_evaluations(
        [
            {"model": v, "seed": a.seed, "path": f}
            for v, f in zip(variants, a.evaluations, strict=True)
        ],
        a.study,
    )
    budget = {v: average(longer, v, f) for v, f in zip(variants, a.evaluations, strict=True)}
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
        seeds=a.seeds,
    )
    write_budget_check(table, a.out, a.markdown, a.figure, base_curves, budget_curves)
    log.info(
        "budget check of %s:\n%s",
        a.study,
        table[["variant", "base_mean", "budget_value", "diff", "pi_high", "verdict"]]
        .round(2)
        .to_string(),
    )

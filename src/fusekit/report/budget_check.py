"""Would a larger training budget change a variant? The budget check (issue 17 item 3).

A held-out curve that ends flat (:mod:`fusekit.report.convergence`) says that the run
ended flat, not that it converged: under a cosine schedule the last quarter of the steps
runs at under 15% of the peak learning rate, so any run ends flat. The budget check asks
the question directly. Each fusion variant the study's claims compare is trained once
more with every stage's epochs multiplied by ``factor`` (``studies.<study>.budget_check``;
the same stages, objective, data and training seed as the claims run's first seed, so
only the budget differs: :func:`fusekit.train.fusion.scale_epochs`), evaluated as the
seeded runs are, and compared with the spread of the ``n`` claims seeds at the normal
budget.

With ``a_1 .. a_n`` the variant's metric (the OpenLLM ``average``, points) over the
claims seeds, ``m`` and ``s`` their mean and standard deviation, and ``b`` the metric of
the run at ``factor`` times the budget:

    diff = b - m
    a 95% prediction interval for one more run at the normal budget, as a difference
    from m:  +- t_{0.975, n-1} * s * sqrt(1 + 1/n)

(the Student t prediction interval for one new draw from the seeds' distribution).
A variant that no claim compares has no claims seeds, only its run of the default DAG
(``a_1``, its own training seed; the longer run repeats that seed). Its seed-to-seed
spread is then taken from the seeded variants: ``s`` the pooled standard deviation
(``sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1))``, ``df = sum(n_i - 1)``) and the interval
of a difference of two single runs ``+- t_{0.975, df} * s * sqrt(2)``; ``sd_from`` says
which (``seeds`` or ``pooled``). The pooled form assumes that training seeds move every
variant about equally; the table shows each seeded variant's own ``base_sd`` to judge it.
The longer run repeats a normal run's seed (its initial weights and first batches), so
it is not an independent draw: where the two runs stay correlated the interval is wider
than their difference's own spread, which makes ``improving`` and ``degrading``
conservative and ``converged`` lenient. Verdict, for a metric where higher is better:

* ``converged``: ``diff`` lies inside the interval: a budget ``factor`` times larger
  moves the metric no more than another training seed would;
* ``improving``: ``diff`` lies above it: more training helps, the variant has not
  converged at the normal budget;
* ``degrading``: ``diff`` lies below it: more training hurts (over-training, or a
  schedule that drifts away from the target's knowledge);
* ``inconclusive``: fewer than 2 seeds at the normal budget, or a NaN.

The seed-matched held-out losses are shown beside it (the last point of the normal run of
that seed and of the longer run, and the relative change ``(budget - base) / base``:
negative means the longer run fits the held-out references better), and the figure draws
both held-out curves per variant over passes, so the loss curves show where the normal
budget stops on the longer run's curve.

Table columns: :data:`COLUMNS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.checks import DataError
from fusekit.io import atomic_path, write_table

COLUMNS = (
    "study",
    "variant",
    "metric",
    "factor",
    "epochs",
    "budget_epochs",
    "seed",
    "n_seeds",
    "base_mean",
    "base_sd",
    "sd_from",
    "base_seed_value",
    "budget_value",
    "diff",
    "pi_low",
    "pi_high",
    "verdict",
    "heldout_base",
    "heldout_budget",
    "heldout_change",
)
VERDICTS = ("converged", "improving", "degrading", "inconclusive")
COLOURS = {
    "converged": "tab:green",
    "improving": "tab:orange",
    "degrading": "tab:red",
    "inconclusive": "tab:gray",
}
LEVEL = 0.95


def prediction_halfwidth(values: np.ndarray, level: float = LEVEL) -> float:
    """Half-width of the Student t prediction interval for one new draw, around the mean
    of ``values`` (n >= 2): ``t_{(1+level)/2, n-1} * sd * sqrt(1 + 1/n)``, in the
    values' units; NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return math.nan
    from scipy import stats

    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return q * float(x.std(ddof=1)) * math.sqrt(1.0 + 1.0 / n)


def pooled_sd(groups: list[np.ndarray]) -> tuple[float, int]:
    """(pooled standard deviation, degrees of freedom) of several groups' values: the
    square root of ``sum((n_i - 1) * var_i) / sum(n_i - 1)`` over groups of 2 or more
    values; (NaN, 0) when there is none."""
    ss, df = 0.0, 0
    for g in groups:
        g = np.asarray(g, dtype=float)
        if len(g) >= 2:
            ss += float(((g - g.mean()) ** 2).sum())
            df += len(g) - 1
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def budget_verdict(diff: float, pi_low: float, pi_high: float) -> str:
    """``converged`` (pi_low <= diff <= pi_high), ``improving`` (above), ``degrading``
    (below), ``inconclusive`` (a NaN)."""
    if any(math.isnan(x) for x in (diff, pi_low, pi_high)):
        return "inconclusive"
    if diff > pi_high:
        return "improving"
    if diff < pi_low:
        return "degrading"
    return "converged"


def last_heldout(curve: pd.DataFrame | None) -> float:
    """The last point (largest step) of a ``heldout_log.csv`` (columns step, loss);
    NaN without one."""
    if curve is None or curve.empty:
        return math.nan
    if not {"step", "loss"} <= set(curve.columns):
        raise DataError(f"held-out log lacks step or loss (has {sorted(curve.columns)})")
    return float(curve.sort_values("step")["loss"].iloc[-1])


def budget_row(
    study: str,
    variant: str,
    base: pd.Series,
    budget_value: float,
    seed: int | None,
    factor: int,
    epochs: float,
    heldout_base: pd.DataFrame | None = None,
    heldout_budget: pd.DataFrame | None = None,
    metric: str = "average",
    level: float = LEVEL,
    pooled: tuple[float, int] | None = None,
) -> dict:
    """One row of :data:`COLUMNS`. ``base``: the metric of ``variant`` at the normal
    budget, indexed by training seed (``seed`` among them: the run the longer one
    repeats); ``budget_value`` the metric of the run at ``factor`` times the budget;
    ``epochs`` the normal budget's passes over all stages. With ``pooled`` (sd, df) the
    interval is that of two single runs' difference, ``t_{df} * sd * sqrt(2)`` (for a
    variant with one run: ``base`` then holds it and ``seed`` is None). Raises DataError
    when ``seed`` has no normal-budget value."""
    base = base.astype(float)
    if seed is None:  # a single-run variant: its one normal run
        if len(base) != 1:
            raise DataError(f"{variant}: {len(base)} normal runs, but no seed to match")
    elif seed not in base.index:
        raise DataError(
            f"{variant}: no {metric} of seed {seed} at the normal budget "
            f"(seeds {sorted(base.index.tolist())})"
        )
    values = base.to_numpy()
    m = float(values.mean())
    if pooled is None:
        half, sd, sd_from = prediction_halfwidth(values, level), math.nan, "seeds"
        if len(values) > 1:
            sd = float(values.std(ddof=1))
    else:
        from scipy import stats

        sd, df = pooled
        sd_from = "pooled"
        half = (
            float(stats.t.ppf(0.5 + level / 2, df)) * sd * math.sqrt(2.0)
            if df >= 1 and not math.isnan(sd)
            else math.nan
        )
    diff = float(budget_value) - m
    low, high = -half, half
    h_base, h_budget = last_heldout(heldout_base), last_heldout(heldout_budget)
    return {
        "study": study,
        "variant": variant,
        "metric": metric,
        "factor": factor,
        "epochs": float(epochs),
        "budget_epochs": float(epochs) * factor,
        "seed": math.nan if seed is None else int(seed),
        "n_seeds": len(values),
        "base_mean": m,
        "base_sd": sd,
        "sd_from": sd_from,
        "base_seed_value": float(base.iloc[0] if seed is None else base.loc[seed]),
        "budget_value": float(budget_value),
        "diff": diff,
        "pi_low": low,
        "pi_high": high,
        "verdict": budget_verdict(diff, low, high),
        "heldout_base": h_base,
        "heldout_budget": h_budget,
        "heldout_change": (h_budget - h_base) / h_base if h_base > 0 else math.nan,
    }


def budget_table(
    study: str,
    results: pd.DataFrame,
    budget: Mapping[str, float],
    seed: int,
    factor: int,
    epochs: Mapping[str, float],
    heldout_base: Mapping[str, pd.DataFrame] | None = None,
    heldout_budget: Mapping[str, pd.DataFrame] | None = None,
    metric: str = "average",
    source: str = "results",
    single: Mapping[str, float] | None = None,
    seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The budget check of every variant in ``budget`` (variant -> its metric at
    ``factor`` times the budget), one row each (:data:`COLUMNS`, sorted by variant).
    ``results``: a claims results table (:data:`fusekit.report.claims.RESULT_COLUMNS`)
    holding each seeded variant's ``metric`` per training seed at the normal budget (one
    world seed); ``single``: the metric of each variant that has one normal run only
    (the default DAG's), checked against the seeded variants' pooled spread
    (:func:`pooled_sd`); ``epochs``: each variant's passes at the normal budget;
    ``seeds``: the claims seeds every seeded variant must have (default: ``seed``).
    Raises DataError naming ``source`` when a seeded variant has no seeded rows, rows of
    several world seeds, two rows of one seed, lacks one of ``seeds`` or has a value that
    is not finite, DataError naming the variant for a non-finite ``budget`` or
    ``single`` value, and ValueError for a single-run variant without seeded variants to
    pool."""
    heldout_base, heldout_budget = heldout_base or {}, heldout_budget or {}
    single = dict(single or {})
    expected = {int(seed), *(int(x) for x in (seeds or []))}
    for run, values in (("longer run", budget), ("normal run", single)):
        for variant, value in values.items():
            if not math.isfinite(float(value)):
                raise DataError(f"{variant}: the {run}'s {metric} is {value}")
    rows, spreads = [], []
    for variant in sorted(set(budget) - set(single)):
        sel = results[
            (results["model"] == variant) & (results["metric"] == metric) & results["seed"].notna()
        ]
        if sel.empty:
            raise DataError(f"{source}: no seeded {metric} rows of {variant}")
        if sel["world_seed"].nunique(dropna=False) > 1:
            raise DataError(
                f"{source}: {variant} has rows of several world seeds "
                f"({sorted(sel['world_seed'].unique())}); the budget check reads one world"
            )
        have = sel["seed"].astype(int)
        if have.duplicated().any():
            raise DataError(
                f"{source}: {variant} has several {metric} rows of seeds "
                f"{sorted(set(have[have.duplicated()]))}"
            )
        missing = sorted(expected - set(have))
        if missing:
            raise DataError(
                f"{source}: {variant} lacks the {metric} of claims seeds {missing} "
                f"(has {sorted(have)})"
            )
        bad = sel[~np.isfinite(sel["value"].astype(float))]
        if not bad.empty:
            raise DataError(
                f"{source}: {variant}'s {metric} is not finite at seeds "
                f"{sorted(bad['seed'].astype(int))}"
            )
        base = pd.Series(sel["value"].to_numpy(), index=have.to_numpy())
        spreads.append(base.to_numpy())
        rows.append(
            budget_row(
                study,
                variant,
                base,
                budget[variant],
                seed,
                factor,
                epochs[variant],
                heldout_base.get(variant),
                heldout_budget.get(variant),
                metric,
            )
        )
    pooled = pooled_sd(spreads)
    if single and pooled[1] == 0:
        raise ValueError(
            f"single-run variants {sorted(single)} need seeded variants to pool a spread"
        )
    for variant in sorted(single):
        rows.append(
            budget_row(
                study,
                variant,
                pd.Series([single[variant]]),
                budget[variant],
                None,
                factor,
                epochs[variant],
                heldout_base.get(variant),
                heldout_budget.get(variant),
                metric,
                pooled=pooled,
            )
        )
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values("variant", ignore_index=True)


def _num(x: float, fmt: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def budget_markdown(df: pd.DataFrame) -> str:
    """The budget check as a Markdown page: one row per variant."""
    if df.empty:
        return "# Budget check\n\nNo variant.\n"
    r0 = df.iloc[0]
    lines = [
        f"# Budget check: {r0['study']}",
        "",
        f"Each variant trained again at {int(r0['factor'])} times its budget (every stage's "
        "epochs) with the training seed of one of its normal runs: claims seed "
        f"{int(df['seed'].dropna().iloc[0]) if df['seed'].notna().any() else '-'} for a "
        "variant the claims compare, set against its claims seeds at the normal budget; the "
        "default DAG's run for any other, set against the seeded variants' pooled spread "
        "(sd from: pooled). The interval is the 95% prediction interval of the difference "
        "a new training seed at the normal budget would make (fusekit.report.budget_check): "
        "inside it, the larger budget changes the metric no more than another seed does.",
        "",
        f"| variant | passes | {r0['metric']}: normal budget, mean ± sd (runs) | "
        f"{int(r0['factor'])}x budget | difference [95% prediction interval] | verdict | "
        "held-out loss: normal -> longer (seed-matched) |",
        "| --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for r in df.itertuples(index=False):
        heldout = (
            f"{_num(r.heldout_base, '.3f')} -> {_num(r.heldout_budget, '.3f')} "
            f"({_num(100 * r.heldout_change, '+.0f')}%)"
            if not math.isnan(r.heldout_base)
            else ""
        )
        lines.append(
            f"| {r.variant} | {r.epochs:g} -> {r.budget_epochs:g} | "
            f"{r.base_mean:.1f} ± {_num(r.base_sd, '.1f')}"
            f"{' (1, sd pooled)' if r.sd_from == 'pooled' else f' ({r.n_seeds})'} | "
            f"{r.budget_value:.1f} | "
            f"{r.diff:+.1f} [{_num(r.pi_low, '+.1f')}, {_num(r.pi_high, '+.1f')}] | "
            f"{r.verdict} | {heldout} |"
        )
    return "\n".join(lines) + "\n"


def plot_budget_check(
    df: pd.DataFrame,
    heldout_base: Mapping[str, pd.DataFrame],
    heldout_budget: Mapping[str, pd.DataFrame],
    path: str | Path,
) -> None:
    """One panel per variant: the held-out loss (nats a token) over passes of the
    normal-budget run and of the longer run with the same seed, the verdict in the
    title; saved as PNG (:func:`fusekit.report.figures.save_png`). Raises ValueError on
    an empty table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fusekit.report.figures import save_png

    if df.empty:
        raise ValueError("no variant to plot")
    n = len(df)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax, r in zip(axes.flat, df.itertuples(index=False), strict=False):
        for curves, label, style in (
            (heldout_base, f"{r.epochs:g} passes", "o-"),
            (heldout_budget, f"{r.budget_epochs:g} passes", "s--"),
        ):
            c = curves.get(r.variant)
            if c is not None and not c.empty:
                c = c.sort_values("step")
                ax.plot(c["epoch"], c["loss"], style, ms=3, label=label)
        ax.axvline(r.epochs, color="black", lw=0.8, ls=":")
        ax.set_title(
            f"{r.variant}: {r.verdict} ({r.diff:+.1f} pts)",
            fontsize=9,
            color=COLOURS.get(r.verdict, "black"),
        )
        ax.set_xlabel("passes over the fusion prompts")
        ax.set_ylabel("held-out loss (nats/token)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(
        f"Budget check ({df['study'].iloc[0]}): one run at the normal budget and the same "
        f"seed at {int(df['factor'].iloc[0])}x",
        fontsize=10,
    )
    fig.tight_layout()
    save_png(fig, path)


def write_budget_check(
    df: pd.DataFrame,
    out: str | Path,
    markdown: str | Path,
    figure: str | Path,
    heldout_base: Mapping[str, pd.DataFrame],
    heldout_budget: Mapping[str, pd.DataFrame],
) -> None:
    """Write the table (CSV/Parquet), its Markdown page and its figure, each atomically."""
    write_table(df, out)
    with atomic_path(markdown) as tmp:
        tmp.write_text(budget_markdown(df))
    plot_budget_check(df, heldout_base, heldout_budget, figure)

"""The papers' claims tested on the tiny world: a paired difference over seeds, its 95%
interval and a verdict per claim (issue 17 item 5).

Claims (config). A study lists its claims under ``studies.<study>.claims``; each is ::

    {id: profuser_vs_csft,            # unique within the study
     paper: ProFuser,                 # optional, shown in the table
     text: "ProFuser above CSFT",     # optional, the claim in words
     better: ProFuser,                # the model or variant claimed better
     worse: CSFT,                     # the one it is compared with
     metric: average,                 # a ``metric`` of the results table
     direction: higher,               # higher (default) or lower is better
     margin: 0.0,                     # the advantage must exceed this (metric units)
     reported_better: 55.11,          # optional: the paper's numbers, so the table
     reported_worse: 54.20}           #   shows the tiny world beside the paper

:func:`check_claims` validates such a list (config/schema.yaml's ``$defs.claims`` is its
schema); config/tiny.yaml lists each study's. Metrics are the names the results table
uses: the OpenLLM benchmark keys and ``average`` (their mean), and the chat evaluation's
``lc_win_rate``, ``win_rate`` and ``arena_hard`` (:data:`fusekit.chat_eval.TABLE_COLUMNS`,
:data:`fusekit.workflow.CLAIM_CHAT_METRICS`).

Results. A long table (:data:`RESULT_COLUMNS`): one row per model x training seed x world
seed x metric, ``value`` in the metric's units (points). A metric ``<m>_se`` (from the
evaluations: ``average_se``, the standard error of one evaluation's average over its
items, :func:`fusekit.eval.precision.average_standard_error`; ``win_rate_se`` and
``lc_win_rate_se``, AlpacaEval-2's; ``arena_hard_se``,
:func:`fusekit.arena.win_rate_standard_error`) is that evaluation's standard error of
``<m>``: the claims table shows its mean per side (``eval_se_better``,
``eval_se_worse``; NaN where the table has none, as in results tables written before
it). A model that does not depend on the training seed (a source, the base target) is
*seed-independent*: its seed is empty, or it is named in ``seed_independent``; it then
has one row per world seed and metric and is a constant within that world.

Statistics. Differences are oriented so that a positive one favours the claim:
``d = better - worse`` (``worse - better`` for ``direction: lower``). They are paired
by unit: for two trained models, the same (world seed, training seed); against a
seed-independent model, each training seed of the other side minus that world's
constant. Units that only one side has are dropped (the reason says how many).

* One or two world seeds: the units are the (world seed, training seed) pairs, ``n``
  paired differences, ``mean +- t_{0.975, n-1} * sd / sqrt(n)``. The interval is about
  these worlds (the world's data, reward models and evaluation sets held fixed); the
  between-world spread is still reported (``world_sd``, with two worlds).
* Three or more world seeds: the cluster (hierarchical) form. Seeds of one world share its
  data, reward models and evaluation items, so their differences are correlated and
  pooling them as independent would understate the uncertainty about the *tiny world
  family*. Each world's mean difference is one unit (all worlds weigh the same), and the
  interval is the t interval over worlds (``W - 1`` degrees of freedom); this is the
  usual cluster-robust choice and, for a balanced design, the exact interval of the
  one-way random-effects model. With fewer than three worlds a t interval on 1 degree of
  freedom (t = 12.7) says nothing, hence the seed-level form there.

``unit`` says which form a row used; ``world_sd`` is the standard deviation of the
per-world mean differences (NaN with one world).

Verdict (oriented differences, ``margin`` in the metric's units):

* ``reproduced``: the whole interval lies above the margin (``ci_low > margin``);
* ``not reproduced``: the interval excludes any advantage beyond the margin
  (``ci_high <= margin``): the tiny world shows no gain, or a loss, with 95% confidence;
* ``inconclusive``: otherwise (the interval contains the margin), and whenever fewer
  than 2 units pair up (reason ``fewer than 2 seeds``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.checks import DataError
from fusekit.config import ConfigError
from fusekit.io import atomic_path, write_table

RESULT_COLUMNS = ("study", "model", "seed", "world_seed", "metric", "value")
KEY = ("model", "seed", "world_seed", "metric")
TABLE_COLUMNS = (
    "study",
    "claim",
    "paper",
    "text",
    "metric",
    "better",
    "worse",
    "n_seeds",
    "n_worlds",
    "mean_diff",
    "se",
    "ci_low",
    "ci_high",
    "verdict",
    "reason",
    "reported_diff",
    # beyond the list: how the interval was formed and what it compares
    "direction",
    "margin",
    "unit",
    "n_pairs",
    "world_sd",
    "better_mean",
    "worse_mean",
    # the evaluation's own standard error of the metric, mean per side (NaN: none there)
    "eval_se_better",
    "eval_se_worse",
)
# columns a claims table written before them may lack (claims_markdown shows them blank)
OPTIONAL_TABLE_COLUMNS = ("eval_se_better", "eval_se_worse")
SE_SUFFIX = "_se"
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
COLOURS = {"reproduced": "tab:green", "not reproduced": "tab:red", "inconclusive": "tab:gray"}
MIN_WORLDS_FOR_CLUSTERS = 3
LEVEL = 0.95

_REQUIRED = ("id", "better", "worse", "metric")
_OPTIONAL = {
    "paper": "",
    "text": "",
    "direction": "higher",
    "margin": 0.0,
    "reported_better": None,
    "reported_worse": None,
}


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_claims(claims, key: str = "claims") -> list[dict]:
    """Validate a claims list (``studies.<study>.claims``) and fill its defaults.

    Returns new dicts with every key of the spec. Raises :class:`fusekit.config.ConfigError`
    (a ValueError) naming ``key[i].field``: not a list, an entry not a mapping, a missing
    or unknown field, an empty or duplicate id, better equal to worse, a direction other
    than higher / lower, a margin or reported value that is not a finite number."""
    if not isinstance(claims, list):
        raise ConfigError(f"{key}: expected a list of claims, got {type(claims).__name__}")
    out, seen = [], {}
    for i, claim in enumerate(claims):
        where = f"{key}[{i}]"
        if not isinstance(claim, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(claim).__name__}")
        unknown = sorted(set(claim) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {unknown}; allowed {[*_REQUIRED, *_OPTIONAL]}"
            )
        for field in _REQUIRED:
            value = claim.get(field)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}.{field}: required, a non-empty string (got {value!r})")
        spec = {**_OPTIONAL, **claim}
        cid = spec["id"]
        if cid in seen:
            raise ConfigError(f"{where}.id: {cid!r} repeats {key}[{seen[cid]}].id")
        seen[cid] = i
        if spec["better"] == spec["worse"]:
            raise ConfigError(f"{where}: better and worse are both {spec['better']!r}")
        if spec["direction"] not in ("higher", "lower"):
            raise ConfigError(
                f"{where}.direction: {spec['direction']!r}; expected 'higher' or 'lower'"
            )
        if not _is_number(spec["margin"]):
            raise ConfigError(f"{where}.margin: {spec['margin']!r} is not a finite number")
        for field in ("reported_better", "reported_worse"):
            if spec[field] is not None and not _is_number(spec[field]):
                raise ConfigError(f"{where}.{field}: {spec[field]!r} is not a finite number")
        for field in ("paper", "text"):
            if not isinstance(spec[field], str):
                raise ConfigError(f"{where}.{field}: expected a string, got {spec[field]!r}")
        spec["margin"] = float(spec["margin"])
        out.append(spec)
    return out


def check_results(results: pd.DataFrame, source: str = "results") -> pd.DataFrame:
    """Check the long results table (:data:`RESULT_COLUMNS`) and return a copy with
    numeric ``value``. Raises :class:`fusekit.checks.DataError` (a ValueError) naming
    ``source`` and the rows: a missing column, a missing model / metric / world seed, a
    value that is not a finite number, duplicate (model, seed, world_seed, metric) rows."""
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise DataError(f"{source}: missing columns {missing}; has {list(results.columns)}")
    df = results.loc[:, list(RESULT_COLUMNS)].copy()
    for col in ("study", "model", "world_seed", "metric"):
        bad = df.index[df[col].isna()]
        if len(bad):
            raise DataError(f"{source}: empty {col} in rows {_rows(bad)}")
    value = pd.to_numeric(df["value"], errors="coerce")
    bad = df.index[~np.isfinite(value.to_numpy(dtype=float))]
    if len(bad):
        shown = df.loc[bad[:5], ["model", "seed", "world_seed", "metric", "value"]]
        raise DataError(
            f"{source}: value not a finite number (NaN, inf or text) in rows {_rows(bad)}:\n"
            f"{shown.to_string()}"
        )
    df["value"] = value.astype(float)
    dup = df.duplicated(subset=["study", *KEY], keep=False)
    if dup.any():
        shown = df.loc[dup, ["study", *KEY]].drop_duplicates().head(5)
        raise DataError(
            f"{source}: duplicate (model, seed, world_seed, metric) rows {_rows(df.index[dup])}:"
            f"\n{shown.to_string(index=False)}"
        )
    return df


def _rows(index: Iterable) -> str:
    rows = list(index)
    shown = ", ".join(str(r) for r in rows[:10])
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _side(
    df: pd.DataFrame,
    claim: dict,
    role: str,
    seed_independent: Collection[str],
    source: str,
) -> tuple[pd.DataFrame, bool]:
    """(world_seed, seed, value) rows of one side of a claim and whether it is constant."""
    model, metric = claim[role], claim["metric"]
    mine = df[df["model"] == model]
    if mine.empty:
        raise DataError(
            f"claim {claim['id']!r}: {role} model {model!r} is not in the results {source} "
            f"(models there: {sorted(df['model'].unique().tolist())})"
        )
    rows = mine[mine["metric"] == metric]
    if rows.empty:
        raise DataError(
            f"claim {claim['id']!r}: {role} model {model!r} has no metric {metric!r} in the "
            f"results {source} (its metrics: {sorted(mine['metric'].unique().tolist())})"
        )
    no_seed = rows["seed"].isna()
    constant = model in seed_independent or bool(no_seed.all())
    if constant:
        per_world = rows.groupby("world_seed").size()
        if (per_world > 1).any():
            raise DataError(
                f"{source}: model {model!r} is seed-independent (claim {claim['id']!r}) but has "
                f"several rows of metric {metric!r} in world seeds "
                f"{per_world[per_world > 1].index.tolist()}"
            )
    elif no_seed.any():
        raise DataError(
            f"{source}: model {model!r} mixes rows with and without a seed (metric {metric!r}, "
            f"rows {_rows(rows.index[no_seed])}); leave the seed empty on all its rows only "
            "when it does not depend on the training seed"
        )
    return rows[["world_seed", "seed", "value"]], constant


def paired_differences(
    results: pd.DataFrame,
    claim: dict,
    seed_independent: Collection[str] = (),
    source: str = "results",
) -> tuple[pd.DataFrame, int]:
    """The claim's paired units of a checked results table (one study).

    Returns (frame with columns world_seed, seed, better, worse, diff, one row per paired
    unit, ``diff`` oriented by the claim's direction; number of unpaired runs dropped).
    A constant side pairs with every seed of the other side in its world."""
    b, b_const = _side(results, claim, "better", seed_independent, source)
    w, w_const = _side(results, claim, "worse", seed_independent, source)
    b = b.rename(columns={"value": "better", "seed": "seed_b"})
    w = w.rename(columns={"value": "worse", "seed": "seed_w"})
    if b_const or w_const:
        on = ["world_seed"]
    else:
        on = ["world_seed", "seed"]
        b = b.rename(columns={"seed_b": "seed"})
        w = w.rename(columns={"seed_w": "seed"})
    merged = b.merge(w, on=on, how="outer", indicator=True)
    unpaired = int((merged["_merge"] != "both").sum())
    merged = merged[merged["_merge"] == "both"].copy()
    if "seed" not in merged.columns:  # a constant side: the seed is the trained side's
        merged["seed"] = merged["seed_w"] if b_const else merged["seed_b"]
    sign = 1.0 if claim["direction"] == "higher" else -1.0
    merged["diff"] = sign * (merged["better"] - merged["worse"])
    cols = ["world_seed", "seed", "better", "worse", "diff"]
    return merged[cols].sort_values(["world_seed", "seed"]).reset_index(drop=True), unpaired


def t_interval(x: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) of the Student t interval of ``x`` (n >= 2
    values; NaN se and bounds with fewer)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    se = float(x.std(ddof=1) / math.sqrt(n))
    from scipy import stats

    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return mean, se, mean - q * se, mean + q * se


def verdict(ci_low: float, ci_high: float, margin: float = 0.0) -> str:
    """``reproduced`` (ci_low > margin), ``not reproduced`` (ci_high <= margin) or
    ``inconclusive`` (otherwise, or a NaN bound)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive"
    if ci_low > margin:
        return "reproduced"
    if ci_high <= margin:
        return "not reproduced"
    return "inconclusive"


def _eval_se(results: pd.DataFrame, model: str, metric: str) -> float:
    """The mean of ``model``'s ``<metric>_se`` rows (its evaluations' standard errors of
    the metric, points); NaN when there are none."""
    rows = results[(results["model"] == model) & (results["metric"] == metric + SE_SUFFIX)]
    return float(rows["value"].mean()) if len(rows) else math.nan


def evaluate_claim(
    results: pd.DataFrame,
    claim: dict,
    seed_independent: Collection[str] = (),
    source: str = "results",
    level: float = LEVEL,
) -> dict:
    """One row of :func:`claims_table` for one checked claim (:func:`check_claims`) on a
    checked results table of one study (:func:`check_results`)."""
    pairs, unpaired = paired_differences(results, claim, seed_independent, source)
    sign = 1.0 if claim["direction"] == "higher" else -1.0
    n_worlds = int(pairs["world_seed"].nunique())
    per_world = pairs.groupby("world_seed")[["better", "worse", "diff"]].mean()
    world_sd = float(per_world["diff"].std(ddof=1)) if n_worlds >= 2 else math.nan
    if n_worlds >= MIN_WORLDS_FOR_CLUSTERS:
        unit, units = "world", per_world
    else:
        unit, units = "seed", pairs
    mean, se, low, high = t_interval(units["diff"].to_numpy(), level)
    margin = claim["margin"]
    if len(pairs) < 2:
        result, reason = "inconclusive", "fewer than 2 seeds"
    else:
        result = verdict(low, high, margin)
        reason = {
            "reproduced": f"interval above the margin {margin:g}",
            "not reproduced": f"interval at or below the margin {margin:g}",
            "inconclusive": f"interval contains the margin {margin:g}",
        }[result]
        if unit == "world":
            reason += f" (t over {n_worlds} world means)"
    if unpaired:
        reason += f"; {unpaired} unpaired run{'s' if unpaired > 1 else ''} dropped"
    rb, rw = claim["reported_better"], claim["reported_worse"]
    reported = sign * (rb - rw) if rb is not None and rw is not None else math.nan
    return {
        "claim": claim["id"],
        "paper": claim["paper"],
        "text": claim["text"],
        "metric": claim["metric"],
        "better": claim["better"],
        "worse": claim["worse"],
        "n_seeds": int(pairs["seed"].nunique()),
        "n_worlds": n_worlds,
        "mean_diff": mean,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "verdict": result,
        "reason": reason,
        "reported_diff": reported,
        "direction": claim["direction"],
        "margin": margin,
        "unit": unit,
        "n_pairs": len(pairs),
        "world_sd": world_sd,
        "better_mean": float(units["better"].mean()) if len(units) else math.nan,
        "worse_mean": float(units["worse"].mean()) if len(units) else math.nan,
        "eval_se_better": _eval_se(results, claim["better"], claim["metric"]),
        "eval_se_worse": _eval_se(results, claim["worse"], claim["metric"]),
    }


def claims_table(
    results: pd.DataFrame,
    claims: list[dict],
    study: str,
    seed_independent: Collection[str] = (),
    source: str = "results",
    level: float = LEVEL,
) -> pd.DataFrame:
    """One row per claim (:data:`TABLE_COLUMNS`) of ``study``.

    ``results``: the long table (:data:`RESULT_COLUMNS`; rows of other studies ignored);
    ``claims``: ``studies.<study>.claims``; ``seed_independent``: models that are one
    constant per world seed whatever their seed column says (a model with empty seeds is
    one anyway); ``source``: the results file, named in errors. Differences, intervals
    and verdicts as the module says; ``mean_diff``, ``se``, ``ci_*``, ``reported_diff``,
    ``world_sd`` in the metric's units, oriented (positive favours the claim);
    ``eval_se_better`` / ``eval_se_worse``: the mean of each side's ``<metric>_se`` rows
    (the evaluations' own standard error, points; NaN without such rows).

    Raises ValueError (:class:`ConfigError` for the claims, :class:`DataError` for the
    results) naming the claim, model, metric or rows: a claim's model or metric absent,
    no row of ``study``, duplicate rows, non-finite values."""
    specs = check_claims(claims, f"studies.{study}.claims")
    df = check_results(results, source)
    df = df[df["study"].astype(str) == study]
    if df.empty:
        raise DataError(
            f"{source}: no rows of study {study!r} (studies there: "
            f"{sorted(results['study'].astype(str).unique().tolist())})"
        )
    rows = [
        {"study": study, **evaluate_claim(df, c, seed_independent, source, level)} for c in specs
    ]
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def _num(x: float, digits: int, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def format_interval(mean: float, low: float, high: float, digits: int = 1) -> str:
    """``+1.8 [0.4, 3.2]``; ``+1.8 [–]`` without an interval; ``–`` without a mean."""
    if mean is None or math.isnan(mean):
        return "–"
    if math.isnan(low) or math.isnan(high):
        return f"{_num(mean, digits, True)} [–]"
    return f"{_num(mean, digits, True)} [{_num(low, digits)}, {_num(high, digits)}]"


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _span(counts: pd.Series) -> str:
    lo, hi = int(counts.min()), int(counts.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


def claims_markdown(df: pd.DataFrame, digits: int = 1) -> str:
    """A Markdown page of a :func:`claims_table`: a header with the verdict rule and the
    seeds behind it, the verdict counts, and one table row per claim (difference with its
    95% interval beside the paper's difference, each side's evaluation standard error).
    Raises ValueError on missing columns (but :data:`OPTIONAL_TABLE_COLUMNS`, shown
    blank)."""
    missing = [c for c in TABLE_COLUMNS if c not in df.columns and c not in OPTIONAL_TABLE_COLUMNS]
    if missing:
        raise ValueError(f"claims table lacks columns {missing}")
    df = df.assign(**{c: math.nan for c in OPTIONAL_TABLE_COLUMNS if c not in df.columns})
    studies = ", ".join(sorted(df["study"].astype(str).unique())) or "(none)"
    counts = df["verdict"].value_counts()
    seeds = (
        f"{_span(df['n_seeds'])} training seeds x {_span(df['n_worlds'])} world seeds"
        if len(df)
        else "no runs"
    )
    lines = [
        f"# Claims on the tiny world: {studies}",
        "",
        "Difference: better minus worse on the metric (worse minus better where lower is "
        "better), so a positive difference favours the claim; metric units (points). "
        "Units are paired by training seed within a world seed; a seed-independent model "
        "(a source, the base target) is a constant per world seed. 95% interval: Student "
        "t over the paired seeds, or over the per-world mean differences with 3 or more "
        "world seeds (`unit` in the CSV). Between-world sd: the standard deviation of the "
        "per-world mean differences (2 or more world seeds). Eval SE: each side's mean "
        "standard error of the metric within one evaluation (its items' sampling error, "
        "points; better / worse), which training seeds do not average away: the "
        "evaluation items are the same for every seed of a world.",
        "",
        "Verdict: **reproduced** when the whole interval lies above the margin (0 unless "
        "the claim sets one), **not reproduced** when its upper end is at or below the "
        "margin, **inconclusive** otherwise or with fewer than 2 seeds. "
        f"Seeds behind the differences: {seeds}.",
        "",
        "Verdicts: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS) + ".",
        "",
        "| claim | paper | claim text | metric | tiny world: difference [95% CI] "
        "| paper: difference | seeds x worlds | between-world sd | eval SE (better / worse) "
        "| verdict | reason |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in df.itertuples(index=False):
        diff = format_interval(r.mean_diff, r.ci_low, r.ci_high, digits)
        text = r.text or f"{r.better} above {r.worse}"
        cells = [
            r.claim,
            r.paper,
            text,
            r.metric,
            diff,
            _num(r.reported_diff, digits, True),
            f"{r.n_seeds} x {r.n_worlds}",
            _num(r.world_sd, digits),
            f"{_num(r.eval_se_better, digits)} / {_num(r.eval_se_worse, digits)}",
            f"**{r.verdict}**",
            r.reason,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_claims(df: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """A forest plot of a :func:`claims_table`: one row per claim, its difference and 95%
    interval coloured by verdict, the paper's difference as an open diamond, a vertical
    line at 0 (and a tick at each non-zero margin), saved as PNG
    (:func:`fusekit.report.figures.save_png`). Raises ValueError on an empty table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fusekit.report.figures import save_png

    if df.empty:
        raise ValueError("no claims to plot")
    n = len(df)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.45 * n))
    y = np.arange(n)
    for i, r in enumerate(df.itertuples(index=False)):
        colour = COLOURS.get(r.verdict, "tab:gray")
        if not math.isnan(r.mean_diff):
            if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
                ax.errorbar(
                    r.mean_diff,
                    i,
                    xerr=[[r.mean_diff - r.ci_low], [r.ci_high - r.mean_diff]],
                    fmt="o",
                    color=colour,
                    capsize=3,
                )
            else:
                ax.plot(r.mean_diff, i, "o", color=colour, mfc="white")
        if not math.isnan(r.reported_diff):
            ax.plot(r.reported_diff, i, "D", mfc="none", mec="black", ms=6)
        if r.margin:
            ax.plot([r.margin, r.margin], [i - 0.3, i + 0.3], color="black", lw=1)
    ax.axvline(0.0, color="black", lw=0.8, ls="--")
    labels = [f"{r.claim} ({r.metric})" for r in df.itertuples(index=False)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # the first claim on top
    ax.set_xlabel("difference, better - worse in the claim's direction (metric units, 95% CI)")
    ax.set_ylabel("claim (metric)")
    for v in VERDICTS:
        ax.plot([], [], "o", color=COLOURS[v], label=v)
    ax.plot([], [], "D", mfc="none", mec="black", label="reported in the paper")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)
    studies = ", ".join(sorted(df["study"].astype(str).unique()))
    ax.set_title(title or f"Claims on the tiny world ({studies}): difference and 95% interval")
    save_png(fig, path)


def write_claims(
    df: pd.DataFrame,
    out: str | Path,
    markdown: str | Path | None = None,
    figure: str | Path | None = None,
) -> None:
    """Write a :func:`claims_table` as CSV/Parquet (``out``), its Markdown page and its
    forest plot, each atomically (:mod:`fusekit.io`)."""
    write_table(df, out)
    if markdown is not None:
        with atomic_path(markdown) as tmp:
            tmp.write_text(claims_markdown(df))
    if figure is not None:
        plot_claims(df, figure)


def _openllm_metrics(path: str) -> dict[str, float]:
    """Every benchmark of an OpenLLM evaluation file, ``average`` and ``average_se``."""
    from fusekit.eval.precision import average_standard_error
    from fusekit.report.tables import read_evaluation

    scores = read_evaluation(path)
    values = {k: v["value"] for k, v in scores.items()}
    values["average"] = float(np.mean(list(values.values())))
    if all(_is_number(v["stderr"]) for v in scores.values()):
        values["average" + SE_SUFFIX] = average_standard_error({"benchmarks": scores})
    return values


def _alpaca_metrics(path: str, model: str) -> dict[str, float]:
    """AlpacaEval-2's LC and raw win rates (points) of a metrics JSON
    (:func:`fusekit.chat_eval.judge_alpaca`), with their standard errors where known."""
    from fusekit.checks import read_json

    m = read_json(path, "AlpacaEval metrics")
    keys = {"length_controlled_winrate": "lc_win_rate", "win_rate": "win_rate"}
    if not isinstance(m, dict) or any(not _is_number(m.get(k)) for k in keys):
        raise DataError(f"{path}: not an AlpacaEval metrics object (needs numbers {sorted(keys)})")
    if m.get("model") != model:
        raise DataError(f"{path}: metrics of {m.get('model')!r}, expected {model!r}")
    values = {name: float(m[k]) for k, name in keys.items()}
    for k, name in (("lc_standard_error", "lc_win_rate"), ("standard_error", "win_rate")):
        if _is_number(m.get(k)):
            values[name + SE_SUFFIX] = float(m[k])
    return values


def _arena_metrics(path: str, model: str, weight: int) -> dict[str, float]:
    """Arena-Hard's win rate against the baseline (points) of one model's judgments
    (:func:`fusekit.arena.bradley_terry_scores` on them alone, which with only battles
    against the baseline is the model's own tie-adjusted win rate, the number the
    study's table shows) and its standard error over questions
    (:func:`fusekit.arena.win_rate_standard_error`)."""
    from fusekit import arena
    from fusekit.io import read_table

    judgments = read_table(path, arena.JUDGMENT_COLUMNS)
    models = sorted(map(str, judgments.model.unique()))
    if models != [model]:
        raise DataError(f"{path}: judgments of {models}, expected only {model!r}")
    baselines = judgments.baseline.unique()
    if len(baselines) != 1:
        raise DataError(f"{path}: judgments against several baselines {sorted(baselines)}")
    try:
        battles = arena.battles_from_judgments(judgments, weight)
        scores = arena.bradley_terry_scores(battles, baselines[0], rounds=0).set_index("model")
        se = arena.win_rate_standard_error(battles, model)
    except ValueError as err:  # no valid verdict, battles on fewer than 2 questions
        raise DataError(f"{path}: {err}") from err
    return {"arena_hard": float(scores.loc[model, "score"]), "arena_hard" + SE_SUFFIX: se}


def results_from_evaluations(
    entries: list[dict], study: str, world_seed: int | None = None, arena_weight: int = 3
) -> pd.DataFrame:
    """The long results table (:data:`RESULT_COLUMNS`) from evaluation files.

    ``entries``: ``{model, seed, path, kind}`` each (``seed`` None for a seed-independent
    model; :func:`fusekit.workflow.claims_evaluations`). ``kind``:

    * ``openllm`` (the default): every benchmark of the file is one metric (its key, value
      in points), ``average`` is their unweighted mean, as in the papers' Average column,
      and ``average_se`` its standard error within the evaluation
      (:func:`fusekit.eval.precision.average_standard_error`; no such row for a file
      where a benchmark has no standard error, e.g. evaluated with a limit);
    * ``alpaca_eval``: ``lc_win_rate`` and ``win_rate`` with ``*_se`` rows;
    * ``arena_hard``: ``arena_hard`` with ``arena_hard_se`` from the model's judgments
      (strong verdicts counted ``arena_weight`` times, as the study's scores).

    Raises ValueError naming a file that is not such an evaluation or an unknown kind,
    and DataError when files of one model and kind disagree on the metrics they hold.
    """
    rows, metrics = [], {}
    for e in entries:
        kind = e.get("kind", "openllm")
        if kind == "openllm":
            values = _openllm_metrics(e["path"])
        elif kind == "alpaca_eval":
            values = _alpaca_metrics(e["path"], e["model"])
        elif kind == "arena_hard":
            values = _arena_metrics(e["path"], e["model"], arena_weight)
        else:
            raise ValueError(
                f"{e['path']}: unknown evaluation kind {kind!r} "
                "(openllm, alpaca_eval or arena_hard)"
            )
        keys = tuple(sorted(k for k in values if not k.endswith(SE_SUFFIX)))
        if metrics.setdefault((e["model"], kind), keys) != keys:
            raise DataError(
                f"{e['path']}: metrics {list(keys)} differ from another {kind} evaluation "
                f"of {e['model']} ({list(metrics[(e['model'], kind)])})"
            )
        seed = None if e.get("seed") is None else int(e["seed"])
        rows += [
            {
                "study": study,
                "model": e["model"],
                "seed": seed,
                "world_seed": world_seed,
                "metric": k,
                "value": v,
            }
            for k, v in values.items()
        ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def check_all_claims(config: dict) -> None:
    """Plan-time checks (:func:`check_study_claims`) of every study of the claims run and
    of every study with a ``budget_check``: a budget check on a study without claims or
    claims seeds is a :class:`fusekit.config.ConfigError`, not a check silently skipped."""
    from fusekit.workflow import claims_studies

    claimed = set(claims_studies(config))
    for study, spec in sorted(config.get("studies", {}).items()):
        if study in claimed or (isinstance(spec, dict) and spec.get("budget_check")):
            check_study_claims(config, study)


def check_study_claims(config: dict, study: str) -> None:
    """Plan-time checks of ``studies.<study>.claims`` and ``claims_seeds`` (raises
    :class:`fusekit.config.ConfigError` naming the key): the claims themselves
    (:func:`check_claims`); each side a variant of the study or a model of the config;
    each metric ``average``, a benchmark of ``evaluation.openllm.benchmarks`` or, where
    the chat evaluation is configured, one of
    :data:`fusekit.workflow.CLAIM_CHAT_METRICS`; at least two seeds (an interval needs
    two); a ``budget_check`` only where a claim compares a variant on an OpenLLM
    metric."""
    from fusekit.workflow import CLAIM_CHAT_METRICS, chat_eval_enabled, claim_sides

    spec = config["studies"][study]
    key = f"config key studies.{study}"
    claims = check_claims(spec.get("claims", []), f"{key}.claims")
    if spec.get("budget_check") and not (
        claim_sides(spec, "openllm") & set(spec.get("variants", {}))
    ):
        raise ConfigError(
            f"{key}.budget_check: no claim of the study compares a variant on an OpenLLM "
            "metric, so there is nothing to train at a larger budget"
        )
    unknown = sorted(
        set((spec.get("budget_check") or {}).get("variants", [])) - set(spec.get("variants", {}))
    )
    if unknown:
        raise ConfigError(
            f"{key}.budget_check.variants: {unknown} are not variants of the study "
            f"(known: {sorted(spec.get('variants', {}))})"
        )
    if not claims:
        return
    known = set(spec.get("variants", {})) | set(config.get("models", {}))
    metrics = {"average", *config.get("evaluation", {}).get("openllm", {}).get("benchmarks", {})}
    if chat_eval_enabled(config):
        metrics |= set(CLAIM_CHAT_METRICS)
    for i, c in enumerate(claims):
        for side in ("better", "worse"):
            if c[side] not in known:
                raise ConfigError(
                    f"{key}.claims[{i}].{side}: {c[side]!r} is neither a variant of the "
                    f"study nor a model (known: {sorted(known)})"
                )
        if c["metric"] not in metrics:
            raise ConfigError(
                f"{key}.claims[{i}].metric: {c['metric']!r}; known: {sorted(metrics)}"
            )
    if len(spec.get("claims_seeds", [])) < 2:
        raise ConfigError(
            f"{key}.claims_seeds: {spec.get('claims_seeds', [])} - a claim's interval needs "
            "at least 2 training seeds"
        )

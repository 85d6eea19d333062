"""Paper tables: reproduced values beside the reported ones, cell by cell, with uncertainty.

A table is configured per study (``studies.<study>.tables.<name>``): rows name a
model of the config or a trained variant and, optionally, the row of the
paper's CSV they reproduce; columns are benchmarks (by key of
``evaluation.openllm.benchmarks``, labelled by their ``label``) or groups of
benchmarks averaged (ProFuser's Knowledge / Reasoning / Safety), plus the
average over the columns as the papers print it.

The output is long: one line per (row, column) with ``reproduced``, its standard error
``stderr`` and 95% interval ``ci_lower``/``ci_upper`` (points), ``reported`` and
``difference`` (reproduced - reported, in points), so every cell can be checked on its
own; :func:`wide` and :func:`paper_layout` turn it back into the paper's layout.

Uncertainty. A benchmark cell's standard error is lm-eval's (``*_stderr``; MMLU's macro
average combines its subjects'). A column that averages benchmarks, and the Average, is
a weighted sum ``sum_b w_b v_b`` of benchmark values; its standard error is
``sqrt(sum_b w_b^2 se_b^2)`` (benchmarks scored on disjoint items, so independent; a
benchmark counted in two groups, as TruthfulQA in ProFuser's Reasoning and Safety, gets
its weights added, not treated as two independent numbers). The interval is
``value +- 1.96 se``. A cell whose benchmarks lack a standard error has none (NaN).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # two-sided 95% normal quantile
COLUMNS = (
    "table",
    "group",
    "row",
    "model",
    "kind",
    "column",
    "reproduced",
    "stderr",
    "ci_lower",
    "ci_upper",
    "reported",
    "difference",
)


def row_name(row: dict) -> str:
    """Our name of a table row: the model, or the variant."""
    return row.get("model") or row["variant"]


def read_evaluation(path: str | Path) -> dict[str, dict]:
    """Benchmark key -> ``{"value": 0-100, "stderr": points or None}`` from one
    evaluation JSON (:func:`fusekit.eval.openllm.evaluate_model`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        out = {}
        for k, v in data["benchmarks"].items():
            se = v.get("stderr")
            out[k] = {"value": float(v["value"]), "stderr": None if se is None else float(se)}
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not an OpenLLM evaluation file ({err})") from err


def _value_se(entry) -> tuple[float, float]:
    """(value, stderr) of one benchmark entry: a float (no stderr) or a dict."""
    if isinstance(entry, dict):
        se = entry.get("stderr")
        return float(entry["value"]), math.nan if se is None else float(se)
    return float(entry), math.nan


def combine(
    weights: dict[str, float], values: dict[str, tuple[float, float]]
) -> tuple[float, float]:
    """``sum_b w_b v_b`` and its standard error ``sqrt(sum_b w_b^2 se_b^2)`` (NaN when a
    weighted benchmark has no standard error)."""
    value = sum(w * values[k][0] for k, w in weights.items())
    var = sum((w * values[k][1]) ** 2 for k, w in weights.items())
    return float(value), float(math.sqrt(var)) if not math.isnan(var) else math.nan


def read_reported(path: str | Path) -> pd.DataFrame:
    """The paper's table, indexed by its ``model`` column."""
    path = Path(path)
    df = pd.read_csv(path)
    if "model" not in df.columns:
        raise ValueError(f"{path}: no 'model' column (has {list(df.columns)})")
    dup = df["model"][df["model"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path}: model rows {dup} appear more than once")
    return df.set_index("model")


def columns_of(spec: dict, benchmarks: dict[str, dict]) -> dict[str, list[str]]:
    """Column label -> the benchmark keys it averages."""
    if spec.get("groups"):
        return {name: list(keys) for name, keys in spec["groups"].items()}
    keys = spec.get("benchmarks") or list(benchmarks)
    return {benchmarks[k]["label"]: [k] for k in keys}


def build_table(
    name: str,
    spec: dict,
    benchmarks: dict[str, dict],
    evaluations: dict[str, dict],
    reported: pd.DataFrame,
) -> pd.DataFrame:
    """The long table ``name`` (:data:`COLUMNS`): every configured row and column,
    reproduced (with standard error and 95% interval) vs reported.

    ``evaluations`` maps a row's name (model or variant) to its benchmark values: key ->
    ``{"value", "stderr"}`` (:func:`read_evaluation`) or a plain number (no stderr).
    """
    columns = columns_of(spec, benchmarks)
    records = []
    for row in spec["rows"]:
        ours = row_name(row)
        if ours not in evaluations:
            raise ValueError(f"table {name}: no evaluation of {ours!r} was given")
        values = {k: _value_se(v) for k, v in evaluations[ours].items()}
        weights: dict[str, dict[str, float]] = {}
        for label, keys in columns.items():
            missing = [k for k in keys if k not in values]
            if missing:
                raise ValueError(f"table {name}: the evaluation of {ours!r} lacks {missing}")
            weights[label] = {}
            for k in keys:
                weights[label][k] = weights[label].get(k, 0.0) + 1.0 / len(keys)
        if spec.get("average", True):
            avg: dict[str, float] = {}
            for w in weights.values():
                for k, x in w.items():
                    avg[k] = avg.get(k, 0.0) + x / len(weights)
            weights["Average"] = avg
        paper = row.get("reported")
        for label, w in weights.items():
            value, se = combine(w, values)
            rep = np.nan
            if paper is not None:
                if paper not in reported.index:
                    raise ValueError(f"table {name}: reported CSV has no row {paper!r}")
                if label in reported.columns:
                    rep = float(reported.loc[paper, label])
            records.append(
                {
                    "table": name,
                    "group": row.get("group", ""),
                    "row": paper if paper is not None else "",
                    "model": ours,
                    "kind": "model" if "model" in row else "variant",
                    "column": label,
                    "reproduced": round(value, 4),
                    "stderr": round(se, 4),
                    "ci_lower": round(value - Z95 * se, 4),
                    "ci_upper": round(value + Z95 * se, 4),
                    "reported": rep,
                    "difference": round(value - rep, 4) if not np.isnan(rep) else np.nan,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def wide(table: pd.DataFrame, value: str = "reproduced") -> pd.DataFrame:
    """One line per row, one column per benchmark (the paper's layout) of one field."""
    order = list(dict.fromkeys(table["column"]))
    out = table.pivot_table(index="model", columns="column", values=value, sort=False)
    out = out.reindex(index=list(dict.fromkeys(table["model"])), columns=order)
    return out


def paper_layout(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """The table as the paper prints it (models as rows, benchmarks as columns, in the
    configured order) with each cell's standard error beside it: columns ``model``,
    ``paper_row``, then ``<label>`` and ``<label> SE`` per column (rounded to
    ``digits``; SE empty where unknown)."""
    order = list(dict.fromkeys(table["column"]))
    models = list(dict.fromkeys(table["model"]))
    cells = table.set_index(["model", "column"])
    rows = []
    for m in models:
        first = table[table["model"] == m].iloc[0]
        row = {"model": m, "paper_row": first["row"] if isinstance(first["row"], str) else ""}
        for c in order:
            row[c] = round(float(cells.loc[(m, c), "reproduced"]), digits)
            se = float(cells.loc[(m, c), "stderr"])
            row[f"{c} SE"] = round(se, digits) if not math.isnan(se) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def tabulate(
    name: str,
    spec: dict,
    benchmarks: dict[str, dict],
    evaluations: dict[str, str],
    out: str | Path,
) -> pd.DataFrame:
    """File to file: read each row's evaluation JSON (row name -> path) and the
    reported CSV of ``spec``, write the long table to ``out`` (CSV)."""
    from fusekit.io import write_table

    values = {row: read_evaluation(path) for row, path in evaluations.items()}
    table = build_table(name, spec, benchmarks, values, read_reported(spec["reported"]))
    write_table(table, out)
    return table


def benchmark_dict(benchmarks: list[dict] | dict) -> dict[str, dict]:
    """``evaluation.openllm.benchmarks`` from its list form (specs with a ``key``, in
    column order), as scripts receive it; a dict passes through."""
    if isinstance(benchmarks, dict):
        return benchmarks
    return {b["key"]: {k: v for k, v in b.items() if k != "key"} for b in benchmarks}


def publish(long_path: str | Path, out: str | Path, long_out: str | Path) -> pd.DataFrame:
    """File to file: the long table at ``long_path`` (:data:`COLUMNS`) written to
    ``out`` in the paper's layout (:func:`paper_layout`) and copied to ``long_out``."""
    from fusekit.io import read_table, write_table

    table = read_table(long_path, COLUMNS)
    layout = paper_layout(table)
    write_table(layout, out)
    write_table(table, long_out)
    return layout

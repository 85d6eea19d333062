"""Paper tables: reproduced values beside the reported ones, cell by cell.

A table is configured per study (``studies.<study>.tables.<name>``): rows name a
model of the config or a trained variant and, optionally, the row of the
paper's CSV they reproduce; columns are benchmarks (by key of
``evaluation.openllm.benchmarks``, labelled by their ``label``) or groups of
benchmarks averaged (ProFuser's Knowledge / Reasoning / Safety), plus the
average over the columns as the papers print it.

The output is long: one line per (row, column) with ``reproduced``,
``reported`` and ``difference`` (reproduced - reported, in points), so every
cell can be checked on its own; :func:`wide` turns it back into the paper's
layout for reading.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = (
    "table",
    "group",
    "row",
    "model",
    "kind",
    "column",
    "reproduced",
    "reported",
    "difference",
)


def row_name(row: dict) -> str:
    """Our name of a table row: the model, or the variant."""
    return row.get("model") or row["variant"]


def read_evaluation(path: str | Path) -> dict[str, float]:
    """Benchmark key -> value (0-100) from one evaluation JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return {k: float(v["value"]) for k, v in data["benchmarks"].items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an OpenLLM evaluation file ({err})") from err


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
    evaluations: dict[str, dict[str, float]],
    reported: pd.DataFrame,
) -> pd.DataFrame:
    """The long table ``name``: every configured row and column, reproduced vs reported.

    ``evaluations`` maps a row's name (model or variant) to its benchmark values.
    """
    columns = columns_of(spec, benchmarks)
    records = []
    for row in spec["rows"]:
        ours = row_name(row)
        if ours not in evaluations:
            raise ValueError(f"table {name}: no evaluation of {ours!r} was given")
        values = evaluations[ours]
        cells = {}
        for label, keys in columns.items():
            missing = [k for k in keys if k not in values]
            if missing:
                raise ValueError(f"table {name}: the evaluation of {ours!r} lacks {missing}")
            cells[label] = float(np.mean([values[k] for k in keys]))
        if spec.get("average", True):
            cells["Average"] = float(np.mean(list(cells.values())))
        paper = row.get("reported")
        for label, value in cells.items():
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
                    "reported": rep,
                    "difference": round(value - rep, 4) if not np.isnan(rep) else np.nan,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def wide(table: pd.DataFrame, value: str = "reproduced") -> pd.DataFrame:
    """One line per row, one column per benchmark (the paper's layout)."""
    order = list(dict.fromkeys(table["column"]))
    out = table.pivot_table(index="model", columns="column", values=value, sort=False)
    out = out.reindex(index=list(dict.fromkeys(table["model"])), columns=order)
    return out


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

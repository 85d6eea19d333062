"""Paper tables: reproduced values beside the reported ones, cell by cell, with uncertainty.

A table is configured per study (``studies.<study>.tables.<name>``): rows name a
model of the config or a trained variant and, optionally, the row of the
paper's CSV they reproduce. Columns mix sources of numbers (:func:`table_columns`):

* OpenLLM benchmarks (by key of ``evaluation.openllm.benchmarks``, labelled by their
  ``label``) or groups of them averaged (ProFuser's Knowledge / Reasoning / Safety);
* benchmarks of another suite (``suites: {<suite>: [keys]}``, keys of
  ``evaluation.suites.<suite>.benchmarks``), evaluated only for the rows of tables that
  name the suite; a benchmark that executes generated code (``executes_code``) is not
  run unless the suite opts in (``allow_code_execution``);
* chat columns (``chat:``, labels of :data:`CHAT_COLUMNS`) read from the study's
  ``chat_eval.csv`` (:data:`fusekit.chat_eval.TABLE_COLUMNS`);
* columns not run (``not_run: {label: reason}``): in the table with the reported number
  and no reproduced one;

plus the average over the benchmark columns as the papers print it (``average``: true
for ``Average``, a label such as ``Avg``, or false). Columns follow the reported CSV's
order; labels it lacks come after, in configured order.

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

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # two-sided 95% normal quantile
OPENLLM = "openllm"  # the suite of evaluation.openllm.benchmarks
CHAT_COLUMNS = ("AlpacaEval-2 LC", "AlpacaEval-2 WR", "Arena-Hard WR")
CODE_REASON = (
    "executes generated code: runs only with evaluation.suites.{suite}.allow_code_execution "
    "true (lm-eval's HF_ALLOW_CODE_EVAL=1 and confirm_run_unsafe_code)"
)
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


def read_reported(
    path: str | Path, index: str | None = None, layout: str | None = None
) -> pd.DataFrame:
    """The paper's table, one row per reported model (index: its name, a string).

    Lines starting with ``#`` are comments. ``layout`` ``models_as_rows`` (default): the
    ``index`` column (default ``model``) names the rows, other columns are benchmarks.
    ``models_as_columns`` (a model card): the ``index`` column (default ``benchmark``)
    names the benchmarks and every other column is a model; the result is transposed to
    models as rows, values numeric (empty: NaN). Raises ValueError for a missing index
    column, a duplicated name or an unknown layout.
    """
    path = Path(path)
    layout = layout or "models_as_rows"
    if layout not in ("models_as_rows", "models_as_columns"):
        raise ValueError(f"{path}: unknown layout {layout!r}")
    index = index or ("model" if layout == "models_as_rows" else "benchmark")
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    df = pd.read_csv(io.StringIO("\n".join(lines) + "\n"), dtype={index: str})
    if index not in df.columns:
        raise ValueError(f"{path}: no {index!r} column (has {list(df.columns)})")
    dup = df[index][df[index].duplicated()].tolist()
    if dup:
        what = "model" if layout == "models_as_rows" else "benchmark"
        raise ValueError(f"{path}: {what} rows {dup} appear more than once")
    df = df.set_index(index)
    if layout == "models_as_columns":
        df = df.T.apply(pd.to_numeric, errors="coerce")
        df.index = df.index.astype(str)
        df.index.name = "model"
        df.columns.name = None
    return df


def read_reported_spec(spec: dict) -> pd.DataFrame:
    """:func:`read_reported` of a table spec (``reported``, ``reported_index``,
    ``reported_layout``)."""
    return read_reported(spec["reported"], spec.get("reported_index"), spec.get("reported_layout"))


def _other_sources(spec: dict) -> bool:
    return bool(spec.get("suites") or spec.get("chat") or spec.get("not_run"))


def columns_of(spec: dict, benchmarks: dict[str, dict]) -> dict[str, list[str]]:
    """Column label -> the OpenLLM benchmark keys it averages (``benchmarks`` omitted: all
    of them, unless the table names suite, chat or not-run columns: then none)."""
    if spec.get("groups"):
        return {name: list(keys) for name, keys in spec["groups"].items()}
    if "benchmarks" in spec:
        keys = spec["benchmarks"] or []
    else:
        keys = [] if _other_sources(spec) else list(benchmarks)
    return {benchmarks[k]["label"]: [k] for k in keys}


def average_label(spec: dict) -> str | None:
    """The label of the table's average column (``average``: true -> ``Average``, a
    string -> itself, false -> None)."""
    avg = spec.get("average", True)
    if avg is True:
        return "Average"
    return avg or None


def table_columns(
    spec: dict, benchmarks: dict[str, dict], suites: dict[str, dict] | None = None
) -> list[dict]:
    """The table's columns in configured order (before the reported CSV's order is
    applied), the average excluded: dicts ``{"label", "source", "keys", "suite",
    "reason"}`` with ``source`` one of ``benchmark`` (``keys``: ``(suite, key)`` pairs it
    averages), ``chat`` or ``not_run`` (``reason``). A suite benchmark that executes code
    in a suite without ``allow_code_execution`` is ``not_run``. Raises ValueError for an
    unknown suite or benchmark key, a chat label outside :data:`CHAT_COLUMNS` or a label
    used twice."""
    suites = suites or {}
    cols = [
        {"label": label, "source": "benchmark", "keys": [(OPENLLM, k) for k in keys]}
        for label, keys in columns_of(spec, benchmarks).items()
    ]
    for suite, keys in (spec.get("suites") or {}).items():
        if suite not in suites:
            raise ValueError(f"no benchmark suite {suite!r} (evaluation.suites)")
        sb = suites[suite].get("benchmarks", {})
        for k in keys:
            if k not in sb:
                raise ValueError(f"suite {suite!r} has no benchmark {k!r}")
            b = sb[k]
            if b.get("executes_code") and not suites[suite].get("allow_code_execution"):
                cols.append(
                    {
                        "label": b["label"],
                        "source": "not_run",
                        "reason": CODE_REASON.format(suite=suite),
                    }
                )
            else:
                cols.append({"label": b["label"], "source": "benchmark", "keys": [(suite, k)]})
    for label in spec.get("chat") or []:
        if label not in CHAT_COLUMNS:
            raise ValueError(f"chat column {label!r} is not one of {list(CHAT_COLUMNS)}")
        cols.append({"label": label, "source": "chat"})
    for label, reason in (spec.get("not_run") or {}).items():
        cols.append({"label": label, "source": "not_run", "reason": str(reason)})
    labels = [c["label"] for c in cols] + [x for x in [average_label(spec)] if x]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"column labels {dup} appear more than once")
    for c in cols:
        c.setdefault("keys", [])
        c.setdefault("suite", c["keys"][0][0] if c["keys"] else "")
        c.setdefault("reason", "")
    return cols


def not_run_columns(
    spec: dict, benchmarks: dict[str, dict], suites: dict[str, dict] | None = None
) -> dict[str, str]:
    """Label -> reason of every column of the table that has no reproduced value."""
    return {
        c["label"]: c["reason"]
        for c in table_columns(spec, benchmarks, suites)
        if c["source"] == "not_run"
    }


def chat_values(r) -> dict[str, tuple[float, float, float | None, float | None]]:
    """One row of ``chat_eval.csv`` (a namedtuple or Series) as label -> ``(value, se,
    lower, upper)`` in points: AlpacaEval-2 LC and WR with their standard errors (NaN:
    unknown; interval None: value +- 1.96 SE), Arena-Hard WR with its bootstrap interval
    (no SE)."""
    return {
        "AlpacaEval-2 LC": (r.lc_win_rate, r.lc_standard_error, None, None),
        "AlpacaEval-2 WR": (r.win_rate, r.standard_error, None, None),
        "Arena-Hard WR": (r.arena_hard, math.nan, r.arena_hard_lower, r.arena_hard_upper),
    }


def _isnan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def chat_cell(r, label: str) -> tuple[float, float, float, float]:
    """``(value, se, ci_lower, ci_upper)`` of one chat column of a ``chat_eval.csv`` row
    (:func:`chat_values`; NaN where unknown)."""
    value, se, lower, upper = chat_values(r)[label]
    se = math.nan if _isnan(se) else float(se)
    if lower is None:
        lower, upper = value - Z95 * se, value + Z95 * se
    lower = math.nan if _isnan(lower) else float(lower)
    upper = math.nan if _isnan(upper) else float(upper)
    return float(value), se, lower, upper


def build_table(
    name: str,
    spec: dict,
    benchmarks: dict[str, dict],
    evaluations: dict[str, dict],
    reported: pd.DataFrame,
    suites: dict[str, dict] | None = None,
    suite_evaluations: dict[str, dict[str, dict]] | None = None,
    chat: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The long table ``name`` (:data:`COLUMNS`): every configured row and column,
    reproduced (with standard error and 95% interval) vs reported.

    ``evaluations`` maps a row's name (model or variant) to its OpenLLM benchmark values:
    key -> ``{"value", "stderr"}`` (:func:`read_evaluation`) or a plain number (no
    stderr); ``suite_evaluations`` the same per suite (``{suite: {row: values}}``) and
    ``suites`` is ``evaluation.suites``; ``chat`` is the study's ``chat_eval.csv``
    (one row per model or variant name). A not-run column's cells have the reported
    number and no reproduced one (NaN); an empty reported cell is NaN. Raises ValueError
    when a row's evaluation, benchmark, chat row or reported row is missing.
    """
    columns = table_columns(spec, benchmarks, suites)
    pos = {c: i for i, c in enumerate(reported.columns)}
    order = sorted(range(len(columns)), key=lambda i: (pos.get(columns[i]["label"], len(pos)), i))
    columns = [columns[i] for i in order]
    avg_label = average_label(spec)
    bench_cols = [c for c in columns if c["source"] == "benchmark"]
    if avg_label and len(bench_cols) < len(columns):
        raise ValueError(
            f"table {name}: the average needs every column to be a run benchmark "
            f"(set average: false and list the paper's average under not_run)"
        )
    if any(c["source"] == "chat" for c in columns):
        if chat is None:
            raise ValueError(f"table {name}: chat columns need the study's chat_eval.csv")
        chat = chat.assign(model=chat["model"].astype(str)).set_index("model", drop=False)
    used_suites = list(dict.fromkeys(s for c in bench_cols for s, _ in c["keys"]))
    records = []
    for row in spec["rows"]:
        ours = row_name(row)
        values: dict[tuple[str, str], tuple[float, float]] = {}
        for suite in used_suites:
            if suite == OPENLLM:
                if ours not in evaluations:
                    raise ValueError(f"table {name}: no evaluation of {ours!r} was given")
                given = evaluations[ours]
            else:
                given = (suite_evaluations or {}).get(suite, {}).get(ours)
                if given is None:
                    raise ValueError(f"table {name}: no {suite} evaluation of {ours!r} was given")
            values.update({(suite, k): _value_se(v) for k, v in given.items()})
        weights: dict[str, dict[tuple[str, str], float]] = {}
        for col in bench_cols:
            keys = col["keys"]
            missing = [k for s, k in keys if (s, k) not in values]
            if missing:
                where = "" if col["suite"] == OPENLLM else f"{col['suite']} "
                raise ValueError(f"table {name}: the {where}evaluation of {ours!r} lacks {missing}")
            w: dict[tuple[str, str], float] = {}
            for k in keys:
                w[k] = w.get(k, 0.0) + 1.0 / len(keys)
            weights[col["label"]] = w
        if avg_label:
            avg: dict[tuple[str, str], float] = {}
            for w in weights.values():
                for k, x in w.items():
                    avg[k] = avg.get(k, 0.0) + x / len(weights)
            weights[avg_label] = avg
        paper = row.get("reported")
        paper = None if paper is None else str(paper)
        if paper is not None and paper not in reported.index:
            raise ValueError(f"table {name}: reported CSV has no row {paper!r}")
        cells = []
        for col in columns:
            label = col["label"]
            if col["source"] == "benchmark":
                value, se = combine(weights[label], values)
                cells.append((label, value, se, value - Z95 * se, value + Z95 * se))
            elif col["source"] == "chat":
                if ours not in chat.index:
                    raise ValueError(f"table {name}: chat_eval.csv has no row {ours!r}")
                value, se, lower, upper = chat_cell(chat.loc[ours], label)
                cells.append((label, value, se, lower, upper))
            else:
                cells.append((label, math.nan, math.nan, math.nan, math.nan))
        if avg_label:
            value, se = combine(weights[avg_label], values)
            cells.append((avg_label, value, se, value - Z95 * se, value + Z95 * se))
        for label, value, se, lower, upper in cells:
            rep = np.nan
            if paper is not None and label in reported.columns:
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
                    "ci_lower": round(lower, 4),
                    "ci_upper": round(upper, 4),
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
    suites: dict[str, dict] | None = None,
    suite_evaluations: dict[str, dict[str, str]] | None = None,
    chat_eval: str | Path | None = None,
) -> pd.DataFrame:
    """File to file: read each row's OpenLLM evaluation JSON (row name -> path), its
    suite evaluations (suite -> row name -> path), the study's ``chat_eval.csv`` (when the
    table has chat columns) and the reported CSV of ``spec``; write the long table to
    ``out`` (CSV). Raises ValueError for an unreadable evaluation file."""
    from fusekit.io import write_table

    values = {row: read_evaluation(path) for row, path in evaluations.items()}
    by_suite = {
        suite: {row: read_evaluation(path) for row, path in rows.items()}
        for suite, rows in (suite_evaluations or {}).items()
    }
    chat = pd.read_csv(chat_eval) if chat_eval else None
    table = build_table(
        name, spec, benchmarks, values, read_reported_spec(spec), suites, by_suite, chat
    )
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

"""verification.md: every table cell of a study, reproduced vs reported, with a verdict
that accounts for the reproduced number's uncertainty.

This is the file a reviewer reads: what was run (lm-eval task, shots, metric, the answer
filter read and the prompt style of each benchmark), how verdicts are given, a summary
per table, then every cell of the OpenLLM tables and of the chat evaluation
(AlpacaEval-2 and Arena-Hard) beside the reported numbers.

Verdicts (:func:`verdict`). Each reproduced cell has a 95% interval: value +- 1.96
standard errors (lm-eval's, alpaca_eval's or the bootstrap standard error) or Arena-Hard's
bootstrap percentile interval. The reported number is taken as exact (papers give no
uncertainty) and the tolerance band is ``reported +- evaluation.tolerance``:

* **within tolerance**: the whole interval lies inside the band;
* **differs**: the whole interval lies outside the band;
* **not distinguishable at this sample size**: the interval overlaps the band's edge (or
  no interval is known): the data can neither confirm nor reject the reported number;
* **not run**: a column fusekit does not reproduce (``not_run`` of the table, or a
  benchmark that executes code without opt-in); the reason is listed beside the table and
  the cell never counts as a failure.

A point estimate that falls inside the band by chance, with an interval ten points wide,
is therefore not "within tolerance". In the tiny world every cell tests the pipeline, not
the paper: its models and benchmarks are stand-ins matched to reported rows by role.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from fusekit.report.tables import CHAT_COLUMNS

WITHIN, DIFFERS, UNCLEAR = (
    "within tolerance",
    "differs",
    "not distinguishable at this sample size",
)
NO_REPORTED = "no reported value"
NOT_RUN = "not run"
VERDICTS = (WITHIN, DIFFERS, UNCLEAR)


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(x) -> str:
    return "" if _nan(x) else f"{x:.2f}"


def verdict(
    lower: float, upper: float, reported: float, tolerance: float, unreported: str = NO_REPORTED
) -> str:
    """One of :data:`VERDICTS` for a reproduced 95% interval ``[lower, upper]`` against a
    reported number and a tolerance in points (see the module doc); ``unreported``
    (default :data:`NO_REPORTED`; FuseRL: "not reported here") when ``reported`` is
    missing. An unknown interval (NaN) is not distinguishable."""
    if _nan(reported):
        return unreported
    if _nan(lower) or _nan(upper):
        return UNCLEAR
    lo, hi = reported - tolerance - 1e-9, reported + tolerance + 1e-9
    if lo <= lower and upper <= hi:
        return WITHIN
    if upper < lo or lower > hi:
        return DIFFERS
    return UNCLEAR


def cell_status(difference: float, tolerance: float) -> str:
    """The point comparison alone: 'yes' within tolerance, 'no' outside, 'n/a' without a
    reported value (kept for callers that have no interval; verification uses
    :func:`verdict`)."""
    if _nan(difference):
        return "n/a"
    return "yes" if abs(difference) <= tolerance + 1e-9 else "no"


def with_verdicts(
    table: pd.DataFrame,
    tolerance: float,
    not_run: dict[str, str] | None = None,
    unreported: str = NO_REPORTED,
) -> pd.DataFrame:
    """``table`` (:data:`fusekit.report.tables.COLUMNS`) with a ``verdict`` column;
    cells of a column in ``not_run`` (label -> reason) without a reproduced value get
    :data:`NOT_RUN`; cells without a reported number get ``unreported``."""
    out = table.copy()
    skip = set(not_run or {})
    out["verdict"] = [
        NOT_RUN
        if r.column in skip and _nan(r.reproduced)
        else verdict(r.ci_lower, r.ci_upper, r.reported, tolerance, unreported)
        for r in out.itertuples()
    ]
    return out


def chat_cells(
    chat: pd.DataFrame, spec: dict | None, reported: pd.DataFrame | None
) -> pd.DataFrame:
    """The chat evaluation (``chat_eval.csv``, :data:`fusekit.chat_eval.TABLE_COLUMNS`) as
    long cells (:data:`fusekit.report.tables.COLUMNS`, table ``chat_eval``): per model
    AlpacaEval-2 LC and WR (interval +- 1.96 SE; none where the SE is unknown) and the
    Arena-Hard WR (its bootstrap 95% interval), beside the reported row that
    ``spec["rows"]`` names for the model (``{model|variant, reported}``; others: none)."""
    from fusekit.report.tables import COLUMNS, chat_cell

    paper = {}
    for row in (spec or {}).get("rows", []):
        name = row.get("model") or row.get("variant")
        paper[name] = row.get("reported")
    records = []
    for r in chat.itertuples():
        row_name = paper.get(r.model)
        for label in CHAT_COLUMNS:
            value, se, lower, upper = chat_cell(r, label)
            rep = math.nan
            if row_name is not None and reported is not None:
                if row_name not in reported.index:
                    raise ValueError(f"chat_table: the reported CSV has no row {row_name!r}")
                if label in reported.columns and not _nan(reported.loc[row_name, label]):
                    rep = float(reported.loc[row_name, label])
            records.append(
                {
                    "table": "chat_eval",
                    "group": "",
                    "row": row_name or "",
                    "model": r.model,
                    "kind": "",
                    "column": label,
                    "reproduced": value,
                    "stderr": se,
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "reported": rep,
                    "difference": value - rep if not math.isnan(rep) else math.nan,
                }
            )
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def _summary(name: str, df: pd.DataFrame, with_not_run: bool = False) -> str:
    v = df["verdict"]
    n = int(v.isin(VERDICTS).sum())
    line = (
        f"| {name} | {len(df)} | {n} | {int((v == WITHIN).sum())} | {int((v == DIFFERS).sum())} "
        f"| {int((v == UNCLEAR).sum())} |"
    )
    return line + f" {int((v == NOT_RUN).sum())} |" if with_not_run else line


def _cells(df: pd.DataFrame, scope: str) -> list[str]:
    lines = [
        "| group | paper row | model | column | reproduced | SE | 95% interval | reported | "
        "difference | verdict | tests |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in df.itertuples():
        interval = (
            f"[{_fmt(r.ci_lower)}, {_fmt(r.ci_upper)}]"
            if not (_nan(r.ci_lower) or _nan(r.ci_upper))
            else "unknown"
        )
        lines.append(
            f"| {r.group} | {r.row} | {r.model} | {r.column} | {_fmt(r.reproduced)} | "
            f"{_fmt(r.stderr)} | {interval} | {_fmt(r.reported)} | {_fmt(r.difference)} | "
            f"{r.verdict} | {scope} |"
        )
    return lines


def render_verification(
    study: str,
    tables: dict[str, pd.DataFrame],
    titles: dict[str, str],
    benchmarks: dict[str, dict],
    tolerance: float,
    scale: str,
    chat: pd.DataFrame | None = None,
    chat_title: str = "",
    chat_notes: list[str] | None = None,
    not_run: dict[str, dict[str, str]] | None = None,
    suites: dict[str, dict] | None = None,
    assumptions: list[dict] | None = None,
    unreported: str = NO_REPORTED,
) -> str:
    """The markdown text of ``results/<study>/verification.md``.

    ``tables``: long tables (:data:`fusekit.report.tables.COLUMNS`); ``chat``: the chat
    evaluation's cells from :func:`chat_cells`, or None when the study has none;
    ``not_run``: table -> column label -> why it has no reproduced value (listed under
    the table; its cells get :data:`NOT_RUN`); ``suites``: the benchmark suites other
    than OpenLLM that the tables read (``evaluation.suites.<suite>``, benchmarks as
    evaluated), described beside the OpenLLM benchmarks; ``assumptions``: the study's
    assumed values (``{item, default, source}`` each), listed in a section of their own;
    ``unreported``: the verdict of a cell without a reported number.
    """
    not_run = not_run or {}
    scope = "pipeline (tiny world), not the paper" if scale == "tiny" else "the paper's number"
    lines = [
        f"# Verification: {study}",
        "",
        f"Scale: **{scale}**. Tolerance: **{tolerance:g}** points (`evaluation.tolerance`). "
        "Each reproduced cell has a 95% interval (value +- 1.96 standard errors, or "
        "Arena-Hard's bootstrap interval); the reported number is taken as exact. "
        f"Verdicts: **{WITHIN}** (the whole interval inside reported +- tolerance), "
        f"**{DIFFERS}** (the whole interval outside it), **{UNCLEAR}** (the interval "
        "overlaps the band's edge, or no interval is known).",
    ]
    if scale == "tiny":
        lines += [
            "",
            "This is the tiny world: its models and benchmarks are stand-ins built by the "
            "workflow and matched to the paper's rows by role, so every verdict below tests "
            "the pipeline, not the paper's claims.",
        ]
    lines += [
        "",
        "## How each benchmark was evaluated",
        "",
        "| column | lm-eval task | shots | metric | answer filter read | aggregate "
        "| prompt style |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    described = [(spec, "") for spec in benchmarks.values()]
    for suite, sspec in (suites or {}).items():
        described += [(spec, suite) for spec in sspec.get("benchmarks", {}).values()]
    for spec, suite in described:
        filt = spec.get("filter")
        filt = f"`{filt}`" if filt else "lm-eval default (`none`)"
        label = f"{spec['label']} (suite {suite})" if suite else spec["label"]
        lines.append(
            f"| {label} | `{spec['task']}` | {spec['num_fewshot']} | {spec['metric']} | "
            f"{filt} | {spec.get('aggregate', 'lm_eval')} | "
            f"{spec.get('style') or 'lm-eval default'} |"
        )
    judged = {
        name: with_verdicts(df, tolerance, not_run.get(name), unreported)
        for name, df in tables.items()
    }
    counted = any(not_run.get(name) for name in judged)
    chat_judged = (
        with_verdicts(chat, tolerance, unreported=unreported) if chat is not None else None
    )
    if assumptions:
        lines += [
            "",
            "## Assumptions",
            "",
            "Values the paper does not give: each is fusekit's default, marked assumed; "
            f"cells without a reported number read **{unreported}**, never a pass or a fail.",
            "",
            "| item | default | source |",
            "| --- | --- | --- |",
        ]
        for a in assumptions:
            default = a.get("default", "")
            default = json.dumps(default) if isinstance(default, dict | list) else default
            lines.append(f"| {a.get('item', '')} | {default} | {a.get('source', '')} |")
    lines += [
        "",
        "## Summary",
        "",
        f"| table | cells | with a reported value | {WITHIN} | {DIFFERS} | {UNCLEAR} |"
        + (f" {NOT_RUN} |" if counted else ""),
        "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if counted else ""),
    ]
    lines += [_summary(name, df, counted) for name, df in judged.items()]
    if chat_judged is not None:
        lines.append(_summary("chat_eval (AlpacaEval-2, Arena-Hard)", chat_judged, counted))
    for name, df in judged.items():
        df = df.assign(group=df["group"].fillna(""), row=df["row"].fillna(""))
        lines += ["", f"## {name}", ""]
        if titles.get(name):
            lines += [titles[name], ""]
        if not_run.get(name):
            lines += [
                "Columns not run (the reported number is shown without a reproduced one; "
                "never counted as a failure):",
                "",
            ]
            lines += [f"- **{label}**: {reason}" for label, reason in not_run[name].items()]
            lines.append("")
        lines += _cells(df, scope)
    if chat_judged is not None:
        df = chat_judged.assign(row=chat_judged["row"].fillna(""))
        lines += ["", "## chat_eval: AlpacaEval-2 and Arena-Hard", ""]
        if chat_title:
            lines += [chat_title, ""]
        lines += [
            "AlpacaEval-2: length-controlled (LC) and raw win rate (WR) against the reference "
            "outputs, standard errors as `chat_eval.csv` gives them; Arena-Hard v0.1: win rate "
            "against the baseline with its 95% bootstrap interval (unknown where bootstrap "
            "rounds miss a model).",
            "",
        ]
        lines += [f"- {note}" for note in chat_notes or []]
        if chat_notes:
            lines.append("")
        lines += _cells(df, scope)
    return "\n".join(lines) + "\n"


def chat_notes(chat: pd.DataFrame) -> list[str]:
    """What a reader must know about a chat table's uncertainty (LC standard errors that
    are bootstrap or unknown, Arena-Hard intervals missing, LCs of exactly 50)."""
    notes = []
    if "lc_standard_error_kind" in chat.columns:
        kinds = chat["lc_standard_error_kind"].fillna("none")
        if (kinds == "bootstrap").any():
            notes.append(
                "LC standard errors are bootstrap standard errors over the items: the LC "
                "reference (`df_gamed.csv`) has no instruction difficulties, where "
                "alpaca_eval's own LC standard error is 0 by construction."
            )
        if (kinds == "none").any():
            names = ", ".join(chat.loc[kinds == "none", "model"].astype(str))
            notes.append(f"LC standard error unknown (no difficulties, no bootstrap): {names}.")
    fifty = chat[(chat["lc_win_rate"] - 50).abs() < 1e-6]
    if len(fifty):
        notes.append(
            "LC of exactly 50.00 ("
            + ", ".join(fifty["model"].astype(str))
            + "): alpaca_eval's L1-penalised GLM, with C chosen by cross-validation, set "
            "every coefficient to 0, i.e. found no difference from the reference at this "
            "sample size; read it with its standard error."
        )
    if "arena_hard_rounds_missing" in chat.columns:
        gaps = chat[chat["arena_hard_rounds_missing"].fillna(0) > 0]
        if len(gaps):
            notes.append(
                "Arena-Hard interval unknown (model absent from some bootstrap rounds): "
                + ", ".join(gaps["model"].astype(str))
                + "."
            )
    return notes


def write_verification(
    study: str,
    tables: dict[str, str],
    titles: dict[str, str],
    benchmarks: dict[str, dict],
    tolerance: float,
    scale: str,
    out: str,
    chat_eval: str | None = None,
    chat_spec: dict | None = None,
    not_run: dict[str, dict[str, str]] | None = None,
    suites: dict[str, dict] | None = None,
    verification: dict | None = None,
) -> str:
    """File to file: read the long tables (name -> CSV path) and, when given, the chat
    evaluation table (``chat_eval.csv``) with ``chat_spec``
    (``studies.<study>.chat_table``: its reported CSV and rows); write the markdown
    (``not_run`` and ``suites`` as in :func:`render_verification`; ``verification``:
    ``{"assumptions": [...], "unreported": "..."}``,
    :func:`fusekit.workflow.verification_spec`)."""
    from fusekit.io import atomic_path, read_table
    from fusekit.report.tables import COLUMNS, read_reported

    frames = {name: read_table(path, COLUMNS) for name, path in tables.items()}
    chat = notes = None
    if chat_eval:
        raw = pd.read_csv(chat_eval)
        reported = read_reported(chat_spec["reported"]) if chat_spec else None
        chat = chat_cells(raw, chat_spec, reported)
        notes = chat_notes(raw)
    text = render_verification(
        study,
        frames,
        titles,
        benchmarks,
        tolerance,
        scale,
        chat,
        (chat_spec or {}).get("title", ""),
        notes,
        not_run,
        suites,
        (verification or {}).get("assumptions"),
        (verification or {}).get("unreported") or NO_REPORTED,
    )
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return text

"""verification.md: every table cell, reproduced vs reported, within tolerance or not.

This is the file a reviewer reads: what was run (lm-eval task, shots, metric
and prompt style of each benchmark), the tolerance, a summary per table, then
every cell.
"""

from __future__ import annotations

import math

import pandas as pd


def _fmt(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def cell_status(difference: float, tolerance: float) -> str:
    """'yes' within tolerance, 'no' outside, 'n/a' without a reported value."""
    if difference is None or math.isnan(difference):
        return "n/a"
    return "yes" if abs(difference) <= tolerance + 1e-9 else "no"


def render_verification(
    study: str,
    tables: dict[str, pd.DataFrame],
    titles: dict[str, str],
    benchmarks: dict[str, dict],
    tolerance: float,
    scale: str,
) -> str:
    """The markdown text of ``results/<study>/verification.md``."""
    lines = [
        f"# Verification: {study}",
        "",
        f"Scale: **{scale}**. A cell is reproduced when |reproduced - reported| <= "
        f"**{tolerance:g}** points (`evaluation.tolerance`).",
    ]
    if scale == "tiny":
        lines += [
            "",
            "This is the tiny world: its models and benchmarks are stand-ins built by the "
            "workflow, so the differences check the pipeline, not the paper's claims.",
        ]
    lines += [
        "",
        "## How each benchmark was evaluated",
        "",
        "| column | lm-eval task | shots | metric | aggregate | prompt style |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for spec in benchmarks.values():
        lines.append(
            f"| {spec['label']} | `{spec['task']}` | {spec['num_fewshot']} | {spec['metric']} | "
            f"{spec.get('aggregate', 'lm_eval')} | {spec.get('style') or 'lm-eval default'} |"
        )
    lines += ["", "## Summary", "", "| table | cells with a reported value | reproduced | not |"]
    lines += ["| --- | ---: | ---: | ---: |"]
    for name, df in tables.items():
        status = [cell_status(d, tolerance) for d in df["difference"]]
        n = sum(s != "n/a" for s in status)
        yes = status.count("yes")
        lines.append(f"| {name} | {n} | {yes} | {n - yes} |")
    for name, df in tables.items():
        df = df.assign(group=df["group"].fillna(""), row=df["row"].fillna(""))
        lines += ["", f"## {name}", ""]
        if titles.get(name):
            lines += [titles[name], ""]
        lines += [
            "| group | paper row | model | column | reproduced | reported | difference | within |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | --- |",
        ]
        for r in df.itertuples():
            within = cell_status(r.difference, tolerance)
            lines.append(
                f"| {r.group} | {r.row} | {r.model} | {r.column} | {_fmt(r.reproduced)} | "
                f"{_fmt(r.reported)} | {_fmt(r.difference)} | {within} |"
            )
    return "\n".join(lines) + "\n"


def write_verification(
    study: str,
    tables: dict[str, str],
    titles: dict[str, str],
    benchmarks: dict[str, dict],
    tolerance: float,
    scale: str,
    out: str,
) -> str:
    """File to file: read the long tables (name -> CSV path), write the markdown."""
    from fusekit.io import atomic_path, read_table
    from fusekit.report.tables import COLUMNS

    frames = {name: read_table(path, COLUMNS) for name, path in tables.items()}
    text = render_verification(study, frames, titles, benchmarks, tolerance, scale)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return text

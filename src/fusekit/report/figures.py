"""Figures of a study as PNG (matplotlib, no display needed).

- :func:`plot_advantage_by_mode`: each source's win share in training mode
  (MinCE on the references) beside inference mode (reward-model vote), the
  analogue of ProFuser's Figure 1a;
- :func:`plot_advantage_methods`: how often each advantage-evaluation method
  (each reward model, the vote, the reference score) picks each source, and
  how often two methods agree (ProFuser's Figure 3);
- :func:`plot_loss_curves`: the training loss of every variant, stage
  boundaries marked, every panel on one loss scale, and its held-out loss where the run
  evaluated one;
- :func:`plot_table_vs_reported`: reproduced against reported cells of a
  paper table, with 95% intervals, the tolerance band and the study's own method
  highlighted.

Every axis is labelled; legends sit outside the plotting area, so they never cover data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fusekit.io import atomic_path  # noqa: E402


def save_png(fig, out: str | Path) -> None:
    """Write ``fig`` to ``out`` as a PNG (120 dpi, tight box) atomically and close it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _legend_outside(ax, **kwargs) -> None:
    """A legend to the right of the axes (it covers no data)."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def _bars(ax, labels: list[str], series: dict[str, list[float]]) -> None:
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        pos = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(pos, values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, labels)


def plot_advantage_by_mode(table: pd.DataFrame, out: str | Path, title: str = "") -> None:
    """Bars of ``table`` (columns source, training_mode, inference_mode)."""
    missing = {"source", "training_mode", "inference_mode"} - set(table.columns)
    if missing:
        raise ValueError(f"advantage-by-mode table lacks columns {sorted(missing)}")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    _bars(
        ax,
        table["source"].tolist(),
        {
            "training mode (MinCE on references)": table["training_mode"].tolist(),
            "inference mode (RM vote)": table["inference_mode"].tolist(),
        },
    )
    ax.set_xlabel("source model")
    ax.set_ylabel("share of prompts won")
    ax.set_ylim(0, max(1e-9, table[["training_mode", "inference_mode"]].to_numpy().max()) * 1.25)
    ax.set_title(title or "Advantage of each source by mode")
    _legend_outside(ax, fontsize=8)
    save_png(fig, out)


def plot_advantage_methods(
    shares: pd.DataFrame, agreement: pd.DataFrame, out: str | Path, title: str = ""
) -> None:
    """Left: share of prompts each method gives each source; right: pairwise agreement."""
    need = {"method", "source", "share"}
    if need - set(shares.columns):
        raise ValueError(f"method table lacks columns {sorted(need - set(shares.columns))}")
    pivot = shares.pivot(index="method", columns="source", values="share")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=[1.3, 1])
    _bars(left, pivot.index.tolist(), {s: pivot[s].tolist() for s in pivot.columns})
    left.set_xlabel("advantage-evaluation method")
    left.set_ylabel("share of prompts where the source is best")
    left.set_ylim(0, float(pivot.to_numpy().max()) * 1.3)
    left.tick_params(axis="x", labelrotation=20, labelsize=8)
    left.legend(fontsize=8, title="source", loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4)
    left.set_title("Which source each method prefers")
    methods = sorted(set(agreement["method_a"]) | set(agreement["method_b"]))
    mat = np.eye(len(methods))
    for r in agreement.itertuples():
        i, j = methods.index(r.method_a), methods.index(r.method_b)
        mat[i, j] = mat[j, i] = r.agreement
    im = right.imshow(mat, vmin=0, vmax=1, cmap="viridis")
    right.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
    right.set_yticks(range(len(methods)), methods, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(methods)):
            right.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
    right.set_title("Agreement between methods")
    fig.colorbar(im, ax=right, fraction=0.046)
    fig.suptitle(title or "Advantage-evaluation methods")
    save_png(fig, out)


def plot_loss_curves(
    logs: dict[str, pd.DataFrame],
    out: str | Path,
    title: str = "",
    heldout: dict[str, pd.DataFrame] | None = None,
) -> None:
    """One panel per variant: loss per optimizer step (and its running mean), all panels
    on one loss scale (shared y axis) so variants can be compared by eye; the two windows
    of the training-loss convergence test shaded and its verdict in the panel's title.
    A variant in ``heldout`` (its ``heldout_log.csv``) also gets its held-out loss at
    each logged step on a right-hand axis (one scale for every panel), the held-out
    test's window shaded and its verdict first in the title
    (:mod:`fusekit.report.convergence`; no verdict for a curve too short to judge)."""
    from fusekit.report.convergence import heldout_row, train_row

    if not logs:
        raise ValueError("no training logs to plot")
    heldout = heldout or {}
    for name, log in logs.items():
        need = {"step", "stage", "loss"}
        if need - set(log.columns):
            raise ValueError(f"training log of {name} lacks {sorted(need - set(log.columns))}")
    for name, curve in heldout.items():
        need = {"step", "loss"}
        if name not in logs or need - set(curve.columns):
            what = "no training log" if name not in logs else f"no {sorted(need)} columns"
            raise ValueError(f"held-out log of {name}: {what}")
    n = len(logs)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False, sharey=True
    )
    right_axes = []
    for i, (ax, (name, log)) in enumerate(zip(axes.flat, sorted(logs.items()), strict=False)):
        ax.plot(log["step"], log["loss"], lw=0.6, alpha=0.5, color="tab:blue", label="per step")
        window = max(1, len(log) // 20)
        ax.plot(
            log["step"],
            log["loss"].rolling(window, min_periods=1).mean(),
            color="tab:blue",
            label=f"running mean ({window} steps)",
        )
        for step in log["step"][log["stage"].diff().fillna(0) != 0]:
            ax.axvline(step, color="grey", ls="--", lw=0.8)
        lines = []
        try:
            c = train_row(log)
        except ValueError:
            c = None
        if c is not None:  # the table's windows: the final stage's last 2w logged steps
            steps = log[log["stage"] == log["stage"].max()].sort_values("step")["step"]
            w = int(c["window"])
            prev, last = steps.iloc[-2 * w : -w], steps.iloc[-w:]
            ax.axvspan(prev.iloc[0], prev.iloc[-1], color="tab:orange", alpha=0.12)
            ax.axvspan(last.iloc[0], last.iloc[-1], color="tab:green", alpha=0.12)
            lines.append(
                f"train {c['train_verdict']}: drop {100 * c['drop']:+.1f}% "
                f"[{100 * c['drop_lo']:+.1f}, {100 * c['drop_hi']:+.1f}]"
            )
        if name in heldout:
            curve = heldout[name].sort_values("step")
            right = ax.twinx()
            right_axes.append(right)
            right.plot(curve["step"], curve["loss"], color="tab:red", marker="o", ms=2.5, lw=1.0)
            right.tick_params(labelsize=7, colors="tab:red")
            try:
                h = heldout_row(curve, log)
            except ValueError:
                h = None
            if h is not None:
                k = int(h["heldout_window"])
                ax.axvspan(
                    curve["step"].iloc[-(k + 1)],
                    curve["step"].iloc[-1],
                    ymin=0.96,
                    ymax=1.0,
                    color="tab:red",
                    alpha=0.4,
                )
                lines.insert(
                    0,
                    f"held-out {h['heldout_verdict']}: drop {100 * h['heldout_drop']:+.1f}% "
                    f"in {k} ep.",
                )
        ax.set_title("\n".join([name, *lines]), fontsize=7)
        ax.set_xlabel("optimizer step", fontsize=8)
        if i % cols == 0:
            ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
    if right_axes:  # one held-out scale for every panel
        lo = min(r.get_ylim()[0] for r in right_axes)
        hi = max(r.get_ylim()[1] for r in right_axes)
        for r in right_axes:
            r.set_ylim(lo, hi)
            r.set_ylabel("held-out loss (nats/token)", fontsize=7, color="tab:red")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(
        title
        or "Fusion training loss (blue, left axis; one scale for all variants) and held-out "
        "loss at each epoch end (red, right axis)\ndashed: stage boundaries; shaded: the "
        "training-loss test's windows; red bar: the held-out test's window; titles: the "
        "relative drop of the held-out loss over that window, and of the training loss "
        "between its windows (95% interval)",
        fontsize=9,
    )
    fig.tight_layout()
    save_png(fig, out)


def plot_table_vs_reported(
    table: pd.DataFrame,
    out: str | Path,
    title: str = "",
    highlight: str | None = None,
    tolerance: float | None = None,
) -> None:
    """Reproduced (y, with its 95% interval where the table has one) against reported
    (x) for every cell with a reported value; the identity line and, with ``tolerance``,
    its band; the rows of ``highlight`` (the study's own method, e.g. ``ProFuser``)
    drawn as large labelled stars. Colour: the column (benchmark)."""
    cells = table.dropna(subset=["reported"])
    fig, ax = plt.subplots(figsize=(6.5, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (column, part) in enumerate(cells.groupby("column", sort=False)):
        colour = colours[i % len(colours)]
        if {"ci_lower", "ci_upper"} <= set(part.columns):
            err = np.vstack(
                [part["reproduced"] - part["ci_lower"], part["ci_upper"] - part["reproduced"]]
            )
            ok = ~np.isnan(err).any(axis=0)
            ax.errorbar(
                part["reported"][ok],
                part["reproduced"][ok],
                yerr=err[:, ok],
                fmt="none",
                ecolor=colour,
                alpha=0.35,
                lw=0.8,
            )
        ax.scatter(part["reported"], part["reproduced"], label=column, s=18, color=colour)
        mine = part[part["model"] == highlight] if highlight else part.iloc[:0]
        if len(mine):
            ax.scatter(
                mine["reported"],
                mine["reproduced"],
                s=140,
                marker="*",
                color=colour,
                edgecolors="black",
                linewidths=0.8,
                zorder=3,
            )
    if highlight and (cells["model"] == highlight).any():
        ax.scatter([], [], s=140, marker="*", color="white", edgecolors="black",
                   label=f"{highlight} (the study's method)")  # fmt: skip
    lo = float(min(cells["reported"].min(), cells["reproduced"].min(), 0)) if len(cells) else 0
    hi = float(max(cells["reported"].max(), cells["reproduced"].max(), 100)) if len(cells) else 100
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="reproduced = reported")
    if tolerance:
        ax.fill_between(
            [lo, hi], [lo - tolerance, hi - tolerance], [lo + tolerance, hi + tolerance],
            color="grey", alpha=0.15, label=f"within {tolerance:g} points",
        )  # fmt: skip
    ax.set_xlabel("reported in the paper (points)")
    ax.set_ylabel("reproduced here (points, 95% interval)")
    _legend_outside(ax, fontsize=7)
    ax.set_title(title or "Reproduced vs reported", fontsize=9)
    save_png(fig, out)

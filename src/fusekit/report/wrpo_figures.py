"""WRPO's training analyses as figures: reward dynamics over training and the alpha sweep.

- :func:`reward_dynamics`: per optimizer step, the implicit rewards WRPO logs (WRPO
  paper Figure 3; ``scripts/wrpo_trainer.py`` metrics): ``rewards/source_chosen`` =
  beta * (log pi_theta - log pi_ref)(y_ws), ``rewards/target_chosen`` (the same for
  y_wt) and ``rewards/rejected`` (y_l), with the fusion coefficient ``cur_alpha``.
- :func:`alpha_sweep`: one row per variant of the sweep (same data, alpha_max varied;
  alpha 0 is DPO on the target's own pairs): its AlpacaEval-2 LC and raw win rate with
  95% intervals (from the study's ``chat_eval.csv``) and the share of training examples
  whose source-chosen (hybrid) or target-chosen reward beat the rejected one over the
  last quarter of training (WRPO Figure 5's "reward accuracy").

Both read files the workflow already wrote (``train_log.csv`` of each variant,
``chat_eval.csv``); nothing is trained or judged here.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fusekit.io import write_table  # noqa: E402
from fusekit.report.figures import save_png  # noqa: E402
from fusekit.report.tables import Z95  # noqa: E402

DYNAMICS = ("rewards/source_chosen", "rewards/target_chosen", "rewards/rejected")
ACCURACIES = ("rewards/source_accuracies", "rewards/pivot_accuracies")
SWEEP_COLUMNS = (
    "variant",
    "alpha_max",
    "lc_win_rate",
    "lc_ci_lower",
    "lc_ci_upper",
    "win_rate",
    "wr_ci_lower",
    "wr_ci_upper",
    "source_reward_accuracy",
    "target_reward_accuracy",
    "steps",
)


def read_train_log(path: str | Path, need: tuple[str, ...] = DYNAMICS) -> pd.DataFrame:
    """A variant's ``train_log.csv`` (one row per optimizer step). Raises ValueError
    naming the file when it is empty or lacks a column of ``need`` (a variant that was
    not trained with a WRPO objective has no source/target rewards)."""
    path = Path(path)
    log = pd.read_csv(path)
    missing = [c for c in ("step", *need) if c not in log.columns]
    if log.empty or missing:
        raise ValueError(
            f"{path}: not a WRPO training log (rows {len(log)}, missing columns {missing})"
        )
    return log


def reward_dynamics(logs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table: variant, step, cur_alpha and the three rewards (:data:`DYNAMICS`)."""
    frames = []
    for name, log in logs.items():
        cols = ["step", *DYNAMICS, *(["cur_alpha"] if "cur_alpha" in log.columns else [])]
        frames.append(log[cols].assign(variant=name))
    return pd.concat(frames, ignore_index=True)


def alpha_sweep(
    alphas: dict[str, float], logs: dict[str, pd.DataFrame], chat: pd.DataFrame | None
) -> pd.DataFrame:
    """:data:`SWEEP_COLUMNS`, sorted by alpha. ``alphas``: variant -> alpha_max;
    ``logs``: variant -> train log; ``chat``: the study's ``chat_eval.csv`` (columns
    model, lc_win_rate, lc_standard_error, win_rate, standard_error) or None (win-rate
    columns NaN). Intervals are value +- 1.96 SE (NaN where the SE is unknown). The
    reward accuracies average the last quarter of the steps (at least one). Raises
    ValueError for a variant missing from ``logs`` or from ``chat``."""
    rows = []
    by_model = chat.set_index("model") if chat is not None else None
    for name, alpha in sorted(alphas.items(), key=lambda kv: (kv[1], kv[0])):
        if name not in logs:
            raise ValueError(f"alpha sweep: no training log of {name!r}")
        log = logs[name]
        tail = log.iloc[-max(1, len(log) // 4) :]
        row = {
            "variant": name,
            "alpha_max": float(alpha),
            "source_reward_accuracy": float(tail[ACCURACIES[0]].mean()),
            "target_reward_accuracy": float(tail[ACCURACIES[1]].mean()),
            "steps": len(log),
        }
        for key, value, se in (
            ("lc", "lc_win_rate", "lc_standard_error"),
            ("wr", "win_rate", "standard_error"),
        ):
            v = s = np.nan
            if by_model is not None:
                if name not in by_model.index:
                    raise ValueError(f"alpha sweep: {name!r} is not in the chat evaluation")
                v, s = float(by_model.loc[name, value]), float(by_model.loc[name, se])
            row["lc_win_rate" if key == "lc" else "win_rate"] = v
            row[f"{key}_ci_lower"] = v - Z95 * s
            row[f"{key}_ci_upper"] = v + Z95 * s
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def plot_reward_dynamics(dynamics: pd.DataFrame, title: str, out: str | Path) -> None:
    """One panel per variant (in the order given): the three rewards against the
    optimizer step, alpha on a second axis; every panel on one reward scale."""
    names = list(dict.fromkeys(dynamics["variant"]))
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.2 * len(names), 3.4), sharey=True, squeeze=False
    )
    colours = {"rewards/source_chosen": "C0", "rewards/target_chosen": "C2"}
    colours["rewards/rejected"] = "C3"
    for ax, name in zip(axes[0], names, strict=True):
        d = dynamics[dynamics["variant"] == name]
        for col in DYNAMICS:
            label = col.split("/", 1)[1].replace("_", "-")
            ax.plot(d["step"], d[col], color=colours[col], label=label, lw=1.2)
        ax.axhline(0.0, color="grey", lw=0.6, ls=":")
        ax.set_title(name)
        ax.set_xlabel("optimizer step")
        if "cur_alpha" in d.columns:
            twin = ax.twinx()
            twin.plot(d["step"], d["cur_alpha"], color="black", ls="--", lw=0.8, label="alpha")
            twin.set_ylim(0, max(1e-6, float(d["cur_alpha"].max())) * 1.1)
            twin.set_ylabel("alpha", fontsize=8)
            twin.tick_params(labelsize=7)
    axes[0][0].set_ylabel("implicit reward beta * log(pi / pi_ref)")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.25, 1.0), fontsize=8)
    fig.suptitle(title)
    save_png(fig, out)


def plot_alpha_sweep(sweep: pd.DataFrame, title: str, out: str | Path) -> None:
    """Left: AlpacaEval-2 LC and raw win rate (95% intervals) against alpha_max; right:
    the source-chosen (hybrid) and target-chosen reward accuracies over the last quarter
    of training."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    x = sweep["alpha_max"].to_numpy()
    for key, value, label, colour in (
        ("lc", "lc_win_rate", "AlpacaEval-2 LC", "C0"),
        ("wr", "win_rate", "AlpacaEval-2 WR", "C1"),
    ):
        y = sweep[value].to_numpy(dtype=float)
        err = np.vstack([y - sweep[f"{key}_ci_lower"], sweep[f"{key}_ci_upper"] - y])
        left.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", capsize=3, label=label, c=colour)
    left.set_xlabel("alpha_max")
    left.set_ylabel("win rate (%)")
    left.legend(fontsize=8)
    right.plot(x, sweep["source_reward_accuracy"], marker="o", label="source-chosen > rejected")
    right.plot(x, sweep["target_reward_accuracy"], marker="s", label="target-chosen > rejected")
    right.set_ylim(0, 1.05)
    right.set_xlabel("alpha_max")
    right.set_ylabel("reward accuracy (last quarter)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xticks(x)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, out)


def write_wrpo_figures(
    study: str,
    alphas: dict[str, float],
    log_paths: dict[str, str],
    chat_eval: str | None,
    dynamics_out: str,
    sweep_out: str,
    sweep_csv: str,
) -> pd.DataFrame:
    """File to file: read the sweep variants' training logs (variant -> path) and the
    chat evaluation; write the reward-dynamics PNG, the alpha-sweep PNG and its CSV
    (:data:`SWEEP_COLUMNS`). Returns the sweep table."""
    logs = {v: read_train_log(p, DYNAMICS + ACCURACIES) for v, p in log_paths.items()}
    chat = pd.read_csv(chat_eval) if chat_eval else None
    sweep = alpha_sweep(alphas, logs, chat)
    order = list(sweep["variant"])
    plot_reward_dynamics(
        reward_dynamics({v: logs[v] for v in order}),
        f"{study}: rewards over training (alpha_max = "
        + ", ".join(f"{a:g}" for a in sweep["alpha_max"])
        + ")",
        dynamics_out,
    )
    plot_alpha_sweep(sweep, f"{study}: alpha sweep", sweep_out)
    write_table(sweep, sweep_csv)
    return sweep

"""Has a variant's training converged? Two tests per variant (issue 17 item 3).

**Held-out loss** (when the run wrote one, :mod:`fusekit.train.heldout`: the target's
per-token cross-entropy on reference answers it never trains on, before training and at
every epoch end). Its points of the final stage's epoch ends, preceded by the point
before them (the previous stage's last epoch end, or step 0), are the curve; the window
is the last ``k`` of its epoch intervals, ``k`` the ``heldout_window`` share (0.25) of
the final stage's epochs rounded, at least :data:`MIN_EPOCHS` and at most all of them
(12 epochs: the last 3; 8: the last 2). With ``L_0`` the loss where the window starts,
``L_k`` where it ends and ``lo``, ``hi`` the window's lowest and highest points:

    heldout_drop  = (L_0 - L_k) / L_0   net change over the window (positive: fell)
    heldout_rise  = (L_k - lo) / L_0    how far the end is above the window's minimum
    heldout_range = (hi - lo) / L_0     how far the window moved at all

and, with ``t`` the tolerance (0.02), the verdict is the first that holds of:
``rising`` when heldout_rise > t (the loss turned up and ended more than t above its
low: overfitting, or instability); ``converged`` when heldout_range <= t (over the last
quarter no point differs from another by more than t); ``falling`` when
heldout_drop > t and the window ends at its minimum (still going down: more epochs would
lower it); else ``inconclusive`` (it moved by more than t, but neither steadily down nor
more than t up: turning near a minimum, or swinging).

Why no interval: the held-out loss is a deterministic function of the weights (a fixed
set, no sampling, no dropout), so what varies from one epoch end to the next is the
trajectory itself, not a measurement error. A window holds 2-3 epoch intervals; a t
interval from them (1-2 degrees of freedom, t = 12.7 or 4.3) would decide nothing, and a
least-squares line would count a flattening curve's curvature as noise. So the rule reads
the window's shape against the tolerance directly, and all three numbers are in the
table. The window is the end of the schedule: under a cosine schedule the last quarter
runs at under 15% of the peak learning rate, so ``converged`` says that the run ended
flat, not that a larger budget would not help; ``heldout_initial``, ``heldout_best`` and
``heldout_best_epoch`` show the whole course (a best epoch well before the last, with a
higher last value, is overfitting that ended before the window).

**Training loss** (every run): the loss of the last window of optimizer steps (a fifth
of the final stage, at least 5 steps) is compared with the window before it. The
relative drop

    drop = (mean(previous window) - mean(last window)) / mean(previous window)

gets a 95% interval from the two windows' step-to-step spread (Welch's standard error of
a difference of means and Student's t with Welch-Satterthwaite degrees of freedom,
divided by the previous window's mean; the steps of a window are treated as independent
draws, so the interval is approximate). Verdict (``train_verdict``), with ``t`` the
tolerance: ``converged`` when the whole interval lies within (-t, t), ``falling`` when it
lies above t, ``rising`` when it lies below -t, else ``inconclusive`` (the windows are too
noisy to tell: one batch's loss is a noisy measurement, the reason for the held-out test).

A loss that is not positive (a signed objective) or not finite is refused with
ValueError, for either test. Table columns (:data:`COLUMNS`): ``variant``; ``steps``,
``final_stage``, ``final_stage_steps`` (the budget: an equal one for every variant
compares them fairly); the training-loss test's ``window`` (steps), ``loss_previous``,
``loss_last``, ``drop``, ``drop_lo``, ``drop_hi``, ``train_verdict``; the held-out test's
(empty without a held-out log) ``epochs`` (passes over all stages), ``heldout_window``
(epochs), ``heldout_initial`` (before training), ``heldout_start`` (L_0), ``heldout_last``
(L_k), ``heldout_best``, ``heldout_best_epoch`` (the lowest point of the whole curve and
its epoch), ``heldout_drop``, ``heldout_rise``, ``heldout_range``, ``heldout_verdict``;
``verdict``, the held-out verdict where there is one, else the training loss's, and
``verdict_from`` (``heldout`` or ``train_loss``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAIN_COLUMNS = [
    "window",
    "loss_previous",
    "loss_last",
    "drop",
    "drop_lo",
    "drop_hi",
    "train_verdict",
]
HELDOUT_COLUMNS = [
    "epochs",
    "heldout_window",
    "heldout_initial",
    "heldout_start",
    "heldout_last",
    "heldout_best",
    "heldout_best_epoch",
    "heldout_drop",
    "heldout_rise",
    "heldout_range",
    "heldout_verdict",
]
COLUMNS = [
    "variant",
    "steps",
    "final_stage",
    "final_stage_steps",
    *TRAIN_COLUMNS,
    *HELDOUT_COLUMNS,
    "verdict",
    "verdict_from",
]
MIN_WINDOW = 5
MIN_EPOCHS = 2
HELDOUT_LOG_COLUMNS = ("step", "stage", "stage_epoch", "epoch", "loss")


def _check_loss(loss: np.ndarray, what: str) -> None:
    if not np.isfinite(loss).all():
        raise ValueError(f"{int((~np.isfinite(loss)).sum())} non-finite {what} (diverged)")


def window_drop(loss: np.ndarray, window: float = 0.2) -> dict:
    """The last window of ``loss`` (a 1-D array of per-step losses) against the one
    before: the window length in steps, both means, the relative drop and its 95%
    interval. Raises ValueError for fewer than ``2 * MIN_WINDOW`` steps, a non-finite
    loss or a previous window whose mean loss is not positive."""
    from scipy.stats import t as student_t

    loss = np.asarray(loss, dtype=float)
    n = len(loss)
    if n < 2 * MIN_WINDOW:
        raise ValueError(
            f"{n} steps in the final stage; the convergence test needs {2 * MIN_WINDOW}"
        )
    _check_loss(loss, "losses")
    w = max(MIN_WINDOW, int(n * window))
    w = min(w, n // 2)
    previous, last = loss[n - 2 * w : n - w], loss[n - w :]
    mp, ml = previous.mean(), last.mean()
    if mp <= 0:
        raise ValueError(
            f"mean loss {mp:.4g} in the previous window: a relative drop needs a positive "
            "loss (a signed objective, such as RLOO's, has none)"
        )
    vp, vl = previous.var(ddof=1) / w, last.var(ddof=1) / w
    se = np.sqrt(vp + vl)
    # Welch-Satterthwaite degrees of freedom (w - 1 each side); Student t quantile
    df = (vp + vl) ** 2 / ((vp**2 + vl**2) / (w - 1)) if se > 0 else np.inf
    drop = (mp - ml) / mp
    half = student_t.ppf(0.975, df) * se / mp
    return {
        "window": w,
        "loss_previous": mp,
        "loss_last": ml,
        "drop": drop,
        "drop_lo": drop - half,
        "drop_hi": drop + half,
    }


VERDICTS = ("converged", "falling", "rising", "inconclusive")


def verdict(drop_lo: float, drop_hi: float, tolerance: float) -> str:
    """The training-loss test's verdict, one of ``VERDICTS``, for a relative drop's 95%
    interval (see the module docstring)."""
    if -tolerance < drop_lo and drop_hi < tolerance:
        return "converged"
    if drop_lo > tolerance:
        return "falling"
    if drop_hi < -tolerance:
        return "rising"
    return "inconclusive"


def heldout_change(loss: np.ndarray, n_final: int, window: float = 0.25) -> dict:
    """The held-out test's window of a curve: ``loss`` holds the held-out losses at the
    final stage's ``n_final`` epoch ends, preceded by the points before them (at least
    the one before the stage's first epoch end, where there is one). Returns the window
    length ``k`` in epochs (``heldout_window``: the ``window`` share of ``n_final``
    rounded, at least :data:`MIN_EPOCHS`, at most ``n_final`` and the points there are)
    and ``heldout_start``, ``heldout_last``, ``heldout_drop``, ``heldout_rise`` and
    ``heldout_range`` (module docstring). Raises ValueError for fewer than two points
    in reach, a non-finite loss or a window that starts at a loss that is not
    positive."""
    loss = np.asarray(loss, dtype=float)
    if n_final < 1:
        raise ValueError("no epoch end in the final stage")
    k = min(max(MIN_EPOCHS, round(window * n_final)), n_final, len(loss) - 1)
    if k < 1:
        raise ValueError(f"{len(loss)} held-out point(s); the held-out test needs 2")
    part = loss[-(k + 1) :]
    _check_loss(part, "held-out losses")
    start, last, lo, hi = part[0], part[-1], part.min(), part.max()
    if start <= 0:
        raise ValueError(f"held-out loss {start:.4g} where the window starts: not positive")
    return {
        "heldout_window": k,
        "heldout_start": start,
        "heldout_last": last,
        "heldout_drop": (start - last) / start,
        "heldout_rise": (last - lo) / start,
        "heldout_range": (hi - lo) / start,
    }


def heldout_verdict(drop: float, rise: float, spread: float, tolerance: float) -> str:
    """The held-out test's verdict, one of ``VERDICTS``, from the window's relative
    ``drop``, ``rise`` above its minimum and ``spread`` (its range; module docstring)."""
    if rise > tolerance:
        return "rising"
    if spread <= tolerance:
        return "converged"
    if drop > tolerance and rise == 0:
        return "falling"
    return "inconclusive"


def train_row(log: pd.DataFrame, window: float = 0.2, tolerance: float = 0.02) -> dict:
    """The training-loss test of one training log (columns ``step``, ``stage``,
    ``loss``): the budget columns and :data:`TRAIN_COLUMNS`. Raises ValueError for a
    missing column or a final stage too short to test."""
    missing = {"step", "stage", "loss"} - set(log.columns)
    if missing:
        raise ValueError(f"lacks {sorted(missing)}")
    final = log["stage"].max()
    stage = log[log["stage"] == final].sort_values("step")
    drop = window_drop(stage["loss"].to_numpy(), window)
    return {
        "steps": len(log),
        "final_stage": int(final),
        "final_stage_steps": len(stage),
        **drop,
        "train_verdict": verdict(drop["drop_lo"], drop["drop_hi"], tolerance),
    }


def heldout_row(
    curve: pd.DataFrame, log: pd.DataFrame, window: float = 0.25, tolerance: float = 0.02
) -> dict:
    """The held-out test of one curve (a ``heldout_log.csv``: columns step, stage,
    stage_epoch, epoch, loss) of the run whose training log is ``log``:
    :data:`HELDOUT_COLUMNS`. Raises ValueError for a missing column, a curve that does
    not end at the training's last step or in its final stage (another run's), or one
    :func:`heldout_change` refuses."""
    missing = set(HELDOUT_LOG_COLUMNS) - set(curve.columns)
    if missing:
        raise ValueError(f"lacks {sorted(missing)}")
    curve = curve.sort_values("step")
    last_step, final = int(log["step"].max()), int(log["stage"].max())
    if curve.empty or int(curve["step"].iloc[-1]) != last_step:
        got = "no point" if curve.empty else f"its last point at step {curve['step'].iloc[-1]}"
        raise ValueError(f"has {got}, but the training ends at step {last_step}")
    if int(curve["stage"].iloc[-1]) != final:
        raise ValueError(
            f"ends in stage {curve['stage'].iloc[-1]}, but the training's final stage is {final}"
        )
    n_final = int(((curve["stage"] == final) & (curve["stage_epoch"] > 0)).sum())
    loss = curve["loss"].to_numpy(dtype=float)
    change = heldout_change(loss, n_final, window)
    _check_loss(loss, "held-out losses")
    best = int(np.argmin(loss))
    return {
        "epochs": float(curve["epoch"].iloc[-1]),
        "heldout_window": change["heldout_window"],
        "heldout_initial": float(loss[0]) if int(curve["step"].iloc[0]) == 0 else np.nan,
        "heldout_start": change["heldout_start"],
        "heldout_last": change["heldout_last"],
        "heldout_best": float(loss[best]),
        "heldout_best_epoch": float(curve["epoch"].iloc[best]),
        "heldout_drop": change["heldout_drop"],
        "heldout_rise": change["heldout_rise"],
        "heldout_range": change["heldout_range"],
        "heldout_verdict": heldout_verdict(
            change["heldout_drop"], change["heldout_rise"], change["heldout_range"], tolerance
        ),
    }


def convergence_table(
    logs: dict[str, pd.DataFrame],
    window: float = 0.2,
    tolerance: float = 0.02,
    heldout: dict[str, pd.DataFrame] | None = None,
    heldout_window: float = 0.25,
    heldout_tolerance: float = 0.02,
    require_heldout: bool = False,
) -> pd.DataFrame:
    """One row per variant (``COLUMNS``, sorted by name) from its training log (columns
    ``step``, ``stage``, ``loss``: the ``train_log.csv`` a training run writes) and, for
    the variants in ``heldout``, its held-out curve (``heldout_log.csv``). Raises
    ValueError naming the variant whose log lacks a column or has too few steps in its
    final stage, whose held-out curve :func:`heldout_row` refuses, or that has no
    held-out curve when ``require_heldout``."""
    if not logs:
        raise ValueError("no training logs")
    heldout = heldout or {}
    extra = sorted(set(heldout) - set(logs))
    if extra:
        raise ValueError(f"held-out logs of {extra} have no training log")
    rows = []
    for name, log in sorted(logs.items()):
        missing = {"step", "stage", "loss"} - set(log.columns)
        if missing:
            raise ValueError(f"training log of {name} lacks {sorted(missing)}")
        try:
            row = {"variant": name, **train_row(log, window, tolerance)}
        except ValueError as err:
            raise ValueError(f"training log of {name}: {err}") from None
        if name in heldout:
            try:
                row.update(heldout_row(heldout[name], log, heldout_window, heldout_tolerance))
            except ValueError as err:
                raise ValueError(f"held-out log of {name}: {err}") from None
            row.update(verdict=row["heldout_verdict"], verdict_from="heldout")
        elif require_heldout:
            raise ValueError(
                f"no held-out log of {name}: the study evaluates a held-out loss "
                "(studies.<study>.heldout); was the variant trained before it was set?"
            )
        else:
            row.update(verdict=row["train_verdict"], verdict_from="train_loss")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)

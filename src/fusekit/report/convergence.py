"""Has a variant's training converged? A test on its training log (issue 17 item 3).

The loss of the last window of optimizer steps (a fifth of the final stage, at least 5
steps) is compared with the window before it. The relative drop

    drop = (mean(previous window) - mean(last window)) / mean(previous window)

gets a 95% interval from the two windows' step-to-step spread (Welch's standard error of
a difference of means and Student's t with Welch-Satterthwaite degrees of freedom,
divided by the previous window's mean; the steps of a window are treated as independent
draws, so the interval is approximate). A loss that is not positive (a signed objective)
or not finite is refused with ValueError. Verdict, with ``t`` the
tolerance: ``converged`` when the whole interval lies within (-t, t) (the last window is
neither lower nor higher by more than that share), ``falling`` when it lies above t (the
loss was still falling: more steps would lower it), ``rising`` when it lies below -t (the
loss went up at the end: unstable, not settled), else ``inconclusive`` (the windows are
too noisy to tell).

A training loss flattens as the learning rate decays, so with a cosine schedule a
converged verdict says the run ended flat, not that more steps would not help; the
``steps`` column shows the budget each variant had, so that a comparison of variants is on
an equal budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "variant",
    "steps",
    "final_stage",
    "final_stage_steps",
    "window",
    "loss_previous",
    "loss_last",
    "drop",
    "drop_lo",
    "drop_hi",
    "verdict",
]
MIN_WINDOW = 5


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
    if not np.isfinite(loss).all():
        raise ValueError(f"{int((~np.isfinite(loss)).sum())} non-finite losses (diverged)")
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
    """One of ``VERDICTS`` for a relative drop's 95% interval (see the module docstring)."""
    if -tolerance < drop_lo and drop_hi < tolerance:
        return "converged"
    if drop_lo > tolerance:
        return "falling"
    if drop_hi < -tolerance:
        return "rising"
    return "inconclusive"


def convergence_table(
    logs: dict[str, pd.DataFrame], window: float = 0.2, tolerance: float = 0.02
) -> pd.DataFrame:
    """One row per variant (``COLUMNS``, sorted by name) from its training log (columns
    ``step``, ``stage``, ``loss``: the ``train_log.csv`` a training run writes). Raises
    ValueError naming the variant whose log lacks a column or has too few steps in its
    final stage."""
    if not logs:
        raise ValueError("no training logs")
    rows = []
    for name, log in sorted(logs.items()):
        missing = {"step", "stage", "loss"} - set(log.columns)
        if missing:
            raise ValueError(f"training log of {name} lacks {sorted(missing)}")
        final = log["stage"].max()
        stage = log[log["stage"] == final].sort_values("step")
        try:
            drop = window_drop(stage["loss"].to_numpy(), window)
        except ValueError as err:
            raise ValueError(f"training log of {name}: {err}") from None
        rows.append(
            {
                "variant": name,
                "steps": len(log),
                "final_stage": int(final),
                "final_stage_steps": len(stage),
                **drop,
                "verdict": verdict(drop["drop_lo"], drop["drop_hi"], tolerance),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)

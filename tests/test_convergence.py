"""fusekit.report.convergence: the last-window test on training logs (issue 17 item 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusekit.report.convergence import COLUMNS, convergence_table, verdict, window_drop


def test_window_drop_by_hand():
    """20 steps, window 0.2 -> 5 steps: previous window 2,2,2,2,2 then 1,1,1,1,1: a drop
    of (2 - 1) / 2 = 0.5 with no spread, so an interval of width 0."""
    loss = np.array([9.0] * 10 + [2.0] * 5 + [1.0] * 5)
    d = window_drop(loss, 0.2)
    assert (d["window"], d["loss_previous"], d["loss_last"]) == (5, 2.0, 1.0)
    assert d["drop"] == d["drop_lo"] == d["drop_hi"] == 0.5


def test_window_drop_interval_is_welch():
    """Welch's standard error of the difference, by hand for two windows of 5 steps."""
    previous = [1.0, 1.2, 0.8, 1.1, 0.9]  # mean 1.0, sample variance 0.025
    last = [0.9, 0.9, 0.9, 0.9, 0.9]  # mean 0.9, variance 0
    d = window_drop(np.array(previous + last), 0.5)
    # Welch-Satterthwaite: one side has no spread, so df = w - 1 = 4; t(0.975, 4) = 2.7764
    half = 2.7764451 * (0.025 / 5) ** 0.5 / 1.0
    assert d["drop"] == pytest.approx(0.1)
    assert (d["drop_lo"], d["drop_hi"]) == pytest.approx((0.1 - half, 0.1 + half))


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (-0.01, 0.015, "converged"),
        (0.03, 0.2, "falling"),
        (-0.5, -0.1, "rising"),
        (-0.01, 0.05, "inconclusive"),
        (-0.05, 0.01, "inconclusive"),
    ],
)
def test_verdicts(lo, hi, expected):
    assert verdict(lo, hi, 0.02) == expected


def _log(losses_by_stage):
    rows, step = [], 0
    for stage, losses in enumerate(losses_by_stage):
        for loss in losses:
            step += 1
            rows.append({"step": step, "stage": stage, "loss": loss})
    return pd.DataFrame(rows)


def test_table_reads_the_final_stage():
    rng = np.random.default_rng(0)
    flat = 0.5 + rng.normal(0, 0.001, 100)
    decaying = 2.0 * np.exp(-np.arange(100) / 40) + rng.normal(0, 0.001, 100)
    logs = {
        # a falling first stage, then flat: judged on the flat final stage
        "b_two_stages": _log([decaying, flat]),
        "a_falling": _log([decaying]),
    }
    t = convergence_table(logs)
    assert list(t.columns) == COLUMNS
    assert t.variant.tolist() == ["a_falling", "b_two_stages"]
    assert t.verdict.tolist() == ["falling", "converged"]
    assert t.steps.tolist() == [100, 200]
    assert t.final_stage_steps.tolist() == [100, 100]
    assert t.final_stage.tolist() == [0, 1]


def test_bad_logs_name_the_variant():
    with pytest.raises(ValueError, match="training log of X lacks \\['loss'\\]"):
        convergence_table({"X": pd.DataFrame({"step": [1], "stage": [0]})})
    with pytest.raises(ValueError, match="training log of Y: 6 steps in the final stage"):
        convergence_table({"Y": _log([[1.0] * 50, [1.0] * 6])})
    with pytest.raises(ValueError, match="no training logs"):
        convergence_table({})
    with pytest.raises(ValueError, match="training log of Z: 1 non-finite losses"):
        convergence_table({"Z": _log([[1.0] * 19 + [float("nan")]])})
    with pytest.raises(ValueError, match="training log of S: mean loss -0.5 .* signed"):
        convergence_table({"S": _log([[-0.5] * 20])})

"""fusekit.report.convergence: the last-window test on training logs and the held-out
test on held-out curves (issue 17 item 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusekit.report.convergence import (
    COLUMNS,
    convergence_table,
    heldout_change,
    heldout_verdict,
    verdict,
    window_drop,
)


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


# --- the held-out test ---------------------------------------------------------------


def _run(initial, losses_by_stage, steps_per_epoch=10):
    """A training log (a flat loss of 1.0 per step) and its held-out curve: ``initial``
    at step 0, then ``losses_by_stage[s][e]`` at the end of stage s's epoch e + 1."""
    train, curve, step, before = [], [(0, 0, 0.0, 0.0, initial)], 0, 0.0
    for s, losses in enumerate(losses_by_stage):
        for e, loss in enumerate(losses, start=1):
            train += [
                {"step": step + i, "stage": s, "loss": 1.0} for i in range(1, steps_per_epoch + 1)
            ]
            step += steps_per_epoch
            curve.append((step, s, float(e), before + e, loss))
        before += len(losses)
    cols = ["step", "stage", "stage_epoch", "epoch", "loss"]
    return pd.DataFrame(train), pd.DataFrame(curve, columns=cols)


def test_heldout_window_by_hand():
    """8 epoch ends, window 0.25 -> the last 2 epochs: the points of epochs 6, 7, 8."""
    loss = np.array([3.0, 2.0, 1.5, 1.2, 1.1, 1.05, 1.04, 1.02, 1.03])
    h = heldout_change(loss, 8, 0.25)
    assert h["heldout_window"] == 2
    assert (h["heldout_start"], h["heldout_last"]) == (1.04, 1.03)
    assert h["heldout_drop"] == pytest.approx(0.01 / 1.04)
    assert h["heldout_rise"] == pytest.approx(0.01 / 1.04)  # 1.03 is above the low, 1.02
    assert h["heldout_range"] == pytest.approx(0.02 / 1.04)


@pytest.mark.parametrize(
    "n_final, points, k",
    [
        (12, 13, 3),  # a quarter of 12 epochs
        (8, 13, 2),
        (4, 13, 2),  # at least MIN_EPOCHS
        (1, 13, 1),  # a one-epoch stage: its epoch and the point before it
        (2, 2, 1),  # no point before the stage (no step-0 evaluation): one interval
    ],
)
def test_heldout_window_length(n_final, points, k):
    assert heldout_change(np.linspace(2, 1, points), n_final)["heldout_window"] == k


def test_heldout_change_refuses():
    with pytest.raises(ValueError, match="1 held-out point"):
        heldout_change(np.array([1.0]), 1)
    with pytest.raises(ValueError, match="non-finite"):
        heldout_change(np.array([1.0, 2.0, np.inf]), 2)
    with pytest.raises(ValueError, match="not positive"):
        heldout_change(np.array([0.0, 0.0, 0.0]), 2)


@pytest.mark.parametrize(
    "drop, rise, spread, expected",
    [
        (0.01, 0.0, 0.015, "converged"),
        (-0.01, 0.01, 0.02, "converged"),  # at the tolerance: within
        (0.05, 0.0, 0.05, "falling"),
        (-0.05, 0.05, 0.05, "rising"),
        (0.05, 0.03, 0.08, "rising"),  # fell, then rose more than t from the low
        (0.05, 0.01, 0.06, "inconclusive"),  # fell, then turned up a little
        (0.0, 0.0, 0.04, "inconclusive"),  # swung and came back
    ],
)
def test_heldout_verdicts(drop, rise, spread, expected):
    assert heldout_verdict(drop, rise, spread, 0.02) == expected


def test_table_judges_by_the_heldout_curve():
    """Curves whose verdicts hold by construction (12 epochs: a window of the last 3):
    flat to 0.5% at the end; 5% lower every epoch; lowest at epoch 8, then 4% higher
    every epoch (overfitting); 10% down, then 1% up at the last epoch (turning)."""
    decay = [2.0 * 0.8**e for e in range(1, 10)]
    runs = {
        "flat": _run(3.0, [decay + [decay[-1] * 0.998, decay[-1] * 0.996, decay[-1] * 0.995]]),
        "falling": _run(3.0, [[2.0 * 0.95**e for e in range(1, 13)]]),
        "overfit": _run(
            3.0, [[2.0 - 0.1 * e for e in range(1, 9)] + [1.2 * 1.04**e for e in range(1, 5)]]
        ),
        "turning": _run(3.0, [[2.0] * 9 + [1.9, 1.8, 1.818]]),
    }
    t = convergence_table(
        {k: log for k, (log, _) in runs.items()}, heldout={k: c for k, (_, c) in runs.items()}
    )
    assert list(t.columns) == COLUMNS
    got = dict(zip(t.variant, t.heldout_verdict, strict=True))
    assert got == {
        "flat": "converged",
        "falling": "falling",
        "overfit": "rising",
        "turning": "inconclusive",
    }
    assert (t.verdict == t.heldout_verdict).all() and (t.verdict_from == "heldout").all()
    assert (t.train_verdict == "converged").all()  # the flat training loss, kept beside it
    row = t.set_index("variant").loc["overfit"]
    assert (row.heldout_best, row.heldout_best_epoch, row.epochs) == (pytest.approx(1.2), 8, 12)
    assert row.heldout_initial == 3.0 and row.heldout_window == 3
    assert row.heldout_last == pytest.approx(1.2 * 1.04**4)
    falling = t.set_index("variant").loc["falling"]
    assert falling.heldout_drop == pytest.approx(1 - 0.95**3)  # (L9 - L12) / L9


def test_heldout_window_stays_in_the_final_stage():
    """A falling first stage, then a flat second of 8 epochs: the window is the second
    stage's last 2 epochs, whatever the first stage did."""
    log, curve = _run(3.0, [[2.5, 2.0, 1.5, 1.0], [1.0] * 8])
    row = convergence_table({"v": log}, heldout={"v": curve}).iloc[0]
    assert (row.final_stage, row.heldout_window, row.heldout_verdict) == (1, 2, "converged")
    assert row.heldout_start == 1.0 and row.epochs == 12


def test_without_a_heldout_curve_the_training_loss_decides():
    log, curve = _run(3.0, [[1.0] * 4])
    t = convergence_table({"a": log, "b": log}, heldout={"b": curve})
    assert t.verdict_from.tolist() == ["train_loss", "heldout"]
    assert t.verdict.iloc[0] == t.train_verdict.iloc[0] and np.isnan(t.heldout_drop.iloc[0])


def test_bad_heldout_logs_name_the_variant():
    log, curve = _run(3.0, [[1.0] * 4])
    with pytest.raises(ValueError, match="no held-out log of a: the study evaluates"):
        convergence_table({"a": log}, require_heldout=True)
    with pytest.raises(ValueError, match="held-out log of a: has its last point at step 30, "):
        convergence_table({"a": log}, heldout={"a": curve.iloc[:-1]})
    with pytest.raises(ValueError, match=r"held-out log of a: lacks \['stage_epoch'\]"):
        convergence_table({"a": log}, heldout={"a": curve.drop(columns="stage_epoch")})
    with pytest.raises(ValueError, match=r"held-out logs of \['b'\] have no training log"):
        convergence_table({"a": log}, heldout={"b": curve})
    other = curve.assign(stage=1)
    with pytest.raises(ValueError, match="ends in stage 1, but the training's final stage is 0"):
        convergence_table({"a": log}, heldout={"a": other})

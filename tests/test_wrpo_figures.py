"""WRPO's reward dynamics and alpha sweep, from hand-made training logs and a chat table."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from PIL import Image

from fusekit.report.wrpo_figures import (
    alpha_sweep,
    read_train_log,
    reward_dynamics,
    write_wrpo_figures,
)


def log(steps: int, alpha: float, src_acc: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": range(1, steps + 1),
            "loss": [0.7] * steps,
            "rewards/source_chosen": [0.1 * t for t in range(steps)],
            "rewards/target_chosen": [0.05 * t for t in range(steps)],
            "rewards/rejected": [-0.1 * t for t in range(steps)],
            "rewards/source_accuracies": src_acc,
            "rewards/pivot_accuracies": [0.5] * steps,
            "cur_alpha": [alpha * t / steps for t in range(steps)],
        }
    )


CHAT = pd.DataFrame(
    {
        "model": ["Target-SFT-DPO", "WRPO", "WRPO-alpha0.5", "tgt"],
        "lc_win_rate": [40.0, 45.0, 43.0, 20.0],
        "lc_standard_error": [1.0, float("nan"), 2.0, 1.0],
        "win_rate": [38.0, 44.0, 41.0, 19.0],
        "standard_error": [1.5, 1.5, 1.5, 1.5],
    }
)


def test_alpha_sweep_rows_sorted_by_alpha_with_intervals_and_tail_accuracy():
    logs = {
        "WRPO": log(8, 0.1, [0, 0, 0, 0, 0, 0, 1, 1]),
        "Target-SFT-DPO": log(8, 0.0, [0, 0, 0, 0, 0, 0, 0, 1]),
        "WRPO-alpha0.5": log(3, 0.5, [1, 0, 0]),
    }
    alphas = {"WRPO": 0.1, "WRPO-alpha0.5": 0.5, "Target-SFT-DPO": 0.0}
    sweep = alpha_sweep(alphas, logs, CHAT)
    assert list(sweep.variant) == ["Target-SFT-DPO", "WRPO", "WRPO-alpha0.5"]
    assert list(sweep.alpha_max) == [0.0, 0.1, 0.5]
    # the last quarter of 8 steps is steps 7-8; of 3 steps, the last one
    assert list(sweep.source_reward_accuracy) == [0.5, 1.0, 0.0]
    first = sweep.iloc[0]
    assert first.lc_ci_lower == pytest.approx(40.0 - 1.959964 * 1.0, abs=1e-5)
    assert first.wr_ci_upper == pytest.approx(38.0 + 1.959964 * 1.5, abs=1e-5)
    assert math.isnan(sweep.iloc[1].lc_ci_lower)  # unknown SE: no interval
    with pytest.raises(ValueError, match="'WRPO-alpha0.9' is not in the chat"):
        alpha_sweep({"WRPO-alpha0.9": 0.9}, {"WRPO-alpha0.9": log(2, 0.9, [1, 1])}, CHAT)
    with pytest.raises(ValueError, match="no training log of 'X'"):
        alpha_sweep({"X": 0.3}, logs, CHAT)


def test_reward_dynamics_keeps_every_step_of_every_variant():
    dyn = reward_dynamics({"A": log(4, 0.1, [0] * 4), "B": log(2, 0.0, [0] * 2)})
    assert len(dyn) == 6 and list(dyn.variant.unique()) == ["A", "B"]
    a = dyn[dyn.variant == "A"]
    assert a["rewards/rejected"].tolist() == pytest.approx([0.0, -0.1, -0.2, -0.3])
    assert a["cur_alpha"].tolist() == pytest.approx([0.0, 0.025, 0.05, 0.075])


def test_a_log_without_wrpo_rewards_is_named(tmp_path):
    path = tmp_path / "train_log.csv"
    pd.DataFrame({"step": [1], "loss": [0.5]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"train_log\.csv: not a WRPO training log"):
        read_train_log(path)


def test_files(tmp_path):
    paths = {}
    for name, alpha in (("Target-SFT-DPO", 0.0), ("WRPO", 0.1)):
        (tmp_path / name).mkdir()
        log(6, alpha, [0.5] * 6).to_csv(tmp_path / name / "train_log.csv", index=False)
        paths[name] = str(tmp_path / name / "train_log.csv")
    CHAT.to_csv(tmp_path / "chat_eval.csv", index=False)
    out = {k: tmp_path / f"{k}.png" for k in ("dyn", "sweep")}
    sweep = write_wrpo_figures(
        "wrpo",
        {"Target-SFT-DPO": 0.0, "WRPO": 0.1},
        paths,
        str(tmp_path / "chat_eval.csv"),
        str(out["dyn"]),
        str(out["sweep"]),
        str(tmp_path / "sweep.csv"),
    )
    back = pd.read_csv(tmp_path / "sweep.csv")
    assert back.variant.tolist() == sweep.variant.tolist() == ["Target-SFT-DPO", "WRPO"]
    assert back.lc_win_rate.tolist() == [40.0, 45.0]
    for png in out.values():
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 400

"""The paper-scale GPU-hours estimate (fusekit.gpu_hours): FLOPs rules of thumb over the config."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from fusekit.gpu_hours import MFU, PEAK_TFLOPS, STAGES, Assumptions, estimate, summary

A = Assumptions(prompt_tokens={"default": 100}, response_tokens={"default": 300})


def tiny_config(n=1000, params_b=7, max_new_tokens=200):
    gen = {"max_new_tokens": max_new_tokens, "samples_per_prompt": 1}
    return {
        "models": {
            "src": {"params_b": params_b, "generation": gen},
            "tgt": {"params_b": params_b, "generation": gen},
        },
        "reward_models": {"rm": {"params_b": 1}},
        "datasets": {"d": {"kind": "x", "n_examples": n}},
        "studies": {
            "s": {
                "sources": ["src"],
                "target": "tgt",
                "train_dataset": "d",
                "inference_mode": {"reward_models": ["rm"]},
                "optimizer": {"max_length": 2048},
                "stages": [{"modes": ["training"], "epochs": 2}],
                "variants": {"V": {}},
            }
        },
    }


def hours(flops, kind, gpu="a100"):
    return flops / (PEAK_TFLOPS[gpu] * 1e12 * MFU[kind]) / 3600


def test_rules_of_thumb():
    rows = {r["stage"] + r["what"]: r for r in estimate(tiny_config(), "a100", A)}
    N, n = 7e9, 1000
    # generation: prompts prefilled, responses (cut at max_new_tokens=200) decoded
    gen = rows["generatesrc on d (1000 x 1 samples)"]["gpu_hours"]
    assert gen == pytest.approx(
        hours(2 * N * n * 100, "prefill") + hours(2 * N * n * 200, "decode")
    )
    # scoring: a forward of the 1B reward model over prompt + response
    assert rows["scorerm on src"]["gpu_hours"] == pytest.approx(hours(2 * 1e9 * n * 300, "forward"))
    # training: 6 N per token, 2 epochs of one mode; a sequence is prompt + the mean of the
    # reference (300) and the voted response (200)
    train = rows["trainvariant V"]["gpu_hours"]
    assert train == pytest.approx(hours(6 * N * 2 * n * (100 + 250), "train"))


def test_linear_in_examples_and_parameters_faster_on_h100():
    base = sum(r["gpu_hours"] for r in estimate(tiny_config(), "a100", A))
    assert sum(r["gpu_hours"] for r in estimate(tiny_config(n=2000), "a100", A)) == pytest.approx(
        2 * base
    )
    doubled = sum(r["gpu_hours"] for r in estimate(tiny_config(params_b=14), "a100", A))
    assert base < doubled < 2 * base  # the reward model did not grow
    assert sum(r["gpu_hours"] for r in estimate(tiny_config(), "h100", A)) < base


def test_shared_generations_counted_once():
    cfg = tiny_config()
    cfg["studies"]["t"] = copy.deepcopy(cfg["studies"]["s"])
    rows = estimate(cfg, "a100", A)
    assert [r["study"] for r in rows if r["stage"] == "generate"] == ["s"]
    assert [r["study"] for r in rows if r["stage"] == "score"] == ["s"]
    assert {r["study"] for r in rows if r["stage"] == "train"} == {"s", "t"}


def test_paper_config():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    table = {(r["study"], r["stage"]): r for r in summary(estimate(cfg, "a100"))}
    for stage in ("generate", "score", "dump", "train", "evaluate"):
        assert table[("profuser", stage)]["gpu_hours"] > 0
    assert table[("profuser", "train")]["jobs"] == len(cfg["studies"]["profuser"]["variants"])
    total = table[("profuser", "total")]["gpu_hours"]
    assert total == pytest.approx(sum(table[("profuser", s)]["gpu_hours"] for s in STAGES))
    assert 50 < total < 5000  # hundreds of A100 hours, not minutes nor years
    # FuseChat-3.0: 5 samples of 27B-123B models on ~60k prompts dominate
    assert (
        table[("fusechat3", "generate")]["gpu_hours"] > table[("profuser", "generate")]["gpu_hours"]
    )


def test_script_prints_the_table(tmp_path):
    out = tmp_path / "jobs.csv"
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts/estimate_gpu_hours.py", "--config",
         ROOT / "config/config.yaml", "--gpu", "h100", "--out", out],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "| profuser | train |" in proc.stdout and "h100" in proc.stdout
    assert out.read_text().startswith("stage,study,what,jobs,pflops,gpu_hours")

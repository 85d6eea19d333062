"""benchmarks/gpu_check.py: its arguments and errors here; the whole CPU smoke run
(``--device cpu --quick``, about 30 s on 2 cores) against a world built before, when
FUSEKIT_TINY_WORLD names its checkout (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_help_names_every_option():
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--world", "--device", "--quick", "--out", "--reference-eval"):
        assert option in proc.stdout, option


@pytest.mark.bad_input
def test_missing_world_is_named(tmp_path):
    proc = _run("--world", str(tmp_path / "nowhere"), "--device", "cpu", "--out", "x.json")
    assert proc.returncode == 2
    assert "nowhere" in proc.stderr and "corpus.parquet" in proc.stderr, proc.stderr


@pytest.mark.bad_input
def test_cuda_requested_without_a_gpu_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    proc = _run("--world", str(tmp_path), "--out", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert "no CUDA device is visible" in proc.stderr and "--device cpu" in proc.stderr


def test_cpu_smoke_run_prints_every_figure(tmp_path):
    checkout = os.environ.get("FUSEKIT_TINY_WORLD")
    world = Path(checkout or "") / "results" / "tiny" / "world"
    if not checkout or not (world / "corpus.parquet").exists():
        pytest.skip("FUSEKIT_TINY_WORLD names no checkout with a built tiny world")
    out = tmp_path / "figures.json"
    proc = _run("--world", str(world), "--device", "cpu", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert not report["errors"]
    assert set(report["stages"]) == {"generate", "dump", "train", "lm_eval"}
    assert report["stages"]["generate"]["tokens_per_s"] > 0
    assert report["stages"]["dump"]["rows"] == 32  # the quick size: every reference fits
    assert report["stages"]["train"]["steps"] == 2  # 32 examples, 1 epoch, batch 16
    values = report["stages"]["lm_eval"]["values"]
    assert len(values) == 6 and all(0 <= v <= 100 for v in values.values())
    for stage in ("generate", "dump", "train", "lm_eval"):
        assert f"{stage:8s} " in proc.stdout, stage

"""What the Snakemake community expects of a workflow: lint, format, logs, benchmarks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, snakemake

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/tiny.yaml"])
def test_snakemake_lint_is_clean(configfile):
    proc = snakemake("--lint", "--configfile", configfile, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Lints for" not in out, out


def test_snakefmt_check():
    proc = subprocess.run(
        [BIN / "snakefmt", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff():
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([BIN / "ruff", *args], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _rules():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    blocks = re.split(r"^rule (\w+):", text, flags=re.M)[1:]
    return dict(zip(blocks[::2], blocks[1::2], strict=True))


def test_every_rule_has_log_benchmark_and_env():
    rules = _rules()
    assert len(rules) >= 13
    for name, body in rules.items():
        for directive in ("log:", "benchmark:", "conda:", "shell:"):
            assert f"    {directive}" in body, f"rule {name} has no {directive}"


def test_rule_names_are_verb_object():
    verbs = {
        "build",
        "train",
        "evaluate",
        "tabulate",
        "prepare",
        "generate",
        "score",
        "vote",
        "compare",
        "dump",
        "map",
        "align",
        "select",
        "verify",
        "publish",
        "plot",
    }
    for name in _rules():
        assert name.split("_")[0] in verbs, name


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.py")))
def test_every_script_has_help(script):
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / script, "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "--out" in proc.stdout


def test_envs_pin_versions():
    for env in (ROOT / "envs").glob("*.yaml"):
        deps = yaml.safe_load(env.read_text())["dependencies"]
        pip = next(d["pip"] for d in deps if isinstance(d, dict))
        conda = [d for d in deps if isinstance(d, str)]
        assert all("=" in d for d in conda), (env, conda)
        assert all("==" in p for p in pip if not p.startswith("-e")), (env, pip)


def test_cpu_install_pins_torch_and_keeps_gpu_extras_optional():
    text = (ROOT / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    # the CPU build is pinned by bootstrap.sh; pyproject's range admits it and the GPU
    # requirements' torch (requirements-gpu.txt, tests/test_gpu_requirements.py)
    assert "torch==2.13.0" in (ROOT / "bootstrap.sh").read_text()
    torch = re.search(r'"torch([^"]*)"', deps).group(1)
    from packaging.specifiers import SpecifierSet

    assert "2.13.0" in SpecifierSet(torch), torch
    assert "vllm" not in deps and "deepspeed" not in deps
    assert re.search(r'gpu = \[.*"vllm".*"deepspeed".*\]', text)

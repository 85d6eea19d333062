"""Shared fixtures: the repository root, a Snakemake runner and a tiny world built once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "rules", "config", "scripts", "profiles", "envs", "report")


def snakemake(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake with this interpreter; returns the finished process (text output)."""
    env = dict(
        os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_workflow(dest: Path) -> Path:
    """A copy of the workflow (not the library: fusekit is installed) in ``dest``."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy(src, dest / name)
    return dest


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A workflow copy in which the whole tiny world has been built once."""
    wd = copy_workflow(tmp_path_factory.mktemp("tiny"))
    snakemake("--profile", "profiles/tiny", cwd=wd)
    return wd

"""The two scales never share a path (issue 18 item 4): every output and log Snakemake
plans for the tiny world lies under results/tiny/ or logs/tiny/; none of paper scale's
does; results/table1.csv is the paper's headline target only."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT, snakemake

from fusekit import workflow as layout


def _planned_files(*args: str) -> set[str]:
    proc = snakemake("-n", *args)
    files = set()
    for key in ("output", "log", "benchmark"):
        for line in re.findall(rf"^\s+{key}: (.*)$", proc.stdout, re.M):
            files.update(f.strip() for f in line.split(","))
    assert files, proc.stdout[-2000:]
    return files


@pytest.fixture(scope="module")
def tiny_files():
    return _planned_files("--profile", "profiles/tiny")


@pytest.fixture(scope="module")
def paper_files():
    return _planned_files("--configfile", "config/config.yaml")


def test_tiny_outputs_live_under_the_tiny_roots(tiny_files):
    outside = sorted(f for f in tiny_files if not f.startswith(("results/tiny/", "logs/tiny/")))
    assert not outside, outside[:20]
    assert "results/tiny/table1.csv" in tiny_files


def test_paper_outputs_never_enter_the_tiny_roots(paper_files, tiny_files):
    inside = sorted(f for f in paper_files if f.startswith(("results/tiny/", "logs/tiny/")))
    assert not inside, inside[:20]
    assert "results/table1.csv" in paper_files
    assert not paper_files & tiny_files


def test_the_tiny_scale_cannot_write_the_paper_headline():
    proc = snakemake("-n", "--profile", "profiles/tiny", "results/table1.csv", check=False)
    assert proc.returncode != 0
    assert "results/table1.csv" in proc.stdout + proc.stderr


def test_results_root_follows_the_scale():
    tiny = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    paper = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert layout.results_root(tiny) == "results/tiny" and layout.logs_root(tiny) == "logs/tiny"
    assert layout.results_root(paper) == "results" and layout.logs_root(paper) == "logs"
    # the tiny world's models sit under the tiny root too
    assert layout.WORLD.startswith(layout.results_root(tiny) + "/")

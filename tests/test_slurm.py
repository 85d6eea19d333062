"""profiles/slurm against a real Slurm: a single-node slurmctld + slurmd with munge on
localhost (Debian's slurm-wlm, installed here with apt-get where missing), with a GPU
gres backed by device nodes made with mknod (tests/slurm_cluster.py).

What runs, through `--profile profiles/slurm` and snakemake-executor-plugin-slurm:

- in a copy of the built tiny world, with `cluster.tiny_gpu_jobs` (GPU rules ask for one
  GPU): one fusion training job (GPU rule) and one reference scoring job (CPU rule). The
  training job is cancelled with scancel after its first checkpoint; the profile's retry
  resubmits it and it resumes from that checkpoint.
- in a fresh workflow copy: the driver is killed with SIGKILL while the second of two
  dependent jobs runs; after `--unlock`, the same command (the profile sets
  --rerun-incomplete) finishes without redoing the first job.

A `python` shim first on PATH records, for every rule command, the Slurm job id and the
CUDA_VISIBLE_DEVICES it saw: the check of what really ran where.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_workflow, snakemake
from slurm_cluster import SlurmCluster, ensure_installed

pytestmark = pytest.mark.workflow

TRAIN_TARGET = "results/tiny/profuser/models/CSFT"
CPU_TARGET = "results/tiny/reference_scores/fusion_train/src_llama.parquet"
SAVE_EVERY = 4
RUN_TIMEOUT = 300  # seconds, one Snakemake run (a tiny job takes ~10-30 s through Slurm)

SHIM = """#!/bin/sh
# records what a rule's command saw, then runs the real interpreter (exec keeps the pid;
# the tiny config's `python -m fusekit.forkserver run script.py` finds no server in a
# Slurm job and execs python in turn, keeping it again)
out=; prev=; script=
for a in "$@"; do
  [ "$prev" = "--out" ] && out=$a
  case "$a" in *.py) [ -z "$script" ] && script=$a;; esac
  prev=$a
done
{{
  echo "script=$script"
  echo "out=$out"
  echo "pid=$$"
  echo "slurm_job_id=${{SLURM_JOB_ID:-}}"
  echo "cuda_visible_devices=${{CUDA_VISIBLE_DEVICES-unset}}"
}} > "$FUSEKIT_JOB_RECORDS/$(date +%s%N).$$"
exec {python} "$@"
"""


# -- the profile by name, as the issue writes the command -------------------------------
def test_profile_by_name_plans_the_paper_dag():
    """`snakemake --profile slurm results/table1.csv` from the repository root: Snakemake
    finds profiles by name in the working directory, where ./slurm links to profiles/slurm."""
    assert (ROOT / "slurm").resolve() == (ROOT / "profiles/slurm").resolve()
    proc = snakemake("--profile", "slurm", "results/table1.csv", "-n")
    out = proc.stdout + proc.stderr
    assert "Using profile slurm" in out
    gpus = yaml.safe_load((ROOT / "config/config.yaml").read_text())["studies"]["profuser"][
        "training"
    ]["gpus"]
    train = re.search(r"rule train_fusion:.*?resources: ([^\n]*)", out, re.S).group(1)
    assert f" gpu={gpus}," in f" {train}," and "slurm_partition=gpu" in train, train
    # issue 18 item 5: no GPU model is requested when cluster.gpu_model is unset (it was
    # gpu_model=0), and a multi-GPU job stays on one node (sbatch --nodes=1)
    assert "gpu_model" not in out, train
    assert ",nodes=1," in f",{train.replace(' ', '')},", train


# -- fixtures -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    reason = ensure_installed()
    if reason:
        pytest.skip(reason)
    # munged wants every directory above its socket searchable: not under pytest's 0700 tmp
    root = Path(tempfile.mkdtemp(prefix="fusekit-slurm-"))
    c = SlurmCluster(root)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory):
    """Environment of Snakemake runs: this cluster's SLURM_CONF, the python shim first."""
    base = tmp_path_factory.mktemp("slurm_env")
    shim_dir, records = base / "bin", base / "records"
    shim_dir.mkdir()
    records.mkdir()
    shim = shim_dir / "python"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    path = os.pathsep.join([str(shim_dir), str(Path(sys.executable).parent), cluster.env["PATH"]])
    return dict(cluster.env, PATH=path, FUSEKIT_JOB_RECORDS=str(records))


def records(env) -> list[dict[str, str]]:
    """What every rule command recorded, oldest first."""
    out = []
    for path in sorted(Path(env["FUSEKIT_JOB_RECORDS"]).iterdir()):
        fields = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        out.append(fields)
    return out


class Run:
    """A Snakemake driver in the background; its stdout and stderr go to one file."""

    def __init__(self, wd: Path, env: dict, args: list[str], name: str):
        self.wd, self.log = wd, wd / f"{name}.driver.log"
        with open(self.log, "w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "snakemake", *args],
                cwd=wd,
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"Snakemake ran past {timeout} s:\n{self.text()[-6000:]}"
            ) from None

    def ensure_stopped(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(what: str, ok, timeout: float, run: Run | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        if run is not None and run.proc.poll() is not None:
            raise AssertionError(
                f"Snakemake ended ({run.proc.returncode}) before {what}:\n{run.text()[-6000:]}"
            )
        time.sleep(interval)
    raise AssertionError(
        f"no {what} after {timeout} s" + (f":\n{run.text()[-6000:]}" if run else "")
    )


def slurm_args(*extra: str) -> list[str]:
    """The profile under test, with a short first status check (the plugin waits 20 s)."""
    return ["--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "2", *extra]


def jobs_of(cluster, rule: str) -> list[dict[str, str]]:
    """This cluster's jobs of one rule (the plugin's comment is rule_<name>[_wildcards_...])."""
    return sorted(
        (j for j in cluster.jobs() if re.match(rf"rule_{rule}(_wildcards_|$)", j["comment"])),
        key=lambda j: int(j["id"]),
    )


# -- a GPU rule and a CPU rule; the GPU job cancelled mid-run ----------------------------
@pytest.fixture(scope="module")
def gpu_run(cluster, env, tiny_world, tmp_path_factory):
    """Fusion training (GPU rule) and reference scoring (CPU rule) through Slurm in a copy
    of the built tiny world; the training job is cancelled after its first checkpoint."""
    wd = tmp_path_factory.mktemp("slurm_world") / "wf"
    shutil.copytree(
        tiny_world, wd, symlinks=True, ignore=shutil.ignore_patterns("locks", "slurm_logs")
    )
    shutil.rmtree(wd / "results/tiny/profuser/checkpoints", ignore_errors=True)
    (wd / "slurm_test.yaml").write_text(
        yaml.safe_dump(
            {
                # GPU rules ask for one GPU; the node has 2 cores, not the default 8 per GPU
                "cluster": {"tiny_gpu_jobs": True, "cpus_per_gpu": 1},
                "studies": {"profuser": {"training": {"save_every": SAVE_EVERY}}},
            }
        )
    )
    args = [TRAIN_TARGET, CPU_TARGET, *slurm_args("--keep-going")]
    args += ["--forcerun", "train_fusion", "score_against_reference"]
    args += ["--configfile", "config/tiny.yaml", "slurm_test.yaml"]
    run = Run(wd, env, args, "gpu_run")
    try:
        latest = wd / "results/tiny/profuser/checkpoints/CSFT/latest"
        wait_for("training checkpoint", latest.exists, RUN_TIMEOUT, run, interval=0.1)
        running = wait_for(
            "running train_fusion job",
            lambda: [j for j in jobs_of(cluster, "train_fusion") if j["state"] == "RUNNING"],
            30,
            run,
        )
        killed = running[0]["id"]
        cluster.run("scancel", killed)
        rc = run.wait()
    finally:
        run.ensure_stopped()
    return {"wd": wd, "rc": rc, "out": run.text(), "killed": killed}


def test_gpu_and_cpu_jobs_run_through_slurm(gpu_run):
    assert gpu_run["rc"] == 0, gpu_run["out"][-6000:]
    assert "has been submitted with SLURM jobid" in gpu_run["out"]


def test_gpu_job_asked_for_a_gpu_and_saw_one(gpu_run, cluster, env):
    jobs = jobs_of(cluster, "train_fusion")
    assert len(jobs) == 2, jobs  # the cancelled attempt and its retry
    for job in jobs:
        detail = cluster.show_job(job["id"])
        assert detail["Partition"] == "gpu", detail
        assert re.search(r"gres[:/]gpu[:=]1\b", detail.get("TresPerJob", "")), detail
        assert detail.get("CpusPerTres", "gres:gpu:1").endswith(":1"), detail
    trained = [r for r in records(env) if r["script"].endswith("train_fusion.py")]
    assert {r["slurm_job_id"] for r in trained} == {j["id"] for j in jobs}, trained
    for r in trained:
        assert re.fullmatch(r"\d+", r["cuda_visible_devices"]), r


def test_cpu_job_asked_for_no_gpu(gpu_run, cluster, env):
    (job,) = jobs_of(cluster, "score_against_reference")
    detail = cluster.show_job(job["id"])
    assert job["state"] == "COMPLETED" and detail["Partition"] == "cpu", detail
    assert "gpu" not in detail.get("TresPerJob", "") + detail.get("TresPerNode", ""), detail
    (rec,) = [r for r in records(env) if r["script"].endswith("score_against_reference.py")]
    assert rec["slurm_job_id"] == job["id"]
    assert rec["cuda_visible_devices"] == "unset", rec
    scores = pd.read_parquet(gpu_run["wd"] / CPU_TARGET)
    assert len(scores) > 0 and scores["combined"].between(0, 1 + 1e-6).all()


def test_cancelled_job_is_retried_and_finishes(gpu_run, cluster):
    first, retry = jobs_of(cluster, "train_fusion")
    assert first["id"] == gpu_run["killed"]
    assert first["state"] == "CANCELLED" and retry["state"] == "COMPLETED", (first, retry)
    assert "Trying to restart job" in gpu_run["out"]
    model = gpu_run["wd"] / TRAIN_TARGET
    assert json.loads((model / "config.json").read_text())["architectures"]
    log = pd.read_csv(model / "train_log.csv")
    assert log["step"].tolist() == list(range(1, len(log) + 1))
    assert not (gpu_run["wd"] / "results/tiny/profuser/checkpoints/CSFT").exists()


def test_cancelled_training_resumes_from_its_checkpoint(gpu_run):
    log = (gpu_run["wd"] / "logs/tiny/training/train_fusion/profuser/CSFT.log").read_text()
    m = re.search(r"resuming from \S+ at step (\d+) of (\d+)", log)
    assert m, log[-3000:]
    step, total = int(m.group(1)), int(m.group(2))
    assert 0 < step < total and step % SAVE_EVERY == 0, m.group(0)


# -- the driver killed mid-run, then started again ---------------------------------------
def test_killed_driver_restarts_without_redoing_finished_jobs(cluster, env, tmp_path):
    wd = copy_workflow(tmp_path)
    target = "results/tiny/world/tokenizers/spm_700"
    args = [target, *slurm_args(), "--configfile", "config/tiny.yaml"]
    run = Run(wd, env, args, "first")
    try:
        # build_corpus has finished (it is upstream) once train_tokenizer is in the queue
        wait_for(
            "train_tokenizer job in the queue",
            lambda: jobs_of(cluster, "train_tokenizer"),
            RUN_TIMEOUT,
            run,
        )
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=30)
    finally:
        run.ensure_stopped()
    first = run.text()
    assert "rule build_corpus" in first and "rule train_tokenizer" in first, first
    corpus = wd / "results/tiny/world/corpus.parquet"
    corpus_mtime = corpus.stat().st_mtime_ns
    # what an operator does after a hard crash: cancel the dead driver's jobs (its run id
    # is their job name), lift its stale lock, then start the same command again
    run_id = re.search(r"SLURM run ID: (\S+)", first).group(1)
    cluster.run("scancel", "--name", run_id)
    wait_for(
        "the orphaned job to end",
        lambda: all(j["state"] not in ("PENDING", "RUNNING") for j in cluster.jobs()),
        60,
    )
    unlock = subprocess.run(
        [sys.executable, "-m", "snakemake", "--unlock", "--configfile", "config/tiny.yaml"],
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    again = Run(wd, env, args, "again")
    try:
        rc = again.wait()
    finally:
        again.ensure_stopped()
    second = again.text()
    assert rc == 0, second[-6000:]
    assert "rule train_tokenizer" in second and "rule build_corpus" not in second, second
    assert corpus.stat().st_mtime_ns == corpus_mtime
    ran = [
        Path(r["script"]).name for r in records(env) if r["out"].startswith("results/tiny/world")
    ]
    assert ran.count("build_corpus.py") == 1, ran
    assert (wd / target / "tokenizer.json").exists()

"""Multi-process training (issue 18 item 2): two processes under ``accelerate launch``
(DDP over gloo on CPU) train the one-process run's steps, each on its share of every
step; the main process alone locks and writes; a SIGKILLed two-process run resumes with
two processes. The DeepSpeed path needs GPUs and is not run here.

On a machine without GPUs, accelerate 1.15's ``--cpu`` flag starts one process (its
multi-CPU launch needs MPI); ``--multi_gpu`` starts the processes through torchrun, and
the trainer's ``Accelerator(cpu=True)`` makes them a gloo (MULTI_CPU) group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_training import _examples, target  # noqa: F401

import fusekit.train.loop as loop
from fusekit.io import OWNER_LOCK, FolderInUseError, folder_lock
from fusekit.train.loop import Stage, batch_plan, micro_steps, step_shard, train_fusion

TESTS = Path(__file__).resolve().parent
STAGES = [
    Stage(("inference",), 1.0, beta=0.1),
    Stage(("inference", "training"), 1.0, 0.5, 0.5, 0.1, 1.0),
]
SEED = 7
OPTIM = {"name": "adamw", "lr": 1e-3, "schedule": "cosine"}
CFG = {"save_every": 0, "precision": "no", "warmup_ratio": 0.0}
DPO = [Stage((), 1.0, objective="dpo", hparams={"beta": 0.1})]
# fusion: 18 and 18 examples per stage (test_training._examples); dpo: 13 pairs
# case: (examples, global batch, micro-batch)
CASES = {
    # 4 micro-batches of 1 per step: 2 per process, accumulated before one reduction
    "even": ("fusion", 4, 1),
    # micro-batches of 3, 3 and 2 (one process runs a zero-weight pass), and a last step
    # of 2 examples: one micro-batch, so process 1 has no example in that step
    "uneven_last_step_idle_process": ("fusion", 8, 3),
    # an odd global batch: micro-batches of 2, 2, 1 and a last step of 3
    "odd_global_batch": ("fusion", 5, 2),
    # a preference objective, whose logged metrics are reduced like the loss
    "dpo_metrics": ("dpo", 5, 2),
}


def _pairs(n: int = 13, seed: int = 1) -> list:
    """Hand-made DPO pairs over the tiny vocabulary, with reference log-probs."""
    import numpy as np

    from fusekit.train.sequences import Row, SequenceExample

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        prompt = rng.integers(5, 300, 3).tolist()
        rows = [Row(prompt + rng.integers(5, 300, k).tolist(), 3) for k in (2 + i % 3, 4)]
        out.append(SequenceExample(f"q{i:02d}", "pair", rows, rng.normal(-20, 2, 2).tolist()))
    return out


def _setup(kind: str) -> tuple[list, list[Stage]]:
    return (_examples(), STAGES) if kind == "fusion" else (_pairs(), DPO)


DRIVER = """
import json, os, sys, time
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from test_multiprocess_training import SEED, _setup
import fusekit.train.loop as loop
from fusekit.cli import setup_logging

setup_logging()
rank = int(os.environ.get("RANK", "0"))
real_atomic_path = loop.atomic_path

def atomic_path(path, *args, **kwargs):  # every write of the output and `latest` pointer
    # one write(2) per line: two processes share the pipe, and print() writes the text and
    # its newline separately, so their lines could interleave
    os.write(1, f"WRITE {{rank}} {{path}}\\n".encode())
    return real_atomic_path(path, *args, **kwargs)

loop.atomic_path = atomic_path
hang_at = int(sys.argv[3])
if hang_at:
    real_save = loop._save_checkpoint

    def save_then_hang(acc, ckpt_dir, step, *args, **kwargs):
        real_save(acc, ckpt_dir, step, *args, **kwargs)
        if step == hang_at:
            os.write(1, f"SAVED {{rank}} {{os.getpid()}}\\n".encode())
            parent, deadline = os.getppid(), time.monotonic() + 120
            while os.getppid() == parent and time.monotonic() < deadline:
                time.sleep(0.2)  # until killed (or orphaned by a failed test)
            os._exit(1)

    loop._save_checkpoint = save_then_hang
for run in json.loads(sys.argv[2]):
    examples, stages = _setup(run["kind"])
    frame = loop.train_fusion(
        sys.argv[1], {{}}, examples, stages, run["optim"], run["cfg"], run["out"],
        run["ckpt"], SEED,
    )
    with open(f"{{run['out']}}.rank{{rank}}.json", "w") as f:
        json.dump(frame.to_dict("list"), f)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp: Path, model: Path, runs: list[dict], hang_at: int = 0) -> subprocess.Popen:
    """``accelerate launch`` of the driver over two CPU processes, in its own session
    (so that the whole process group can be killed)."""
    driver = tmp / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER.format(tests=str(TESTS))))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    cmd += ["--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    cmd += [str(driver), str(model), json.dumps(runs), str(hang_at)]
    log = tmp / f"stderr-{len(list(tmp.glob('stderr-*')))}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, start_new_session=True
        )
    proc.stderr_log = log
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 120) -> list[str]:
    """The launch's stdout lines once it has ended well; its stderr when it did not."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its workers end when their training does
        out, _ = proc.communicate()
    err = proc.stderr_log.read_text()[-4000:]
    assert proc.returncode == 0, f"the launch failed ({proc.returncode}):\n{out}\n{err}"
    return out.splitlines()


def _run(ckpt_root: Path, case: str) -> dict:
    kind, global_batch, micro = CASES[case]
    return {
        "kind": kind,
        "optim": {**OPTIM, "global_batch_size": global_batch},
        "cfg": {**CFG, "micro_batch_size": micro},
        "out": str(ckpt_root / case / "model"),
        "ckpt": str(ckpt_root / case / "ckpt"),
    }


@pytest.fixture(scope="module")
def one_process(target, tmp_path_factory):  # noqa: F811
    """Each case trained by one process in this interpreter: (log, weights, folder)."""
    root = tmp_path_factory.mktemp("one")
    done = {}
    for case in CASES:
        run = _run(root, case)
        examples, stages = _setup(run["kind"])
        frame = train_fusion(
            str(target), {}, examples, stages, run["optim"], run["cfg"], run["out"],
            run["ckpt"], SEED,
        )  # fmt: skip
        model = Path(run["out"])
        done[case] = (frame.to_dict("list"), load_file(model / "model.safetensors"), model)
    return done


@pytest.fixture(scope="module")
def two_processes(target, tmp_path_factory):  # noqa: F811
    """Every case trained by two processes in one launch: (stdout lines, root)."""
    root = tmp_path_factory.mktemp("two")
    lines = _finish(_launch(root, target, [_run(root, case) for case in CASES]))
    return lines, root


def test_step_shards_cover_the_one_process_micro_batches():
    """Dealt out over 1, 2 or 3 processes, a step's micro-batches are the one-process
    run's, each once, with weights summing to 1; every process runs the same number
    of passes, the extra ones with weight 0."""
    for global_batch, micro in [*(c[1:] for c in CASES.values()), (128, 4), (7, 7)]:
        for size in {global_batch, 1, global_batch - 1, micro + 1} - {0}:
            idx = list(range(100, 100 + min(size, global_batch)))
            one = [idx[i : i + micro] for i in range(0, len(idx), micro)]
            for world in (1, 2, 3):
                n = micro_steps(global_batch, micro, world)
                shards = [step_shard(idx, micro, r, world, n) for r in range(world)]
                assert all(len(s) == n for s in shards)
                real = [c for s in shards for c, w in s if w > 0]
                assert sorted(real) == sorted(one)
                weights = [w for s in shards for _, w in s]
                assert sum(weights) == pytest.approx(1.0)
                assert all(w == len(c) / len(idx) for s in shards for c, w in s if w > 0)
    # a last step with a single micro-batch: process 1 runs only a zero-weight pass
    assert step_shard([5, 6], 3, 1, 2, 2) == [([5, 6], 0.0), ([5, 6], 0.0)]
    with pytest.raises(ValueError, match="more than 1 per process on 2"):
        step_shard(list(range(8)), 2, 0, 2, 1)


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_match_one(target, one_process, two_processes, case):  # noqa: F811
    """Per-step losses, gradient norms, metrics and final weights of two processes equal
    one process's with the same global batch, within float rounding (the gradient is
    summed in another order)."""
    lines, root = two_processes
    logged, weights, _ = one_process[case]
    out = root / case / "model"
    per_rank = [json.loads(Path(f"{out}.rank{r}.json").read_text()) for r in (0, 1)]
    assert per_rank[0] == per_rank[1]  # every process logs the reduced step loss
    kind, global_batch, _ = CASES[case]
    assert len(logged["loss"]) == len(batch_plan(*_setup(kind), global_batch, SEED))
    assert sorted(per_rank[0]) == sorted(logged)
    if kind == "dpo":  # the objective's metrics: accuracy, margins, log-probs
        assert {"rewards/accuracies", "rewards/margins", "logps/chosen"} <= set(logged)
    # the gradient itself (Adam's update hides a gradient off by a constant factor)
    assert "grad_norm" in logged and min(logged["grad_norm"]) > 0
    for column in logged:
        assert per_rank[0][column] == pytest.approx(logged[column], rel=1e-4, abs=1e-6), column
    two = load_file(out / "model.safetensors")
    assert sorted(two) == sorted(weights)
    for name in weights:
        torch.testing.assert_close(two[name], weights[name], atol=1e-5, rtol=0)
    # training moved the weights, so the comparison is not between two initial models
    initial = load_file(target / "model.safetensors")
    assert any(not torch.equal(initial[k], weights[k]) for k in weights if k in initial)


def test_only_the_main_process_writes(one_process, two_processes):
    """Only rank 0 entered atomic_path (one write per output); the output folders hold
    the files a one-process run writes, and no temporary or checkpoint is left."""
    lines, root = two_processes
    writes = [m.groups() for line in lines for m in re.finditer(r"WRITE (\d+) (\S+)", line)]
    assert {rank for rank, _ in writes} == {"0"}
    assert sorted(path for _, path in writes) == sorted(
        str(root / case / "model") for case in CASES
    )
    for case in CASES:
        model = one_process[case][2]
        files = sorted(p.name for p in model.iterdir())
        assert sorted(p.name for p in (root / case / "model").iterdir()) == files
        # beside the model: the driver's loss files only, no temporary, no checkpoints
        assert sorted(p.name for p in (root / case).iterdir()) == [
            "model",
            "model.rank0.json",
            "model.rank1.json",
        ]


@pytest.mark.fault
def test_killed_two_process_run_resumes(target, two_processes, tmp_path, caplog):  # noqa: F811
    """Both processes SIGKILLed (the whole process group, as a scheduler kills a job)
    after the checkpoint at step 6 of 10: while they lived, rank 0 alone held the owner
    lock; the checkpoint holds each process's RNG state. Relaunched with two processes,
    the run resumes at step 6 and ends with the uninterrupted two-process run's weights
    and losses. Resumed with one process instead, the checkpoint is discarded."""
    _, clean_root = two_processes
    run = _run(tmp_path, "even")
    run["cfg"] = {**run["cfg"], "save_every": 3}
    ckpt = Path(run["ckpt"])
    proc = _launch(tmp_path, target, [run], hang_at=6)
    saved = {}
    try:
        for line in proc.stdout:
            for rank, pid in re.findall(r"SAVED (\d+) (\d+)", line):
                saved[rank] = int(pid)
            if len(saved) == 2:
                break
        assert sorted(saved) == ["0", "1"], f"the launch ended ({proc.poll()}) before saving"
        owner = (ckpt / OWNER_LOCK).read_text()
        assert owner.startswith(f"pid {saved['0']} on ")
        with pytest.raises(FolderInUseError, match=f"pid {saved['0']} on "):
            with folder_lock(ckpt, wait_s=0.0):
                pass
    finally:  # torchrun starts each worker in a session of its own: kill each
        for pid in [proc.pid, *saved.values()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in ckpt.iterdir()) == [OWNER_LOCK, "latest", "step-0000006"]
    step = ckpt / "step-0000006"
    assert {"random_states_0.pkl", "random_states_1.pkl", loop.STATE_FILE} <= {
        p.name for p in step.iterdir()
    }
    copy = tmp_path / "ckpt-copy"
    subprocess.run(["cp", "-a", str(ckpt), str(copy)], check=True)

    _finish(_launch(tmp_path, target, [run]))
    stderr = "".join(p.read_text() for p in sorted(tmp_path.glob("stderr-*.log")))
    assert stderr.count("resuming from") == 1 and "at step 6 of 10" in stderr  # rank 0 logs
    assert "discarding" not in stderr
    clean = clean_root / "even" / "model"
    a, b = load_file(clean / "model.safetensors"), load_file(Path(run["out"]) / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    resumed = json.loads(Path(f"{run['out']}.rank0.json").read_text())["loss"]
    assert resumed == json.loads(Path(f"{clean}.rank0.json").read_text())["loss"]
    assert not ckpt.exists()

    # the same checkpoint under one process: another training (its process count)
    with caplog.at_level(logging.INFO, logger="fusekit"):
        train_fusion(
            str(target), {}, _examples(), STAGES, run["optim"], run["cfg"],
            str(tmp_path / "one"), str(copy), SEED, stop_after=1,
        )  # fmt: skip
    assert "changed: processes)" in caplog.text and "resuming" not in caplog.text

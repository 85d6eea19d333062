"""Checkpoints and outputs under faults (issue 19 items 1 and 5): a checkpoint of another
training is discarded, never resumed; one trainer per checkpoint folder; temporaries of
dead writers swept; unwritable folders found before training; a full disk named."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_training import SIZE, _examples

import fusekit.io
import fusekit.train.loop as loop
from fusekit.io import OWNER_LOCK, FolderInUseError, atomic_path, folder_lock, write_json
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.train.loop import Stage, train_fusion

TESTS = Path(__file__).resolve().parent
STAGES = [
    Stage(("inference",), 1.0, beta=0.1),
    Stage(("inference", "training"), 1.0, 0.5, 0.5, 0.1, 1.0),
]
OPTIM = {"name": "adamw", "lr": 1e-3, "schedule": "cosine", "global_batch_size": 4}
CFG = {"micro_batch_size": 2, "save_every": 3}
SEED = 7
N_STEPS = 10  # 18 and 18 examples in batches of 4


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("target")
    corpus = build_corpus(0, {"pretrain": 30})
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 30), "metaspace_bpe", 300, "vicuna")
    build_model("LlamaForCausalLM", tok, SIZE, seed=0).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def _train(target, out, ckpt, optim=OPTIM, cfg=CFG, examples=None, seed=SEED, stop_after=None):
    return train_fusion(
        str(target),
        {},
        examples if examples is not None else _examples(),
        STAGES,
        optim,
        cfg,
        str(out),
        str(ckpt),
        seed,
        stop_after=stop_after,
    )


@pytest.fixture(scope="module")
def clean(target, tmp_path_factory):
    """The weights file of an uninterrupted run under OPTIM and CFG."""
    root = tmp_path_factory.mktemp("clean")
    frame = _train(target, root / "model", root / "ckpt")
    assert len(frame) == N_STEPS
    return (root / "model" / "model.safetensors").read_bytes()


def _changed_examples():
    ex = _examples()
    ex[5].training.topk_logprobs[-1, 0] -= 0.25  # one teacher log-prob of one example
    return ex


# (changed argument, its value in the first run, the fingerprint parts the log must name)
CHANGES = {
    "lr": ({"optim": {**OPTIM, "lr": 3e-3}}, ["optimizer"]),
    "global_batch_size": (
        {"optim": {**OPTIM, "global_batch_size": 2}},
        ["optimizer", "batch_plan"],
    ),
    "micro_batch_size": ({"cfg": {**CFG, "micro_batch_size": 1}}, ["training"]),
    "seed": ({"seed": 8}, ["seed", "batch_plan"]),
    "examples": ({"examples": _changed_examples()}, ["examples"]),
}


@pytest.mark.fault
@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_training_discards_the_checkpoint(target, clean, tmp_path, caplog, change):
    """Interrupted under one setting, rerun under another: the same bytes as a clean
    run under the new setting, and the log names what changed."""
    first, parts = CHANGES[change]
    ckpt = tmp_path / "ckpt"
    part = _train(target, tmp_path / "out", ckpt, stop_after=7, **first)
    assert len(part) == 7 and (ckpt / "latest").exists()
    with caplog.at_level(logging.INFO, logger="fusekit"):
        resumed = _train(target, tmp_path / "out", ckpt)
    assert len(resumed) == N_STEPS and resumed.step.tolist() == list(range(1, N_STEPS + 1))
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == clean
    [warning] = [r.getMessage() for r in caplog.records if "discarding checkpoint" in r.message]
    changed = warning.split("changed: ")[1].split(")")[0].split(", ")
    assert changed == parts
    assert "resuming" not in caplog.text


@pytest.mark.fault
def test_save_every_change_still_resumes(target, clean, tmp_path, caplog):
    """save_every cannot change the weights: the checkpoint is resumed, not discarded."""
    ckpt = tmp_path / "ckpt"
    _train(target, tmp_path / "out", ckpt, stop_after=7)
    with caplog.at_level(logging.INFO, logger="fusekit"):
        _train(target, tmp_path / "out", ckpt, cfg={**CFG, "save_every": 4})
    assert "resuming from" in caplog.text and "at step 6 of 10" in caplog.text
    assert "discarding" not in caplog.text
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == clean


@pytest.mark.fault
def test_checkpoint_without_fingerprint_is_discarded(target, clean, tmp_path, caplog):
    """A checkpoint an older fusekit wrote (no fingerprint) is not trusted."""
    ckpt = tmp_path / "ckpt"
    _train(target, tmp_path / "out", ckpt, optim={**OPTIM, "lr": 3e-3}, stop_after=7)
    state_file = ckpt / (ckpt / "latest").read_text() / loop.STATE_FILE
    state = json.loads(state_file.read_text())
    del state["fingerprint"]
    state_file.write_text(json.dumps(state))
    with caplog.at_level(logging.INFO, logger="fusekit"):
        _train(target, tmp_path / "out", ckpt)
    assert "an older fusekit wrote it" in caplog.text
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == clean


# A trainer that hangs after its checkpoint at step 6, to be SIGKILLed there.
DRIVER = """
import json, sys, time
sys.path.insert(0, {tests!r})
import test_checkpoints as t
import fusekit.train.loop as loop

save = loop._save_checkpoint
def save_then_hang(*args, **kwargs):
    save(*args, **kwargs)
    if args[2] == 6:
        print("SAVED", flush=True)
        time.sleep(600)
loop._save_checkpoint = save_then_hang
t._train(sys.argv[1], sys.argv[2], sys.argv[3], optim=json.loads(sys.argv[4]))
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, word: str) -> str:
    """The first stdout line of ``proc`` that starts with ``word``; fails if it exits first."""
    for line in proc.stdout:
        if line.startswith(word):
            return line.strip()
    proc.wait()
    raise AssertionError(f"the child exited ({proc.returncode}) before saying {word}")


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()


@pytest.mark.fault
@pytest.mark.parametrize("lr", [1e-3, 3e-3], ids=["same_lr", "changed_lr"])
def test_sigkilled_trainer_then_rerun(target, clean, tmp_path, caplog, monkeypatch, lr):
    """A trainer hung after a checkpoint keeps a second trainer out; SIGKILLed, with its
    lock held, then rerun under OPTIM: its dead lock does not block, and the result is
    the clean run's bytes, resumed when the lr is unchanged and retrained from step 0
    when it changed."""
    monkeypatch.setattr(loop, "LOCK_WAIT_S", 0.0)
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    proc = _start(
        DRIVER.format(tests=str(TESTS)), target, out, ckpt, json.dumps({**OPTIM, "lr": lr})
    )
    try:
        _wait_for(proc, "SAVED")
        # while it lives (an orphan of a killed driver), a second trainer is kept out
        with pytest.raises(FolderInUseError, match=f"pid {proc.pid} on "):
            _train(target, out, ckpt)
    finally:
        _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert (ckpt / "latest").read_text() == "step-0000006" and (ckpt / OWNER_LOCK).exists()
    with caplog.at_level(logging.INFO, logger="fusekit"):
        _train(target, out, ckpt)
    assert (out / "model.safetensors").read_bytes() == clean
    if lr == OPTIM["lr"]:
        assert "at step 6 of 10" in caplog.text and "discarding" not in caplog.text
    else:
        assert "changed: optimizer" in caplog.text and "resuming" not in caplog.text
    assert not ckpt.exists()


HOLDER = """
import sys, time
from fusekit.io import folder_lock
with folder_lock(sys.argv[1]):
    print("HELD", flush=True)
    time.sleep(600)
"""


@pytest.mark.fault
def test_second_trainer_on_a_held_folder_is_refused(target, tmp_path, monkeypatch):
    """A live holder (an orphan of a killed driver) keeps a second trainer out, with the
    folder and the holder's pid named, before the model loads; once the holder is
    SIGKILLed, the lock is free at once."""
    ckpt = tmp_path / "ckpt"
    proc = _start(HOLDER, ckpt)
    try:
        _wait_for(proc, "HELD")
        monkeypatch.setattr(loop, "LOCK_WAIT_S", 0.3)

        def no_load(*args, **kwargs):
            raise AssertionError("the model loaded before the lock was checked")

        monkeypatch.setattr("fusekit.backends.hf.load_causal_lm", no_load)
        with pytest.raises(
            FolderInUseError, match=rf"{re.escape(str(ckpt))} is in use .*pid {proc.pid} on "
        ):
            _train(target, tmp_path / "out", ckpt)
        assert sorted(p.name for p in ckpt.iterdir()) == [OWNER_LOCK]
    finally:
        _kill(proc)
    with folder_lock(ckpt, wait_s=0.0) as lock:
        assert lock.read_text().startswith(f"pid {os.getpid()} ")


WRITER = """
import sys, time
from fusekit.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("half")
    print("WRITING", tmp.parent, flush=True)
    time.sleep(600)
"""


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.fault
def test_atomic_path_sweeps_a_dead_writers_temporary(tmp_path):
    """A writer SIGKILLed inside atomic_path leaves its temporary; the next write of the
    same path removes it (and the pid-less temporaries of older versions), nothing else."""
    target = tmp_path / "out.json"
    proc = _start(WRITER, target)
    try:
        temp = Path(_wait_for(proc, "WRITING").split(" ", 1)[1])
    finally:
        _kill(proc)
    assert temp.parent == tmp_path and temp.name.startswith(".out.json.")
    assert (temp / "out.json").read_text() == "half"
    (tmp_path / ".out.json.k3j_9xq2").mkdir()  # an older version's temporary
    (tmp_path / ".out.json.keep").mkdir()  # not a temporary's name
    (tmp_path / ".other.json.k3j_9xq2").mkdir()  # another file's
    write_json({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert _hidden(tmp_path) == [".other.json.k3j_9xq2", ".out.json.keep"]


@pytest.mark.fault
def test_atomic_path_keeps_a_live_writers_temporary(tmp_path):
    """A temporary of a live writer on this host, or of a writer on another host, is kept."""
    target = tmp_path / "out.json"
    other_host = ("0" if fusekit.io._HOST_TAG != "000000" else "1") * 6
    foreign = tmp_path / f".out.json.{other_host}-1.abcd_123"
    foreign.mkdir()
    proc = _start(WRITER, target)
    try:
        temp = Path(_wait_for(proc, "WRITING").split(" ", 1)[1])
        write_json({"a": 1}, target)
        assert temp.is_dir() and (temp / "out.json").read_text() == "half"
        assert foreign.is_dir()
    finally:
        _kill(proc)


def _mount_tmpfs(where: Path, options: str) -> None:
    """Mount a tmpfs at ``where`` or skip (mounting needs root and CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")


@pytest.fixture
def mounts():
    """Mount tmpfs file systems for a test; unmounted after it."""
    mounted = []

    def mount(where: Path, options: str) -> Path:
        _mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def _forbid_loading(monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model loaded before the folders were checked")

    monkeypatch.setattr("fusekit.backends.hf.load_causal_lm", no_load)


@pytest.mark.fault
@pytest.mark.parametrize(
    "case", ["file_in_place_of_output_folder", "read_only_mount_checkpoints", "chmod_555_output"]
)
def test_unwritable_folder_is_found_before_training(target, tmp_path, monkeypatch, mounts, case):
    """An output or checkpoint folder that cannot be written stops training before the
    model loads, with the folder named. (As root, chmod 555 does not stop writes: that
    case runs only as another user; the read-only mount stops root too.)"""
    _forbid_loading(monkeypatch)
    out, ckpt = tmp_path / "out" / "model", tmp_path / "ckpt"
    if case == "file_in_place_of_output_folder":
        (tmp_path / "out").write_text("not a folder")
        bad, err, words = tmp_path / "out", NotADirectoryError, "is a file, not a folder"
    elif case == "read_only_mount_checkpoints":
        ckpt = mounts(tmp_path / "ro", "ro,size=64k") / "ckpt"
        bad, err, words = ckpt, PermissionError, "not writable"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes through mode 0o555; the read-only mount case covers root")
        (tmp_path / "out").mkdir()
        (tmp_path / "out").chmod(0o555)
        bad, err, words = tmp_path / "out", PermissionError, "not writable"
    try:
        with pytest.raises(err, match=rf"{re.escape(str(bad))}: .*{words}"):
            _train(target, out, ckpt)
    finally:
        if (tmp_path / "out").is_dir():
            (tmp_path / "out").chmod(0o755)
    assert not out.exists()


@pytest.mark.fault
@pytest.mark.parametrize("where", ["checkpoint", "output"])
def test_full_disk_is_named(target, tmp_path, mounts, where):
    """A real full disk (a 64 KiB tmpfs; the tiny model's checkpoint is about 400 KiB):
    OSError ENOSPC saying "no space left on device" and naming what was being written;
    no temporary or partial folder is left on it."""
    disk = mounts(tmp_path / "disk", "size=64k")
    if where == "checkpoint":
        out, ckpt, written = tmp_path / "out", disk / "ckpt", r"ckpt/step-0000003"
        left, expect_left = disk / "ckpt", [OWNER_LOCK]
    else:
        out, ckpt, written = disk / "model", tmp_path / "ckpt", r"disk/model"
        left, expect_left = disk, []
    with pytest.raises(OSError, match=rf"no space left on device while writing \S*{written} ") as e:
        _train(target, out, ckpt, cfg={**CFG, "save_every": 3 if where == "checkpoint" else 0})
    assert e.value.errno == errno.ENOSPC
    assert sorted(p.name for p in left.iterdir()) == expect_left
    assert not out.exists()


@pytest.mark.fault
def test_injected_enospc_is_named_and_leaves_nothing(tmp_path):
    """Where no file system can be filled: a writer failing with ENOSPC inside atomic_path."""
    target = tmp_path / "table.parquet"
    with pytest.raises(
        OSError, match=rf"no space left on device while writing {re.escape(str(target))} "
    ):
        with atomic_path(target) as tmp:
            tmp.write_text("part")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    # nested writes (a file inside a model folder's temporary): named once, by the inner path
    with pytest.raises(fusekit.io.DiskFullError) as e:
        with atomic_path(tmp_path / "model", is_dir=True) as folder:
            inner = folder / "config.json"
            with atomic_path(inner):
                raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert str(e.value).count("no space left on device while writing") == 1
    assert f"writing {inner} " in str(e.value) and list(tmp_path.iterdir()) == []


@pytest.mark.fault
@pytest.mark.parametrize("free", [0, 1 << 40], ids=["nearly_full", "space_left"])
def test_torch_write_failure_is_called_disk_full_only_on_a_full_disk(tmp_path, monkeypatch, free):
    """torch.save's errno-less "unexpected pos" is a full disk when the device is nearly
    full, and stays the writer's own error otherwise."""
    import shutil as real_shutil

    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(fusekit.io.shutil, "disk_usage", lambda p: usage._replace(free=free))
    target = tmp_path / "optimizer.bin"
    torch_error = RuntimeError("[enforce fail at inline_container.cc:783] . unexpected pos 64 vs 0")
    expected = OSError if free == 0 else RuntimeError
    with pytest.raises(expected) as e, atomic_path(target):
        raise torch_error
    if free == 0:
        assert e.value.errno == errno.ENOSPC and str(target) in str(e.value)
        assert e.value.__cause__ is torch_error
    else:
        assert e.value is torch_error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault
def test_full_disk_under_torch_save_is_named(tmp_path, mounts):
    """torch.save on a real full disk says "unexpected pos"; atomic_path says no space."""
    import torch

    target = mounts(tmp_path / "disk", "size=64k") / "optimizer.bin"
    with pytest.raises(OSError, match=rf"no space left .* {re.escape(str(target))} ") as e:
        with atomic_path(target) as tmp:
            torch.save({"state": torch.zeros(100_000)}, tmp)  # 400 KB
    assert e.value.errno == errno.ENOSPC and "unexpected pos" in str(e.value.__cause__)
    assert list(target.parent.iterdir()) == []


def test_fingerprint_parts_follow_what_changed():
    """Each part hashes what it names; equal inputs built twice hash equal."""
    import numpy as np

    from fusekit.train.loop import batch_plan, training_fingerprint
    from fusekit.train.sequences import Row, SequenceExample

    def fp(examples, optim=OPTIM, cfg=CFG, seed=SEED):
        plan = batch_plan(
            examples, STAGES, optim["global_batch_size"], seed, cfg.get("order", "random")
        )
        return training_fingerprint("m", {}, examples, STAGES, optim, cfg, seed, plan)

    base = fp(_examples())
    assert fp(_examples()) == base
    ex = _examples()
    ex[3].training.labels[-1] += 1  # one label of one example
    assert [k for k in base if fp(ex)[k] != base[k]] == ["examples"]
    ex = _examples()
    ex[3].training.input_ids = [np.int32(i) for i in ex[3].training.input_ids]  # same values
    assert fp(ex) == base
    assert fp(_examples(), cfg={**CFG, "save_every": 0}) == base
    changed = fp(_examples(), cfg={**CFG, "order": "gt_length"})
    assert [k for k in base if changed[k] != base[k]] == ["training", "batch_plan"]

    def pairs(ref):
        rows = [Row([1, 2, 3], 1), Row([1, 2, 4], 1)]
        return [SequenceExample("p", "pair", rows, ref, {"weight": 0.5})]

    plan = [(0, [0])]
    one = training_fingerprint("m", {}, pairs([-1.0, -2.0]), [], {}, {}, 0, plan)
    two = training_fingerprint("m", {}, pairs([-1.0, -2.5]), [], {}, {}, 0, plan)
    assert [k for k in one if one[k] != two[k]] == ["examples"]

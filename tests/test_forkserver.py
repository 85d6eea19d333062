"""fusekit.forkserver: a job run through the server behaves as ``python script.py`` does
(arguments, working directory, environment, streams, exit status, results), falls back to
plain python where the server cannot stand in for it, and dies with its client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fusekit import forkserver

JOB = textwrap.dedent(
    """
    import os, sys
    print("argv", sys.argv[1:], "cwd", os.getcwd(), "X", os.environ.get("X"))
    print("on stderr", file=sys.stderr)
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "torch":
        import torch
        torch.manual_seed(7)
        open("draw.bin", "wb").write(torch.randn(64).numpy().tobytes())
    if mode == "raise":
        raise ValueError("boom in the job")
    if mode == "noexit":
        sys.exit(0)
    if mode == "message":
        sys.exit("a message exit")
    if mode == "os_exit":
        sys.stdout.flush()
        os._exit(7)
    if mode == "killed":
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "thread":
        import threading, time
        def late():
            time.sleep(0.3)
            open("late.txt", "w").write("written by a thread")
        threading.Thread(target=late).start()
    if mode == "fork":
        import time
        if os.fork() == 0:
            sys.exit(0)  # a child of the script ends first, through sys.exit
        time.sleep(0.5)
        open("result.txt", "w").write("parent finished")
    if mode == "sleep":
        open("started", "w").close()
        import time
        time.sleep(60)
        open("finished", "w").close()
    sys.exit(3)
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fs")
    path = str(folder / "sock")
    current = os.environ.pop("PYTEST_CURRENT_TEST", None)  # pytest's, set per test
    # the jobs' PATH finds this interpreter first (as Snakemake's does in the tests)
    path_env = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])}
    proc = forkserver.start(path, preload=("torch",), env=path_env)
    if current is not None:
        os.environ["PYTEST_CURRENT_TEST"] = current
    yield path
    forkserver.stop(proc)
    assert not os.path.exists(path), "the server removes its socket when it stops"


def client(
    tmp_path: Path, *args: str, socket_path: str | None, extra_env: dict | None = None, **kw
):
    (tmp_path / "job.py").write_text(JOB)
    # the environment the server started with (pytest adds PYTEST_CURRENT_TEST per test)
    env = {k: v for k, v in os.environ.items() if k not in (forkserver.ENV, "PYTEST_CURRENT_TEST")}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    if socket_path:
        env[forkserver.ENV] = socket_path
    env.update(extra_env or {})
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "fusekit-python"), "job.py", *args],
            cwd=tmp_path, env=env, stdout=fo, stderr=fe, **kw,
        )  # fmt: skip
    return proc, out, err


def finish(proc, out, err):
    rc = proc.wait(timeout=120)
    return rc, out.read_text(), err.read_text()


def test_job_sees_its_argv_cwd_streams_and_exit_status(server, tmp_path):
    rc, out, err = finish(*client(tmp_path, "a", "b c", socket_path=server))
    assert rc == 3
    assert out == f"argv ['a', 'b c'] cwd {tmp_path} X None\n"
    assert err == "on stderr\n", "no fallback notice: the server ran the job"


def test_failures_exit_as_python_would(server, tmp_path):
    rc, _, err = finish(*client(tmp_path, "raise", socket_path=server))
    assert rc == 1
    assert "Traceback" in err and "ValueError: boom in the job" in err
    rc, _, err = finish(*client(tmp_path, "message", socket_path=server))
    assert (rc, err.splitlines()[-1]) == (1, "a message exit")


@pytest.mark.parametrize(
    "mode, status, written",
    [
        ("os_exit", 7, None),  # os._exit: no Python exit path, the supervisor sees it
        ("killed", 128 + 9, None),  # SIGKILL: as the shell reports it
        ("thread", 3, "late.txt"),  # a non-daemon thread finishes before the exit
        ("fork", 3, "result.txt"),  # the script's own child does not report for the job
    ],
)
def test_exit_paths_report_what_python_would(server, tmp_path, mode, status, written):
    rc, _, err = finish(*client(tmp_path, mode, socket_path=server))
    assert rc == status, err
    if written:
        assert (tmp_path / written).exists(), err


def test_a_failed_flush_exits_120_as_python_does(server, tmp_path):
    (tmp_path / "job.py").write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST",)}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    env.pop("PYTHONUNBUFFERED", None)
    rcs = []
    env.pop(forkserver.ENV, None)
    for sock in (None, server):
        e = dict(env, **{forkserver.ENV: sock}) if sock else env
        with open("/dev/full", "w") as full:
            rcs.append(
                subprocess.run(
                    [
                        os.path.join(os.path.dirname(sys.executable), "fusekit-python"),
                        "job.py",
                        "noexit",
                    ],
                    cwd=tmp_path,
                    env=e,
                    stdout=full,
                    stderr=subprocess.DEVNULL,
                ).returncode  # fmt: skip
            )
    assert rcs == [120, 120]


def test_a_server_that_cannot_start_leaves_the_run_to_python(tmp_path, monkeypatch, capsys):
    """A socket path longer than a Unix socket allows: no server, a warning, no folder
    left behind; the workflow goes on (its jobs run python)."""
    long_tmp = tmp_path / ("x" * 120)
    long_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_tmp))
    monkeypatch.delenv(forkserver.ENV, raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert forkserver.try_start_local(threads=1) is None
    assert "socket path too long" in capsys.readouterr().err
    assert list(long_tmp.iterdir()) == [] and forkserver.ENV not in os.environ


def test_seeded_results_match_a_fresh_python(server, tmp_path):
    """The job process is a fork of a server that imported torch: a seeded draw is the
    bytes a fresh ``python job.py`` draws."""
    fresh = tmp_path / "fresh"
    forked = tmp_path / "forked"
    fresh.mkdir()
    forked.mkdir()
    assert finish(*client(fresh, "torch", socket_path=None))[0] == 3
    rc, _, err = finish(*client(forked, "torch", socket_path=server))
    assert (rc, err) == (3, "on stderr\n")
    assert (fresh / "draw.bin").read_bytes() == (forked / "draw.bin").read_bytes()


def test_without_a_server_python_runs_the_job(tmp_path):
    rc, out, err = finish(*client(tmp_path, "x", socket_path=str(tmp_path / "no-such-sock")))
    assert (rc, out.split()[:2], err) == (3, ["argv", "['x']"], "on stderr\n")


def test_an_environment_the_server_did_not_import_with_runs_plain_python(server, tmp_path):
    """A variable an import may have read (here X) differs: the server declines, says so in
    the job's log, and the client runs python itself, which sees X."""
    rc, out, err = finish(*client(tmp_path, socket_path=server, extra_env={"X": "1"}))
    assert rc == 3
    assert out.endswith("X 1\n")
    assert "running python itself: environment differs from the server's: ['X']" in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_job_dies_with_its_client(server, tmp_path, sig):
    """SIGTERM is forwarded to the job; after SIGKILL (nothing to forward) the job sees its
    connection close and ends itself: neither goes on to write its outputs."""
    proc, out, err = client(tmp_path, "sleep", socket_path=server)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
        time.sleep(0.05)
    job_pid = int(next(p for p in _children_of_server(tmp_path)))
    proc.send_signal(sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(job_pid):
        assert time.monotonic() < deadline, "the job outlived its client"
        time.sleep(0.05)
    assert not (tmp_path / "finished").exists()


def _children_of_server(cwd: Path):
    """Pids of processes whose working directory is ``cwd`` (the forked job)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(cwd) and _is_forked_from_server(entry):
                    yield entry
            except OSError:
                continue


def _is_forked_from_server(pid: str) -> bool:
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return b"serve" in cmd


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_start_local_and_stop_local(monkeypatch):
    monkeypatch.delenv(forkserver.ENV, raising=False)
    handles = [forkserver.start_local(threads=1)]
    path = os.environ[forkserver.ENV]
    folder = os.path.dirname(path)
    assert os.path.exists(path)
    forkserver.stop_local(handles)
    assert handles == [] and forkserver.ENV not in os.environ
    assert not os.path.exists(folder)


def test_a_server_that_cannot_start_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="No module named 'no_such_module_xyz'"):
        forkserver.start(str(tmp_path / "sock"), preload=("no_such_module_xyz",))


def test_help():
    out = subprocess.run(
        [sys.executable, "-m", "fusekit.forkserver", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "serve" in out and "run" in out


def test_another_python_on_path_runs_itself(server, tmp_path):
    """A rule's `python` is the one on PATH: when that is not the server's interpreter
    (another environment), the job runs under it, not forked from the server."""
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "python"
    shim.write_text(f'#!/bin/sh\necho "shim ran" >&2\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    path = os.pathsep.join([str(shim_dir), os.path.dirname(sys.executable), os.environ["PATH"]])
    rc, out, err = finish(*client(tmp_path, socket_path=server, extra_env={"PATH": path}))
    assert rc == 3 and out.startswith("argv [] ")
    assert f"python on PATH is {shim}, not {sys.executable}" in err
    assert "shim ran" in err


def test_python_options_go_to_python(server, tmp_path):
    env = dict(os.environ, **{forkserver.ENV: server})
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "fusekit-python"), "-c", "print(6 * 7)"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert (out.stdout, out.stderr) == ("42\n", "")


def test_the_gpu_check_passes_on_cpu(tmp_path):
    """benchmarks/forkserver_gpu_check.py, run on CPU here (on a GPU machine with
    --device cuda): the forked job found its modules preloaded, did not fall back, and
    computed the plain job's sum exactly."""
    import json

    out = tmp_path / "check.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks/forkserver_gpu_check.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--device", "cpu", "--jobs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())
    (forked,) = runs["forked"]
    assert forked["preloaded"] and not forked["fell_back"] and not runs["plain"]["preloaded"]
    assert forked["sum"] == runs["plain"]["sum"] and forked["pid"] != runs["plain"]["pid"]
    assert runs["failures"] == []

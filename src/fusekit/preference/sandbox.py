"""Run a code response against its tests in a limited subprocess (FuseChat-3.0 coding).

FuseChat-3.0 keeps a code response as correct when it "passes static analysis and all
tests" (PREFERENCE_FUSION.md §4.2; the tool and harness are not published, §8 item 11).
Here the static analysis is Python's own compilation (a syntax error is status
``error``), and the tests are Python source executed after the response's code in the
same namespace (HumanEval/MBPP style: ``assert`` lines, a ``check(...)`` call, or
``unittest.main()``).

What one run does (:func:`run_code`):

- writes the code and tests into a fresh temporary directory, which is the working
  directory, ``HOME`` and ``TMPDIR``; removed afterwards;
- starts ``python -I`` (isolated: no ``PYTHON*`` variables, no user site, no script
  directory on ``sys.path``) in a new session (its own process group), with an
  environment of only ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, ``PYTHONHASHSEED=0`` and
  one thread for OpenMP/BLAS: proxy variables and credentials are not passed;
- limits, set with ``resource.setrlimit`` by the runner itself before it reads the
  code (the first thing the child does; not in a ``preexec_fn``, which the ``subprocess``
  documentation calls unsafe in a threaded parent such as :func:`run_many`'s pool):
  address space (``RLIMIT_AS``, ``memory_mb``), CPU seconds (``RLIMIT_CPU``, default
  ``ceil(timeout) + 1``: a backstop, the wall limit normally fires first), file size
  (``RLIMIT_FSIZE``, ``max_file_mb``, which also bounds the captured output), no core
  files, and optionally processes (``RLIMIT_NPROC``, ``max_processes``; off by default
  because Linux counts every process and thread of the user, other jobs included, and
  ignores it for root);
- network: where the kernel allows it (root, or ``CAP_SYS_ADMIN``) the child moves to
  a new, empty network namespace (``unshare(CLONE_NEWNET)``: no interface but a down
  loopback); always, a prelude replaces ``socket.socket`` (and ``_socket.socket``),
  ``socket.create_connection``, ``socket.socketpair``, ``socket.fromfd`` and
  ``socket.getaddrinfo`` with functions that raise ``PermissionError``;
- the wall-time limit: the parent waits at most ``timeout`` seconds, then kills the
  whole process group with ``SIGKILL``; the group is also killed when the program ends
  normally, so children it left behind do not outlive it, and :func:`run_code` returns
  only when no member of the group is alive any more (checked in ``/proc``).

Statuses: ``passed`` (exit 0 after the tests ran), ``failed`` (an ``AssertionError``,
or a non-zero ``SystemExit`` from the tests, e.g. ``unittest.main()``), ``error`` (a
syntax error, any other exception, an ``exit()`` before the tests ran, or a crash),
``timeout`` (wall limit, or the CPU limit's ``SIGXCPU``/``SIGKILL``), ``memory``
(``MemoryError`` under the address-space limit, or a crash whose stderr says so).

**This is not a security boundary.** The code runs as the calling user (as root, if the
caller is root) with that user's file permissions; the socket prelude can be undone by
the code itself (``importlib.reload``, ``ctypes``), and a child process it starts
(``subprocess``, ``os.system``) is not covered by the prelude: only the network
namespace, when available, cuts those off. A process that calls ``setsid()`` leaves the
process group and survives the kill. Use a container or VM for untrusted code at scale.

Measured on the development machine (2 shared CPU cores, Python 3.11): with a 1 s wall
limit an infinite loop or a sleep is killed and reported after 1.01-1.03 s (the parent
polls every <= 20 ms); a trivial passing test takes ~0.07 s; a 10 GB allocation under a
256 MiB limit fails at once (``memory``, ~0.08 s).
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

log = logging.getLogger("fusekit")

STATUSES = ("passed", "failed", "error", "timeout", "memory")
RESULT_FIELDS = ("status", "passed", "seconds", "returncode", "stdout_tail", "stderr_tail")

# runner exit codes (the parent maps them to statuses)
_PASSED, _FAILED, _ERROR, _SYNTAX, _MEMORY = 0, 1, 2, 3, 4

_RUNNER = r"""
import builtins, sys, traceback, types


def _no_network(*args, **kwargs):
    raise PermissionError("network access is disabled in the fusekit sandbox")


def _block_network():
    import _socket
    import socket

    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _no_network()

    socket.socket = _NoSocket
    _socket.socket = _NoSocket
    for name in ("create_connection", "socketpair", "fromfd", "getaddrinfo"):
        setattr(socket, name, _no_network)


def _compile(path, name):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        return compile(source, name, "exec")
    except (SyntaxError, ValueError):
        traceback.print_exc()
        sys.exit(3)


def _exec(code, ns, stage):
    try:
        exec(code, ns)
    except SystemExit as err:
        if stage == "solution":
            print(f"fusekit sandbox: the code called exit({err.code!r}) before its tests ran",
                  file=sys.stderr)
            sys.exit(2)
        sys.exit(0 if err.code in (None, 0, False) else 1)
    except AssertionError:
        traceback.print_exc()
        sys.exit(1)
    except MemoryError:
        traceback.print_exc()
        sys.exit(4)
    except BaseException:
        traceback.print_exc()
        sys.exit(2)


def _limit(memory, cpu, fsize, nproc):
    import ctypes
    import resource

    try:  # best effort: an empty network namespace needs CAP_SYS_ADMIN
        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc >= 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def main():
    _limit(*(int(x) for x in sys.argv[3:7]))
    solution = _compile(sys.argv[1], "solution.py")
    tests = _compile(sys.argv[2], "tests.py")
    _block_network()
    module = types.ModuleType("__sandbox__")
    module.__builtins__ = builtins
    sys.argv = ["tests.py"]
    _exec(solution, module.__dict__, "solution")
    # the tests run as __main__ in the same namespace, so unittest.main() finds them
    module.__name__ = "__main__"
    sys.modules["__main__"] = module
    _exec(tests, module.__dict__, "tests")
    sys.stdout.flush()
    sys.exit(0)


main()
"""


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run. ``status`` is one of :data:`STATUSES`; ``passed`` is
    ``status == "passed"``; ``seconds`` is wall time; ``returncode`` is the runner's exit
    code (negative: killed by that signal); the tails are the last ``output_chars``
    characters of stdout/stderr, prefixed with ``[... N bytes cut]`` when cut."""

    status: str
    passed: bool
    seconds: float
    returncode: int
    stdout_tail: str
    stderr_tail: str

    def as_dict(self) -> dict:
        return asdict(self)


def _tail(path: str, chars: int) -> str:
    size = os.path.getsize(path)
    keep = chars * 4  # utf-8: at most 4 bytes a character
    with open(path, "rb") as f:
        if size > keep:
            f.seek(size - keep)
        text = f.read().decode("utf-8", errors="replace")
    if len(text) > chars or size > keep:
        text = text[-chars:]
        cut = size - len(text.encode("utf-8", errors="replace"))
        return f"[... {max(cut, 0)} bytes cut]{text}"
    return text


def _wait(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` exits or ``timeout`` passes, without reaping it (so its pid,
    which is also the process-group id, cannot be reused before the group is killed).
    Returns True when it exited."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)


def _live_members(pgid: int) -> list[int]:
    """Pids of processes in group ``pgid`` that are not zombies (Linux ``/proc``)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            pids.append(int(entry))
    return pids


def _reap_group(pgid: int, limit: float = 2.0) -> None:
    """Kill group ``pgid`` and wait (at most ``limit`` s) until no member is alive:
    ``SIGKILL`` is delivered asynchronously, so a child may run for a few ms more."""
    deadline = time.monotonic() + limit
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return  # no member left, not even a zombie
        if not os.path.isdir("/proc") or not _live_members(pgid):
            return
        if time.monotonic() > deadline:
            log.warning(
                "sandbox: process group %d still has live members %s", pgid, _live_members(pgid)
            )
            return
        time.sleep(0.005)


def _status(returncode: int, timed_out: bool, stderr: str) -> str:
    if timed_out or returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return "timeout"
    if returncode == _PASSED:
        return "passed"
    if returncode == _FAILED:
        return "failed"
    if returncode == _MEMORY:
        return "memory"
    if returncode not in (_ERROR, _SYNTAX) and re.search(
        r"MemoryError|Cannot allocate memory|out of memory", stderr
    ):
        return "memory"  # a crash (abort, segfault) while allocating
    return "error"


def run_code(
    code: str,
    tests: str,
    timeout: float = 10.0,
    memory_mb: int = 1024,
    cpu_seconds: int | None = None,
    max_file_mb: int = 16,
    max_processes: int | None = None,
    output_chars: int = 2000,
    python: str | None = None,
) -> SandboxResult:
    """Run ``code`` then ``tests`` (Python source) in a limited subprocess.

    ``timeout``: wall seconds before the process group is killed; ``memory_mb``: address
    space limit (MiB); ``cpu_seconds``: CPU limit (default ``ceil(timeout) + 1``);
    ``max_file_mb``: largest file (and captured output) the program may write (MiB);
    ``max_processes``: ``RLIMIT_NPROC`` when set; ``output_chars``: how much of the end of
    stdout/stderr to keep; ``python``: the interpreter (default ``sys.executable``).
    Never raises for anything the code does; limits and statuses in the module doc.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    cpu = cpu_seconds if cpu_seconds is not None else math.ceil(timeout) + 1
    workdir = tempfile.mkdtemp(prefix="fusekit-sandbox-")
    try:
        solution = os.path.join(workdir, "solution.py")
        test_file = os.path.join(workdir, "tests.py")
        runner = os.path.join(workdir, "_fusekit_runner.py")
        for path, text in ((solution, code), (test_file, tests), (runner, _RUNNER)):
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                [
                    python or sys.executable,
                    "-I",
                    runner,
                    solution,
                    test_file,
                    str(memory_mb << 20),
                    str(cpu),
                    str(max_file_mb << 20),
                    str(-1 if max_processes is None else max_processes),
                ],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            try:
                exited = _wait(proc.pid, timeout)
                seconds = time.monotonic() - start
            finally:
                try:  # the leader is not reaped yet, so its pid is still the group's id
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                returncode = proc.wait()
                _reap_group(proc.pid)
        stderr = _tail(err_path, output_chars)
        status = _status(returncode, not exited, stderr)
        return SandboxResult(
            status=status,
            passed=status == "passed",
            seconds=round(seconds, 4),
            returncode=returncode,
            stdout_tail=_tail(out_path, output_chars),
            stderr_tail=stderr,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_many(jobs: Iterable[tuple[str, str]], workers: int = 1, **limits) -> list[SandboxResult]:
    """Run many (code, tests) pairs, at most ``workers`` sandbox processes at a time;
    results in input order.

    ``limits`` are :func:`run_code`'s keyword arguments. The pool is a thread pool of
    ``workers`` threads, each waiting on one sandbox process: the work happens in the
    sandbox processes, and a pool of worker processes would re-import the caller's
    ``__main__`` (spawn) or fork a threaded parent (fork).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    payload = list(jobs)
    if workers == 1 or len(payload) <= 1:
        return [run_code(code, tests, **limits) for code, tests in payload]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run_code(job[0], job[1], **limits), payload))

"""A fork server for the workflow's local jobs: Python with torch, transformers and
fusekit imported once, forked into a fresh process for each job.

Every job of the tiny world is ``python scripts/<step>.py ...``, and each pays about
4 seconds of imports (torch 1.6 s, transformers with its auto classes and their scipy and
scikit-learn imports 2 s) before it does any work, often a second or less of it. Over the
default DAG that is a third of all job time. The server imports those modules once; a job
asks it for a process, which is a ``fork()`` of the server: the imports are already done
and shared copy-on-write, and everything a job sets up (arguments, working directory,
environment, standard streams, seeds, threads) is set up in its own process, as it is in
``python script.py``. The same pattern as :mod:`multiprocessing`'s ``forkserver`` start
method and Android's zygote; the standard library does the work (``os.fork``,
``socket.send_fds``, :mod:`runpy`).

Use (the Snakefile starts the server when ``forkserver: true``, the tiny world's setting)::

    python -m fusekit.forkserver serve --socket DIR/sock     # started once, in the background
    FUSEKIT_FORKSERVER=DIR/sock fusekit-python scripts/x.py --args ...

``fusekit-python`` (``python -m fusekit.forkserver run``) is what every rule calls in
place of ``python``: it needs nothing but the standard library, passes its argv, working
directory, environment and file descriptors 0-2 to the server, forwards SIGINT and SIGTERM
to the job's process and exits with its exit status. Where no server answers
(``FUSEKIT_FORKSERVER`` unset, the socket gone, a Slurm node), where the ``python`` on
``PATH`` is not the server's interpreter, or where the job's environment differs from the
server's in a variable other than those in :data:`PER_PROCESS_VARIABLES` (an import may
have read it: ``HF_HUB_OFFLINE``, ``CUDA_VISIBLE_DEVICES``), it runs ``python`` from
``PATH`` itself (``exec``, the same process): the result is the same, only slower. The
server exits when its parent (Snakemake) does.

Not for GPU jobs: CUDA does not survive ``fork()`` once initialised; the server never
initialises it, and the paper-scale config leaves the server off. A job forked from it
can still use a GPU (its first CUDA call initialises CUDA in the job):
``benchmarks/forkserver_gpu_check.py`` checks that on a GPU machine (on one H200 the
forked jobs' results equal a plain job's).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

ENV = "FUSEKIT_FORKSERVER"
# imported by the server before it forks: what most jobs import (the transformers auto
# classes load most of the library lazily, so they are named)
DEFAULT_PRELOAD = (
    "torch",
    "transformers",
    "transformers:AutoTokenizer,AutoModelForCausalLM,AutoModelForSequenceClassification",
    "pandas",
    "pyarrow.parquet",
    "fusekit.training_mode",
    "fusekit.inference_mode",
    "fusekit.tiny.world",
    "lm_eval.evaluator",
)
# set by the shell for each process; they differ between the server and a job
# without meaning anything to Python; and the server's own address
PER_PROCESS_VARIABLES = frozenset({"_", "SHLVL", "PWD", "OLDPWD", "PS1", ENV})
# what Snakemake's shell() adds to a local job's environment (snakemake/shell.py): the
# thread counts of the linear-algebra libraries (read when they load, so the server must
# import them with the jobs' values) and the tmpdir resource
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)  # fmt: skip
TMPDIR_VARIABLES = ("TMPDIR", "TMP", "TEMPDIR", "TEMP")
_HEADER = struct.Struct("!I")
MAX_SOCKET_PATH = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL (Linux)


def _send_message(sock: socket.socket, payload: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(payload).encode()
    message = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [message], fds)
    else:
        sock.sendall(message)


def _recv_exact(sock: socket.socket, n: int, first: bytes = b"") -> bytes:
    data = first
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("fork server connection closed")
        data += chunk
    return data


def _recv_message(sock: socket.socket, want_fds: int = 0) -> tuple[dict, list[int]]:
    """One length-prefixed JSON message (and up to ``want_fds`` file descriptors sent with
    its first bytes). Raises EOFError when the peer closed the connection first."""
    fds: list[int] = []
    if want_fds:
        first, fds, _flags, _addr = socket.recv_fds(sock, 65536, want_fds)
        if not first:
            raise EOFError("fork server connection closed")
    else:
        first = b""
    head = _recv_exact(sock, _HEADER.size, first[: _HEADER.size])
    (size,) = _HEADER.unpack(head)
    body = _recv_exact(sock, size, first[_HEADER.size :])
    return json.loads(body), fds


def _preload(spec: str) -> None:
    """Import ``module`` or ``module:attr,attr`` (attributes of a lazy module)."""
    import importlib

    module, _, attrs = spec.partition(":")
    mod = importlib.import_module(module)
    for attr in filter(None, attrs.split(",")):
        getattr(mod, attr)


# ---------------------------------------------------------------------------- server


def _same_python(path_python: str | None) -> bool:
    """Whether ``path_python`` (the ``python`` a rule's shell would run) is this
    interpreter: the same file in the same folder (a virtual environment is its folder;
    ``python`` and ``python3`` there are the same)."""
    if not path_python:
        return False
    mine = os.path.abspath(sys.executable)
    try:
        return os.path.samefile(path_python, mine) and os.path.samefile(
            os.path.dirname(path_python), os.path.dirname(mine)
        )
    except OSError:
        return False


def _supervise(conn: socket.socket, base_env: dict[str, str]) -> None:
    """In the server's child, one per job: check that the job may be forked from here,
    fork the job's process, tell the client its pid, wait for it and report its exit
    status as ``python`` would give it (``128 + N`` after signal N); kill it when the
    client goes away (Snakemake killed it, Ctrl-C). A process the script itself forks
    never reaches the client's connection: only this supervisor writes to it.
    ``base_env`` is the server's environment before its imports: the job's must match it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # waitpid needs the job's status
    request, fds = _recv_message(conn, want_fds=3)
    env = request["env"]
    differ = sorted(
        k
        for k in set(env) | set(base_env)
        if env.get(k) != base_env.get(k) and k not in PER_PROCESS_VARIABLES
    )
    reason = None
    if not _same_python(request["python"]):
        reason = f"python on PATH is {request['python']}, not {sys.executable}"
    elif differ:  # names only: values may be secrets (API keys)
        reason = f"environment differs from the server's: {differ}"
    if reason:
        for fd in fds:
            os.close(fd)
        _send_message(conn, {"fallback": reason})
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        conn.close()
        try:
            _become_job(request, fds, base_env)
        finally:
            os._exit(1)
    for fd in fds:
        os.close(fd)
    _send_message(conn, {"pid": pid})

    import threading

    def watch():  # the client's end closes: it is gone, and so must the job be
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    threading.Thread(target=watch, name="forkserver-client-watch", daemon=True).start()
    _, wait_status = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    status = 128 - status if status < 0 else status  # a signal, as a shell reports it
    try:
        _send_message(conn, {"status": status})
    finally:
        os._exit(0)


def _reseed_unseeded_generators() -> None:
    """A fresh interpreter seeds numpy's and torch's global generators from the OS; a
    fork inherits the server's. Draw new seeds, as a fresh process would (scripts seed
    what they use; this keeps an unseeded draw from repeating across jobs)."""
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()


def _become_job(request: dict, fds: list[int], base_env: dict[str, str]) -> None:
    """In the job's process: take the client's streams, working directory, environment
    and argv, run the script as ``__main__`` and exit as ``python script.py`` does
    (threads joined, atexit run, streams flushed: 120 when that fails)."""
    os.setpgrp()  # not in the terminal's group: Ctrl-C reaches it once, from the client
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    added = {k: v for k, v in os.environ.items() if k not in base_env}
    os.environ.clear()
    os.environ.update(request["env"])
    for k, v in added.items():
        os.environ.setdefault(k, v)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _reseed_unseeded_generators()

    import atexit
    import runpy
    import threading
    import traceback

    script = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            status = 0
        elif isinstance(code, int):
            status = code
        else:
            print(code, file=sys.stderr)
            status = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        status = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001 - reported as python would, then exit 1
        traceback.print_exc()
        status = 1
    try:
        threading._shutdown()  # non-daemon threads finish, as at interpreter exit
        atexit._run_exitfuncs()
        import gc

        gc.collect()  # the script's globals, freed: their files flush and close
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception as err:  # noqa: BLE001 - python exits 120 on this
                try:
                    os.write(2, f"Exception ignored on flushing {stream.name}: {err!r}\n".encode())
                except OSError:
                    pass
                status = status or 120
        os._exit(status & 0xFF)


def serve(path: str, preload: tuple[str, ...] = DEFAULT_PRELOAD, parent: int | None = None) -> None:
    """Import ``preload``, listen on the Unix socket ``path`` and fork a supervisor per
    connection until the process ``parent`` (default: this one's parent now) is gone or
    SIGTERM arrives. Writes ``path.ready`` once listening (what :func:`start` waits for)."""
    parent = parent or os.getppid()
    base_env = dict(os.environ)
    for spec in preload:
        _preload(spec)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished jobs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave through `finally`
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(1.0)
    with open(path + ".ready", "w") as fh:
        fh.write(str(os.getpid()))
    try:
        while os.getppid() == parent:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:
                server.close()
                conn.settimeout(None)
                try:
                    _supervise(conn, base_env)
                except BaseException:  # noqa: BLE001 - the client falls back or fails
                    import traceback

                    traceback.print_exc()
                finally:
                    os._exit(1)
            conn.close()
    finally:
        server.close()
        for leftover in (path, path + ".ready"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def job_environment(threads: int, tmpdir: str) -> dict[str, str]:
    """The variables Snakemake sets in the environment of a local job with ``threads``
    threads and the ``tmpdir`` resource: a server started with them serves such jobs."""
    return {
        **{name: str(threads) for name in THREAD_VARIABLES},
        **{name: tmpdir for name in TMPDIR_VARIABLES},
    }


def start(
    path: str,
    preload: tuple[str, ...] = DEFAULT_PRELOAD,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
):
    """Start a server on ``path`` as a child of this process, with this process's
    environment updated by ``env``, and wait until it listens; returns its
    :class:`subprocess.Popen`. It serves jobs whose environment is the server's. Raises
    RuntimeError (with the server's output) when it exits or does not listen within
    ``timeout`` seconds."""
    import subprocess
    import tempfile

    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise RuntimeError(
            f"fork server socket path too long for a Unix socket "
            f"({len(os.fsencode(path))} > {MAX_SOCKET_PATH} bytes): {path}"
        )
    if os.path.exists(path + ".ready"):  # a stale one (serve() replaces a stale socket)
        os.unlink(path + ".ready")
    log = tempfile.TemporaryFile()
    # its own session: the terminal's Ctrl-C reaches Snakemake and the clients, which
    # forward it to their jobs once; the server is stopped by stop() or its parent's exit
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusekit.forkserver", "serve", "--socket", path,
         "--parent", str(os.getpid()), "--preload", *preload],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(path + ".ready"):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                output = log.read().decode(errors="replace")[-4000:]
                raise RuntimeError(f"fork server on {path} did not start:\n{output}")
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc) -> None:
    """Stop a server started by :func:`start` (jobs it forked run on)."""
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def start_local(threads: int) -> tuple:
    """Start a server for Snakemake's local jobs with ``threads`` threads (and the default
    tmpdir resource, the system's temporary folder) on a socket in a new private
    temporary folder, and point this process's jobs at it ($FUSEKIT_FORKSERVER); returns
    the handle for :func:`stop_local`. Raises RuntimeError when the server does not
    start (its folder removed)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="fusekit-forkserver-")
    path = os.path.join(folder, "sock")
    try:
        proc = start(path, env=job_environment(threads, tempfile.gettempdir()))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    os.environ[ENV] = path
    return proc, folder


def try_start_local(threads: int) -> tuple | None:
    """:func:`start_local`, or None with a warning on stderr when the server cannot
    start (the jobs then run python themselves: slower, the same results)."""
    try:
        return start_local(threads)
    except Exception as err:  # noqa: BLE001 - the server is an optimisation
        print(f"fusekit.forkserver: not started, jobs run python: {err}", file=sys.stderr)
        return None


def stop_local(handles: list) -> None:
    """Stop the servers of :func:`start_local` handles (emptying the list) and remove
    their folders; jobs started later run python themselves."""
    import shutil

    while handles:
        proc, folder = handles.pop()
        os.environ.pop(ENV, None)
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------- client


def _exec_python(argv: list[str]) -> None:
    """Become ``python *argv``, ``python`` found on PATH, as the rule's shell would run it."""
    os.execvp("python", ["python", *argv])


def _path_python() -> str | None:
    import shutil

    found = shutil.which("python")
    return os.path.abspath(found) if found else None


def run(argv: list[str]) -> int:
    """Run ``python *argv`` in a process forked by the server named by $FUSEKIT_FORKSERVER;
    without one, when the server declines or goes away before taking the job, replace
    this process by ``python *argv``. Returns the job's exit status (128 + N for a job
    killed by signal N, as a shell reports it; 1 with a message when its supervisor dies
    without reporting)."""
    path = os.environ.get(ENV)
    sock = None
    if path and os.path.exists(path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            sock = None
    if sock is None:
        _exec_python(argv)
    try:
        _send_message(
            sock,
            {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "python": _path_python()},
            fds=[0, 1, 2],
        )
        reply, _ = _recv_message(sock)
    except (EOFError, OSError) as err:  # the server went away before taking the job
        reply = {"fallback": f"the server closed the connection ({err})"}
    if "fallback" in reply:
        print(f"fusekit.forkserver: running python itself: {reply['fallback']}", file=sys.stderr)
        sock.close()
        _exec_python(argv)
    pid = reply["pid"]

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    try:
        reply, _ = _recv_message(sock)
    except (EOFError, OSError):
        print(
            f"fusekit.forkserver: job process {pid} ended without an exit status (killed?)",
            file=sys.stderr,
        )
        return 1
    return int(reply["status"])


def python_main() -> None:
    """The ``fusekit-python`` command: ``python ARGS...``, through the server if one runs."""
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        # python's own options (-c, -m, -u): not a job's script; let python handle them
        _exec_python(sys.argv[1:])
    sys.exit(run(sys.argv[1:]))


def main(args: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m fusekit.forkserver",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="import the preload modules and serve jobs")
    s.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    s.add_argument("--parent", type=int, help="exit when this process is gone")
    s.add_argument(
        "--preload",
        nargs="*",
        default=list(DEFAULT_PRELOAD),
        help="modules to import first; module:attr,attr also reads attributes",
    )
    r = sub.add_parser("run", help="run `python SCRIPT ARGS...` through the server")
    r.add_argument("argv", nargs=argparse.REMAINDER, help="the script and its arguments")
    a = p.parse_args(args)
    if a.command == "serve":
        serve(a.socket, tuple(a.preload), a.parent)
    else:
        if not a.argv:
            p.error("run needs a script")
        sys.exit(run(a.argv))


if __name__ == "__main__":
    main()

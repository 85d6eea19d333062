"""Atomic outputs, tables and provenance.

Every output is written to a temporary sibling and renamed into place, so an
interrupted job never leaves a half-written file or model directory behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pandas as pd

PROVENANCE_FILE = "fusekit_provenance.json"
log = logging.getLogger("fusekit")
_TRACKED_PACKAGES = ("fusekit", "torch", "transformers", "tokenizers", "pandas", "pyarrow")


# A temporary sibling is ``.{name}.{host tag}-{pid}.{random}``: the writer's host and pid let a
# later writer on the same host tell a dead writer's leftovers (swept) from a live one's (kept).
_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_WORDS = ("no space left on device", "disk quota exceeded", "storagefull")
# torch.save reports a failed write without its errno ("unexpected pos ...",
# "PytorchStreamWriter failed writing file ..."): a disk-full error when the device is nearly full
_TORCH_WRITE_WORDS = ("unexpected pos", "pytorchstreamwriter failed", "file write failed")
_NEARLY_FULL_BYTES = 64 << 20


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def sweep_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``path`` that dead writers left behind.

    A sibling ``.{name}.{host}-{pid}.XXXXXXXX`` (an :func:`atomic_path` of this
    version) is removed when it was made on this host by a process that is no longer
    alive; one of a live process or of another host is kept. A sibling
    ``.{name}.XXXXXXXX`` (the pid-less form of earlier versions) is always stale and
    removed. Returns the removed paths; removal errors are ignored (best effort).
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    name = re.escape(path.name)
    current = re.compile(rf"^\.{name}\.([0-9a-f]{{6}})-(\d+)\.[a-z0-9_]{{8}}$")
    legacy = re.compile(rf"^\.{name}\.[a-z0-9_]{{8}}$")
    removed = []
    try:
        siblings = list(parent.iterdir())
    except OSError:
        return []
    for sib in siblings:
        m = current.match(sib.name)
        if m:
            stale = m.group(1) == _HOST_TAG and not _pid_alive(int(m.group(2)))
        else:
            stale = bool(legacy.match(sib.name))
        if stale and sib.is_dir() and not sib.is_symlink():
            shutil.rmtree(sib, ignore_errors=True)
            removed.append(sib)
            log.info("removed %s, left by a writer that died", sib)
    return removed


def _is_disk_full(err: BaseException, folder: Path) -> bool:
    """Whether ``err`` (or an error it was raised from) is a full disk or quota."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS:
            return True
        text = str(err).lower()
        if any(w in text for w in _DISK_FULL_WORDS):
            return True
        if any(w in text for w in _TORCH_WRITE_WORDS):
            try:
                return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
            except OSError:
                return False
        err = err.__cause__ or err.__context__
    return False


class DiskFullError(OSError):
    """A write failed on a full disk or quota (errno ENOSPC); the message names the path."""


def _disk_full_error(path: Path, err: BaseException) -> DiskFullError:
    try:
        free = f"{shutil.disk_usage(path.parent).free} bytes free there now"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        errno.ENOSPC,
        f"no space left on device while writing {path} ({free}; "
        f"nothing was written; free space or move results/ and rerun): {err}",
    )


@contextlib.contextmanager
def disk_full_named(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise a full-disk or quota error from the block as :class:`DiskFullError`
    (an OSError, errno ENOSPC) saying "no space left on device while writing ``path``";
    the writer's own error (torch's "unexpected pos", safetensors' "StorageFull", ...)
    is chained. One already named (a nested write) passes unchanged."""
    path = Path(path)
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if _is_disk_full(err, path.parent):
            raise _disk_full_error(path, err) from err
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On error the temporary file or directory is removed and ``path`` is untouched.
    Temporary siblings that dead writers left (:func:`sweep_temporaries`) are removed
    first. A write that fails on a full disk or quota raises OSError (errno ENOSPC)
    naming ``path`` (:func:`disk_full_named`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(path)
    with disk_full_named(path):
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{path.name}.{_HOST_TAG}-{os.getpid()}.", dir=path.parent)
        )
    target = tmp if is_dir else tmp / path.name
    try:
        with disk_full_named(path):
            yield target
            if is_dir and path.exists():
                shutil.rmtree(path)
            os.replace(target, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's owner lock (:func:`folder_lock`)."""


OWNER_LOCK = ".fusekit-owner.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold an exclusive owner lock on ``folder`` (created if missing) for the block.

    The lock is an ``flock`` on ``folder/.fusekit-owner.lock``, which records the
    holder's pid, host and start time; the kernel releases it when the holder exits
    or is killed, so a dead holder never blocks. Waits up to ``wait_s`` seconds for a
    live holder, then raises :class:`FolderInUseError` naming the folder and the
    holder. On a file system without ``flock`` it warns and goes on unlocked.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / OWNER_LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                try:
                    owner = lock.read_text().strip() or "owner not recorded yet"
                except OSError:
                    owner = "owner unreadable"
                raise FolderInUseError(
                    f"{folder} is in use by another live process ({owner}); two trainers "
                    "must not write one checkpoint folder: stop that process (an orphan "
                    "of a killed driver?) or wait for it to end, then rerun"
                ) from None
            except OSError as err:  # ENOLCK, EINVAL, ENOSYS: no flock on this file system
                log.warning("%s: cannot lock (%s); two writers are not kept out", folder, err)
            break
        owner = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%FT%T%z')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        yield lock
    finally:
        os.close(fd)


def check_writable(*folders: str | os.PathLike) -> None:
    """Check, by writing and removing a probe file, that each folder can take outputs.

    A missing folder is created (as the outputs would create it). Raises
    NotADirectoryError when a file stands where the folder should be,
    PermissionError naming the folder when it cannot be created or written (a
    read-only file system, no permission, a file in place of a parent), and
    OSError (ENOSPC) naming it when its device is full. Meant to run before hours of
    work whose outputs go there.
    """
    for folder in map(Path, folders):
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                errno.ENOTDIR, f"{folder}: output folder is a file, not a folder"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".fusekit-write-probe.", dir=folder)
            try:
                os.write(fd, b"x")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as err:
            if _is_disk_full(err, folder):
                raise DiskFullError(
                    errno.ENOSPC, f"{folder}: no space left on device (checked before writing)"
                ) from err
            raise PermissionError(
                errno.EACCES,
                f"{folder}: output folder is not writable ({err.strerror or err}); "
                "fix its permissions or mount before training",
            ) from err


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a frame atomically as Parquet or CSV (by suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
        else:
            raise ValueError(
                f"{path}: unsupported table format {path.suffix!r} (use .parquet or .csv)"
            )


def read_table(path: str | os.PathLike, columns: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a Parquet or CSV table and check that ``columns`` are present."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such table")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:  # pyarrow and pandas raise many types
        raise ValueError(f"{path}: cannot read table: {err}") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; has {list(df.columns)}")
    return df


def write_json(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def spec_hash(spec) -> str:
    """A short stable hash of a JSON-serialisable config fragment."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def provenance(spec, seed: int | None = None) -> dict:
    """What produced an output: config hash, seed, package versions, platform."""
    versions = {}
    for pkg in _TRACKED_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "config_hash": spec_hash(spec),
        "config": spec,
        "seed": seed,
        "packages": versions,
        "python": platform.python_version(),
    }

"""Atomic outputs, tables and provenance.

Every output is written to a temporary sibling and renamed into place, so an
interrupted job never leaves a half-written file or model directory behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pandas as pd

PROVENANCE_FILE = "fusekit_provenance.json"
_TRACKED_PACKAGES = ("fusekit", "torch", "transformers", "tokenizers", "pandas", "pyarrow")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On error the temporary file or directory is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    target = tmp if is_dir else tmp / path.name
    try:
        yield target
        if is_dir and path.exists():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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

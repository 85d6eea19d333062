"""Checks of the data where it enters a stage: every error names the file, row and column.

Each stage reads its inputs and checks them before any expensive work (a model load,
a forward pass, a judge call), so that a malformed file stops the job at once, with a
message that starts with the file's path and names the first bad row (its index and,
where the table has one, its ``prompt_id``) and column. Outputs are written only
after the checks, atomically (:func:`fusekit.io.atomic_path`), so a failed check
leaves nothing behind.

The checks are vectorised (pandas / numpy over whole columns): a paper-scale file of
~100k prompts costs milliseconds. Errors are :class:`DataError`, a ``ValueError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.io import read_table


class DataError(ValueError):
    """A malformed input file; the message starts with the file's path and names the row
    (index and ``prompt_id`` where known) and column."""


def _show(v) -> str:
    """``repr`` of a cell, numpy scalars as the Python value."""
    return repr(v.item() if isinstance(v, np.generic) else v)


def _row(df: pd.DataFrame, i: int, id_column: str = "prompt_id") -> str:
    """``row r (prompt_id 'x')`` of the row at position ``i``; ``r`` is its index label,
    the row of the file for a frame as read (or a subset of one)."""
    r = _show(df.index[i]).strip("'")
    if id_column in df.columns:
        return f"row {r} ({id_column} {_show(df[id_column].iloc[i])})"
    return f"row {r}"


def read_checked_table(path: str | os.PathLike, columns: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`fusekit.io.read_table`, with a file that cannot be decoded named down to the
    column and row: a Parquet string column or a CSV holding invalid UTF-8 raises
    :class:`DataError` ``<path>: column 'prompt', row 3: invalid UTF-8 ...``; a file of
    no bytes raises ``<path>: empty file``. Other read errors are DataError with the
    reader's message; missing columns as :func:`~fusekit.io.read_table` raises them."""
    path = Path(path)
    if path.exists() and path.stat().st_size == 0:
        raise DataError(
            f"{path}: empty file (0 bytes); expected a table with columns {list(columns)}"
        )
    try:
        df = read_table(path, columns)
    except FileNotFoundError:
        raise
    except ValueError as err:
        where = _locate_bad_utf8(path)
        if where:
            raise DataError(f"{path}: {where}") from err
        raise DataError(str(err)) from err
    _check_utf8_columns(df, path)
    return df


def _check_utf8_columns(df: pd.DataFrame, path: Path) -> None:
    """Arrow-backed string columns are decoded lazily (a bad byte would surface as a bare
    ``ArrowException`` wherever the column is first used): validate them now, in C++."""
    import pyarrow as pa

    for col in df.columns:
        dtype = df[col].dtype
        if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
            continue
        try:
            pa.array(df[col].array).validate(full=True)
        except pa.ArrowInvalid as err:
            where = _locate_bad_utf8(path) or f"column {col!r}: invalid UTF-8 ({err})"
            raise DataError(f"{path}: {where}") from err


def _locate_bad_utf8(path: Path) -> str | None:
    """Where a Parquet or CSV file holds invalid UTF-8 (error path only), or None."""
    try:
        if path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            for name in table.column_names:
                col = table.column(name)
                if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                    continue
                try:
                    col.validate(full=True)
                except pa.ArrowInvalid:
                    raw = col.cast(pa.large_binary()).to_pylist()
                    for i, b in enumerate(raw):
                        try:
                            if b is not None:
                                b.decode("utf-8")
                        except UnicodeDecodeError as err:
                            return (
                                f"column {name!r}, row {i}: invalid UTF-8 ({err.reason} at "
                                f"byte {err.start}); text columns must be UTF-8"
                            )
                    return f"column {name!r}: invalid UTF-8; text columns must be UTF-8"
            return None
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start)  # line 0 is the header
            return (
                f"line {line + 1} (data row {line - 1}): invalid UTF-8 ({err.reason} at byte "
                f"{err.start}); the file must be UTF-8"
            )
    except Exception:  # the diagnosis itself failed: report the original error
        return None
    return None


def check_not_empty(df: pd.DataFrame, path: str, what: str = "rows") -> None:
    """Raise DataError when ``df`` has no rows."""
    if len(df) == 0:
        raise DataError(f"{path}: no {what} (an empty table, columns {list(df.columns)})")


def check_prompt_ids(
    df: pd.DataFrame, path: str, column: str = "prompt_id", unique: bool = True
) -> None:
    """``df[column]`` has no null (None, NaN, empty string) and, if ``unique``, no repeat.
    Raises DataError naming the first bad row."""
    ids = df[column]
    null = ids.isna().to_numpy()
    blank = ids.astype(str).str.strip().eq("").to_numpy() & ~null
    bad = null | blank
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {df.index[i]}, column {column!r}: missing prompt id ({ids.iloc[i]!r}; "
            f"{int(bad.sum())} rows in all)"
        )
    if unique:
        dup = ids.duplicated().to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
            raise DataError(
                f"{path}: row {df.index[i]}, column {column!r}: prompt id {ids.iloc[i]!r} "
                f"repeats row {df.index[first]} ({int(dup.sum())} repeated ids in all); "
                "prompt ids must be unique"
            )


def check_text(
    df: pd.DataFrame, columns: Iterable[str], path: str, nullable: Iterable[str] = ()
) -> None:
    """Every value of each of ``columns`` is a ``str`` (columns in ``nullable`` may also
    hold None/NaN). Raises DataError naming the first bad row, the column and the
    value's type (integer responses, bytes, nulls)."""
    nullable = set(nullable)
    for col in columns:
        values = df[col]
        if isinstance(values.dtype, pd.StringDtype):
            ok = values.notna().to_numpy(dtype=bool, copy=True)
        elif values.dtype == object:
            ok = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool, copy=True)
        else:
            ok = np.zeros(len(values), dtype=bool)
        if col in nullable:
            ok = ok | values.isna().to_numpy(dtype=bool)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            v = values.iloc[i]
            v = v.item() if isinstance(v, np.generic) else v
            raise DataError(
                f"{path}: {_row(df, i)}, column {col!r}: expected text, got "
                f"{type(v).__name__} {v!r} ({int((~ok).sum())} such rows; column dtype "
                f"{values.dtype})"
            )


def check_finite(
    df: pd.DataFrame,
    column: str,
    path: str,
    allow_neg_inf: bool = False,
    context: Sequence[str] = (),
) -> None:
    """``df[column]`` is numeric and finite (``-inf`` passes when ``allow_neg_inf``).
    Raises DataError naming the first bad row, its value and the row's ``context``
    columns (e.g. model, sample, reward_model)."""
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    raw_null = df[column].isna().to_numpy()
    bad = np.isnan(values) | (values == np.inf)
    if not allow_neg_inf:
        bad |= values == -np.inf
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = df[column].iloc[i]
        kind = "missing" if raw_null[i] else ("not a number" if np.isnan(values[i]) else "infinite")
        allowed = "; only -inf (an unusable response) is allowed" if allow_neg_inf else ""
        what = "".join(f", {c} {_show(df[c].iloc[i])}" for c in context if c in df.columns)
        v = v.item() if isinstance(v, np.generic) else v
        raise DataError(
            f"{path}: {_row(df, i)}{what}, column {column!r}: {kind} value {v!r} "
            f"({int(bad.sum())} such rows){allowed}"
        )


def check_same_prompts(
    ids_a: Iterable,
    ids_b: Iterable,
    path_a: str,
    path_b: str,
    what: str = "is not in",
) -> None:
    """Every prompt id of ``ids_a`` (from ``path_a``) is one of ``ids_b`` (from
    ``path_b``). Raises DataError naming the first missing ids and both files."""
    a = pd.Series(list(ids_a), dtype=object)
    inb = a.isin(set(ids_b)).to_numpy()
    if not inb.all():
        i = int(np.flatnonzero(~inb)[0])
        n = int((~inb).sum())
        missing = list(dict.fromkeys(a[~inb]))[:5]
        raise DataError(
            f"{path_a}: row {i}, prompt_id {a.iloc[i]!r} {what} {path_b} ({n} rows in all; "
            f"first ids {missing}); were the two files built from the same prompt set?"
        )


def check_same_k(ks: dict[str, int], why: str) -> None:
    """Raise DataError when the logit dumps ``ks`` (path -> top-k ``k``) do not all keep
    the same ``k``, naming the first one that differs and, in ``why``, what requires it."""
    if len(set(ks.values())) > 1:
        first = next(iter(ks))
        other = next(p for p in ks if ks[p] != ks[first])
        raise DataError(
            f"{other}: top-k k = {ks[other]}, but {first} has k = {ks[first]}; {why} (all: {ks})"
        )


def read_json(path: str | os.PathLike, what: str = "JSON"):
    """A JSON file; a missing, empty, truncated or otherwise invalid file raises
    DataError naming the file, line and column (``FileNotFoundError`` for a missing
    one)."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: empty file; expected {what}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        last = err.lineno >= text.rstrip().count("\n") + 1
        raise DataError(
            f"{path}: invalid {what} at line {err.lineno}, column {err.colno}: {err.msg}"
            + (" (the error is on the last line: is the file truncated?)" if last else "")
        ) from err


def read_jsonl(path: str | os.PathLike, what: str = "JSON lines") -> list[dict]:
    """A JSON-lines file (blank lines skipped); a line that is not a JSON object raises
    DataError naming the file and line."""
    path = Path(path)
    out = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}: line {n}, column {err.colno}: invalid {what}: {err.msg}"
            ) from err
        if not isinstance(rec, dict):
            raise DataError(f"{path}: line {n}: expected a JSON object, got {type(rec).__name__}")
        out.append(rec)
    return out


def _read_text(path: Path) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path}: line {line}: invalid UTF-8 ({err.reason} at byte {err.start})"
        ) from err

"""Prompt sets with reference answers: one row per prompt, the same schema at both scales.

Columns (:data:`PROMPT_COLUMNS`): ``prompt_id``, ``prompt``, ``reference``,
``system`` (may be empty) and ``source`` (where the row came from). Optional
(:data:`OPTIONAL_PROMPT_COLUMNS`): ``tests``, Python source that checks a code answer
(FuseChat-3.0's coding domain, :mod:`fusekit.preference.coding`); ``""`` for a prompt
without tests. A tiny-corpus set has it only when one of its rows has tests (so a set
without code keeps exactly :data:`PROMPT_COLUMNS`); a hub or local-file set brings its
own column of that name, if any. Readers require :data:`PROMPT_COLUMNS` only.

Kinds (``datasets.<name>.kind``): ``tiny_corpus`` (the tiny world's corpus),
``orca_best`` and ``hub_prompts`` (hub data sets) and ``local_file`` (one file of one's
own, :func:`read_local_prompts`).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.checks import (
    DataError,
    check_not_empty,
    check_prompt_ids,
    check_text,
    read_checked_table,
    read_json,
    read_jsonl,
)
from fusekit.io import write_table

PROMPT_COLUMNS = ("prompt_id", "prompt", "reference", "system", "source")
TESTS = "tests"
OPTIONAL_PROMPT_COLUMNS = (TESTS,)
LOCAL_FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
"""The file types a ``local_file`` data set may be, by suffix."""


def read_prompts(path: str, columns=PROMPT_COLUMNS) -> pd.DataFrame:
    """Read a prompt set and check it where it enters a stage: ``columns`` present, at
    least one row, prompt ids present and unique, ``prompt`` and ``reference`` text
    (``system`` text or null). Raises :class:`fusekit.checks.DataError` naming the file,
    row and column (an invalid UTF-8 column too)."""
    df = read_checked_table(path, columns)
    check_not_empty(df, path, "prompts")
    check_prompt_ids(df, path)
    check_text(df, [c for c in ("prompt", "reference") if c in df.columns], path)
    if "system" in df.columns:
        check_text(df, ["system"], path, nullable=["system"])
    return df


def prompt_tests(prompts: pd.DataFrame) -> pd.DataFrame:
    """``prompt_id, tests`` of the prompts that have tests (a non-blank ``tests`` value);
    empty when the set has no ``tests`` column."""
    if TESTS not in prompts.columns:
        return pd.DataFrame({"prompt_id": [], TESTS: []})
    tests = prompts[TESTS].fillna("").astype(str)
    has = tests.str.strip() != ""
    return pd.DataFrame({"prompt_id": prompts.prompt_id[has], TESTS: tests[has]}).reset_index(
        drop=True
    )


def _from_tiny_corpus(spec: dict, corpus_path: str, name: str = "<name>") -> pd.DataFrame:
    from fusekit.tiny.world import load_corpus

    df = load_corpus(corpus_path, spec["split"])
    if df.empty:
        raise ValueError(f"{corpus_path}: split {spec['split']!r} is empty")
    skills = spec.get("skills")
    if skills is not None:
        have = sorted(set(load_corpus(corpus_path).skill))
        unknown = sorted(set(skills) - set(have), key=str)
        if unknown or not skills:
            what = f"unknown skills {unknown}" if unknown else "an empty list selects nothing"
            raise ValueError(
                f"datasets.{name}.skills: {what}; the corpus {corpus_path} has {have} "
                "(tiny_world.corpus.skills)"
            )
        df = df[df.skill.isin(skills)].reset_index(drop=True)
    references = df.reference
    style = spec.get("reference_style")
    if style is not None:
        from fusekit.tiny.corpus import REFERENCE_RENDERERS, render_reference

        references = [
            render_reference(r.skill, r.prompt, r.answer, style)
            if r.skill in REFERENCE_RENDERERS
            else r.reference
            for r in df.itertuples()
        ]
    out = pd.DataFrame(
        {
            "prompt_id": df.prompt_id,
            "prompt": df.prompt,
            "reference": references,
            "system": "",
            "source": "tiny:" + df.skill,
        }
    )
    if TESTS in df.columns and (df[TESTS].fillna("").str.strip() != "").any():
        out[TESTS] = df[TESTS].fillna("")
    return out


def orca_best_rows(records) -> pd.DataFrame:
    """Flatten orca-best records: each ``cluster.samples[i]`` is one (input, output) pair
    under the record's system ``instruction`` (FORMATS.md; the column names are
    unconfirmed, so a record without them is an error naming the row)."""
    rows = []
    for i, rec in enumerate(records):
        try:
            samples = rec["cluster"]["samples"]
            system = rec.get("instruction") or ""
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"orca-best row {i}: expected keys instruction and cluster.samples, "
                f"got {sorted(rec)}"
            ) from err
        for j, s in enumerate(samples):
            rows.append((f"orca-{i:07d}-{j}", s["input"], s["output"], system, "orca_best"))
    return pd.DataFrame(rows, columns=list(PROMPT_COLUMNS))


def _from_hub(spec: dict) -> pd.DataFrame:  # paper scale: needs hub access (untested offline)
    import datasets

    ds = datasets.load_dataset(spec["path"], split=spec["split"])
    if spec["kind"] == "orca_best":
        return orca_best_rows(ds)
    missing = {"prompt_id", "prompt", "chosen"} - set(ds.column_names)
    if missing:
        raise ValueError(f"{spec['path']}: missing columns {sorted(missing)}")
    df = pd.DataFrame(
        {
            "prompt_id": ds["prompt_id"],
            "prompt": ds["prompt"],
            "reference": [c[-1]["content"] for c in ds["chosen"]],
            "system": "",
            "source": spec["path"],
        }
    )
    if TESTS in ds.column_names:  # a code set with its own tests (e.g. self-oss-instruct)
        df[TESTS] = ["" if t is None else str(t) for t in ds[TESTS]]
    return df


def prompt_hash_id(prompt: str) -> str:
    """The prompt id of a local-file row without one: ``"sha256-"`` and the first 16 hex
    digits of the SHA-256 of the prompt's UTF-8 bytes. It depends on the prompt text only
    (not on the row's position or the file), so it survives reordering and edits of other
    rows; two rows with the same prompt get the same id (a DataError,
    :func:`read_local_prompts`)."""
    return "sha256-" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def _read_local_records(path: Path) -> pd.DataFrame:
    """The file's rows as read, values as the file holds them (``object`` columns for
    JSON, text for CSV); row 0 is the first record. Raises FileNotFoundError for a
    missing file and DataError for an empty, undecodable or malformed one."""
    suffix = path.suffix.lower()
    if suffix not in LOCAL_FILE_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; a local_file data set is one of "
            f"{list(LOCAL_FILE_SUFFIXES)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes); expected prompts with reference answers")
    if suffix == ".parquet":
        return read_checked_table(path)
    if suffix == ".csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise DataError(
                f"{path}: line {line}: invalid UTF-8 ({err.reason} at byte {err.start}); "
                "the file must be UTF-8"
            ) from err
        if not text.strip():
            raise DataError(f"{path}: empty file (only whitespace)")
        try:  # every cell as text: a CSV answer "5" is the text "5"; an empty cell is ""
            return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as err:
            raise DataError(f"{path}: cannot read CSV: {err}") from err
    if suffix == ".jsonl":
        records = read_jsonl(path, "JSON lines (one object per line)")
        if not records:
            raise DataError(f"{path}: empty file (no JSON lines)")
    else:
        records = read_json(path, "a JSON list of objects")
        if not isinstance(records, list):
            raise DataError(
                f"{path}: expected a JSON list of objects (one per prompt), got "
                f"{type(records).__name__}"
            )
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise DataError(
                    f"{path}: row {i}: expected a JSON object, got {type(rec).__name__}"
                )
    return pd.DataFrame(records, dtype=object)  # keeps each value's own type


def _ids_as_text(ids: pd.Series, where: str, key: str) -> pd.Series:
    """Prompt ids as text: strings kept, integers written in decimal; anything else (a
    float, a bool, a list) raises DataError naming the row."""

    def ok(v) -> bool:
        return isinstance(v, str) or (
            isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
        )

    good = ids.map(ok).to_numpy(dtype=bool)
    if not good.all():
        i = int(np.flatnonzero(~good)[0])
        v = ids.iloc[i]
        v = v.item() if isinstance(v, np.generic) else v
        raise DataError(
            f"{where}: row {ids.index[i]}, column {ids.name!r}: prompt id must be text or an "
            f"integer, got {type(v).__name__} {v!r} ({key})"
        )
    return ids.map(lambda v: v if isinstance(v, str) else str(int(v))).astype(object)


def read_local_prompts(spec: dict, name: str = "<name>") -> pd.DataFrame:
    """The prompt set of a ``local_file`` data set ``spec`` (``datasets.<name>``), checked.

    ``spec["path"]``: a ``.jsonl`` (one JSON object per line, blank lines skipped),
    ``.json`` (a list of objects), ``.csv`` (a header row; every cell read as text) or
    ``.parquet`` file, relative to the working directory or absolute. ``spec["columns"]``
    (optional) maps each prompt-set column to the file's column of that role; an omitted
    entry reads the column of the same name. Returns one row per file row (in file
    order): :data:`PROMPT_COLUMNS` and ``tests`` when the file has that column; other
    columns of the file are ignored. Values:

    - ``prompt_id``: the mapped column, text or integers (kept as text); a file without
      it (and no mapping) gets :func:`prompt_hash_id` of each prompt;
    - ``prompt``, ``reference``: text, required;
    - ``system``, ``tests``: text or null (null and absent become ``""``);
    - ``source``: ``spec["path"]`` as configured.

    Everything is checked before anything is returned (the whole file, before any
    ``n_examples`` sample). Raises FileNotFoundError for a missing file and
    :class:`fusekit.checks.DataError`, starting with the file's path and naming the
    row (0 = the first record; a CSV's header is not a row) and column, for: an
    unsupported suffix; an empty file (no bytes, no records, a header only); invalid
    UTF-8 or JSON; a mapped column the file lacks (``prompt``/``reference`` always
    mapped); a missing, repeated or non-text id (a repeated prompt when ids are hashed);
    a prompt or reference that is not text (a number, null) or is blank; a ``system``
    or ``tests`` value that is neither text nor null.
    """
    path = Path(spec["path"])
    key = f"datasets.{name}"
    mapping = dict(spec.get("columns") or {})
    df = _read_local_records(path)
    where = f"{path} ({key})"
    check_not_empty(df, where, "prompts")
    cols = {c: mapping.get(c, c) for c in ("prompt_id", "prompt", "reference", "system", TESTS)}
    required = {"prompt", "reference"} | set(mapping)
    for role in ("prompt_id", "prompt", "reference", "system", TESTS):
        if role in required and cols[role] not in df.columns:
            how = (
                f"{key}.columns.{role} names it"
                if role in mapping
                else f"set {key}.columns.{role} to the file's {role} column"
            )
            raise DataError(
                f"{path}: missing column {cols[role]!r} (the {role}; {how}); the file has "
                f"columns {[str(c) for c in df.columns]}"
            )
    check_text(df, [cols["prompt"], cols["reference"]], where)
    out = pd.DataFrame({role: df[cols[role]] for role in ("prompt", "reference")}, index=df.index)
    blank = (out.prompt.str.strip() == "") | (out.reference.str.strip() == "")
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        col = "prompt" if out.prompt.iloc[i].strip() == "" else "reference"
        raise DataError(
            f"{where}: row {out.index[i]}, column {cols[col]!r}: blank {col} "
            f"({int(blank.sum())} rows with a blank prompt or reference)"
        )
    if cols["prompt_id"] in df.columns:
        ids = df[cols["prompt_id"]].rename(cols["prompt_id"])
        check_prompt_ids(ids.to_frame(), where, column=cols["prompt_id"], unique=False)
        ids = _ids_as_text(ids, where, f"{key}.columns.prompt_id")
        check_prompt_ids(ids.to_frame(), where, column=cols["prompt_id"])
    else:
        ids = out.prompt.map(prompt_hash_id).rename("prompt_id")
        try:
            check_prompt_ids(ids.to_frame(), where)
        except DataError as err:
            raise DataError(
                f"{err} (the file has no {cols['prompt_id']!r} column, so ids are hashes of "
                f"the prompt text and a repeated prompt repeats its id: add an id column, "
                f"and name it in {key}.columns.prompt_id if it is not 'prompt_id')"
            ) from None
    out.insert(0, "prompt_id", ids.to_numpy())
    for role in ("system", TESTS):
        if cols[role] in df.columns:
            values = df[cols[role]].rename(cols[role])
            check_text(values.to_frame(), [cols[role]], where, nullable=[cols[role]])
            out[role] = values.map(lambda v: v if isinstance(v, str) else "").astype(object)
        elif role == "system":
            out[role] = ""
    out["source"] = str(spec["path"])
    order = [*PROMPT_COLUMNS, *([TESTS] if TESTS in out.columns else [])]
    return out[order].reset_index(drop=True)


def prepare_prompts(
    spec: dict, seed: int, out: str, corpus_path: str | None = None, name: str = "<name>"
) -> pd.DataFrame:
    """Build the prompt set ``spec`` (a ``datasets.<name>`` config entry) and write it.

    Returns and writes one row per prompt: :data:`PROMPT_COLUMNS`, plus ``tests`` when the
    set has any (module doc). A tiny_corpus ``spec`` may name ``skills``: only those skills'
    rows are kept (before the ``n_examples`` sample); and ``reference_style`` (``"short"``
    or ``"worked"``): references rewritten in that style by
    :func:`fusekit.tiny.corpus.render_reference` (code and greek keep theirs). A local_file
    ``spec`` is read and checked whole by :func:`read_local_prompts` (before the sample).
    The ``n_examples`` sample is seeded by ``seed`` and keeps the rows' order. ``name`` (the
    data set's key) only labels errors. Raises ValueError for a tiny_corpus set without the
    corpus file, an empty split, ``skills`` naming a skill the corpus lacks (or none) or set
    on another kind, or a row with an empty prompt or reference, and
    :class:`fusekit.checks.DataError` for a missing or repeated prompt id or a prompt or
    reference that is not text (and a local file's other faults,
    :func:`read_local_prompts`); nothing is written then.
    """
    if spec["kind"] == "tiny_corpus":
        if corpus_path is None:
            raise ValueError("a tiny_corpus data set needs the corpus file")
        df = _from_tiny_corpus(spec, corpus_path, name)
    elif spec.get("skills") is not None:
        raise ValueError(f"datasets.{name}.skills: only a tiny_corpus data set has skills")
    elif spec["kind"] == "local_file":
        df = read_local_prompts(spec, name)
    else:
        df = _from_hub(spec)
    n = spec.get("n_examples")
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed).sort_index()
    empty = df.index[(df.prompt.str.strip() == "") | (df.reference.str.strip() == "")]
    if len(empty):
        raise ValueError(
            f"{len(empty)} rows with an empty prompt or reference, first: {df.prompt_id[empty[0]]}"
        )
    df = df.reset_index(drop=True)
    where = f"datasets.{name} ({spec.get('path') or corpus_path})"
    check_prompt_ids(df, where)  # a hub set with repeated or missing ids stops here
    check_text(df, ["prompt", "reference"], where)
    write_table(df, out)
    return df

"""Prompt sets with reference answers: one row per prompt, the same schema at both scales.

Columns (:data:`PROMPT_COLUMNS`): ``prompt_id``, ``prompt``, ``reference``,
``system`` (may be empty) and ``source`` (where the row came from). Optional
(:data:`OPTIONAL_PROMPT_COLUMNS`): ``tests``, Python source that checks a code answer
(FuseChat-3.0's coding domain, :mod:`fusekit.preference.coding`); ``""`` for a prompt
without tests. A tiny-corpus set has it only when one of its rows has tests (so a set
without code keeps exactly :data:`PROMPT_COLUMNS`); a hub set brings its own column of
that name, if any. Readers require :data:`PROMPT_COLUMNS` only.
"""

from __future__ import annotations

import pandas as pd

from fusekit.checks import (
    check_not_empty,
    check_prompt_ids,
    check_text,
    read_checked_table,
)
from fusekit.io import write_table

PROMPT_COLUMNS = ("prompt_id", "prompt", "reference", "system", "source")
TESTS = "tests"
OPTIONAL_PROMPT_COLUMNS = (TESTS,)


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
    out = pd.DataFrame(
        {
            "prompt_id": df.prompt_id,
            "prompt": df.prompt,
            "reference": df.reference,
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


def prepare_prompts(
    spec: dict, seed: int, out: str, corpus_path: str | None = None, name: str = "<name>"
) -> pd.DataFrame:
    """Build the prompt set ``spec`` (a ``datasets.<name>`` config entry) and write it.

    Returns and writes one row per prompt: :data:`PROMPT_COLUMNS`, plus ``tests`` when
    the set has any (module doc). A tiny_corpus ``spec`` may name ``skills``: only those
    skills' rows are kept (before the ``n_examples`` sample). ``name`` (the data set's
    key) only labels errors. Raises ValueError for a tiny_corpus set without the corpus
    file, an empty split, ``skills`` naming a skill the corpus lacks (or none), or a row
    with an empty prompt or reference, and :class:`fusekit.checks.DataError` for a
    missing or repeated prompt id or a prompt or reference that is not text.
    """
    if spec["kind"] == "tiny_corpus":
        if corpus_path is None:
            raise ValueError("a tiny_corpus data set needs the corpus file")
        df = _from_tiny_corpus(spec, corpus_path, name)
    else:
        if spec.get("skills") is not None:
            raise ValueError(f"datasets.{name}.skills: only a tiny_corpus data set has skills")
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

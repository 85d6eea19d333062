"""Code correctness for FuseChat-3.0's coding domain: each response run against its tests.

:func:`extract_code` takes the program out of a chat response; :func:`code_test_results`
runs every response of a generations table against its prompt's tests in the sandbox
(:mod:`fusekit.preference.sandbox`) and returns one row per response. Source:
PREFERENCE_FUSION.md §4.2 (coding: "passes static analysis and all tests").
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from fusekit.preference.sandbox import STATUSES, run_many
from fusekit.preference.tables import KEY, _require, check_unique

log = logging.getLogger("fusekit")

TEST_RESULT_COLUMNS = (
    "prompt_id",
    "model",
    "sample",
    "status",
    "passed",
    "seconds",
    "returncode",
    "stderr_tail",
)
# the sandbox limits a config may set (keyword arguments of sandbox.run_code)
LIMIT_KEYS = ("timeout", "memory_mb", "cpu_seconds", "max_file_mb", "max_processes")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(response: str) -> str:
    """The program in a response.

    [A] The longest fenced block whose language tag is ``python``, ``py``, ``python3`` or
    empty (``` fences; an unclosed last fence runs to the end); ties: the first. A
    response with no such block is taken whole (a bare program). FuseChat-3.0's own
    extraction is not published (PREFERENCE_FUSION.md §8 item 11); EvalPlus's sanitizer
    also keeps the code block rather than the prose.
    """
    blocks = [
        body
        for lang, body in _FENCE.findall(response)
        if lang.lower() in ("", "python", "py", "python3")
    ]
    if not blocks:
        return response
    return max(blocks, key=len)


def check_limits(limits: dict, key: str = "studies.<study>.coding") -> dict:
    """``limits`` (a config entry: ``timeout`` wall seconds, ``memory_mb`` MiB,
    ``cpu_seconds``, ``max_file_mb``, ``max_processes``, :data:`LIMIT_KEYS`) as keyword
    arguments of :func:`fusekit.preference.sandbox.run_code`; ``None`` values are
    dropped (the sandbox's default). Raises ValueError naming ``key`` for another key or
    a non-positive timeout."""
    unknown = sorted(set(limits) - set(LIMIT_KEYS))
    if unknown:
        raise ValueError(f"{key}: unknown sandbox limits {unknown}; known: {list(LIMIT_KEYS)}")
    out = {k: v for k, v in limits.items() if v is not None}
    if "timeout" in out and not out["timeout"] > 0:
        raise ValueError(f"{key}.timeout: must be positive seconds, got {out['timeout']}")
    return out


def code_test_results(
    generations: pd.DataFrame, tests: pd.DataFrame, workers: int = 1, **limits
) -> pd.DataFrame:
    """Run every response against its prompt's tests; :data:`TEST_RESULT_COLUMNS`.

    ``generations``: prompt_id, model, sample, response. ``tests``: prompt_id, tests
    (Python source run after the response's code, see :mod:`.sandbox`), one row per
    prompt. ``workers``: sandbox processes at a time; ``limits``: keyword arguments of
    :func:`fusekit.preference.sandbox.run_code` (timeout, memory_mb, ...). An empty
    response is not run: status ``error``, stderr ``empty response (not run)``. The number
    of run responses per status (and of empty ones, ``empty``) is logged and in
    ``attrs["statuses"]``.

    Raises ``ValueError`` for a prompt without tests (naming the first few), a prompt
    with two test rows, or a repeated response key.
    """
    _require(generations, [*KEY, "response"], "generations")
    _require(tests, ["prompt_id", "tests"], "tests")
    check_unique(generations, "generations")
    dup = tests["prompt_id"].duplicated()
    if dup.any():
        raise ValueError(f"tests: prompt {tests['prompt_id'][dup].iloc[0]!r} has two test rows")
    missing = sorted(set(generations["prompt_id"]) - set(tests["prompt_id"]), key=str)
    if missing:
        more = f" ... ({len(missing)} in all)" if len(missing) > 5 else ""
        raise ValueError(f"tests: no tests for prompts {missing[:5]}{more}")
    by_prompt = dict(zip(tests["prompt_id"], tests["tests"].astype(str), strict=True))
    gens = generations.sort_values(KEY, kind="stable").reset_index(drop=True)
    blank = gens["response"].fillna("").astype(str).str.strip() == ""
    todo = gens[~blank]
    jobs = [(extract_code(str(r.response)), by_prompt[r.prompt_id]) for r in todo.itertuples()]
    results = run_many(jobs, workers=workers, **limits)
    rows = pd.DataFrame([r.as_dict() for r in results], index=todo.index)
    out = gens[KEY].copy()
    out["status"] = "error"
    out["passed"] = False
    out["seconds"] = 0.0
    out["returncode"] = 0
    out["stderr_tail"] = "empty response (not run)"
    if len(rows):
        for col in ("status", "passed", "seconds", "returncode", "stderr_tail"):
            out.loc[rows.index, col] = rows[col].to_numpy()
    out["passed"] = out["passed"].astype(bool)
    ran = out.loc[~blank, "status"]
    statuses = {s: int((ran == s).sum()) for s in STATUSES}
    statuses["empty"] = int(blank.sum())
    out.attrs["statuses"] = statuses
    log.info("code tests: %d responses: %s", len(out), statuses)
    return out[list(TEST_RESULT_COLUMNS)]

"""Source-model generations on a prompt set: one Parquet file per (model, prompt set).

Schema (:data:`GENERATION_COLUMNS`): ``prompt_id``, ``model``, ``sample``,
``prompt``, ``response``, ``n_tokens``, ``finish_reason``. The file is shared
by every study that needs this model on these prompts.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from fusekit.backends import SamplingParams, load_generator
from fusekit.checks import (
    DataError,
    check_not_empty,
    check_prompt_ids,
    check_text,
    read_checked_table,
)
from fusekit.data import read_prompts
from fusekit.io import write_json, write_table

GENERATION_COLUMNS = (
    "prompt_id",
    "model",
    "sample",
    "prompt",
    "response",
    "n_tokens",
    "finish_reason",
)
log = logging.getLogger("fusekit")


def sampling_params(spec: dict, seed: int) -> SamplingParams:
    """:class:`SamplingParams` from ``models.<name>.generation``; a null seed takes ``seed``."""
    g = dict(spec)
    g["seed"] = seed if g.get("seed") is None else g["seed"]
    return SamplingParams(**g)


def check_prompt_lengths(
    prompts: pd.DataFrame, lengths: list[int], context: int, path: str
) -> None:
    """Stop on the first prompt that leaves no room to answer within the model's context."""
    for row, n in zip(prompts.itertuples(), lengths, strict=True):
        if n >= context:
            raise DataError(
                f"{path}: row {row.Index} (prompt_id {row.prompt_id!r}) has a prompt of "
                f"{n} tokens, "
                f"which does not fit the model's context of {context} tokens"
            )


def generate_responses(
    prompts_path: str,
    model: str,
    model_path: str,
    model_spec: dict,
    backend: str,
    seed: int,
    out: str,
    threads: int = 1,
    throughput_out: str | None = None,
) -> pd.DataFrame:
    """Generate ``samples_per_prompt`` responses per prompt with one model; write ``out``.

    ``throughput_out`` (JSON) receives the generated-token count, the seconds spent
    generating and their ratio.
    """
    prompts = read_prompts(prompts_path)  # ids unique and present, text columns text
    params = sampling_params(model_spec["generation"], seed)
    gen = load_generator(backend, model_path, model_spec, threads)
    systems = [s or None for s in prompts.system]
    check_prompt_lengths(
        prompts, gen.prompt_lengths(list(prompts.prompt), systems), gen.context_length, prompts_path
    )
    t = time.perf_counter()
    completions = gen.generate(list(prompts.prompt), systems, params)
    seconds = time.perf_counter() - t
    rows = [
        (pid, model, j, prompt, c.response, c.n_tokens, c.finish_reason)
        for pid, prompt, cs in zip(prompts.prompt_id, prompts.prompt, completions, strict=True)
        for j, c in enumerate(cs)
    ]
    df = pd.DataFrame(rows, columns=list(GENERATION_COLUMNS))
    tokens = int(df.n_tokens.sum())
    stats = {
        "model": model,
        "backend": backend,
        "prompts": len(prompts),
        "responses": len(df),
        "generated_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "stopped_by_length": int((df.finish_reason == "length").sum()),
    }
    log.info("generation: %s", stats)
    write_table(df, out)
    if throughput_out:
        write_json(stats, throughput_out)
    return df


def read_generations(path: str, empty: str = "error") -> pd.DataFrame:
    """Read a generations file and check it where it enters a stage: the columns, at
    least one row, no missing values, prompt ids present, ``model``, ``prompt`` and
    ``response`` text (not numbers, not bytes), no repeated (prompt_id, model, sample),
    and no empty response unless ``empty == 'lowest'`` (then they are kept).

    Raises :class:`fusekit.checks.DataError` (a ValueError) naming the file, the row and
    column."""
    df = read_checked_table(path, GENERATION_COLUMNS)
    check_not_empty(df, path, "generations")
    check_prompt_ids(df, path, unique=False)
    check_text(df, ["model", "prompt", "response"], path)
    nulls = df[list(GENERATION_COLUMNS)].isna().any(axis=1).to_numpy()
    if nulls.any():
        i = int(nulls.argmax())
        cols = [c for c in GENERATION_COLUMNS if pd.isna(df[c].iloc[i])]
        raise DataError(
            f"{path}: row {i} (prompt_id {df.prompt_id.iloc[i]!r}) has missing values in "
            f"columns {cols}"
        )
    dup = df.duplicated(["prompt_id", "model", "sample"]).to_numpy()
    if dup.any():
        i = int(dup.argmax())
        raise DataError(
            f"{path}: row {i} repeats prompt_id {df.prompt_id.iloc[i]!r} sample "
            f"{df['sample'].iloc[i]}"
        )
    blank = (df.response.str.strip() == "").to_numpy()
    if blank.any() and empty == "error":
        i = int(blank.argmax())
        raise DataError(
            f"{path}: row {i} (prompt_id {df.prompt_id.iloc[i]!r}, model {df.model.iloc[i]!r}) "
            "has an empty response; set rewards.empty_response: lowest to score such "
            "responses lowest"
        )
    return df

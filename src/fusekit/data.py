"""Prompt sets with reference answers: one row per prompt, the same schema at both scales.

Columns (:data:`PROMPT_COLUMNS`): ``prompt_id``, ``prompt``, ``reference``,
``system`` (may be empty) and ``source`` (where the row came from).
"""

from __future__ import annotations

import pandas as pd

from fusekit.io import write_table

PROMPT_COLUMNS = ("prompt_id", "prompt", "reference", "system", "source")


def _from_tiny_corpus(spec: dict, corpus_path: str) -> pd.DataFrame:
    from fusekit.tiny.world import load_corpus

    df = load_corpus(corpus_path, spec["split"])
    if df.empty:
        raise ValueError(f"{corpus_path}: split {spec['split']!r} is empty")
    return pd.DataFrame(
        {
            "prompt_id": df.prompt_id,
            "prompt": df.prompt,
            "reference": df.reference,
            "system": "",
            "source": "tiny:" + df.skill,
        }
    )


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
    return pd.DataFrame(
        {
            "prompt_id": ds["prompt_id"],
            "prompt": ds["prompt"],
            "reference": [c[-1]["content"] for c in ds["chosen"]],
            "system": "",
            "source": spec["path"],
        }
    )


def prepare_prompts(
    spec: dict, seed: int, out: str, corpus_path: str | None = None
) -> pd.DataFrame:
    """Build the prompt set ``spec`` (a ``datasets.<name>`` config entry) and write it."""
    if spec["kind"] == "tiny_corpus":
        if corpus_path is None:
            raise ValueError("a tiny_corpus data set needs the corpus file")
        df = _from_tiny_corpus(spec, corpus_path)
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
    write_table(df, out)
    return df

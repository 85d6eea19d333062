"""Sparse top-k distribution dumps: teacher-forced, one row per (prompt, response).

Convention: row ``t`` of a dump is the distribution that *predicts* response
token ``t`` (the model's output one position earlier), over the response
tokens and the closing EOS. Each row keeps the ``k`` most likely ids after
dividing the logits by ``temperature``, cut further to the smallest prefix whose
probability reaches ``top_p``; kept entries hold log-probabilities of the
tempered full-vocabulary distribution (not renormalised), dropped ones are
padding (id -1, log-prob -inf). ``ce`` is the mean cross-entropy (temperature
1) of the response tokens, EOS included.

On disk (Parquet, zstd): ``token_ids`` and ``topk_ids`` as int32 lists,
``topk_logprobs`` as float16 lists, flattened row-major ([n_tokens * k]). The schema
metadata holds ``k`` and, where the writer knew it, ``vocab_size``: the width of the
distribution the ids index (a source model's output layer, or the target tokenizer for
an aligned dump); :func:`read_dump` checks every id against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fusekit.checks import DataError, check_prompt_ids
from fusekit.io import atomic_path

DUMP_COLUMNS = (
    "prompt_id",
    "model",
    "response",
    "n_tokens",
    "ce",
    "token_ids",
    "topk_ids",
    "topk_logprobs",
)
DUMP_SCHEMA = pa.schema(
    [
        ("prompt_id", pa.string()),
        ("model", pa.string()),
        ("response", pa.string()),
        ("n_tokens", pa.int32()),
        ("ce", pa.float32()),
        ("token_ids", pa.list_(pa.int32())),
        ("topk_ids", pa.list_(pa.int32())),
        ("topk_logprobs", pa.list_(pa.float16())),
    ]
)


def topk_of_logits(logits, k: int, top_p: float, temperature: float):
    """Top-k ids and tempered log-probs of each row of ``logits`` [n, vocab] (torch).

    Returns int32 ids and float32 log-probs, both [n, k], padded with -1 / -inf
    past the top-p cut (the entry that crosses ``top_p`` is kept).
    """
    import torch

    if not torch.isfinite(logits).all():
        bad = (~torch.isfinite(logits)).nonzero()[0].tolist()
        raise ValueError(
            f"non-finite logit (NaN or inf) at position {bad[0]}, vocabulary id {bad[1]}"
        )
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    top_lp, top_ids = logp.topk(min(k, logp.shape[-1]), dim=-1)
    top_lp, top_ids = top_lp.numpy(), top_ids.to(torch.int32).numpy()
    drop = ~top_p_keep(np.exp(top_lp), top_p)
    top_lp[drop], top_ids[drop] = -np.inf, -1
    return top_ids, top_lp


def top_p_keep(sorted_probs: np.ndarray, top_p: float) -> np.ndarray:
    """The top-p (nucleus) cut, the one rule of every backend: given probabilities sorted
    in descending order along the last axis ([..., k]), keep an entry while the mass
    ranked above it is below ``top_p`` (the entry that crosses ``top_p`` is kept).
    Returns a bool mask of the same shape."""
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs
    return before < top_p


def fits(n_tokens: int, max_length: int | None) -> bool:
    """Whether a prompt + response of ``n_tokens`` fits a dump's ``max_length``; a
    response that does not is dropped and counted, never cut (a cut response would
    be aligned and scored as if whole)."""
    return max_length is None or n_tokens <= max_length


def write_dump(rows: list[dict], out: str, metadata: dict) -> None:
    """Write dump rows (:data:`DUMP_COLUMNS`, arrays flattened) atomically."""
    table = pa.Table.from_pylist(rows, schema=DUMP_SCHEMA)
    table = table.replace_schema_metadata({k: str(v) for k, v in metadata.items()})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_dump(path: str) -> tuple[list[dict], dict]:
    """Rows with ``topk_ids`` / ``topk_logprobs`` as [n_tokens, k] arrays, and the metadata.

    Checked where the dump enters a stage (vectorised over the whole file): the columns,
    ``k`` in the metadata, prompt ids present and unique, every row's lengths consistent
    (``n_tokens`` tokens, ``n_tokens * k`` entries), top-k ids in ``[-1, vocab_size)``
    (``vocab_size`` from the metadata; -1 is padding) and token ids in ``[0,
    vocab_size)``, no NaN or ``+inf`` log-prob, a finite ``ce``. Raises
    :class:`fusekit.checks.DataError` naming the file, the row (index and prompt id)
    and the column.
    """
    import pyarrow.compute as pc

    try:
        table = pq.read_table(path)
    except Exception as err:
        raise DataError(f"{path}: cannot read logit dump: {err}") from err
    missing = [c for c in DUMP_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    try:
        k = int(meta.get("k", 0))
        vocab = int(meta["vocab_size"]) if meta.get("vocab_size") not in (None, "None") else None
    except ValueError as err:
        raise DataError(f"{path}: metadata k / vocab_size is not an integer: {err}") from err
    if table.num_rows == 0:
        return [], meta
    if k < 1:
        raise DataError(f"{path}: metadata has no top-k 'k' (got {meta.get('k')!r})")
    pids = table.column("prompt_id").to_pandas()
    check_prompt_ids(pd.DataFrame({"prompt_id": pids}), path)

    def row_of(i: int) -> str:
        return f"row {i} (prompt_id {pids.iloc[i]!r})"

    n = table.column("n_tokens").to_numpy(zero_copy_only=False)
    for col, per in (("token_ids", 1), ("topk_ids", k), ("topk_logprobs", k)):
        lens = pc.list_value_length(table.column(col)).to_numpy(zero_copy_only=False)
        bad = (n < 1) | (lens != n * per)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: {row_of(i)}, column {col!r}: {lens[i]} entries for n_tokens = {n[i]}"
                f" and k = {k} (expected {n[i] * per}); inconsistent lengths"
            )
    ce = table.column("ce").to_numpy(zero_copy_only=False).astype(float)
    if not np.isfinite(ce).all():
        i = int(np.flatnonzero(~np.isfinite(ce))[0])
        raise DataError(f"{path}: {row_of(i)}, column 'ce': non-finite cross-entropy {ce[i]}")
    for col, lo in (("topk_ids", -1), ("token_ids", 0)):
        _check_ids(table, col, lo, vocab, path, row_of)
    lps = pc.list_flatten(table.column("topk_logprobs")).to_numpy(zero_copy_only=False)
    bad = np.isnan(lps) | (lps == np.inf)
    if bad.any():
        i = _row_of_entry(table, "topk_logprobs", int(np.flatnonzero(bad)[0]))
        raise DataError(f"{path}: {row_of(i)}, column 'topk_logprobs': NaN or +inf log-prob")
    rows = table.to_pylist()
    for r in rows:
        m = r["n_tokens"]
        r["topk_ids"] = np.asarray(r["topk_ids"], dtype=np.int32).reshape(m, k)
        r["topk_logprobs"] = np.asarray(r["topk_logprobs"], dtype=np.float32).reshape(m, k)
    return rows, meta


def _row_of_entry(table, column: str, flat_index: int) -> int:
    """The row holding entry ``flat_index`` of a flattened list column."""
    import pyarrow.compute as pc

    return int(pc.list_parent_indices(table.column(column))[flat_index].as_py())


def _check_ids(table, column: str, lo: int, vocab: int | None, path: str, row_of) -> None:
    """Ids of a list column in ``[lo, vocab)`` (no upper bound when ``vocab`` is None)."""
    import pyarrow.compute as pc

    ids = pc.list_flatten(table.column(column)).to_numpy(zero_copy_only=False)
    bad = ids < lo
    if vocab is not None:
        bad |= ids >= vocab
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        i = _row_of_entry(table, column, j)
        hi = "" if vocab is None else f", {vocab}"
        what = "the vocabulary" if vocab is None else f"the vocabulary of {vocab} ids"
        raise DataError(
            f"{path}: {row_of(i)}, column {column!r}: id {int(ids[j])} outside "
            f"[{lo}{hi or ', ...'}) ({what}; {int(bad.sum())} such entries in the file)"
        )

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
``topk_logprobs`` as float16 lists, flattened row-major ([n_tokens * k]).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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
    """Rows with ``topk_ids`` / ``topk_logprobs`` as [n_tokens, k] arrays, and the metadata."""
    try:
        table = pq.read_table(path)
    except Exception as err:
        raise ValueError(f"{path}: cannot read logit dump: {err}") from err
    missing = [c for c in DUMP_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    k = int(meta.get("k", 0))
    rows = table.to_pylist()
    for i, r in enumerate(rows):
        n = r["n_tokens"]
        if n == 0 or len(r["token_ids"]) != n or len(r["topk_ids"]) != n * k:
            raise ValueError(
                f"{path}: row {i} (prompt_id {r['prompt_id']!r}) has inconsistent lengths"
            )
        r["topk_ids"] = np.asarray(r["topk_ids"], dtype=np.int32).reshape(n, k)
        r["topk_logprobs"] = np.asarray(r["topk_logprobs"], dtype=np.float32).reshape(n, k)
    return rows, meta

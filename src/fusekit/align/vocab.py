"""Vocabulary map from a source tokenizer to a target tokenizer (FuseLLM).

Each source token maps to the target token with the same string, else the
one with the same canonical spelling (markers and byte encodings aside; a real
token before a byte-fallback one), else the target token at minimum edit
distance (ties: the lowest target id). FuseLLM brute-forces this in Python
over a 64-process pool; here the exact matches are a dictionary lookup and
the rest one chunked rapidfuzz ``cdist`` over both cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusekit.align.tokens import BYTE_FALLBACK, canonical_tokens


@dataclass(frozen=True)
class VocabMap:
    target_id: np.ndarray  # int64, one per source id
    exact: np.ndarray  # bool: canonical spellings are equal
    distance: np.ndarray  # int64: edit distance to the chosen target token

    def __len__(self) -> int:
        return len(self.target_id)


def _as_list(vocab) -> list[str]:
    if isinstance(vocab, dict):
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError("vocabulary ids must be 0..n-1 without gaps")
        out = [""] * len(ids)
        for tok, i in vocab.items():
            out[i] = tok
        return out
    return list(vocab)


def map_vocab(
    source_vocab,
    target_vocab,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
    fixed: dict[int, int] | None = None,
    chunk: int = 2048,
    workers: int = -1,
) -> VocabMap:
    """Map every source id to a target id.

    ``source_vocab`` / ``target_vocab``: a ``{token: id}`` dict (a tokenizer's
    ``get_vocab()``) or a list of token strings indexed by id. ``fixed`` forces
    some pairs (special tokens by role: EOS to EOS, say).
    """
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    src_raw, tgt_raw = _as_list(source_vocab), _as_list(target_vocab)
    src = canonical_tokens(src_raw, source_scheme)
    tgt = canonical_tokens(tgt_raw, target_scheme)
    if not src or not tgt:
        raise ValueError("cannot map an empty vocabulary")
    # the same token string first; else the same bytes, preferring a real token
    # over a byte-fallback one (<0x41> and A spell the same byte)
    raw = {t: i for i, t in reversed(list(enumerate(tgt_raw)))}
    first: dict[str, int] = {}
    for i in sorted(
        range(len(tgt)), key=lambda i: (BYTE_FALLBACK.match(tgt_raw[i]) is not None, i)
    ):
        first.setdefault(tgt[i], i)
    target_id = np.array(
        [raw.get(r, first.get(c, -1)) for r, c in zip(src_raw, src, strict=True)], dtype=np.int64
    )
    exact = target_id >= 0
    distance = np.zeros(len(src), dtype=np.int64)
    todo = np.flatnonzero(~exact)
    queries = [src[i] for i in todo]
    for start in range(0, len(queries), chunk):
        d = cdist(
            queries[start : start + chunk],
            tgt,
            scorer=Levenshtein.distance,
            dtype=np.int32,
            workers=workers,
        )
        best = d.argmin(axis=1)  # first minimum: the lowest target id
        idx = todo[start : start + chunk]
        target_id[idx] = best
        distance[idx] = d[np.arange(len(best)), best]
    for s, t in (fixed or {}).items():
        target_id[s], exact[s], distance[s] = t, True, 0
    return VocabMap(target_id, exact, distance)

"""Combining several sources' aligned sparse distributions into one target (FuseLLM).

``MinCE`` keeps, per example, the distribution of the source with the lowest
cross-entropy on the reference; ``AvgCE`` averages the sources' distributions
with weights ``softmax(-CE)`` over sources, merging ids, keeping the top k.
Both work on numpy rows of one example: ids / logprobs [n_tokens, k].
"""

from __future__ import annotations

import numpy as np


def min_ce_index(ces, names: list[str]) -> int:
    """MinCE's choice: the index of the lowest cross-entropy; ties go to the source
    whose name sorts first (one rule for the MinCE table and for fusion).

    ``ces``: one cross-entropy per source (nats per token); ``names``: the sources.
    Raises ValueError when empty, of different lengths, or not finite.
    """
    ces = np.asarray(ces, dtype=np.float64)
    if len(ces) == 0 or len(ces) != len(names):
        raise ValueError(f"{len(ces)} cross-entropies for {len(names)} sources")
    if not np.isfinite(ces).all():
        raise ValueError(
            f"non-finite cross-entropy among {dict(zip(names, ces.tolist(), strict=True))}"
        )
    lowest = np.flatnonzero(ces == ces.min())
    return int(min(lowest, key=lambda i: names[i]))


def min_ce_fusion(
    rows: list[tuple[np.ndarray, np.ndarray]], ces: list[float], names: list[str] | None = None
):
    """The rows of the source with minimum cross-entropy (:func:`min_ce_index`; without
    ``names`` the sources are taken to be in name order)."""
    if not rows:
        raise ValueError("no sources to fuse")
    return rows[min_ce_index(ces, names or [f"{i:09d}" for i in range(len(rows))])]


def avg_ce_fusion(
    rows: list[tuple[np.ndarray, np.ndarray]], ces: list[float], names: list[str] | None = None
):
    """Weighted average of the sources' distributions, weights softmax(-CE)."""
    if not rows:
        raise ValueError("no sources to fuse")
    if not np.isfinite(np.asarray(ces, dtype=np.float64)).all():
        raise ValueError(f"non-finite cross-entropy among {list(ces)}")
    w = np.exp(-(np.asarray(ces) - np.min(ces)))
    w = w / w.sum()
    n, k = rows[0][0].shape
    ids = np.concatenate([r[0] for r in rows], axis=1)
    probs = np.concatenate(
        [
            np.where(r[0] >= 0, np.exp(r[1].astype(np.float64)), 0.0) * wi
            for r, wi in zip(rows, w, strict=True)
        ],
        axis=1,
    )
    out_ids = np.full((n, k), -1, dtype=np.int32)
    out_lp = np.full((n, k), -np.inf, dtype=np.float32)
    for t in range(n):
        acc: dict[int, float] = {}
        for i, p in zip(ids[t], probs[t], strict=True):
            if i >= 0:
                acc[int(i)] = acc.get(int(i), 0.0) + float(p)
        best = sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        for j, (i, p) in enumerate(best):
            out_ids[t, j], out_lp[t, j] = i, np.log(p)
    return out_ids, out_lp

"""Combining several sources' aligned sparse distributions into one target (FuseLLM).

``MinCE`` keeps, per example, the distribution of the source with the lowest
cross-entropy on the reference; ``AvgCE`` averages the sources' distributions
with weights ``softmax(-CE)`` over sources, merging ids, keeping the top k.
Both work on numpy rows of one example: ids / logprobs [n_tokens, k].
"""

from __future__ import annotations

import numpy as np


def min_ce_fusion(rows: list[tuple[np.ndarray, np.ndarray]], ces: list[float]):
    """The rows of the source with minimum cross-entropy (ties: the first)."""
    if not rows:
        raise ValueError("no sources to fuse")
    return rows[int(np.argmin(ces))]


def avg_ce_fusion(rows: list[tuple[np.ndarray, np.ndarray]], ces: list[float]):
    """Weighted average of the sources' distributions, weights softmax(-CE)."""
    if not rows:
        raise ValueError("no sources to fuse")
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

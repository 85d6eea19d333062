"""Carrying sparse top-k distributions from a source tokenization onto the target's.

Convention (no label shift to get wrong): a dump holds, for every response
token t, the distribution that *predicts* token t (the model's output at
position t-1). Aligning tokens therefore aligns distributions directly: the
target token u receives the distribution that predicts the source token it is
aligned to. As in FuseLLM, a target token aligned to exactly one source token
takes that token's distribution, its ids mapped through the vocabulary map
(probabilities of source ids that land on the same target id are added); a
target token aligned to several source tokens gets a one-hot on itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusekit.align.dp import align_tokens
from fusekit.align.vocab import VocabMap


@dataclass(frozen=True)
class AlignedTopK:
    ids: np.ndarray  # int32 [n_target, k], -1 where empty
    logprobs: np.ndarray  # float32 [n_target, k], -inf where empty
    one_hot: np.ndarray  # bool [n_target]: several source tokens -> one-hot on the target token


def check_topk(ids: np.ndarray, logprobs: np.ndarray, where: str = "dump") -> None:
    """Shapes agree; log-probabilities are finite or -inf padding, never NaN or +inf."""
    if ids.shape != logprobs.shape or ids.ndim != 2:
        raise ValueError(
            f"{where}: top-k ids {ids.shape} and log-probs {logprobs.shape} differ in shape"
        )
    lp = logprobs.astype(np.float32)
    if np.isnan(lp).any():
        t = int(np.argwhere(np.isnan(lp))[0][0])
        raise ValueError(f"{where}: NaN log-probability at token {t}")
    if np.isposinf(lp).any() or (lp > 1e-3).any():
        t = int(np.argwhere(np.isposinf(lp) | (lp > 1e-3))[0][0])
        raise ValueError(f"{where}: log-probability above 0 at token {t}")
    if ((ids < 0) != np.isneginf(lp)).any():
        t = int(np.argwhere((ids < 0) != np.isneginf(lp))[0][0])
        raise ValueError(f"{where}: padding ids and -inf log-probs disagree at token {t}")


def map_rows(
    ids: np.ndarray, logprobs: np.ndarray, vmap: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Map [n, k] source top-k rows into the target vocabulary.

    Probabilities of source ids that land on the same target id are added (into
    the first of them); rows are re-sorted by probability, stably, so ties keep
    the source's order and identical vocabularies give identical rows.
    """
    k = ids.shape[1]
    keep = ids >= 0
    mapped = np.where(keep, vmap[np.where(keep, ids, 0)], -1)
    probs = np.where(keep, np.exp(logprobs.astype(np.float64)), 0.0)
    for a in range(k):
        for b in range(a + 1, k):
            dup = (mapped[:, b] == mapped[:, a]) & (mapped[:, a] >= 0)
            probs[dup, a] += probs[dup, b]
            probs[dup, b] = 0.0
            mapped[dup, b] = -1
    order = np.argsort(-probs, axis=1, kind="stable")
    probs = np.take_along_axis(probs, order, axis=1)
    mapped = np.take_along_axis(mapped, order, axis=1)
    empty = probs <= 0
    with np.errstate(divide="ignore"):
        lps = np.where(empty, -np.inf, np.log(probs)).astype(np.float32)
    return np.where(empty, -1, mapped).astype(np.int32), lps


def align_topk(
    source_tokens: list[str],
    source_ids: np.ndarray,
    source_logprobs: np.ndarray,
    target_tokens: list[str],
    target_token_ids: list[int],
    vocab_map: VocabMap,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
) -> AlignedTopK:
    """Map one sequence's top-k distributions onto the target tokenization.

    ``source_tokens`` / ``target_tokens``: token strings of the same response
    text in each tokenization; ``source_ids`` / ``source_logprobs``: [n_source, k]
    top-k of the distribution predicting each source token; ``target_token_ids``:
    the target's ids of ``target_tokens`` (for one-hot rows).
    """
    check_topk(source_ids, source_logprobs)
    if len(source_ids) != len(source_tokens):
        raise ValueError(f"{len(source_tokens)} source tokens but {len(source_ids)} distributions")
    if len(target_token_ids) != len(target_tokens):
        raise ValueError("target tokens and ids differ in length")
    k = source_ids.shape[1]
    path = align_tokens(target_tokens, source_tokens, target_scheme, source_scheme)
    sources_of: list[list[int]] = [[] for _ in target_tokens]
    for u, j in path:
        sources_of[u].append(j)
    ids = np.full((len(target_tokens), k), -1, dtype=np.int32)
    lps = np.full((len(target_tokens), k), -np.inf, dtype=np.float32)
    one_hot = np.zeros(len(target_tokens), dtype=bool)
    single = np.array([len(js) == 1 for js in sources_of])
    rows = [js[0] for js in sources_of if len(js) == 1]
    ids[single], lps[single] = map_rows(
        source_ids[rows], source_logprobs[rows], vocab_map.target_id
    )
    for u in np.flatnonzero(~single):
        ids[u, 0], lps[u, 0], one_hot[u] = target_token_ids[u], 0.0, True
    return AlignedTopK(ids, lps, one_hot)

"""Carrying sparse top-k distributions from a source tokenization onto the target's.

Convention (no label shift to get wrong): a dump holds, for every response
token t, the distribution that *predicts* token t (the model's output at
position t-1). Aligning tokens therefore aligns distributions directly.

The rule is FuseLLM's ``transform_step_logits`` in its "soft" mode
(``FuseLLM/src/utils/others.py``, fanqiwan/FuseAI), the mode its README runs.
On the DTW path between the two tokenizations, a target token u

- aligned to exactly one source token j *carries* j's distribution (its ids
  mapped through the vocabulary map; probabilities of source ids that land on
  the same target id are added, where FuseLLM keeps the first) only when u
  spells the same bytes as j or is j's vocabulary-map image;
- otherwise (a 1:1 cell whose tokens differ, one piece of a source token that
  spans several target tokens, or a target token aligned to several source
  tokens) gets a one-hot on itself.

FuseLLM special-cases the first token for GPT-NeoX/MPT sources, whose first
token carries no space marker where SentencePiece adds one; here the first
tokens compare with leading spaces removed on both sides, for every scheme.

The two tokenizations may spell different text after Unicode normalisation
(Qwen normalises NFC, some tokenizers NFKC, Llama-2 not at all): the DP aligns
them anyway, as FuseLLM's does, and :class:`AlignedTopK` says how the texts
compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusekit.align.dp import align_tokens
from fusekit.align.tokens import canonical_tokens, compare_texts
from fusekit.align.vocab import VocabMap


@dataclass(frozen=True)
class AlignedTopK:
    ids: np.ndarray  # int32 [n_target, k], -1 where empty
    logprobs: np.ndarray  # float32 [n_target, k], -inf where empty
    one_hot: np.ndarray  # bool [n_target]: a one-hot on the target token, nothing carried
    text_match: str  # "same", "normalised" or "different": fusekit.align.tokens.compare_texts

    @property
    def carried(self) -> np.ndarray:
        """bool [n_target]: rows that carry a source distribution."""
        return ~self.one_hot


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
    source_token_ids: list[int],
    source_ids: np.ndarray,
    source_logprobs: np.ndarray,
    target_tokens: list[str],
    target_token_ids: list[int],
    vocab_map: VocabMap,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
) -> AlignedTopK:
    """Map one sequence's top-k distributions onto the target tokenization (the rule of
    the module docstring).

    ``source_tokens`` / ``source_token_ids``: the source tokenization of the
    response (strings and ids); ``source_ids`` / ``source_logprobs``: [n_source, k]
    top-k of the distribution predicting each source token; ``target_tokens`` /
    ``target_token_ids``: the target tokenization of the same response.
    Returns [n_target, k] rows. Raises ValueError on inconsistent lengths, bad
    top-k rows (:func:`check_topk`) or an empty sequence.
    """
    check_topk(source_ids, source_logprobs)
    if not len(source_tokens) == len(source_token_ids) == len(source_ids):
        raise ValueError(
            f"{len(source_tokens)} source tokens, {len(source_token_ids)} ids, "
            f"but {len(source_ids)} distributions"
        )
    if len(target_token_ids) != len(target_tokens):
        raise ValueError("target tokens and ids differ in length")
    k = source_ids.shape[1]
    s_canon = canonical_tokens(source_tokens, source_scheme)
    t_canon = canonical_tokens(target_tokens, target_scheme)
    path = align_tokens(target_tokens, source_tokens, target_scheme, source_scheme, False)
    sources_of: list[list[int]] = [[] for _ in target_tokens]
    for u, j in path:
        sources_of[u].append(j)
    image = vocab_map.target_id[np.asarray(source_token_ids, dtype=np.int64)]

    def carries(u: int) -> bool:
        if len(sources_of[u]) != 1:
            return False
        j = sources_of[u][0]
        a, b = t_canon[u], s_canon[j]
        if u == 0 and j == 0:
            a, b = a.lstrip(" "), b.lstrip(" ")
        return a == b or int(image[j]) == int(target_token_ids[u])

    carried = np.array([carries(u) for u in range(len(target_tokens))], dtype=bool)
    ids = np.full((len(target_tokens), k), -1, dtype=np.int32)
    lps = np.full((len(target_tokens), k), -np.inf, dtype=np.float32)
    rows = [sources_of[u][0] for u in np.flatnonzero(carried)]
    if rows:
        ids[carried], lps[carried] = map_rows(
            source_ids[rows], source_logprobs[rows], vocab_map.target_id
        )
    hot = np.flatnonzero(~carried)
    ids[hot, 0] = np.asarray(target_token_ids, dtype=np.int32)[hot]
    lps[hot, 0] = 0.0
    return AlignedTopK(ids, lps, ~carried, compare_texts(t_canon, s_canon))

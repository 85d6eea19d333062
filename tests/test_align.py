"""Alignment: hand-made cases, agreement with the FuseLLM-style reference DP, the vocabulary
map, carrying top-k distributions (and the label shift), bad input."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fusekit.align import (
    align_tokens,
    align_tokens_reference,
    align_topk,
    canonical_tokens,
    detect_scheme,
    map_vocab,
)
from fusekit.align.distributions import check_topk, map_rows
from fusekit.align.dp import cost_matrix, cumulative_cost, cumulative_cost_numpy, trace_back


def test_identical_tokenizations_align_diagonally():
    toks = ["▁the", "▁cat", "▁sat"]
    assert align_tokens(toks, toks) == [(0, 0), (1, 1), (2, 2)]


def test_merge_and_split_across_schemes():
    # one token on one side covers all the other side's tokens: the path is forced
    assert align_tokens(["▁un", "believ", "able"], ["unbelievable"]) == [(0, 0), (1, 0), (2, 0)]
    assert align_tokens(["unbelievable"], ["▁un", "believ", "able"]) == [(0, 0), (0, 1), (0, 2)]


def test_dtw_prefers_the_diagonal_on_ties():
    # costs |aa-ab| = |bb-ab| = 1 everywhere: D = [[1, 2], [2, 2]]; from (1, 1) the
    # diagonal (1) beats up (2) and left (2), as in FuseLLM's trace-back
    assert align_tokens(["aa", "bb"], ["ab", "ab"], check_text=False) == [(0, 0), (1, 1)]
    # (a, b) vs (a, x, b): D = [[0, 1, 2], [1, 1, 1]]; from (1, 2) the diagonal D[0, 1] = 1
    # ties with left D[1, 1] = 1 and wins; then row 0 leads left to (0, 0)
    assert align_tokens(["a", "b"], ["a", "x", "b"], check_text=False) == [(0, 0), (0, 1), (1, 2)]


def test_space_markers_are_ignored_in_costs():
    assert align_tokens(["▁hello", "▁world"], ["hello", "Ġworld"]) == [(0, 0), (1, 1)]
    assert align_tokens(["hello", "Ġworld"], ["▁hello", "▁world"]) == [(0, 0), (1, 1)]


def test_unicode_and_byte_fallback():
    # "café ☕": byte-level spells é as Ã© and ☕ as three stand-ins; Metaspace uses
    # a plain é and byte-fallback tokens for the cup
    byte_level = ["caf", "Ã©", "Ġâĺ", "ķ"]
    metaspace = ["▁café", "▁", "<0xE2>", "<0x98>", "<0x95>"]
    assert canonical_tokens(byte_level) == ["caf", "\xc3\xa9", " \xe2\x98", "\x95"]
    assert canonical_tokens(metaspace) == [" caf\xc3\xa9", " ", "\xe2", "\x98", "\x95"]
    path = align_tokens(metaspace, byte_level)
    assert path == align_tokens_reference(metaspace, byte_level)
    assert path[0] == (0, 0) and path[-1] == (4, 3)
    assert (3, 2) in path and (2, 2) in path  # the cup's first two bytes share one token


def test_whitespace_and_newlines():
    assert canonical_tokens(["Ċ", "Ġ", "ĠĠ"]) == ["\n", " ", "  "]
    assert align_tokens(["a", "Ċ", "b"], ["▁a", "<0x0A>", "b"]) == [(0, 0), (1, 1), (2, 2)]


def test_scheme_detection():
    assert detect_scheme(["Ġthe", "cat"]) == "byte_level"
    assert detect_scheme(["▁the"]) == "metaspace"
    assert detect_scheme(["the"]) == "plain"
    with pytest.raises(ValueError, match="mix"):
        detect_scheme(["Ġa", "▁b"])


def _segment(text: str, marker: str, seed: int) -> list[str]:
    rng, out, i = random.Random(seed), [], 0
    while i < len(text):
        k = rng.randint(1, 4)
        out.append(text[i : i + k].replace(" ", marker))
        i += k
    return out


@pytest.mark.parametrize("seed", range(6))
def test_same_path_as_the_reference_dp(seed):
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(1, 5))) for _ in range(80)]
    text = " ".join(words)
    a, b = _segment(text, "▁", seed), _segment(text, "Ġ", seed + 100)
    assert align_tokens(a, b) == align_tokens_reference(a, b)


def test_numba_and_numpy_dp_agree():
    cost = np.random.default_rng(0).integers(0, 6, size=(70, 50))
    assert (cumulative_cost(cost) == cumulative_cost_numpy(cost)).all()
    # the compiled trace-back and the Python one give the same path
    a = _segment("the quick brown fox jumps over the lazy dog " * 8, "▁", 1)
    b = _segment("the quick brown fox jumps over the lazy dog " * 8, "Ġ", 2)
    ca = [t.replace(" ", "") for t in canonical_tokens(a)]
    cb = [t.replace(" ", "") for t in canonical_tokens(b)]
    fallback = trace_back(cumulative_cost_numpy(cost_matrix(ca, cb)))
    assert align_tokens(a, b) == fallback


def test_bad_input():
    with pytest.raises(ValueError, match="empty token sequence"):
        align_tokens([], ["a"])
    with pytest.raises(ValueError, match="do not cover the same text"):
        align_tokens(["▁the", "▁cat"], ["the", "Ġdog"])
    assert align_tokens(["▁ab"], ["▁ac"], check_text=False) == [(0, 0)]


def test_map_vocab_exact_then_nearest():
    source = ["<s>", "Ġthe", "the", "Ġcat", "Ġdogs", "<0x41>"]
    target = {"<s>": 0, "▁the": 1, "the": 2, "▁cat": 3, "▁dog": 4, "A": 5, "<0x41>": 6}
    vmap = map_vocab(source, target, "byte_level", "metaspace")
    assert vmap.target_id.tolist() == [0, 1, 2, 3, 4, 6]
    assert vmap.exact.tolist() == [True, True, True, True, False, True]
    assert vmap.distance[4] == 1
    # a byte-fallback token and a real token spell the same byte: the real one wins
    assert map_vocab(["A"], target, "plain", "metaspace").target_id.tolist() == [5]
    forced = map_vocab(source, target, "byte_level", "metaspace", fixed={0: 2})
    assert forced.target_id[0] == 2


def test_map_vocab_ties_go_to_the_lowest_id():
    vmap = map_vocab(["ab"], ["xx", "ac", "bb"], "plain", "plain")
    assert vmap.target_id.tolist() == [1] and vmap.distance.tolist() == [1]


def test_map_rows_merges_and_keeps_order():
    ids = np.array([[5, 6, 7, -1]])
    lps = np.log(np.array([[0.4, 0.3, 0.2, 1.0]]))
    lps[0, 3] = -np.inf
    vmap = np.array([0, 0, 0, 0, 0, 9, 3, 9])
    out_ids, out_lps = map_rows(ids, lps, vmap)
    assert out_ids.tolist() == [[9, 3, -1, -1]]
    assert np.exp(out_lps[0, :2]).tolist() == pytest.approx([0.6, 0.3])
    assert np.isneginf(out_lps[0, 2:]).all()


def _dist(rows: list[list[tuple[int, float]]], k: int = 3):
    ids = np.full((len(rows), k), -1, dtype=np.int32)
    lps = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for t, row in enumerate(rows):
        for j, (i, p) in enumerate(row):
            ids[t, j], lps[t, j] = i, np.log(p)
    return ids, lps


def test_align_topk_label_shift_and_one_hot():
    # source "▁kit" "ten" "▁sat"; target "kitten" "Ġsat": the distribution predicting
    # "▁sat" must end up predicting "Ġsat", never shifted by one
    src_tokens = ["▁kit", "ten", "▁sat"]
    src_ids, src_lps = _dist([[(0, 0.7), (1, 0.2)], [(1, 0.9)], [(2, 0.6), (0, 0.3)]])
    tgt_tokens = ["kitten", "Ġsat"]
    tgt_ids = [40, 41]
    vmap = map_vocab(
        ["▁kit", "ten", "▁sat"], ["kitten", "Ġsat", "Ġkit", "ten"], "metaspace", "byte_level"
    )
    out = align_topk(src_tokens, src_ids, src_lps, tgt_tokens, tgt_ids, vmap)
    # "kitten" covers two source tokens: one-hot on its own id
    assert out.one_hot.tolist() == [True, False]
    assert out.ids[0].tolist() == [40, -1, -1] and out.logprobs[0, 0] == 0
    # "Ġsat" takes the distribution that predicted "▁sat", ids mapped
    assert out.ids[1].tolist() == [vmap.target_id[2], vmap.target_id[0], -1]
    assert np.exp(out.logprobs[1, :2]).tolist() == pytest.approx([0.6, 0.3], rel=1e-5)


def test_align_topk_identity():
    tokens = ["▁a", "▁b", "▁c"]
    ids, lps = _dist([[(0, 0.5), (1, 0.5)], [(1, 1.0)], [(2, 0.9)]])
    vmap = map_vocab(tokens, tokens)
    out = align_topk(tokens, ids, lps, tokens, [0, 1, 2], vmap)
    assert (out.ids == ids).all() and np.allclose(out.logprobs, lps)


def test_check_topk_rejects_nan_and_positive():
    ids, lps = _dist([[(0, 0.5)]])
    bad = lps.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN log-probability at token 0"):
        check_topk(ids, bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="above 0"):
        check_topk(ids, bad)
    with pytest.raises(ValueError, match="padding ids"):
        check_topk(np.array([[0, 1, -1]], dtype=np.int32), lps)

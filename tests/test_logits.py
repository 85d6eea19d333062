"""Sparse top-k dumps: the top-k / top-p / temperature math, teacher forcing with a real
model, the Parquet round trip and its size, and MinCE."""

from __future__ import annotations

import json
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
    with pytest.raises(
        ValueError,
        match=r"short.parquet: row 0 \(prompt_id 'p'\), column 'topk_ids'.*inconsistent lengths",
    ):
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
    with pytest.raises(
        ValueError,
        match=r"z\.parquet: row 1 \(prompt_id 'p1'\), column 'ce': non-finite cross-entropy",
    ):
        select_mince(paths, str(tmp_path / "m2.parquet"))


def _fake_dump(path, model, responses, tok, k=3):
    """A dump of ``responses`` under ``tok`` with made-up distributions (own token first)."""
    rows = []
    for i, resp in enumerate(responses):
        ids = tok(resp, add_special_tokens=False).input_ids + [tok.eos_token_id]
        top = np.array([[t, 5, 6] for t in ids], dtype=np.int32)
        lp = np.log(np.tile([0.7, 0.2, 0.1], (len(ids), 1))).astype(np.float32)
        rows.append(
            dict(
                prompt_id=f"p{i}",
                model=model,
                response=resp,
                n_tokens=len(ids),
                ce=1.0 + i,
                token_ids=ids,
                topk_ids=top.ravel().tolist(),
                topk_logprobs=lp.ravel().tolist(),
            )
        )
    write_dump(rows, str(path), {"k": k})
    return rows


def test_alignment_survives_unicode_normalisation(models, tmp_path):
    # a: Metaspace with an NFKC normaliser; b: byte-level without one. Each response
    # below is spelled differently by the two (…, ﬁ, a full-width comma, a decomposed
    # accent); the DP aligns them, counts them, and never fails the file for them
    from transformers import AutoTokenizer

    root, _ = models
    tok_a = AutoTokenizer.from_pretrained(root / "a")
    responses = ["the answer is 4", "done … ok", "ﬁne", "a，b", "cafe\u0301", "x ﬁ …"]
    _fake_dump(tmp_path / "d.parquet", "a", responses, tok_a)
    build_vocab_map(str(root / "a"), str(root / "b"), str(tmp_path / "vm.parquet"))
    out = align_dump(
        *(
            str(p)
            for p in (
                tmp_path / "d.parquet",
                root / "a",
                root / "b",
                tmp_path / "vm.parquet",
                tmp_path / "al.parquet",
            )
        )
    )
    assert len(out) == len(responses)
    _, meta = read_dump(str(tmp_path / "al.parquet"))
    stats = json.loads(meta["alignment"])
    assert stats["text_normalised_rows"] == 5 and stats["text_mismatch_rows"] == 0
    assert stats["carried_tokens"] + stats["one_hot_tokens"] == sum(r["n_tokens"] for r in out)


def test_alignment_fails_only_past_a_share_of_genuinely_different_rows(models, tmp_path):
    from transformers import AutoTokenizer

    root, _ = models
    tok_a = AutoTokenizer.from_pretrained(root / "a")
    rows = _fake_dump(tmp_path / "d.parquet", "a", [f"the answer is {i}" for i in range(8)], tok_a)
    build_vocab_map(str(root / "a"), str(root / "b"), str(tmp_path / "vm.parquet"))
    args = [str(p) for p in (root / "a", root / "b", tmp_path / "vm.parquet")]

    def broken(n):  # n rows whose text no longer matches their tokens
        bad = [
            dict(r, response="something else entirely") if i < n else r for i, r in enumerate(rows)
        ]
        write_dump(bad, str(tmp_path / f"bad{n}.parquet"), {"k": 3})
        return str(tmp_path / f"bad{n}.parquet")

    # one bad row never fails a file (1 of 8 = 12.5% > 5%)
    align_dump(broken(1), *args, str(tmp_path / "al1.parquet"))
    _, meta = read_dump(str(tmp_path / "al1.parquet"))
    assert json.loads(meta["alignment"])["text_mismatch_rows"] == 1
    # two of eight: over the share, a named error and no output
    with pytest.raises(ValueError, match=r"bad2.parquet: 2 of 8 rows .*max_text_mismatch_share"):
        align_dump(broken(2), *args, str(tmp_path / "al2.parquet"))
    assert not (tmp_path / "al2.parquet").exists()
    align_dump(broken(2), *args, str(tmp_path / "al2.parquet"), max_text_mismatch_share=0.5)


def test_too_long_responses_are_dropped_for_every_source(models, tmp_path):
    # one truncation rule: a response that does not fit max_length is dropped from the
    # dump (counted in its metadata), never cut; MinCE and fusion then leave that prompt
    # out for every source, so cross-entropies cover the same whole responses
    from transformers import AutoTokenizer

    from fusekit.training_mode import common_rows, dropped_prompts

    root, pairs = models
    long = " ".join(["paris is the capital of france ."] * 5)  # a: 93 tokens, b: 78
    pairs = pd.concat(
        [pairs, pd.DataFrame({"prompt_id": ["long"], "prompt": ["what?"], "response": [long]})],
        ignore_index=True,
    )
    cfg = {**CFG, "max_length": 64}
    tok_a = AutoTokenizer.from_pretrained(root / "a")
    assert len(encode_example(tok_a, "what?", long).input_ids) > 64
    rows = dump_logits(pairs, "a", str(root / "a"), {}, cfg, str(tmp_path / "a.parquet"))
    assert "long" not in {r["prompt_id"] for r in rows} and len(rows) == len(pairs) - 1
    got, meta = read_dump(str(tmp_path / "a.parquet"))
    assert dropped_prompts(meta) == {"long"}
    for r in got:  # every kept row is the whole response: its tokens spell its text
        body = r["token_ids"][:-1]
        assert body == tok_a(r["response"], add_special_tokens=False).input_ids
        assert r["token_ids"][-1] == tok_a.eos_token_id
    # source b has a larger budget (its whole context) and keeps "long"; the join drops
    # it for both
    dump_logits(
        pairs, "b", str(root / "b"), {}, {**CFG, "max_length": 96}, str(tmp_path / "b.parquet")
    )
    assert "long" in {r["prompt_id"] for r in read_dump(str(tmp_path / "b.parquet"))[0]}
    kept, dropped = common_rows(
        {"a": str(tmp_path / "a.parquet"), "b": str(tmp_path / "b.parquet")}
    )
    assert dropped == {"long"} and set(kept["a"]) == set(kept["b"]) == set(pairs.prompt_id) - {
        "long"
    }
    m = select_mince(
        [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], str(tmp_path / "m.parquet")
    )
    assert "long" not in set(m.prompt_id) and len(m) == len(pairs) - 1
    # a prompt missing for no recorded reason is an error naming the dump
    flat = [
        dict(
            r,
            topk_ids=r["topk_ids"].ravel().tolist(),
            topk_logprobs=r["topk_logprobs"].ravel().tolist(),
        )
        for r in got[1:]
    ]
    write_dump(flat, str(tmp_path / "a2.parquet"), {"k": 4})
    with pytest.raises(ValueError, match=r"a2.parquet: no row for prompt"):
        common_rows({"a": str(tmp_path / "a2.parquet"), "b": str(tmp_path / "b.parquet")})


def test_vocab_map_file_and_report(models, tmp_path):
    root, _ = models
    vm = build_vocab_map(str(root / "b"), str(root / "a"), str(tmp_path / "vm.parquet"))
    report = json.loads((tmp_path / "vm.report.json").read_text())
    assert report["source_size"] == len(vm) and report["exact"] == int(vm.exact.sum())
    assert sum(report["nearest_distance_histogram"].values()) == int((~vm.exact).sum())
    assert (report["source_scheme"], report["target_scheme"]) == ("byte_level", "metaspace")
    # ChatML's <|endoftext|> is BOS and UNK of b: it maps by role (BOS first) to a's <s>
    by_token = {s["source_token"]: s for s in report["specials"]}
    assert by_token["<|im_end|>"]["target_token"] == "</s>"
    assert by_token["<|im_end|>"]["rule"] == "role eos"
    assert by_token["<|endoftext|>"]["target_token"] == "<s>"
    assert by_token["<|endoftext|>"]["rule"] == "role bos"

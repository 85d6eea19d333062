"""The fusion trainer: the batch plan, and resuming after an interruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.train.examples import Example, Part, collate
from fusekit.train.fusion import resolve_variant
from fusekit.train.loop import Stage, batch_plan, train_fusion

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 64,
}


def _part(rng, n_prompt=3, n_resp=5, vocab=300, k=4):
    ids = rng.integers(5, vocab, n_prompt + n_resp).tolist()
    labels = [-100] * n_prompt + ids[n_prompt:]
    topk = np.full((len(ids), k), -1, dtype=np.int32)
    lps = np.full((len(ids), k), -np.inf, dtype=np.float32)
    topk[n_prompt:] = rng.integers(5, vocab, (n_resp, k))
    lps[n_prompt:] = np.log(rng.dirichlet(np.ones(k), n_resp)).astype(np.float32)
    return Part(ids, labels, topk, lps)


def _examples(n=24, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        infer = _part(rng) if i % 4 != 0 else None  # a quarter without an inference part
        out.append(
            Example(f"p{i:02d}", infer, _part(rng), rm_score=float(i % 3), gt_length=100 - i)
        )
    return out


def test_batch_plan_pools_epochs_and_orders():
    ex = _examples()
    stages = [
        Stage(("inference",), 1.0),
        Stage(("inference", "training"), 0.5),
        Stage(("training",), 2.0),
    ]
    plan = batch_plan(ex, stages, global_batch=4, seed=1)
    by_stage = {s: [i for st, b in plan if st == s for i in b] for s in range(3)}
    assert sorted(by_stage[0]) == [i for i in range(24) if i % 4 != 0]  # 18 with an inference part
    assert len(by_stage[1]) == 9 and len(set(by_stage[1])) == 9
    assert sorted(by_stage[2]) == sorted(list(range(24)) * 2)
    assert plan == batch_plan(ex, stages, 4, seed=1) and plan != batch_plan(ex, stages, 4, seed=2)
    first = batch_plan(ex, [Stage(("training",), 1.0)], 24, 0, order="gt_length")[0][1]
    assert first == list(range(23, -1, -1))  # shortest reference first
    first = batch_plan(ex, [Stage(("training",), 1.0)], 24, 0, order="rm_score")[0][1]
    assert [ex[i].rm_score for i in first] == sorted((e.rm_score for e in ex), reverse=True)
    with pytest.raises(ValueError, match="no examples"):
        batch_plan(
            [Example("x", None, _part(np.random.default_rng(0)))], [Stage(("inference",), 1)], 4, 0
        )
    with pytest.raises(ValueError, match="unknown modes"):
        Stage.from_config({"modes": ["reinforce"], "epochs": 1})


def test_collate_pads_with_ignored_labels():
    rng = np.random.default_rng(0)
    ids, mask, labels, topk, lps = collate([_part(rng, 2, 3), _part(rng, 2, 1)], pad_id=0)
    assert ids.shape == (2, 5) and mask[1].tolist() == [1, 1, 1, 0, 0]
    assert labels[1, 3:].tolist() == [-100, -100] and (topk[1, 3:] == -1).all()
    assert torch.isneginf(lps[1, 3:]).all()


def test_resolve_variant_defaults():
    study = {
        "stages": [{"modes": ["inference"], "epochs": 1}],
        "sources": ["a", "b"],
        "variants": {"P": {}, "S": {"sources": ["b"], "order": "gt_length"}},
    }
    assert resolve_variant(study, "P") == {
        "stages": study["stages"],
        "sources": ["a", "b"],
        "fusion": "min_ce",
        "order": "random",
        "training_objective": "profuser_eq4",  # ProFuser's own form is the default
    }
    assert resolve_variant(study, "S")["sources"] == ["b"]
    study["training_objective"] = "fusellm_lambda"
    assert resolve_variant(study, "P")["training_objective"] == "fusellm_lambda"
    with pytest.raises(ValueError, match="unknown variant 'Q'"):
        resolve_variant(study, "Q")


def test_stage_objective_by_name():
    from fusekit.train.loop import Stage

    spec = {"modes": ["training"], "epochs": 1, "beta": 0.0}
    assert Stage.from_config(spec).training_objective == "profuser_eq4"
    assert Stage.from_config(spec, "fusellm_lambda").training_objective == "fusellm_lambda"
    own = {**spec, "training_objective": "profuser_eq4"}
    assert Stage.from_config(own, "fusellm_lambda").training_objective == "profuser_eq4"
    with pytest.raises(ValueError, match="unknown training objective 'sft'"):
        Stage.from_config({**spec, "training_objective": "sft"})


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("target")
    corpus = build_corpus(0, {"pretrain": 30})
    texts = [
        f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)
    ] + filler_text(0, 30)
    tok = train_tokenizer(texts, "metaspace_bpe", 300, "vicuna")
    build_model("LlamaForCausalLM", tok, SIZE, seed=0).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def test_resume_gives_the_same_weights(target, tmp_path):
    ex = _examples()
    stages = [
        Stage(("inference",), 1.0, beta=0.1),
        Stage(("inference", "training"), 1.0, 0.5, 0.5, 0.1, 1.0),
    ]
    optim = {"name": "adamw", "lr": 1e-3, "schedule": "cosine", "global_batch_size": 4}
    cfg = {"micro_batch_size": 2, "save_every": 3}
    full = train_fusion(
        str(target), {}, ex, stages, optim, cfg, str(tmp_path / "full"), str(tmp_path / "c1"), 7
    )
    n_steps = len(full)
    assert n_steps == 5 + 5  # 18 and 18 examples in batches of 4
    # interrupted after step 7 (last checkpoint at step 6), then restarted
    part = train_fusion(
        str(target),
        {},
        ex,
        stages,
        optim,
        cfg,
        str(tmp_path / "out"),
        str(tmp_path / "c2"),
        7,
        stop_after=7,
    )
    assert len(part) == 7 and not (tmp_path / "out").exists()
    assert (tmp_path / "c2" / "latest").read_text() == "step-0000006"
    resumed = train_fusion(
        str(target), {}, ex, stages, optim, cfg, str(tmp_path / "out"), str(tmp_path / "c2"), 7
    )
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.loss.tolist() == pytest.approx(full.loss.tolist())
    assert not (tmp_path / "c2").exists()  # checkpoints go once the model is written
    # and training moved the weights
    init = build_model(
        "LlamaForCausalLM", AutoTokenizer.from_pretrained(target), SIZE, seed=0
    ).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a if k in init)


SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def test_code_defaults_agree_with_the_schema():
    """The trainer's defaults are the schema's, key for key: the optimizer and training
    blocks (every key has a default there), a fusion variant's order and fusion, the
    training objective, and a fusion stage's weights."""
    import yaml

    from fusekit.train import fusion, loop

    schema = yaml.safe_load(SCHEMA.read_text())
    defs = schema["$defs"]

    def defaults(props: dict) -> dict:
        assert all("default" in p for p in props.values()), "a key without a default"
        return {k: p["default"] for k, p in props.items()}

    assert loop.OPTIMIZER_DEFAULTS == defaults(defs["optimizer"]["properties"])
    assert loop.TRAINING_DEFAULTS == defaults(defs["training"]["properties"])
    assert set(defs["optimizer_override"]["properties"]) <= set(loop.OPTIMIZER_DEFAULTS)
    assert set(loop.OPTIMIZERS) == set(defs["optimizer"]["properties"]["name"]["enum"])
    variant = schema["properties"]["studies"]["properties"]["profuser"]["properties"]
    variant = variant["variants"]["additionalProperties"]["properties"]
    assert loop.ORDER_DEFAULT == variant["order"]["default"]
    assert fusion.FUSION_DEFAULT == variant["fusion"]["default"]
    assert loop.TRAINING_OBJECTIVE_DEFAULT == defs["training_objective"]["default"]
    stage = Stage.from_config({"modes": ["training"], "epochs": 1})
    props = defs["stage"]["properties"]
    assert (stage.beta, stage.lam, stage.w_inference, stage.w_training) == tuple(
        props[k]["default"] for k in ("beta", "lambda", "w_inference", "w_training")
    )
    # and resolve_settings fills exactly these
    optim, cfg = loop.resolve_settings({"lr": 1e-3}, {"save_every": 0})
    assert optim == {**loop.OPTIMIZER_DEFAULTS, "lr": 1e-3}
    assert cfg == {**loop.TRAINING_DEFAULTS, "save_every": 0, "order": loop.ORDER_DEFAULT}


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "optim, cfg, words",
    [
        ({"global_batch": 4}, {}, r"unknown optimizer setting\(s\) optimizer\.global_batch;"),
        ({}, {"micro_batch": 2}, r"unknown training setting\(s\) training\.micro_batch;"),
        ({"name": "sgd"}, {}, r"optimizer\.name 'sgd' is unknown; known: \['adam', 'adamw'\]"),
        ({}, {"deepspeed_zero_stage": 3}, r"training\.deepspeed_zero_stage is 3 but no CUDA"),
    ],
    ids=["unknown_optimizer_key", "unknown_training_key", "unknown_optimizer", "zero3_on_cpu"],
)
def test_bad_settings_are_named_before_training(tmp_path, monkeypatch, optim, cfg, words):
    """A misspelt key, an unknown optimizer, or DeepSpeed on a machine without CUDA
    stops the run before any folder is made or the model loads, naming the key."""
    if torch.cuda.is_available() and "deepspeed" in str(cfg):
        pytest.skip("this machine has CUDA: DeepSpeed may run")

    def no_load(*args, **kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr("fusekit.backends.hf.load_causal_lm", no_load)
    with pytest.raises(ValueError, match=words):
        train_fusion("m", {}, [], [], optim, cfg, str(tmp_path / "o"), str(tmp_path / "c"), 0)
    assert list(tmp_path.iterdir()) == []

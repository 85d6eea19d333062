"""The fusion trainer: the batch plan, and resuming after an interruption."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from fusekit.checks import DataError
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.train.examples import Example, Part, collate
from fusekit.train.fusion import resolve_variant
from fusekit.train.heldout import (
    HELDOUT_COLUMNS,
    HELDOUT_DEFAULTS,
    HELDOUT_KEYS,
    build_heldout,
    heldout_loss,
    preserved_rng,
    resolve_heldout,
    spread_rows,
)
from fusekit.train.loop import Stage, batch_plan, epoch_ends, train_fusion

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


def _two_stages(first_epochs: float = 1.0) -> tuple[list, dict, dict]:
    """Inference mode, then both modes: stages, optimizer and training settings of the
    resume tests (checkpoints every 3 steps)."""
    stages = [
        Stage(("inference",), first_epochs, beta=0.1),
        Stage(("inference", "training"), 1.0, 0.5, 0.5, 0.1, 1.0),
    ]
    optim = {"name": "adamw", "lr": 1e-3, "schedule": "cosine", "global_batch_size": 4}
    return stages, optim, {"micro_batch_size": 2, "save_every": 3}


def test_resume_gives_the_same_weights(target, tmp_path):
    ex = _examples()
    stages, optim, cfg = _two_stages()
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


def test_heldout_defaults_agree_with_the_schema():
    """fusekit.train.heldout's defaults are the schema's studies.profuser.heldout ones
    (no default of its own: Snakemake's validate would fill max_examples into a null)."""
    import yaml

    study = yaml.safe_load(SCHEMA.read_text())["properties"]["studies"]["properties"]
    heldout = study["profuser"]["properties"]["heldout"]
    assert "default" not in heldout  # off unless a study sets it
    props = heldout["properties"]
    assert set(props) == set(HELDOUT_KEYS)
    assert HELDOUT_DEFAULTS == {k: props[k]["default"] for k in HELDOUT_DEFAULTS}


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


# --- the held-out loss (issue 17 item 3) ---------------------------------------------


def test_epoch_ends_match_the_batch_plan():
    """By hand: 18 examples with an inference part, 24 with a training part. Batches of
    4: stage 0 (18) takes steps 1-5; stage 1, half a pass (9), steps 6-8; stage 2, two
    passes of 24, steps 9-20, the first ending with step 8 + 24 / 4 = 14. Batches of 5:
    5 steps... then stage 2's first pass ends in step 6 + ceil(24 / 5) = 11, a step that
    also holds the second pass's first example."""
    ex = _examples()
    stages = [
        Stage(("inference",), 1.0),
        Stage(("inference", "training"), 0.5),
        Stage(("training",), 2.0),
    ]

    def ends(batch):
        return [tuple(e.values()) for e in epoch_ends(ex, stages, batch)]

    assert ends(4) == [(5, 0, 1.0, 1.0), (8, 1, 0.5, 1.5), (14, 2, 1.0, 2.5), (20, 2, 2.0, 3.5)]
    assert ends(5) == [(4, 0, 1.0, 1.0), (6, 1, 0.5, 1.5), (11, 2, 1.0, 2.5), (16, 2, 2.0, 3.5)]
    # and against the plan itself: the step trains the pass's last example, not before
    for batch in (3, 4, 5, 7):
        plan = batch_plan(ex, stages, batch, seed=1)
        for e in epoch_ends(ex, stages, batch):
            s, n = e["stage"], e["stage_epoch"]
            pool = {0: 18, 1: 18, 2: 24}[s]
            seen = [len(b) for st, b in plan[: e["step"]] if st == s]
            assert sum(seen) >= math.ceil(n * pool) > sum(seen[:-1])
    # a pool smaller than a batch: three passes of 2 examples in 2 steps of 4
    small = [Example("a", None, ex[0].training), Example("b", None, ex[1].training)]
    got = epoch_ends(small, [Stage(("training",), 3.0)], 4)
    assert [(e["step"], e["stage_epoch"]) for e in got] == [(1, 2.0), (2, 3.0)]


def test_resolve_heldout_defaults_and_errors():
    datasets = {"held": {}, "train": {}}
    assert resolve_heldout(None, "p", datasets) is None
    assert resolve_heldout({"dataset": "held"}, "p", datasets) == {
        "dataset": "held",
        "max_examples": 256,
    }
    assert (
        resolve_heldout({"dataset": "held", "max_examples": 8}, "p", datasets)["max_examples"] == 8
    )
    for spec, words in [
        ({"dataset": "held", "n": 3}, r"unknown key\(s\) studies\.p\.heldout\.n"),
        ({"max_examples": 3}, r"studies\.p\.heldout\.dataset is missing"),
        ({"dataset": "eval"}, r"studies\.p\.heldout\.dataset 'eval' is not a data set"),
        ({"dataset": "held", "max_examples": 0}, r"max_examples must be a positive integer"),
        ({"dataset": "held", "max_examples": True}, r"max_examples must be a positive integer"),
        ("held", r"studies\.p\.heldout: expected a mapping"),
    ]:
        with pytest.raises(ValueError, match=words):
            resolve_heldout(spec, "p", datasets)


def test_spread_rows_keeps_each_blocks_share():
    assert spread_rows(10, 4) == [0, 2, 5, 7]
    assert spread_rows(3, 5) == [0, 1, 2]
    # four blocks of unequal size, one of them small (as lookup is in the tiny eval split)
    rows = np.array(spread_rows(1219, 256))
    counts = np.histogram(rows, bins=[0, 393, 786, 1179, 1219])[0]
    assert len(set(rows)) == 256
    assert np.abs(counts - 256 * np.array([393, 393, 393, 40]) / 1219).max() < 1


def _pairs_file(path, prefix: str, numbers) -> pd.DataFrame:
    """A prompt set of short additions (their ids ``<prefix>-<i>``), short enough for
    the fixture's model."""
    df = pd.DataFrame(
        {
            "prompt_id": [f"{prefix}-{i}" for i in numbers],
            "prompt": [f"add {i} and {i + 2} ." for i in numbers],
            "reference": [f"it is {2 * i + 2} ." for i in numbers],
            "system": "",
        }
    )
    df.to_parquet(path)
    return df


def test_build_heldout_formats_rows_as_training_does(target, tmp_path):
    """Each row is the target's chat template with the generation prompt, then the
    reference and EOS (fusekit.chat's convention, spelt out here with the tokenizer's
    own calls); labels start after the prompt; 4 of 10 rows: rows 0, 2, 5 and 7."""
    tok = AutoTokenizer.from_pretrained(target)
    held_path, train_path = str(tmp_path / "held.parquet"), str(tmp_path / "train.parquet")
    held = _pairs_file(held_path, "held", range(10))
    _pairs_file(train_path, "train", range(10, 30))
    rows = build_heldout(tok, held_path, 4, 64, train_path)
    expected = []
    for prompt, reference in held[["prompt", "reference"]].to_numpy():
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        p = tok(text, add_special_tokens=False)["input_ids"]
        r = tok(reference, add_special_tokens=False)["input_ids"]
        expected.append((p + r + [tok.eos_token_id], len(p)))
    assert [(r.input_ids, r.n_prompt) for r in rows] == [expected[i] for i in (0, 2, 5, 7)]
    # a held-out prompt that training also sees is refused, naming the file and the row
    _pairs_file(tmp_path / "leak.parquet", "train", [20, 3, 21])
    leak = r"held\.parquet: row 3 \(prompt_id 'held-3'\): .*'train-3'"
    with pytest.raises(DataError, match=leak):
        build_heldout(tok, held_path, 4, 64, str(tmp_path / "leak.parquet"))
    with pytest.raises(DataError, match="none of the 4 held-out rows fits .*max_length = 5 "):
        build_heldout(tok, held_path, 4, 5)
    # a row longer than max_length is dropped, not cut
    lengths = sorted(len(ids) for ids, _ in expected)
    kept = build_heldout(tok, held_path, 10, lengths[5])
    fit = [n for n in lengths if n <= lengths[5]]
    assert sorted(len(r.input_ids) for r in kept) == fit and len(fit) < len(lengths)


def test_heldout_loss_is_the_mean_token_cross_entropy(target):
    """Against a plain version: each row alone (no padding), its log-softmax read at the
    next token of every reference position, summed over all rows, over their tokens."""
    from fusekit.train.sequences import Row

    tok = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    rng = np.random.default_rng(3)
    rows = [Row(rng.integers(5, len(tok), n).tolist(), p) for n, p in [(9, 4), (5, 1), (12, 7)]]
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for r in rows:
            logp = torch.log_softmax(model(torch.tensor([r.input_ids])).logits[0].double(), -1)
            for i in range(r.n_prompt, len(r.input_ids)):
                nll -= float(logp[i - 1, r.input_ids[i]])
                tokens += 1
    model.train()
    got, n = heldout_loss(model, rows, 2, tok.pad_token_id, "cpu")
    assert n == tokens == 5 + 4 + 5
    assert got == pytest.approx(nll / tokens, rel=1e-5)
    assert model.training and all(p.grad is None for p in model.parameters())
    model.eval()
    heldout_loss(model, rows, 2, tok.pad_token_id, "cpu")
    assert not model.training  # the mode it was in


def test_preserved_rng_puts_every_generator_back():
    def draws():
        return (random.random(), float(np.random.rand()), float(torch.rand(1)))

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = draws()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with preserved_rng():
        draws()
        draws()
    assert draws() == expected


def _dropout_target(target, tmp_path):
    """The target with attention dropout, so that training draws random numbers: an
    evaluation that drew any would change the next dropout masks, hence the weights."""
    d = tmp_path / "dropout_target"
    shutil.copytree(target, d)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "attention_dropout": 0.3}))
    return d


def test_heldout_loss_leaves_the_weights_byte_identical(target, tmp_path):
    model_dir = _dropout_target(target, tmp_path)
    tok = AutoTokenizer.from_pretrained(model_dir)
    _pairs_file(tmp_path / "held.parquet", "held", range(12))
    rows = build_heldout(tok, str(tmp_path / "held.parquet"), 8, 64)
    ex = _examples()
    stages, optim, cfg = _two_stages(first_epochs=2.0)

    def train(name, heldout=None, stop_after=None):
        return train_fusion(
            str(model_dir),
            {},
            ex,
            stages,
            optim,
            cfg,
            str(tmp_path / name),
            str(tmp_path / f"ckpt_{name}"),
            7,
            stop_after=stop_after,
            heldout=heldout,
        )

    train("without")
    train("with", rows)
    a, b = tmp_path / "without", tmp_path / "with"
    files = sorted(p.name for p in b.iterdir())
    assert files == sorted([*(p.name for p in a.iterdir()), "heldout_log.csv"])
    for name in ("model.safetensors", "train_log.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert not (a / "heldout_log.csv").exists()
    curve = pd.read_csv(b / "heldout_log.csv")
    # before training; after stage 0's two passes over 18 examples in steps of 4 (the
    # first ends in step ceil(18 / 4) = 5, the second in step 36 / 4 = 9); after stage
    # 1's one pass (18 examples, steps 10-14)
    assert curve.columns.tolist() == HELDOUT_COLUMNS
    assert curve[["step", "stage", "stage_epoch", "epoch"]].values.tolist() == [
        [0, 0, 0, 0],
        [5, 0, 1, 1],
        [9, 0, 2, 2],
        [14, 1, 1, 3],
    ]
    assert (curve.examples == 8).all() and (curve.tokens == sum(r.n_tokens for r in rows)).all()
    assert np.isfinite(curve.loss).all() and (curve.loss > 0).all()
    assert curve.loss.nunique() == 4  # every point after other weights
    # interrupted after step 7 (checkpoint at step 6, after the epoch end at step 5) and
    # resumed: the same curve, the points before the checkpoint kept in it
    train("resumed", rows, stop_after=7)
    train("resumed", rows)
    assert (b / "heldout_log.csv").read_bytes() == (
        tmp_path / "resumed" / "heldout_log.csv"
    ).read_bytes()
    assert (a / "model.safetensors").read_bytes() == (
        tmp_path / "resumed" / "model.safetensors"
    ).read_bytes()

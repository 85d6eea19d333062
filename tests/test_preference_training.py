"""Preference studies through the one training loop: SFT, reference log-probs computed
once, LN-DPO and WRPO stages from the registry, on a tiny model and hand-made data."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fusekit.io import write_table
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.train.preference import train_preference_variant
from fusekit.train.reference import score_reference_logps
from fusekit.train.sequences import attach_reference, build_sequence_examples

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 128,
}
OPTIM = {
    "name": "adamw",
    "lr": 3e-3,
    "schedule": "constant",
    "global_batch_size": 8,
    "max_length": 96,
}
TRAIN = {"micro_batch_size": 4, "save_every": 0, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("pref")
    corpus = build_corpus(0, {"pretrain": 40})
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 30), "metaspace_bpe", 300, "vicuna")
    build_model("LlamaForCausalLM", tok, SIZE, seed=0).save_pretrained(root / "target")
    tok.save_pretrained(root / "target")
    data = corpus.head(24).reset_index(drop=True)
    sft = pd.DataFrame(
        {"prompt_id": data.prompt_id, "prompt": data.prompt, "response": data.reference}
    )
    # chosen: the reference; rejected: a refusal the SFT data never shows
    pairs = pd.DataFrame(
        {
            "prompt_id": data.prompt_id,
            "prompt": data.prompt,
            "chosen_response": data.reference,
            "rejected_response": "sorry , i can not say",
        }
    )
    quads = pd.DataFrame(
        {
            "prompt_id": data.prompt_id,
            "prompt": data.prompt,
            "ws_response": data.reference,
            "wt_response": data.answer,
            "l_response": "sorry , i can not say",
        }
    )
    for name, frame in (("sft", sft), ("pairs", pairs), ("quads", quads)):
        write_table(frame, root / f"{name}.parquet")
    return root


def logp_by_hand(model_dir, prompt: str, response: str) -> tuple[float, int]:
    """log pi(response | prompt) from one unpadded forward pass and log_softmax."""
    from fusekit.backends.hf import load_causal_lm, load_tokenizer
    from fusekit.chat import encode_example

    tok = load_tokenizer(str(model_dir), {})
    model = load_causal_lm(str(model_dir), {})
    enc = encode_example(tok, prompt, response)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([enc.input_ids])).logits[0]
    logp = torch.log_softmax(logits.double(), -1)
    ids = enc.input_ids
    total = sum(logp[t - 1, ids[t]].item() for t in range(enc.n_prompt, len(ids)))
    return total, len(ids) - enc.n_prompt


def test_sft_reference_and_ln_dpo(world, tmp_path):
    sft = {"stages": [{"objective": "sft", "epochs": 4}]}
    log = train_preference_variant(
        sft,
        str(world / "sft.parquet"),
        None,
        str(world / "target"),
        {},
        OPTIM,
        TRAIN,
        1,
        str(tmp_path / "SFT"),
        str(tmp_path / "c1"),
    )
    assert log.loss.iloc[-3:].mean() < log.loss.iloc[:3].mean()
    ref = score_reference_logps(
        str(world / "pairs.parquet"),
        "pair",
        str(tmp_path / "SFT"),
        {},
        96,
        str(tmp_path / "ref.parquet"),
        batch_size=5,  # padded batches of uneven size
    )
    pairs = pd.read_parquet(world / "pairs.parquet")
    first = pairs.iloc[0]
    for row, column in ((0, "chosen_response"), (1, "rejected_response")):
        got = ref[(ref.prompt_id == first.prompt_id) & (ref.row == row)].iloc[0]
        want, n = logp_by_hand(tmp_path / "SFT", first.prompt, first[column])
        assert got.logp_sum == pytest.approx(want, abs=1e-3) and got.n_tokens == n
    dpo = {"stages": [{"objective": "ln_dpo", "beta": 2.0, "epochs": 6}]}
    log = train_preference_variant(
        dpo,
        str(world / "pairs.parquet"),
        str(tmp_path / "ref.parquet"),
        str(tmp_path / "SFT"),
        {},
        {**OPTIM, "lr": 1e-2},
        TRAIN,
        1,
        str(tmp_path / "DPO"),
        str(tmp_path / "c2"),
    )
    # the policy moves towards the chosen responses: the reward margin grows from 0
    assert log["rewards/margins"].iloc[0] == pytest.approx(0.0, abs=1e-4)
    assert log["rewards/margins"].iloc[-3:].mean() > 0.05
    assert log["rewards/accuracies"].iloc[-3:].mean() > 0.5
    assert log.loss.iloc[-3:].mean() < log.loss.iloc[0]


def test_reference_file_must_match_the_data(world, tmp_path):
    from fusekit.backends.hf import load_tokenizer

    tok = load_tokenizer(str(world / "target"), {})
    ex = build_sequence_examples(tok, pd.read_parquet(world / "pairs.parquet"), "pair", 96)
    ref = pd.DataFrame(
        {
            "prompt_id": [ex[0].prompt_id],
            "row": [0],
            "logp_sum": [-1.0],
            "n_tokens": [ex[0].rows[0].n_tokens],
        }
    )
    with pytest.raises(ValueError, match=r"no row 1 for prompt"):
        attach_reference(ex[:1], ref)
    ref.loc[0, "n_tokens"] += 1
    with pytest.raises(ValueError, match=r"row 0 has .* tokens, the training data"):
        attach_reference(ex[:1], ref)
    with pytest.raises(ValueError, match="need reference log-probs"):
        train_preference_variant(
            {"stages": [{"objective": "dpo", "beta": 0.1, "epochs": 1}]},
            str(world / "pairs.parquet"),
            None,
            str(world / "target"),
            {},
            OPTIM,
            TRAIN,
            1,
            str(tmp_path / "x"),
            str(tmp_path / "cx"),
        )
    with pytest.raises(ValueError, match="needs hyperparameters"):
        train_preference_variant(
            {"stages": [{"objective": "simpo", "epochs": 1}]},
            str(world / "pairs.parquet"),
            None,
            str(world / "target"),
            {},
            OPTIM,
            TRAIN,
            1,
            str(tmp_path / "y"),
            str(tmp_path / "cy"),
        )


def test_wrpo_alpha_rises_over_the_stage(world, tmp_path):
    ref = score_reference_logps(
        str(world / "quads.parquet"),
        "quadruple",
        str(world / "target"),
        {},
        96,
        str(tmp_path / "ref.parquet"),
    )
    assert sorted(ref.row.unique()) == [0, 1, 2]
    stage = {"objective": "wrpo", "beta": 0.1, "alpha_max": 0.1, "epochs": 2}
    log = train_preference_variant(
        {"stages": [stage]},
        str(world / "quads.parquet"),
        str(tmp_path / "ref.parquet"),
        str(world / "target"),
        {},
        OPTIM,
        TRAIN,
        1,
        str(tmp_path / "W"),
        str(tmp_path / "cw"),
    )
    # 24 quadruples, batches of 8, 2 epochs: T = 6 steps, alpha(t) = 0.1 * t / 6
    assert log.cur_alpha.tolist() == pytest.approx([0.1 * t / 6 for t in range(6)])
    assert {"rewards/source_chosen", "rewards/target_chosen"} <= set(log.columns)

"""FuseRL through the one training loop: its data builder, the prompt-major example
layout with a source mask, reference log-probs of every row, and FuseSFT / FusePO losses
checked against a dense computation on a tiny model."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from test_preference_build import write_inputs
from test_preference_training import OPTIM, TRAIN, logp_by_hand, world  # noqa: F401

from fusekit.io import write_table
from fusekit.preference.build import build_fuserl_data
from fusekit.train.loop import Stage, _objective_loss
from fusekit.train.preference import train_preference_variant
from fusekit.train.reference import score_reference_logps
from fusekit.train.sequences import build_sequence_examples, collate_extras, row_order

SORRY = "sorry , i can not say"


@pytest.fixture(scope="module")
def groups(world):  # noqa: F811
    """Three prompts x sources a, b, c: c never answers prompt 2; a has no pair on
    prompt 3 (best == worst)."""
    corpus = pd.read_parquet(world / "sft.parquet").head(3)
    rows = []
    for i, rec in enumerate(corpus.itertuples()):
        for j, src in enumerate(("a", "b", "c")):
            if i == 1 and src == "c":
                continue
            pair = not (i == 2 and src == "a")
            rows.append(
                {
                    "prompt_id": rec.prompt_id,
                    "prompt": rec.prompt,
                    "model": src,
                    "best_response": rec.response if j == 0 else f"{rec.response} {src}",
                    "best_score": 1.0 + j + i,
                    "worst_response": SORRY if pair else rec.response,
                    "worst_score": -1.0 if pair else 1.0 + i,
                    "has_pair": pair,
                }
            )
    table = pd.DataFrame(rows)
    write_table(table, world / "groups.parquet")
    return table


def tok(world):  # noqa: F811
    from fusekit.backends.hf import load_tokenizer

    return load_tokenizer(str(world / "target"), {})


def test_grouped_examples_are_prompt_major_with_a_source_mask(world, groups):  # noqa: F811
    sft = build_sequence_examples(tok(world), groups, "weighted_sft", 96)
    assert [len(e.rows) for e in sft] == [3, 3, 3]
    assert [e.extras["mask"] for e in sft] == [[1, 1, 1], [1, 1, 0], [1, 1, 1]]
    assert sft[1].extras["scores"] == [2.0, 3.0, 0.0]
    # a missing source's row is the prompt with an empty response (EOS only)
    assert sft[1].rows[2].n_tokens == 1
    po = build_sequence_examples(tok(world), groups, "group", 96)
    assert [e.extras["mask"] for e in po] == [[1, 1, 1], [1, 1, 0], [0, 1, 1]]
    assert po[0].extras["rewards"][1] == [2.0, -1.0]
    assert row_order(po[:2])[:7] == [(0, i) for i in range(6)] + [(1, 0)]
    extras = collate_extras(po)
    assert extras["rewards"].shape == (3, 3, 2) and extras["source_mask"].dtype == torch.bool
    bad = pd.concat([groups, groups.head(1)])
    with pytest.raises(ValueError, match="has two lines for source 'a'"):
        build_sequence_examples(tok(world), bad, "group", 96)
    with pytest.raises(ValueError, match=r"missing columns \['has_pair'\]"):
        build_sequence_examples(tok(world), groups.drop(columns="has_pair"), "group", 96)


def test_fuse_sft_loss_is_the_reward_weighted_token_mean(world, groups):  # noqa: F811
    """The loop's FuseSFT loss on a micro-batch equals softmax(score / T)-weighted mean
    token NLL per prompt, from unpadded forward passes (an independent computation)."""
    from fusekit.backends.hf import load_causal_lm

    model = load_causal_lm(str(world / "target"), {})
    t = tok(world)
    examples = build_sequence_examples(t, groups, "weighted_sft", 96)
    stage = Stage.from_config({"objective": "fuse_sft", "temperature": 0.5, "epochs": 1})
    with torch.no_grad():
        loss, metrics = _objective_loss(model, stage, examples, t.pad_token_id, "cpu", 0, 1)
    want = []
    for e, (_, lines) in zip(examples, groups.groupby("prompt_id", sort=True), strict=True):
        by = lines.set_index("model")
        kept = [s for s, m in zip("abc", e.extras["mask"], strict=True) if m]
        z = [math.exp(by.loc[s, "best_score"] / 0.5) for s in kept]
        w = [x / sum(z) for x in z]
        nll = []
        for s in kept:
            lp, n = logp_by_hand(world / "target", by.loc[s, "prompt"], by.loc[s, "best_response"])
            nll.append(-lp / n)
        want.append(sum(wi * li for wi, li in zip(w, nll, strict=True)))
    assert loss.item() == pytest.approx(sum(want) / len(want), rel=1e-4)
    assert 0 < metrics["weights/top_mean"] <= 1


def test_fusepo_reference_rows_and_training(world, groups, tmp_path):  # noqa: F811
    ref = score_reference_logps(
        str(world / "groups.parquet"), "group", str(world / "target"), {}, 96,
        str(tmp_path / "ref.parquet"), batch_size=2,
    )  # fmt: skip
    assert sorted(ref.row.unique()) == list(range(6))
    first = groups[groups.prompt_id == sorted(groups.prompt_id)[0]].set_index("model")
    got = ref[(ref.prompt_id == sorted(groups.prompt_id)[0]) & (ref.row == 3)].iloc[0]
    want, n = logp_by_hand(world / "target", first.loc["b", "prompt"], SORRY)  # b's worst
    assert got.logp_sum == pytest.approx(want, abs=1e-3) and got.n_tokens == n
    for objective, hp in (("fusepo_dpo", {"beta": 0.5}), ("rloo_offline", {"beta_kl": 0.05})):
        stage = {"objective": objective, **hp, "temperature": 0.5, "epochs": 8}
        log = train_preference_variant(
            {"stages": [stage]},
            str(world / "groups.parquet"),
            str(tmp_path / "ref.parquet"),
            str(world / "target"),
            {},
            {**OPTIM, "lr": 1e-2, "global_batch_size": 3},
            {**TRAIN, "micro_batch_size": 3},
            1,
            str(tmp_path / objective),
            str(tmp_path / f"c_{objective}"),
        )
        assert len(log) == 8 and log.loss.notna().all()
        if objective == "fusepo_dpo":
            # from the reference: margins start at 0 and grow for the kept pairs
            assert log["rewards/margins"].iloc[0] == pytest.approx(0.0, abs=1e-4)
            assert log["rewards/margins"].iloc[-2:].mean() > 0.05


def test_build_fuserl_data_splits_and_drops(tmp_path):
    a = [("x", 0.5), ("y", 0.1)] * 5  # a pair on every prompt
    b = [("z", 0.3), ("z", 0.3)] * 5  # never a pair (identical)
    gens, scores = write_inputs(tmp_path, {"a": a, "b": b})
    out = [str(tmp_path / f) for f in ("fusesft.parquet", "fusepo.parquet", "counts.csv")]
    sft, po = build_fuserl_data(
        str(tmp_path / "prompts.parquet"), gens, scores, "rm", 0, {"sft": 2, "po": 3}, 0.0, *out
    )
    assert sft.prompt_id.nunique() == 2 and po.prompt_id.nunique() == 3
    assert not set(sft.prompt_id) & set(po.prompt_id)
    assert (sft.groupby("prompt_id").size() == 2).all()  # every source's best response
    assert set(po[po.has_pair].model) == {"a"}
    counts = pd.read_csv(out[2]).set_index("what").n
    assert counts["fusepo_pairs"] == 3 and counts["po_dropped_no_pair"] == 0
    b_pairless = [("z", 0.3), ("z", 0.3)] * 5
    gens, scores = write_inputs(tmp_path, {"b": b_pairless})
    _, po = build_fuserl_data(
        str(tmp_path / "prompts.parquet"), gens, scores, "rm", 0, {"sft": 2, "po": 3}, 0.0, *out
    )
    assert po.empty and pd.read_csv(out[2]).set_index("what").n["po_dropped_no_pair"] == 3
    with pytest.raises(ValueError, match="needs parts sft and po"):
        build_fuserl_data(
            str(tmp_path / "prompts.parquet"), gens, scores, "rm", 0, {"sft": 1}, 0.0, *out
        )

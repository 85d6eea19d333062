"""Preference data builders (fusekit.preference) on hand-made tables with hand-worked answers.

Every expected value below is worked out by hand from the rules in PREFERENCE_FUSION.md
§2-4 as restated in the module docstrings.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from fusekit.preference import (
    FUSECHAT3_PARTS,
    WRPO_PARTS,
    answers_match,
    best_source_responses,
    best_source_share,
    candidates,
    composition,
    extract_answer,
    fusechat3_code,
    fusechat3_instruction,
    fusechat3_math,
    fusechat3_single_source,
    fuserl_groups,
    math_correctness,
    score_matrix,
    split_prompts,
    split_sizes,
    wrpo_data,
)
from fusekit.preference.tables import count

ALL_SFT = {"sft": 1, "dpo": 0}  # every eligible prompt to SFT: checks the SFT choice
ALL_DPO = {"sft": 0, "dpo": 1}  # every eligible prompt to DPO: checks the pair choice


def tables(rows):
    """(generations, scores) from rows (prompt_id, model, sample, response, score)."""
    gens = pd.DataFrame(
        [
            {
                "prompt_id": p,
                "model": m,
                "sample": s,
                "prompt": f"question {p}",
                "response": r,
                "n_tokens": len(r.split()),
                "finish_reason": "stop",
            }
            for p, m, s, r, _ in rows
        ]
    )
    scores = pd.DataFrame(
        [
            {"prompt_id": p, "model": m, "sample": s, "reward_model": "rm", "score": x}
            for p, m, s, _, x in rows
        ]
    )
    return gens, scores


def cands_of(rows):
    return candidates(*tables(rows))


def by_prompt(df):
    return {r["prompt_id"]: r for r in df.to_dict("records")}


# ---------------------------------------------------------------- splits


def test_split_sizes_reproduce_the_card_counts_exactly():
    # papers/fusechat3_data_composition.csv: total -> sft; rounding to nearest would give
    # 8,150 for Magpie-Pro-DPO, the card has 8,149 (floor)
    for total, sft in ((51098, 20439), (20374, 8149), (9435, 3774)):
        assert split_sizes(total, FUSECHAT3_PARTS) == {"sft": sft, "dpo": total - sft}
    assert split_sizes(10, WRPO_PARTS) == {"target_sft": 3, "wrpo": 7}
    assert split_sizes(10, {"a": 1, "b": 1, "c": 1}) == {"a": 3, "b": 3, "c": 4}
    assert split_sizes(0, FUSECHAT3_PARTS) == {"sft": 0, "dpo": 0}
    for bad in ({}, {"a": 0}, {"a": -1, "b": 2}, {"a": 0.5, "b": 1}):
        with pytest.raises(ValueError):
            split_sizes(5, bad)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 11, 49, 100])
def test_split_proportions_are_exact(n):
    ids = [f"p{i:03d}" for i in range(n)]
    got = split_prompts(ids, FUSECHAT3_PARTS, seed=1).split.value_counts().to_dict()
    want = {k: v for k, v in split_sizes(n, FUSECHAT3_PARTS).items() if v}
    assert got == want
    assert split_sizes(n, FUSECHAT3_PARTS)["sft"] == (4 * n) // 10


def test_split_is_deterministic_and_independent_of_row_order():
    ids = [f"p{i:03d}" for i in range(60)]
    a = split_prompts(ids, FUSECHAT3_PARTS, seed=7)
    shuffled = list(np.random.default_rng(0).permutation(ids)) + ids[:10]  # and repeats
    b = split_prompts(shuffled, FUSECHAT3_PARTS, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.prompt_id) == sorted(ids)
    c = split_prompts(ids, FUSECHAT3_PARTS, seed=8)
    assert (a.split != c.split).any()  # the seed matters
    # the SFT share is not simply the first prompts in id order
    assert set(a[a.split == "sft"].prompt_id) != set(ids[:24])


def test_split_rejects_missing_ids():
    with pytest.raises(ValueError, match="missing"):
        split_prompts(["a", None], FUSECHAT3_PARTS, seed=0)


# ---------------------------------------------------------------- candidate table checks


def test_candidates_join_and_mark_empty_responses():
    gens, scores = tables(
        [("p", "A", 0, "yes", 0.5), ("p", "A", 1, "  ", -math.inf), ("p", "B", 0, "", 0.9)]
    )
    c = candidates(gens, scores)
    assert list(c.columns) == [
        "prompt_id",
        "model",
        "sample",
        "prompt",
        "response",
        "score",
        "usable",
    ]
    assert c.usable.tolist() == [True, False, False]
    assert c.attrs["empty_responses"] == 2


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_score_names_prompt_model_and_sample(bad):
    gens, scores = tables([("p1", "A", 0, "a", 0.5), ("p2", "B", 3, "b", bad)])
    with pytest.raises(ValueError, match=r"'p2' model 'B' sample 3"):
        candidates(gens, scores)


def test_scores_for_responses_not_in_generations_are_named():
    gens, scores = tables([("p1", "A", 0, "a", 0.5)])
    extra = pd.DataFrame(
        [{"prompt_id": "p9", "model": "Z", "sample": 4, "reward_model": "rm", "score": 0.1}]
    )
    with pytest.raises(ValueError, match=r"not in the generations: \('p9', 'Z', 4\)"):
        candidates(gens, pd.concat([scores, extra]))
    with pytest.raises(ValueError, match=r"without a score: \('p1', 'A', 0\)"):
        candidates(gens, scores.iloc[:0])
    with pytest.raises(ValueError, match=r"'p1' model 'A' sample 0 appears more than once"):
        candidates(gens, pd.concat([scores, scores]))


def test_several_reward_models_need_a_choice():
    gens, scores = tables([("p1", "A", 0, "a", 0.5)])
    two = pd.concat([scores, scores.assign(reward_model="rm2", score=0.1)])
    with pytest.raises(ValueError, match="several reward models"):
        candidates(gens, two)
    assert candidates(gens, two, reward_model="rm2").score.tolist() == [0.1]
    with pytest.raises(ValueError, match="no scores from reward model 'rm3'"):
        candidates(gens, two, reward_model="rm3")


# ---------------------------------------------------------------- instruction following

IF_ROWS = [
    # gap 0.29 - 0.28: 0.00999999999999995 in float64, an exact 0.01: kept
    ("lo", "A", 0, "lo-a0", 0.29),
    ("lo", "A", 1, "lo-a1", 0.28),
    # gap 0.4 - 0.3: 0.10000000000000003 in float64, an exact 0.1: kept
    ("hi", "A", 0, "hi-a0", 0.3),
    ("hi", "A", 1, "hi-a1", 0.4),
    # gap 0.0099 and 0.1001: no pair
    ("small", "A", 0, "s-a0", 0.50),
    ("small", "A", 1, "s-a1", 0.4901),
    ("big", "A", 0, "b-a0", 0.6),
    ("big", "A", 1, "b-a1", 0.4999),
    # A and B qualify (gap 0.05 each), C does not (0.25) but has the best response
    ("choose", "A", 0, "c-a0", 0.80),
    ("choose", "A", 1, "c-a1", 0.75),
    ("choose", "B", 0, "c-b0", 0.85),
    ("choose", "B", 1, "c-b1", 0.90),
    ("choose", "C", 0, "c-c0", 0.95),
    ("choose", "C", 1, "c-c1", 0.70),
    # A and B both qualify with the same chosen score 0.5: source order decides
    ("tie", "A", 0, "t-a0", 0.45),
    ("tie", "A", 1, "t-a1", 0.5),
    ("tie", "B", 0, "t-b0", 0.5),
    ("tie", "B", 1, "t-b1", 0.46),
    # an empty response with the highest score is never chosen (nor rejected)
    ("empty", "A", 0, "", 0.99),
    ("empty", "A", 1, "e-a1", 0.30),
    ("empty", "A", 2, "e-a2", 0.28),
    # every response empty: dropped before anything else
    ("void", "A", 0, "", -math.inf),
    ("void", "A", 1, " ", -math.inf),
]


def test_instruction_pairs_by_hand():
    data = fusechat3_instruction(cands_of(IF_ROWS), seed=0, dataset="d", parts=ALL_DPO)
    pairs = by_prompt(data.pairs)
    assert set(pairs) == {"lo", "hi", "choose", "tie", "empty"}
    expect = {  # prompt: (model, chosen sample, rejected sample)
        "lo": ("A", 0, 1),
        "hi": ("A", 1, 0),
        "choose": ("B", 1, 0),
        "tie": ("A", 1, 0),
        "empty": ("A", 1, 2),
    }
    for pid, (model, c, r) in expect.items():
        row = pairs[pid]
        assert (row["chosen_model"], row["rejected_model"]) == (model, model), pid
        assert (row["chosen_sample"], row["rejected_sample"]) == (c, r), pid
        assert row["gap"] == pytest.approx(row["chosen_score"] - row["rejected_score"])
        assert row["split"] == "dpo" and row["domain"] == "instruction_following"
    assert pairs["lo"]["gap"] == pytest.approx(0.01)
    assert pairs["hi"]["gap"] == pytest.approx(0.1)
    assert pairs["choose"]["chosen_response"] == "c-b1"
    assert pairs["empty"]["chosen_response"] == "e-a1"
    counts = data.counts
    assert count(counts, "prompts") == 8
    assert count(counts, "empty_responses") == 3
    assert count(counts, "dropped_no_usable_response") == 1
    assert count(counts, "dropped_no_qualifying_pair") == 2  # small, big
    assert count(counts, "dpo") == 5 and count(counts, "sft") == 0
    assert data.sft.empty


def test_instruction_source_order_breaks_ties():
    data = fusechat3_instruction(
        cands_of(IF_ROWS), seed=0, dataset="d", parts=ALL_DPO, source_order=["B", "A", "C"]
    )
    row = by_prompt(data.pairs)["tie"]
    assert (row["chosen_model"], row["chosen_sample"], row["rejected_sample"]) == ("B", 0, 1)
    with pytest.raises(ValueError, match=r"\['C'\] are not in source_order"):
        fusechat3_instruction(
            cands_of(IF_ROWS), seed=0, dataset="d", parts=ALL_DPO, source_order=["B", "A"]
        )


def test_instruction_sft_is_the_best_response_overall():
    data = fusechat3_instruction(cands_of(IF_ROWS), seed=0, dataset="d", parts=ALL_SFT)
    sft = by_prompt(data.sft)
    # prompts without a qualifying pair are dropped before the split (small, big)
    assert set(sft) == {"lo", "hi", "choose", "tie", "empty"}
    assert (sft["choose"]["model"], sft["choose"]["sample"]) == ("C", 0)  # 0.95, unpaired C
    assert (sft["tie"]["model"], sft["tie"]["sample"]) == ("A", 1)  # 0.5 tie: A before B
    assert sft["empty"]["response"] == "e-a1"  # not the empty 0.99
    assert sft["lo"]["score"] == 0.29 and sft["hi"]["score"] == 0.4
    assert data.pairs.empty


def test_instruction_split_is_4_to_6_over_prompts_with_pairs():
    rows = []
    for i in range(20):
        rows += [(f"q{i:02d}", "A", 0, f"r{i}a", 0.5), (f"q{i:02d}", "A", 1, f"r{i}b", 0.45)]
    rows += [("nopair", "A", 0, "x", 0.5), ("nopair", "A", 1, "y", 0.5)]
    c = cands_of(rows)
    data = fusechat3_instruction(c, seed=3, dataset="d")
    assert len(data.sft) == 8 and len(data.pairs) == 12  # floor(20 * 4 / 10) = 8
    assert set(data.sft.prompt_id).isdisjoint(data.pairs.prompt_id)
    assert "nopair" not in set(data.sft.prompt_id) | set(data.pairs.prompt_id)
    # deterministic, and independent of the input row order
    again = fusechat3_instruction(c.sample(frac=1, random_state=5), seed=3, dataset="d")
    pd.testing.assert_frame_equal(data.sft, again.sft)
    pd.testing.assert_frame_equal(data.pairs, again.pairs)


def test_instruction_no_pair_anywhere_is_a_counted_drop_not_an_error(caplog):
    rows = [("p", "A", 0, "x", 0.5), ("p", "A", 1, "y", 0.2)]
    with caplog.at_level(logging.INFO, logger="fusekit"):
        data = fusechat3_instruction(cands_of(rows), seed=0, dataset="d")
    assert data.sft.empty and data.pairs.empty
    assert count(data.counts, "dropped_no_qualifying_pair") == 1
    assert "dropped_no_qualifying_pair: 1" in caplog.text


def test_split_then_drop_policy():
    rows = [("p", "A", 0, "x", 0.5), ("p", "A", 1, "y", 0.2)]
    data = fusechat3_instruction(
        cands_of(rows), seed=0, dataset="d", parts=ALL_DPO, policy="split_then_drop"
    )
    assert data.pairs.empty and data.sft.empty
    assert count(data.counts, "dropped_no_qualifying_pair") == 1
    with pytest.raises(ValueError, match="unknown split policy"):
        fusechat3_instruction(cands_of(rows), seed=0, dataset="d", policy="nope")


# ---------------------------------------------------------------- mathematics


def test_extract_answer_rules():
    assert extract_answer("so \\boxed{\\frac{1}{2}} and then \\boxed{7}") == "7"
    assert extract_answer("x \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert extract_answer("It costs 1,000 + 80. The answer is 1,080.") == "1,080."
    assert extract_answer("3 + 4 = 7, then 7 * 2 = 14 apples") == "14"
    assert extract_answer("1,234,567 items") == "1234567"
    assert extract_answer("no digits here") is None
    assert answers_match("1,080.", "1080")
    assert answers_match("\\frac{3}{4}", "0.75") and answers_match("3/4", "0.75")
    assert answers_match("\\dfrac{3}{4}", "\\frac{3}{4}")
    assert answers_match("$12$", "12.0") and answers_match("50\\%", "50")
    assert not answers_match("x=2", "2")
    assert not answers_match("13", "12")
    assert not answers_match(None, "1")
    assert answers_match("Paris", "Paris.") and not answers_match("paris", "Paris")


def test_math_correctness_table():
    gens, _ = tables([("m", "A", 0, "The answer is 4.", 0.0), ("m", "A", 1, "it is 5", 0.0)])
    gold = pd.DataFrame({"prompt_id": ["m"], "answer": ["4"]})
    got = math_correctness(gens, gold)
    assert got.correct.tolist() == [True, False]
    assert got.answer.tolist() == ["4.", "5"]
    with pytest.raises(ValueError, match=r"no answer for prompts \['m'\]"):
        math_correctness(gens, gold.iloc[:0])


MATH_ROWS = [
    # A: correct 0.6, correct 0.7, incorrect 0.65 -> pair A (0.7 vs 0.65, gap 0.05);
    # B: correct 0.9 (the SFT choice), incorrect 0.2 (gap 0.7: no pair)
    ("m1", "A", 0, "A0", 0.60),
    ("m1", "A", 1, "A1", 0.70),
    ("m1", "A", 2, "A2", 0.65),
    ("m1", "B", 0, "B0", 0.90),
    ("m1", "B", 1, "B1", 0.20),
    # every response wrong: dropped
    ("m2", "A", 0, "A0", 0.9),
    ("m2", "A", 1, "A1", 0.8),
    # every response right: no pair; under split_then_fallback it goes to SFT
    ("m3", "A", 0, "A0", 0.4),
    ("m3", "A", 1, "A1", 0.5),
]
CORRECT = {("m1", "A", 0), ("m1", "A", 1), ("m1", "B", 0), ("m3", "A", 0), ("m3", "A", 1)}


def correctness_of(rows):
    return pd.DataFrame(
        [
            {"prompt_id": p, "model": m, "sample": s, "correct": (p, m, s) in CORRECT}
            for p, m, s, _, _ in rows
        ]
    )


def test_math_correct_first_then_score():
    c = cands_of(MATH_ROWS)
    data = fusechat3_math(c, correctness_of(MATH_ROWS), seed=0, dataset="d", parts=ALL_DPO)
    pair = by_prompt(data.pairs)["m1"]
    assert (pair["chosen_model"], pair["chosen_sample"], pair["rejected_sample"]) == ("A", 1, 2)
    assert pair["gap"] == pytest.approx(0.05)
    assert set(data.pairs.prompt_id) == {"m1"}
    sft = by_prompt(data.sft)
    assert set(sft) == {"m3"} and sft["m3"]["sample"] == 1  # the fallback, its best
    assert count(data.counts, "dropped_no_correct_response") == 1
    assert count(data.counts, "dpo_without_pair_to_sft") == 1
    data = fusechat3_math(c, correctness_of(MATH_ROWS), seed=0, dataset="d", parts=ALL_SFT)
    sft = by_prompt(data.sft)
    assert (sft["m1"]["model"], sft["m1"]["sample"]) == ("B", 0)
    assert set(sft) == {"m1", "m3"}


def test_math_correctness_must_match_the_candidates():
    c = cands_of(MATH_ROWS)
    table = correctness_of(MATH_ROWS)
    with pytest.raises(ValueError, match=r"no row for responses \('m1', 'A', 0\)"):
        fusechat3_math(c, table.iloc[1:], seed=0, dataset="d")
    missing = table.assign(correct=table.correct.astype(object))
    missing.loc[2, "correct"] = None
    with pytest.raises(ValueError, match=r"no correct value for \('m1', 'A', 2\)"):
        fusechat3_math(c, missing, seed=0, dataset="d")
    extra = table.iloc[:1].assign(prompt_id="zz")
    with pytest.raises(ValueError, match=r"not in the candidates: \('zz', 'A', 0\)"):
        fusechat3_math(c, pd.concat([table, extra]), seed=0, dataset="d")


# ---------------------------------------------------------------- coding

CODE_ROWS = [
    ("c1", "A", 0, "A0", 0.5),  # passes
    ("c1", "A", 1, "A1", 0.9),  # times out: fails despite the top score
    ("c1", "B", 0, "B0", 0.7),  # passes
    ("c1", "B", 1, "B1", 0.1),  # errors
    ("c2", "A", 0, "A0", 0.8),  # fails
    ("c2", "A", 1, "", -math.inf),  # empty
]
STATUS = {("c1", "A", 0): "passed", ("c1", "A", 1): "timeout", ("c1", "B", 0): "passed"}
STATUS |= {("c1", "B", 1): "error", ("c2", "A", 0): "failed", ("c2", "A", 1): "error"}


def test_code_passing_best_against_failing_worst():
    c = cands_of(CODE_ROWS)
    results = pd.DataFrame(
        [
            {"prompt_id": p, "model": m, "sample": s, "status": st, "passed": st == "passed"}
            for (p, m, s), st in STATUS.items()
        ]
    )
    data = fusechat3_code(c, results, seed=0, dataset="d", parts=ALL_DPO)
    pair = by_prompt(data.pairs)["c1"]
    # A (0.5 vs 0.9, gap -0.4) and B (0.7 vs 0.1) both pair: no gap rule; B's chosen is higher
    assert (pair["chosen_model"], pair["chosen_sample"], pair["rejected_sample"]) == ("B", 0, 1)
    assert set(data.pairs.prompt_id) == {"c1"}
    assert count(data.counts, "dropped_all_fail") == 1  # c2
    assert count(data.counts, "tests_timeout") == 1
    assert count(data.counts, "tests_error") == 1  # the empty response is not counted here
    assert count(data.counts, "empty_responses") == 1
    data = fusechat3_code(c, results, seed=0, dataset="d", parts=ALL_SFT)
    sft = by_prompt(data.sft)
    assert set(sft) == {"c1"} and (sft["c1"]["model"], sft["c1"]["sample"]) == ("B", 0)


# ---------------------------------------------------------------- single source, composition


def test_single_source_domain_is_sft_only():
    gens, _ = tables(
        [
            ("z1", "Q", 0, "好", 0.0),
            ("z1", "Q", 1, "也好", 0.0),
            ("z1", "X", 0, "other", 0.0),
            ("z2", "Q", 0, "  ", 0.0),
            ("z3", "X", 0, "only X", 0.0),
        ]
    )
    data = fusechat3_single_source(gens, source="Q", dataset="alpaca_gpt4_zh")
    assert data.sft.response.tolist() == ["好"]
    assert data.sft.score.isna().all() and data.pairs.empty
    assert count(data.counts, "dropped_no_usable_response") == 2  # z2 empty, z3 not from Q
    assert count(data.counts, "empty_responses") == 1


def test_composition_beside_the_card():
    reported = pd.DataFrame(
        {
            "category": ["instruction_following", "chinese", "total"],
            "dataset": ["UltraFeedback", "alpaca_gpt4_zh", None],
            "total": [51098, 2471, 53569],
            "sft": [20439, 2471, 22910],
            "dpo": [30659, 0, 30659],
        }
    )
    counts = pd.DataFrame(
        {
            "domain": ["instruction_following"] * 3 + ["coding"] * 2,
            "dataset": ["UltraFeedback"] * 3 + ["tiny_code"] * 2,
            "what": ["sft", "dpo", "prompts", "sft", "dpo"],
            "n": [4, 6, 11, 2, 1],
        }
    )
    table = composition(counts, reported)
    assert list(table.columns) == [
        "category",
        "dataset",
        "total",
        "sft",
        "dpo",
        "reported_total",
        "reported_sft",
        "reported_dpo",
    ]
    rows = {(r["category"], r["dataset"]): r for r in table.to_dict("records")}
    uf = rows[("instruction_following", "UltraFeedback")]
    assert (uf["total"], uf["sft"], uf["dpo"], uf["reported_sft"]) == (10, 4, 6, 20439)
    assert pd.isna(rows[("chinese", "alpaca_gpt4_zh")]["sft"])  # ours missing: blank
    assert pd.isna(rows[("coding", "tiny_code")]["reported_total"])  # not on the card
    assert table.category.tolist() == [
        "instruction_following",
        "chinese",
        "coding",
        "total",
    ]
    total = table.iloc[-1]
    assert (total["total"], total["sft"], total["dpo"], total["reported_total"]) == (
        13,
        6,
        7,
        53569,
    )


# ---------------------------------------------------------------- WRPO

SOURCE_ROWS = []
for _p in ("w1", "w2", "w3", "w4", "w5", "w6", "s1", "s2"):
    SOURCE_ROWS += [(_p, "A", 0, f"{_p}-a0", 0.5), (_p, "A", 1, f"{_p}-a1", 0.6)]
    SOURCE_ROWS += [(_p, "B", 0, f"{_p}-b0", 0.9), (_p, "B", 1, f"{_p}-b1", 0.2)]
SOURCE_ROWS[-4:] = [  # s2: B's best is empty, so y_ws is A's 0.6
    ("s2", "A", 0, "s2-a0", 0.5),
    ("s2", "A", 1, "s2-a1", 0.6),
    ("s2", "B", 0, "", -math.inf),
    ("s2", "B", 1, "s2-b1", 0.2),
]
TARGET_ROWS = [
    ("w1", "T", 0, "t0", 0.3),
    ("w1", "T", 1, "t1", 0.5),
    ("w1", "T", 2, "t2", 0.1),
    ("w2", "T", 0, "same", 0.3),  # identical samples: dropped
    ("w2", "T", 1, "same", 0.3),
    ("w3", "T", 0, "x", 0.3),  # distinct texts, equal scores: dropped
    ("w3", "T", 1, "y", 0.3),
    ("w4", "T", 0, "only", 0.3),  # one non-empty sample: dropped
    ("w4", "T", 1, "", -math.inf),
    # w5: no target samples: dropped
    ("w6", "T", 0, "u0", 0.5),  # tie for the best: lowest sample
    ("w6", "T", 1, "u1", 0.5),
    ("w6", "T", 2, "u2", 0.1),
    ("w6", "T", 3, "u3", 0.1),
]
WRPO_SPLIT = pd.DataFrame(
    {
        "prompt_id": ["w1", "w2", "w3", "w4", "w5", "w6", "s1", "s2"],
        "split": ["wrpo"] * 6 + ["target_sft"] * 2,
    }
)


def test_wrpo_quadruples_by_hand():
    data = wrpo_data(cands_of(SOURCE_ROWS), cands_of(TARGET_ROWS), seed=0, split=WRPO_SPLIT)
    quads = by_prompt(data.quadruples)
    assert set(quads) == {"w1", "w6"}
    w1 = quads["w1"]
    assert (w1["ws_model"], w1["ws_sample"], w1["ws_score"]) == ("B", 0, 0.9)
    assert (w1["wt_sample"], w1["wt_score"], w1["l_sample"], w1["l_score"]) == (1, 0.5, 2, 0.1)
    assert (w1["wt_model"], w1["l_model"]) == ("T", "T")
    w6 = quads["w6"]
    assert (w6["wt_sample"], w6["l_sample"]) == (0, 2)  # ties: lowest sample
    sft = by_prompt(data.target_sft)
    assert set(sft) == {"s1", "s2"}
    assert (sft["s1"]["model"], sft["s1"]["sample"]) == ("B", 0)
    assert (sft["s2"]["model"], sft["s2"]["sample"]) == ("A", 1)  # never the empty one
    c = data.counts
    assert count(c, "dropped_identical_target_samples") == 1
    assert count(c, "dropped_tied_target_scores") == 1
    assert count(c, "dropped_too_few_target_samples") == 1
    assert count(c, "dropped_no_target_samples") == 1
    assert count(c, "empty_target_responses") == 1 and count(c, "empty_source_responses") == 1
    assert (count(c, "wrpo"), count(c, "target_sft")) == (2, 2)
    dropped = [w for w in c.what if w.startswith("dropped_") and "target" in w]
    assert count(c, "wrpo") + sum(count(c, w) for w in dropped) == 6  # a partition


def test_wrpo_default_split_is_a_seeded_third():
    source = cands_of(SOURCE_ROWS)
    data = wrpo_data(source, None, seed=11)
    assert len(data.target_sft) == 2  # floor(8 / 3)
    assert data.quadruples.empty
    again = wrpo_data(source.sample(frac=1, random_state=1), None, seed=11)
    pd.testing.assert_frame_equal(data.target_sft, again.target_sft)


def test_wrpo_bad_inputs_are_named():
    source = cands_of(SOURCE_ROWS)
    stray = cands_of(TARGET_ROWS + [("s1", "T", 0, "t", 0.2), ("s1", "T", 1, "u", 0.3)])
    with pytest.raises(ValueError, match=r"not WRPO prompts: \['s1'\]"):
        wrpo_data(source, stray, seed=0, split=WRPO_SPLIT)
    two = cands_of(TARGET_ROWS + [("w1", "U", 0, "t", 0.2)])
    with pytest.raises(ValueError, match="several models"):
        wrpo_data(source, two, seed=0, split=WRPO_SPLIT)


def test_best_source_share_and_subsets():
    source = cands_of(SOURCE_ROWS)
    share = best_source_share(best_source_responses(source))
    # B's 0.9 is the best of 7 prompts; on s2 it is empty and A's 0.6 wins
    assert share.model.tolist() == ["B", "A"] and share.prompts.tolist() == [7, 1]
    assert share.percentage.tolist() == [87.5, 12.5]
    only_a = best_source_responses(source, sources=["A"])
    assert set(only_a.model) == {"A"} and set(only_a["sample"]) == {1}
    with pytest.raises(ValueError, match=r"\['Z'\] have no responses"):
        best_source_responses(source, sources=["A", "Z"])


# ---------------------------------------------------------------- FuseRL

FUSERL_ROWS = [
    ("f1", "A", 0, "a0", 0.2),
    ("f1", "A", 1, "a1", 0.8),
    ("f1", "A", 2, "a2", 0.5),
    ("f1", "B", 0, "b0", 0.4),  # equal scores: no pair
    ("f1", "B", 1, "b1", 0.4),
    ("f1", "C", 0, "", -math.inf),  # all empty: C left out of f1
    ("f2", "A", 0, "", -math.inf),
    ("f2", "B", 0, "b0", 0.1),
    ("f2", "B", 1, "b1", 0.3),
    ("f2", "C", 0, "c0", 0.7),  # one response: no pair
    ("f3", "A", 0, "a0", 0.6),  # no pair in any source: left out of FusePO
    ("f3", "B", 0, "b0", 0.6),
    ("f3", "C", 0, "c0", 0.2),
]


def test_fuserl_groups_and_score_matrix():
    data = fuserl_groups(cands_of(FUSERL_ROWS))
    g = {(r["prompt_id"], r["model"]): r for r in data.groups.to_dict("records")}
    assert (g["f1", "A"]["best_sample"], g["f1", "A"]["worst_sample"]) == (1, 0)
    assert g["f1", "A"]["has_pair"] and g["f1", "A"]["gap"] == pytest.approx(0.6)
    assert (g["f1", "B"]["best_sample"], g["f1", "B"]["worst_sample"]) == (0, 0)
    assert not g["f1", "B"]["has_pair"]
    assert ("f1", "C") not in g and ("f2", "A") not in g
    assert not g["f2", "C"]["has_pair"] and g["f2", "C"]["n_usable"] == 1
    assert count(data.counts, "cells_without_usable_response") == 2
    assert count(data.counts, "prompts_without_pair") == 1

    sft = score_matrix(data.groups, "sft")
    assert sft.prompt_ids == ["f1", "f2", "f3"] and sft.sources == ["A", "B", "C"]
    np.testing.assert_array_equal(
        sft.mask, [[True, True, False], [False, True, True], [True, True, True]]
    )
    np.testing.assert_allclose(sft.scores, [[0.8, 0.4, 0.0], [0.0, 0.3, 0.7], [0.6, 0.6, 0.2]])
    po = score_matrix(data.groups, "po", sources=["C", "B", "A"])
    assert po.prompt_ids == ["f1", "f2"] and po.dropped == ["f3"]
    np.testing.assert_array_equal(po.mask, [[False, False, True], [False, True, False]])
    np.testing.assert_allclose(po.scores, [[0.0, 0.0, 0.8], [0.0, 0.3, 0.0]])
    long = po.to_frame()
    assert len(long) == 6 and long["mask"].sum() == 2
    with pytest.raises(ValueError, match="not in"):
        score_matrix(data.groups, "sft", sources=["A", "B"])


def test_fuserl_min_gap():
    data = fuserl_groups(cands_of(FUSERL_ROWS), min_gap=0.25)
    g = {(r["prompt_id"], r["model"]): r["has_pair"] for r in data.groups.to_dict("records")}
    assert g["f1", "A"] and not g["f2", "B"]  # gaps 0.6 and 0.2


def test_read_reported_composition_skips_comment_lines(tmp_path):
    path = tmp_path / "fusechat3_data_composition.csv"
    path.write_text(
        "# FuseChat-3.0 data composition (card)\n"
        "category,dataset,total,sft,dpo\n"
        "coding,leetcode,3113,1877,1236\n"
        "total,,3113,1877,1236\n"
        "# a trailing note\n"
    )
    from fusekit.preference import read_reported_composition

    reported = read_reported_composition(str(path))
    assert reported.category.tolist() == ["coding", "total"]
    counts = pd.DataFrame(
        {"domain": ["coding"] * 2, "dataset": ["leetcode"] * 2, "what": ["sft", "dpo"], "n": [3, 2]}
    )
    table = composition(counts, reported)
    assert table.iloc[0][["total", "reported_total"]].tolist() == [5, 3113]
    assert table.iloc[-1][["sft", "reported_sft"]].tolist() == [3, 1877]

"""Arena-Hard v0.1: verdict parsing, battles from both games and Bradley-Terry scores."""

import numpy as np
import pandas as pd
import pytest

from fusekit.arena import (
    JUDGE_PROMPT_TEMPLATE,
    JUDGE_SYSTEM_PROMPT,
    battles_from_judgments,
    bradley_terry_scores,
    judge_arena,
    judge_prompt,
    parse_verdict,
    verdict,
)


def _battles(pairs):
    """pairs: (model_a, model_b, winner, count)"""
    rows = [(a, b, w) for a, b, w, n in pairs for _ in range(n)]
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])


def _row(scores, model):
    return scores.set_index("model").loc[model]


@pytest.mark.parametrize(
    "text, label",
    [
        ("My final verdict is tie: [[A=B]]", "A=B"),
        ("so [[A>>B]]", "A>>B"),
        ("[[B>A]] ... as said, [[B>A]]", "B>A"),  # the same label twice counts once
        ("first [[A>B]] then [[B>A]]", None),  # two different labels: no verdict
        ("no label at all", None),
        ("empty [[]] brackets", None),
        ("[[A<B]]", "A<B"),  # arena-hard keeps any [AB<>=]+ label; scoring drops it
    ],
)
def test_parse_verdict(text, label):
    assert parse_verdict(text) == label


def test_verdict_retry_rule():
    assert verdict("nothing yet") == (None, True)
    assert verdict("[[A>B]] or [[B>A]]") == (None, False)
    assert verdict("[[B>>A]]") == ("B>>A", False)


def test_prompt_is_the_v01_prompt():
    assert JUDGE_SYSTEM_PROMPT.startswith("Please act as an impartial judge")
    for label in ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]"):
        assert label in JUDGE_SYSTEM_PROMPT
    conv = judge_prompt("Q?", "first", "second")
    assert conv[0] == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    assert conv[1]["content"] == JUDGE_PROMPT_TEMPLATE.format(
        question_1="Q?", answer_1="first", answer_2="second"
    )
    assert "<|The Start of Assistant A's Answer|>\nfirst\n" in conv[1]["content"]


def test_battles_follow_both_games_and_weights():
    j = pd.DataFrame(
        {
            "question_id": ["q1", "q1", "q2", "q2", "q3", "q3"],
            "model": "m",
            "baseline": "base",
            "game": [1, 2, 1, 2, 1, 2],
            "score": ["A>B", "A>B", "B>>A", "A=B", None, "A<B"],
        }
    )
    b = battles_from_judgments(j)
    assert (b.model_a == "base").all() and (b.model_b == "m").all()
    # q1 game 1: baseline (A) wins; game 2: the model is A, so the model wins
    assert b[b.question_id == "q1"].winner.tolist() == ["model_a", "model_b"]
    # q2 game 1: B>>A = the model wins strongly (3 rows); game 2 tie
    assert b[b.question_id == "q2"].winner.tolist() == ["model_b"] * 3 + ["tie"]
    assert not (b.question_id == "q3").any()  # no verdict / unknown label: dropped
    assert len(battles_from_judgments(j, weight=1)) == 4


def test_baseline_is_exactly_50_and_symmetry():
    battles = _battles([("base", "m", "model_b", 7), ("base", "m", "model_a", 3)])
    s = bradley_terry_scores(battles, "base", rounds=20)
    assert _row(s, "base").score == 50.0
    assert _row(s, "base").lower == 50.0 and _row(s, "base").upper == 50.0
    assert _row(s, "base").rating == pytest.approx(1000.0)
    # swapping the roles of a and b (and the winner) changes nothing
    swapped = battles.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    swapped["winner"] = swapped.winner.map({"model_a": "model_b", "model_b": "model_a"})
    s2 = bradley_terry_scores(swapped, "base", rounds=20)
    assert _row(s2, "m").score == pytest.approx(_row(s, "m").score, abs=1e-9)
    # mirror image: 3 wins out of 10 scores 100 - 70
    mirror = battles.assign(winner=battles.winner.map({"model_a": "model_b", "model_b": "model_a"}))
    s3 = bradley_terry_scores(mirror, "base", rounds=0)
    assert _row(s3, "m").score == pytest.approx(100 - _row(s, "m").score, abs=1e-6)


def test_two_models_equals_tie_adjusted_empirical_rate():
    # 6 wins, 3 ties, 11 losses: (6 + 1.5) / 20 = 37.5%; Elo = 1000 + 400 log10(p / (1 - p))
    battles = _battles(
        [("base", "m", "model_b", 6), ("base", "m", "tie", 3), ("base", "m", "model_a", 11)]
    )
    s = bradley_terry_scores(battles, "base", rounds=50, seed=1)
    m = _row(s, "m")
    assert m.score == pytest.approx(37.5, abs=1e-3)
    assert m.rating == pytest.approx(1000 + 400 * np.log10(0.375 / 0.625), abs=1e-2)
    assert m.lower < m.score < m.upper
    assert m.n_battles == 20


def test_ties_between_equal_models_give_50():
    battles = _battles([("base", "m", "tie", 8)])
    assert _row(bradley_terry_scores(battles, "base", rounds=5), "m").score == pytest.approx(50)
    even = _battles([("base", "m", "model_a", 4), ("base", "m", "model_b", 4)])
    assert _row(bradley_terry_scores(even, "base", rounds=5), "m").score == pytest.approx(50)


def test_a_model_that_wins_everything_scores_near_100():
    battles = _battles([("base", "m", "model_b", 10), ("base", "w", "model_a", 10)])
    s = bradley_terry_scores(battles, "base", rounds=30)
    assert 99.9 < _row(s, "m").score < 100
    assert 0 < _row(s, "w").score < 0.1
    assert np.isfinite(s.rating).all()
    assert s.model.tolist() == ["m", "base", "w"]


def test_three_models_transitive_and_bootstrap_is_seeded():
    battles = _battles(
        [
            ("base", "good", "model_b", 30),
            ("base", "good", "model_a", 10),
            ("base", "bad", "model_b", 10),
            ("base", "bad", "model_a", 30),
            ("good", "bad", "model_a", 15),
            ("good", "bad", "model_b", 5),
        ]
    )
    a = bradley_terry_scores(battles, "base", rounds=40, seed=3)
    b = bradley_terry_scores(battles, "base", rounds=40, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.model.tolist() == ["good", "base", "bad"]
    assert _row(a, "good").score == pytest.approx(100 - _row(a, "bad").score, abs=1e-6)


def test_disconnected_or_bad_battles_are_errors():
    with pytest.raises(ValueError, match="not connected to the baseline"):
        bradley_terry_scores(_battles([("base", "m", "tie", 2), ("x", "y", "tie", 2)]), "base")
    with pytest.raises(ValueError, match="unknown winner"):
        bradley_terry_scores(_battles([("base", "m", "model_c", 1)]), "base")
    with pytest.raises(ValueError, match="missing columns"):
        bradley_terry_scores(pd.DataFrame({"model_a": ["a"]}), "a")


class ScriptedJudge:
    """Answers game 1 without a verdict first, then continues with one."""

    name = "scripted"

    def __init__(self):
        self.requests = []

    def judge(self, requests, **settings):
        self.requests.append(requests)
        out = []
        for conv in requests:
            if conv[-1]["content"].startswith("continue"):
                out.append("fine: [[B>A]]")
            elif "A's Answer|>\nbase answer" in conv[1]["content"]:  # game 1
                out.append("thinking...")
            else:
                out.append("[[A>>B]]")
        return out


def test_judge_arena_both_games_and_continuation():
    questions = pd.DataFrame(
        {"question_id": ["q"], "category": "c", "cluster": "k", "prompt": ["Q"]}
    )
    judge = ScriptedJudge()
    df = judge_arena(questions, {"q": "model answer"}, {"q": "base answer"}, "m", "base", judge)
    assert df.game.tolist() == [1, 2]
    assert df.score.tolist() == ["B>A", "A>>B"]
    assert df.judgment[0] == "\nthinking...\nfine: [[B>A]]"
    assert len(judge.requests) == 2 and len(judge.requests[1]) == 1
    assert [m["role"] for m in judge.requests[1][0]] == ["system", "user", "assistant", "user"]
    b = battles_from_judgments(df)
    assert b.winner.tolist() == ["model_b"] * 4  # weak win in game 1, strong win in game 2


def test_a_model_missing_from_bootstrap_rounds_gets_a_nan_interval(caplog):
    # 'rare' has 2 battles among 202: a resample of 202 rows misses both with probability
    # (200/202)^202 ~ 0.135, so about 13 of 100 rounds know nothing about it
    battles = _battles(
        [
            ("base", "common", "model_b", 120),
            ("base", "common", "model_a", 80),
            ("base", "rare", "model_b", 2),
        ]
    )
    with caplog.at_level("WARNING", logger="fusekit"):
        scores = bradley_terry_scores(battles, "base", rounds=100, seed=0)
    rare, common = _row(scores, "rare"), _row(scores, "common")
    assert 3 <= rare.rounds_missing <= 30
    assert np.isnan(rare.lower) and np.isnan(rare.upper)
    assert rare.score > 90  # the point estimate still uses every battle
    assert common.rounds_missing == 0 and common.lower < 60 < common.upper
    assert _row(scores, "base").lower == _row(scores, "base").upper == 50.0
    assert "rare is in no battle of" in caplog.text


def test_arena_answers_matched_by_prompt_text():
    """The tiny world's Arena-Hard judge reads the AlpacaEval-2 answers (same prompts,
    other ids) by prompt text."""
    from fusekit.arena import answers_from_generations
    from fusekit.chat_eval import answers_by_prompt

    questions = pd.DataFrame(
        {"question_id": ["q0", "q1"], "prompt": ["add 1 and 2 .", "reverse a b ."]}
    )
    gens = pd.DataFrame(
        {
            "prompt_id": ["alpaca-0001", "alpaca-0000", "alpaca-0002"],
            "model": "m",
            "sample": 0,
            "prompt": ["reverse a b .", "add 1 and 2 .", "not a question ."],
            "response": ["b a", "the answer is 3", "x"],
            "n_tokens": [2, 4, 1],
        }
    )
    with pytest.raises(ValueError, match="lack answers to 2 questions"):
        answers_from_generations(gens, questions)
    matched = answers_by_prompt(gens, questions, "q.jsonl")
    records = answers_from_generations(matched, questions)
    got = {r["question_id"]: r["choices"][0]["turns"][0]["content"] for r in records}
    assert got == {"q0": "the answer is 3", "q1": "b a"}
    twice = pd.concat([questions, questions.assign(question_id=["q2", "q3"])])
    with pytest.raises(ValueError, match="q.jsonl: prompt texts repeat"):
        answers_by_prompt(gens, twice, "q.jsonl")

"""ProFuser's vote and the method comparison on hand-made score tables."""

import pandas as pd
import pytest

from fusekit.rewards.methods import method_agreement, method_choices, method_shares
from fusekit.rewards.vote import majority_vote, rm_picks, strongest_from_table

RMS = ["rm_a", "rm_b", "rm_c"]


def table(rows):
    """rows: (prompt_id, model, {rm: score})"""
    return pd.DataFrame(
        [
            {"prompt_id": p, "model": m, "sample": 0, "reward_model": rm, "score": s}
            for p, m, scores in rows
            for rm, s in scores.items()
        ]
    )


def test_majority_beats_the_strongest():
    scores = table(
        [
            ("p", "x", {"rm_a": 1.0, "rm_b": 5.0, "rm_c": 5.0}),
            ("p", "y", {"rm_a": 9.0, "rm_b": 0.0, "rm_c": 0.0}),
        ]
    )
    v = majority_vote(scores, RMS, strongest="rm_a").iloc[0]
    assert (v.model, v.votes, v.tie_broken) == ("x", 2, False)
    assert v.picks == "rm_a:y/0,rm_b:x/0,rm_c:x/0"


def test_three_way_tie_goes_to_the_strongest_pick():
    scores = table(
        [
            ("p", "x", {"rm_a": 3.0, "rm_b": 0.0, "rm_c": 0.0}),
            ("p", "y", {"rm_a": 0.0, "rm_b": 3.0, "rm_c": 1.0}),
            ("p", "z", {"rm_a": 1.0, "rm_b": 0.0, "rm_c": 3.0}),
        ]
    )
    for strongest, winner in (("rm_a", "x"), ("rm_b", "y"), ("rm_c", "z")):
        v = majority_vote(scores, RMS, strongest).iloc[0]
        assert (v.model, v.votes, v.tie_broken) == (winner, 1, True)


def test_tie_among_leaders_uses_strongest_score_not_its_pick():
    # x and y get two picks each; the strongest (rm_c) picks z, which is not a
    # leader: among x and y, rm_c scores y higher, so y wins.
    five = ["rm_a", "rm_b", "rm_c", "rm_d", "rm_e"]
    scores = table(
        [
            ("p", "x", {"rm_a": 2.0, "rm_b": 0.0, "rm_c": 0.5, "rm_d": 2.0, "rm_e": 0.0}),
            ("p", "y", {"rm_a": 0.0, "rm_b": 2.0, "rm_c": 0.7, "rm_d": 0.0, "rm_e": 2.0}),
            ("p", "z", {"rm_a": 0.0, "rm_b": 0.0, "rm_c": 9.0, "rm_d": 0.0, "rm_e": 0.0}),
        ]
    )
    v = majority_vote(scores, five, strongest="rm_c").iloc[0]
    assert (v.model, v.votes, v.tie_broken) == ("y", 2, True)
    v = majority_vote(scores, five, strongest="rm_a").iloc[0]
    assert (v.model, v.votes, v.tie_broken) == ("x", 2, True)


def test_equal_scores_within_one_rm_pick_the_first_candidate():
    scores = table([("p", "b", {"rm_a": 1.0}), ("p", "a", {"rm_a": 1.0})])
    assert rm_picks(scores).model.tolist() == ["a"]


def test_prompts_are_voted_independently():
    scores = table(
        [
            ("p1", "x", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 0.0}),
            ("p1", "y", {"rm_a": 0.0, "rm_b": 0.0, "rm_c": 1.0}),
            ("p2", "x", {"rm_a": 0.0, "rm_b": 0.0, "rm_c": 0.0}),
            ("p2", "y", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 1.0}),
        ]
    )
    v = majority_vote(scores, RMS, "rm_c")
    assert dict(zip(v.prompt_id, v.model, strict=True)) == {"p1": "x", "p2": "y"}
    assert v.votes.tolist() == [2, 3]


def test_incomplete_or_duplicate_scores_are_errors():
    scores = table(
        [
            ("p", "x", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 1.0}),
            ("p", "y", {"rm_a": 1.0, "rm_b": 1.0}),
        ]
    )
    with pytest.raises(ValueError, match="'p' response y/0 is not scored by every reward model"):
        majority_vote(scores, RMS, "rm_a")
    with pytest.raises(ValueError, match=r"no scores from reward models \['rm_z'\]"):
        majority_vote(scores, ["rm_a", "rm_z"], "rm_a")
    with pytest.raises(ValueError, match="scored prompt 'p' x/0 twice"):
        majority_vote(pd.concat([scores, scores.iloc[:1]]), RMS, "rm_a")
    with pytest.raises(ValueError, match="strongest reward model 'rm_q'"):
        majority_vote(scores, RMS, "rm_q")


def test_strongest_from_table():
    t = pd.DataFrame(
        {
            "model": ["rm_a", "rm_b", "rm_c", "src"],
            "metric": ["preference_accuracy"] * 3 + ["exact_match"],
            "skill": ["all"] * 4,
            "accuracy": [0.7, 0.9, 0.8, 1.0],
        }
    )
    assert strongest_from_table(t, RMS) == "rm_b"
    assert strongest_from_table(t, ["rm_a", "rm_c"]) == "rm_c"
    with pytest.raises(ValueError, match="rm_x"):
        strongest_from_table(t, ["rm_a", "rm_x"])


def test_method_shares_and_agreement():
    scores = table(
        [
            ("p1", "x", {"rm_a": 1.0, "rm_b": 0.0}),
            ("p1", "y", {"rm_a": 0.0, "rm_b": 1.0}),
            ("p2", "x", {"rm_a": 1.0, "rm_b": 1.0}),
            ("p2", "y", {"rm_a": 0.0, "rm_b": 0.0}),
        ]
    )
    reference = pd.DataFrame(
        {
            "prompt_id": ["p1", "p1", "p2", "p2"],
            "model": ["x", "y", "x", "y"],
            "sample": 0,
            "combined": [0.2, 0.9, 0.2, 0.9],
        }
    )
    votes = pd.DataFrame({"prompt_id": ["p1", "p2"], "model": ["x", "x"]})
    choices = method_choices(scores, reference, votes)
    shares = method_shares(choices, ["x", "y", "z"])
    got = {(r.method, r.source): r.share for r in shares.itertuples()}
    assert got[("rm:rm_a", "x")] == 1.0 and got[("rm:rm_b", "x")] == 0.5
    assert got[("reference", "y")] == 1.0 and got[("vote", "z")] == 0.0
    assert shares.groupby("method").share.sum().tolist() == pytest.approx([1.0] * 4)
    agree = {(r.method_a, r.method_b): r.agreement for r in method_agreement(choices).itertuples()}
    assert agree[("rm:rm_a", "vote")] == 1.0
    assert agree[("rm:rm_a", "rm:rm_b")] == 0.5
    assert agree[("reference", "vote")] == 0.0
    assert len(agree) == 6

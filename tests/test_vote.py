"""ProFuser's vote and the method comparison on hand-made score tables."""

import pandas as pd
import pytest

from fusekit.rewards.methods import method_agreement, method_choices, method_shares
from fusekit.rewards.vote import check_finite, majority_vote, rm_picks, strongest_from_table

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


def test_strongest_prefers_the_accuracy_on_source_output_pairs():
    """Issue 17: the vote chooses among the sources' outputs, so the reward model that
    best tells their right answers from wrong ones is the strongest, whatever its
    accuracy on corrupted references; without that metric for every model, the
    corruption accuracy decides."""
    rows = [
        ("rm_a", "preference_accuracy", 0.9),
        ("rm_b", "preference_accuracy", 0.6),
        ("rm_a", "source_pair_accuracy", 0.55),
        ("rm_b", "source_pair_accuracy", 0.8),
    ]
    t = pd.DataFrame(rows, columns=["model", "metric", "accuracy"]).assign(skill="all")
    assert strongest_from_table(t, ["rm_a", "rm_b"]) == "rm_b"
    partial = t[~((t.model == "rm_b") & (t.metric == "source_pair_accuracy"))]
    assert strongest_from_table(partial, ["rm_a", "rm_b"]) == "rm_a"


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


INF = float("inf")


def test_a_prompt_without_usable_candidates_has_no_winner(caplog):
    # every source answered "p_empty" with an empty string (scored -inf by
    # rewards.empty_response: lowest); "p_ok" is ordinary
    scores = table(
        [
            ("p_empty", "a", {"rm_a": -INF, "rm_b": -INF, "rm_c": -INF}),
            ("p_empty", "b", {"rm_a": -INF, "rm_b": -INF, "rm_c": -INF}),
            ("p_ok", "a", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 0.0}),
            ("p_ok", "b", {"rm_a": 0.0, "rm_b": 0.0, "rm_c": 1.0}),
        ]
    )
    with caplog.at_level("WARNING", logger="fusekit"):
        v = majority_vote(scores, RMS, strongest="rm_a")
    assert v.prompt_id.tolist() == ["p_ok"] and v.model.tolist() == ["a"]
    assert v.attrs["dropped_prompts"] == ["p_empty"]
    assert "1 of 2 prompts have no usable candidate" in caplog.text and "p_empty" in caplog.text


def test_an_unusable_candidate_never_wins_even_unanimously_against_nothing():
    # one empty response (-inf everywhere) beside one real answer with low scores: the real
    # answer wins 3-0; -inf for one RM only: that RM picks among the rest
    scores = table(
        [
            ("p", "a", {"rm_a": -INF, "rm_b": -INF, "rm_c": -INF}),
            ("p", "b", {"rm_a": -50.0, "rm_b": -50.0, "rm_c": -50.0}),
            ("q", "a", {"rm_a": -INF, "rm_b": 2.0, "rm_c": 2.0}),
            ("q", "b", {"rm_a": -9.0, "rm_b": 1.0, "rm_c": 1.0}),
        ]
    )
    v = majority_vote(scores, RMS, strongest="rm_a").set_index("prompt_id")
    assert v.loc["p", "model"] == "b" and v.loc["p", "votes"] == 3
    assert v.loc["q", "model"] == "a" and v.loc["q", "votes"] == 2
    assert "rm_a:b/0" in v.loc["q", "picks"]


@pytest.mark.parametrize("bad", [float("nan"), INF, None])
def test_non_finite_scores_name_prompt_model_and_reward_model(bad):
    scores = table(
        [
            ("p1", "a", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 1.0}),
            ("p2", "a", {"rm_a": 1.0, "rm_b": 1.0, "rm_c": 1.0}),
            ("p2", "b", {"rm_a": 0.5, "rm_b": bad, "rm_c": 0.2}),
        ]
    )
    with pytest.raises(ValueError, match=r"'rm_b'.*prompt 'p2'.*model 'b' sample 0"):
        majority_vote(scores, RMS, strongest="rm_a")
    with pytest.raises(ValueError, match=r"^scores/rm_b/b\.parquet: reward model 'rm_b'"):
        check_finite(scores, file="scores/rm_b/b.parquet")


def test_vote_file_to_file_names_the_score_file_with_a_nan(tmp_path):
    from fusekit.inference_mode import vote
    from fusekit.rewards.scoring import SCORE_COLUMNS

    paths = []
    for rm in RMS:
        df = table([("p1", "a", {rm: float("nan") if rm == "rm_c" else 1.0})])
        df = df.assign(truncated=False, n_input_tokens=3)[list(SCORE_COLUMNS)]
        paths.append(str(tmp_path / f"{rm}.parquet"))
        df.to_parquet(paths[-1])
    with pytest.raises(
        ValueError, match=r"rm_c\.parquet: row 0 \(prompt_id 'p1'\).*reward_model 'rm_c'.*nan"
    ):
        vote(paths, [], RMS, "rm_a", str(tmp_path / "votes.parquet"))
    assert not (tmp_path / "votes.parquet").exists()

"""Issue 17 item 1: the tiny world's reward models learn from (right, wrong) pairs of the
world models' own outputs, and the world reports how well they and the vote judge."""

import pandas as pd
import pytest

from fusekit.tiny.corpus import COLUMNS
from fusekit.tiny.preferences import OUTPUT_COLUMNS, PAIR_COLUMNS, build_output_pairs
from fusekit.tiny.world import (
    SKILL_ACCURACY_COLUMNS,
    reward_training_pairs,
    vote_accuracy,
)


def outputs(rows):
    """rows: (prompt_id, skill, answer, model, response)"""
    return pd.DataFrame(
        [(p, s, f"question {p}", a, m, r) for p, s, a, m, r in rows], columns=list(OUTPUT_COLUMNS)
    )


def test_output_pairs_pair_each_right_with_each_distinct_wrong():
    df = outputs(
        [
            ("p1", "arith", "7", "a", "3 plus 4 makes 7 . the answer is 7"),
            ("p1", "arith", "7", "b", "3 plus 4 makes 8 . the answer is 8"),
            # the same wrong text from another model (extra spaces) counts once
            ("p1", "arith", "7", "c", "3 plus 4  makes 8 . the answer is 8"),
            ("p1", "arith", "7", "d", "the answer is 9"),
            # all right: no pair
            ("p2", "upper", "A B", "a", "the answer is A B"),
            ("p2", "upper", "A B", "b", "in capitals a b is A B . the answer is A B"),
            # all wrong: no pair
            ("p3", "lookup", "red", "a", "the answer is blue"),
        ]
    )
    pairs = build_output_pairs(df, seed=0)
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert set(pairs.prompt_id) == {"p1"}
    assert sorted(pairs.rejected) == ["3 plus 4 makes 8 . the answer is 8", "the answer is 9"]
    assert set(pairs.chosen) == {"3 plus 4 makes 7 . the answer is 7"}
    assert (pairs.corruption == "source_output").all() and (pairs.skill == "arith").all()

    capped = build_output_pairs(df, seed=0, max_pairs_per_prompt=1)
    assert len(capped) == 1 and capped.rejected.iloc[0] in set(pairs.rejected)
    assert capped.equals(build_output_pairs(df, seed=0, max_pairs_per_prompt=1))


def test_output_pairs_name_missing_columns():
    with pytest.raises(ValueError, match="response"):
        build_output_pairs(outputs([]).drop(columns="response"), seed=0)


def corpus_file(tmp_path):
    rows = []
    for i in range(10):
        a, b = i, 1
        ref = f"{a} plus {b} makes {a + b} . the answer is {a + b}"
        rows.append(
            (
                f"pretrain-arith-{i:05d}",
                "pretrain",
                "arith",
                f"what is {a} + {b} ?",
                str(a + b),
                ref,
            )
        )
        rows.append(
            (
                f"pretrain-lookup-{i:05d}",
                "pretrain",
                "lookup",
                f"what colour is x{i} ?",
                "red",
                f"the x{i} is red . the answer is red",
            )
        )
        rows.append(
            (f"fusion-arith-{i:05d}", "fusion", "arith", f"add {a} and {b} .", str(a + b), ref)
        )
    path = tmp_path / "corpus.parquet"
    pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(path)
    return str(path)


def test_reward_training_pairs_mix_corruptions_and_source_outputs(tmp_path):
    corpus = corpus_file(tmp_path)
    out = tmp_path / "outputs.parquet"
    outputs(
        [
            ("pretrain-arith-00001", "arith", "2", "a", "the answer is 2"),
            ("pretrain-arith-00001", "arith", "2", "b", "the answer is 3"),
        ]
    ).to_parquet(out)
    spec = {"corruptions": ["off_topic"], "corruption_pairs": 5, "source_outputs": True}
    pairs = reward_training_pairs(corpus, spec, seed=3, outputs=[str(out)])
    assert (pairs.corruption == "off_topic").sum() == 5  # a sample of 5 of 20 rows
    own = pairs[pairs.corruption == "source_output"]
    assert own[["chosen", "rejected"]].values.tolist() == [["the answer is 2", "the answer is 3"]]
    assert len(reward_training_pairs(corpus, {"corruptions": ["truncated"]}, seed=3)) == 20

    with pytest.raises(ValueError, match="no world model outputs"):
        reward_training_pairs(corpus, {"source_outputs": True}, seed=3)
    with pytest.raises(ValueError, match="no training pairs"):
        reward_training_pairs(corpus, {"corruptions": []}, seed=3)


def write_world_table(path, accuracies):
    """A world table with one exact-match row per (source, arith accuracy)."""
    rows = [(m, "source", "A", "t", "arith", "exact_match", a, 64) for m, a in accuracies]
    pd.DataFrame(rows, columns=list(SKILL_ACCURACY_COLUMNS)).to_csv(path, index=False)
    return str(path)


def write_votes(path, models, responses):
    """One vote per fusion arith prompt, in order."""
    pd.DataFrame(
        {
            "prompt_id": [f"fusion-arith-{i:05d}" for i in range(len(models))],
            "model": models,
            "response": responses,
        }
    ).to_parquet(path)
    return str(path)


def test_vote_accuracy_counts_right_answers_and_best_source_picks(tmp_path):
    corpus = corpus_file(tmp_path)
    # four voted fusion prompts: src_a (the best arith source) picked twice, right once
    votes = write_votes(
        tmp_path / "votes.parquet",
        ["src_a", "src_a", "src_b", "src_b"],
        ["the answer is 1", "the answer is 9", "the answer is 3", "x"],
    )
    world = tmp_path / "skill_accuracy.csv"
    pd.DataFrame(
        [
            ("src_a", "source", "A", "t", "arith", "exact_match", 0.9, 64),
            ("src_b", "source", "A", "t", "arith", "exact_match", 0.2, 64),
            ("rm", "reward_model", "A", "t", "arith", "preference_accuracy", 1.0, 64),
        ],
        columns=list(SKILL_ACCURACY_COLUMNS),
    ).to_csv(world, index=False)
    out = tmp_path / "vote_accuracy.csv"
    t = vote_accuracy(str(votes), corpus, str(world), ["src_a", "src_b"], "s", str(out))
    got = t[t.skill == "all"].set_index("metric").value.to_dict()
    # right: prompt 0 (0+1=1) and prompt 2 (2+1=3)
    # the references of corpus_file, "i plus 1 makes i+1 . the answer is i+1": 10 words
    assert got == {
        "voted_correct": 0.5,
        "best_source_chosen": 0.5,
        "best_source_chance": 0.5,
        "reference_correct": 1.0,
        "voted_words": (4 + 4 + 4 + 1) / 4,
        "reference_words": 10.0,
        "voted_is_reference": 0.0,
    }
    assert (t.n == 4).all() and set(t.skill) == {"arith", "all"}
    assert pd.read_csv(out).equals(t)

    bad = tmp_path / "bad_votes.parquet"
    pd.DataFrame({"prompt_id": ["nope"], "model": ["src_a"], "response": ["1"]}).to_parquet(bad)
    with pytest.raises(ValueError, match="nope"):
        vote_accuracy(str(bad), corpus, str(world), ["src_a"], "s", str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_output_pairs_refuse_ambiguous_rows():
    twice = outputs(
        [
            ("p1", "arith", "7", "a", "the answer is 7"),
            ("p1", "arith", "7", "a", "the answer is 8"),
        ]
    )
    with pytest.raises(ValueError, match="'p1' of model 'a' more than once"):
        build_output_pairs(twice, seed=0)
    mixed = outputs(
        [
            ("p1", "arith", "7", "a", "the answer is 7"),
            ("p1", "arith", "8", "b", "the answer is 8"),
        ]
    )
    with pytest.raises(ValueError, match="disagree on the prompt or answer of prompt 'p1'"):
        build_output_pairs(mixed, seed=0)


def test_vote_accuracy_counts_tied_best_sources_and_refuses_bad_votes(tmp_path):
    corpus = corpus_file(tmp_path)
    world = write_world_table(
        tmp_path / "skill_accuracy.csv", [("src_a", 0.5), ("src_b", 0.5), ("src_c", 0.1)]
    )
    votes = write_votes(tmp_path / "votes.parquet", ["src_a", "src_b", "src_c"], ["x", "y", "z"])
    sources = ["src_a", "src_b", "src_c"]
    t = vote_accuracy(str(votes), corpus, str(world), sources, "s", str(tmp_path / "v.csv"))
    got = t[t.skill == "all"].set_index("metric").value
    assert got["best_source_chosen"] == pytest.approx(2 / 3)  # src_a and src_b tie

    with pytest.raises(ValueError, match="no exact-match rows for sources \\['src_typo'\\]"):
        vote_accuracy(
            str(votes), corpus, str(world), ["src_a", "src_typo"], "s", str(tmp_path / "x.csv")
        )
    dup = tmp_path / "dup.parquet"
    pd.DataFrame(
        {"prompt_id": ["fusion-arith-00000"] * 2, "model": ["src_a"] * 2, "response": ["1", "1"]}
    ).to_parquet(dup)
    with pytest.raises(ValueError, match="'fusion-arith-00000' has more than one vote"):
        vote_accuracy(str(dup), corpus, str(world), sources, "s", str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()

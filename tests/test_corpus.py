import pytest

from fusekit.tiny.corpus import (
    COLUMNS,
    SKILLS,
    TESTS_COLUMN,
    build_corpus,
    extract_answer,
    fact_table,
    filler_text,
    is_correct,
)

SIZES = {"pretrain": 50, "fusion": 10, "eval": 20}


def test_corpus_shape_and_ids():
    df = build_corpus(7, SIZES)
    assert list(df.columns) == [*COLUMNS, TESTS_COLUMN]
    assert (df[TESTS_COLUMN] == "").all()  # only code items have tests
    assert len(df) == sum(SIZES.values()) * len(SKILLS)
    assert df.prompt_id.is_unique
    counts = df.groupby(["split", "skill"]).size()
    assert counts[("eval", "upper")] == 20 and counts[("pretrain", "arith")] == 50


def test_same_seed_same_corpus_other_seed_differs():
    a, b, c = build_corpus(7, SIZES), build_corpus(7, SIZES), build_corpus(8, SIZES)
    assert a.equals(b)
    assert not a.equals(c)


def test_gold_answers_are_right():
    df = build_corpus(3, {"pretrain": 200})
    facts = fact_table(3, 40)
    for row in df.itertuples():
        if row.skill == "arith":
            a, b = [int(t) for t in row.prompt.split() if t.isdigit()]
            assert row.answer == str(a + b)
        elif row.skill == "reverse":
            letters = row.prompt.split(":")[-1].replace("backwards", "").replace("write", "")
            letters = letters.replace(".", "").split()
            assert row.answer.split() == letters[::-1]
        elif row.skill == "upper":
            letters = [
                t for t in row.prompt.replace(":", " ").split() if len(t) == 1 and t.isalpha()
            ]
            assert row.answer == " ".join(letters).upper()
        else:
            name = [t for t in row.prompt.split() if t in facts][0]
            assert row.answer == facts[name]


def test_references_are_longer_and_end_in_the_gold_answer():
    df = build_corpus(1, {"eval": 30})
    assert (df.reference.str.len() > df.answer.str.len() + 10).all()
    assert all(is_correct(r, a) for r, a in zip(df.reference, df.answer, strict=True))


def test_skills_use_different_prompt_words():
    df = build_corpus(1, {"eval": 30})
    vocab = {s: set(" ".join(df[df.skill == s].prompt).split()) for s in SKILLS}
    assert vocab["arith"].isdisjoint({"reverse", "backwards", "colour"})


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("3 plus 4 makes 7 . the answer is 7", "7"),
        ("the answer is d c b a .", "d c b a"),
        ("the answer is 3 , no wait , the answer is  A  B ", "A B"),
        ("just 12", "just 12"),
        ("", ""),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_is_correct_is_case_sensitive():
    assert is_correct("the answer is A B", "A B")
    assert not is_correct("the answer is a b", "A B")


def test_fact_table_and_errors():
    facts = fact_table(5, 30)
    assert len(facts) == 30 and fact_table(5, 30) == facts
    with pytest.raises(ValueError, match="n_entities"):
        fact_table(5, 10_000)
    with pytest.raises(ValueError, match="unknown skills"):
        build_corpus(1, {"eval": 1}, skills=["arith", "poetry"])
    with pytest.raises(ValueError, match="unknown splits"):
        build_corpus(1, {"test": 1})


def test_filler_is_deterministic():
    assert filler_text(2, 5) == filler_text(2, 5) != filler_text(3, 5)

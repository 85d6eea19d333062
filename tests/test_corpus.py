import pandas as pd
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
    render_reference,
)
from fusekit.tiny.corpus import item_key as read_item_key

SIZES = {"pretrain": 50, "fusion": 10, "eval": 20}
SIX_SKILLS = ("arith", "reverse", "upper", "lookup", "code", "greek")


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


# -- evaluation items: distinct, and never a fusion (or, algorithmic, pretrain) item -----

ALL_SKILLS = ("arith", "reverse", "upper", "lookup", "code", "greek")
ALGORITHMIC = ("reverse", "upper", "greek", "code")


def item_key(row) -> tuple:
    """What makes two items the same, read from the text (independently of corpus.py): the
    operands, the letters, the program (operation and constants), the entity."""
    if row.skill == "arith":
        return tuple(int(t) for t in row.prompt.split() if t.isdigit())
    if row.skill in ("reverse", "upper", "greek"):
        return tuple(t for t in row.prompt.replace(":", " ").split() if len(t) == 1 and t.isalpha())
    if row.skill == "code":
        return (row.answer,)
    return (row.reference.split()[1],)  # "the <entity> is <colour> . ..."


def keys(df, split, skill) -> list[tuple]:
    return [item_key(r) for r in df[(df.split == split) & (df.skill == skill)].itertuples()]


@pytest.fixture(scope="module")
def world_sized():
    """The corpus at config/tiny.yaml's sizes and skills (what the workflow builds)."""
    import yaml
    from conftest import ROOT

    spec = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())["tiny_world"]["corpus"]
    return build_corpus(11, spec["sizes"], spec["skills"], spec["n_entities"]), spec


def test_eval_items_are_distinct_within_each_skill(world_sized):
    df, spec = world_sized
    for skill in spec["skills"]:
        ks = keys(df, "eval", skill)
        assert len(ks) > 0 and len(set(ks)) == len(ks), skill
        prompts = df[(df.split == "eval") & (df.skill == skill)].prompt
        assert prompts.is_unique, skill


def test_eval_is_disjoint_from_fusion_for_every_skill(world_sized):
    df, spec = world_sized
    for skill in spec["skills"]:
        leaked = set(keys(df, "eval", skill)) & set(keys(df, "fusion", skill))
        assert not leaked, (skill, sorted(leaked)[:5])
        # nor does a fusion reference state an eval item's prompt
        assert set(df[(df.split == "eval") & (df.skill == skill)].prompt).isdisjoint(
            df[(df.split == "fusion") & (df.skill == skill)].prompt
        )


def test_algorithmic_eval_items_are_never_pretraining_items(world_sized):
    df, spec = world_sized
    for skill in ALGORITHMIC:
        if skill in spec["skills"]:
            assert set(keys(df, "eval", skill)).isdisjoint(keys(df, "pretrain", skill)), skill


def test_eval_sizes_at_the_configured_size(world_sized):
    df, spec = world_sized
    n, counts = spec["sizes"]["eval"], df[df.split == "eval"].groupby("skill").size()
    for skill in ("arith", "reverse", "upper", "greek"):
        assert counts[skill] == n[skill], skill
    # lookup: one item per entity held out of the fusion split; code: half its programs
    assert counts["lookup"] == min(n["lookup"], spec["n_entities"] // 2)
    assert counts["code"] == min(n["code"], 80)


def test_eval_sizes_per_skill():
    df = build_corpus(
        1, {"eval": {"arith": 3, "reverse": 7, "code": 2}}, skills=["arith", "reverse"]
    )
    assert df.groupby("skill").size().to_dict() == {"arith": 3, "reverse": 7}
    with pytest.raises(ValueError, match=r"none for skill 'upper'"):
        build_corpus(1, {"eval": {"arith": 3}}, skills=["arith", "upper"])
    with pytest.raises(ValueError, match=r"sizes.eval: unknown skills \['poetry'\]"):
        build_corpus(1, {"eval": {"arith": 3, "poetry": 1}}, skills=["arith"])


def test_arith_operands_span_two_digits_and_every_pair_is_possible():
    df = build_corpus(2, {"pretrain": 3000}, skills=["arith"])
    pairs = set(keys(df, "pretrain", "arith"))
    assert {a for a, _ in pairs} == set(range(30)) and {b for _, b in pairs} == set(range(20))
    assert len(pairs) > 550  # of 600
    for row in df.head(50).itertuples():
        a, b = item_key(row)
        gold = str(a + b)
        assert row.answer == gold
        assert row.reference == f"{a} plus {b} makes {gold} . the answer is {gold}"


def test_lookup_entities_are_split_between_fusion_and_eval_and_all_pretrained():
    facts = fact_table(4, 40)
    df = build_corpus(4, {"pretrain": 1000, "fusion": 200, "eval": 64}, n_entities=40)
    ev, fu = set(keys(df, "eval", "lookup")), set(keys(df, "fusion", "lookup"))
    assert len(ev) == 20 == len(keys(df, "eval", "lookup"))  # n_entities // 2, distinct
    assert ev.isdisjoint(fu) and len(ev | fu) == 40
    # the facts are learned in pretraining: every entity is there (a knowledge task)
    assert set(keys(df, "pretrain", "lookup")) == {(e,) for e in facts}
    for row in df[df.skill == "lookup"].itertuples():
        assert row.answer == facts[item_key(row)[0]]


def test_the_eval_split_does_not_depend_on_the_other_splits_sizes():
    alone = build_corpus(5, {"eval": 40}, skills=ALL_SKILLS)
    full = build_corpus(5, {"pretrain": 400, "fusion": 60, "eval": 40}, skills=ALL_SKILLS)
    pd.testing.assert_frame_equal(alone, full[full.split == "eval"].reset_index(drop=True))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("skill", "sizes", "match"),
    [
        ("arith", {"eval": 601}, r"601 distinct arith items.*600"),
        ("arith", {"fusion": 5, "eval": 600}, r"arith.*leaves no .*fusion"),
        ("reverse", {"eval": 11_001}, r"11001 distinct reverse items.*11000"),
        ("greek", {"pretrain": 3, "eval": 11_000}, r"greek.*leaves no .*pretrain"),
    ],
    ids=["arith", "arith-no-fusion-left", "reverse", "greek-no-pretrain-left"],
)
def test_too_large_an_eval_size_is_an_error(skill, sizes, match):
    with pytest.raises(ValueError, match=match):
        build_corpus(1, sizes, skills=[skill])


def test_worked_fusion_references_are_longer_and_keep_the_answer():
    """Issue 17 item 2: ProFuser's ground truth is longer and harder than what the
    sources write. With ``fusion_references="worked"`` the fusion split's references
    state the steps (the sources learn the short style from the pretraining split); every
    other split, and every other column, is the short corpus's."""
    sizes = {"pretrain": 20, "fusion": 30, "eval": 10}
    short = build_corpus(5, sizes, SIX_SKILLS, 40)
    worked = build_corpus(5, sizes, SIX_SKILLS, 40, fusion_references="worked")
    others = short.split != "fusion"
    assert worked[others].equals(short[others])
    assert worked.drop(columns="reference").equals(short.drop(columns="reference"))
    fusion = worked[~others]
    assert all(is_correct(r, a) for r, a in zip(fusion.reference, fusion.answer, strict=True))
    words = fusion.reference.str.split().str.len() / short[~others].reference.str.split().str.len()
    by_skill = words.groupby(fusion.skill).min()
    # arith, reverse, upper and lookup at least 1.4x as many words; code keeps its
    # program (it must run), greek its short form (it must fit 128 tokens)
    assert (by_skill[["arith", "reverse", "upper", "lookup"]] >= 1.4).all(), by_skill
    assert (by_skill[["code", "greek"]] == 1.0).all(), by_skill
    with pytest.raises(ValueError, match="fusion_references"):
        build_corpus(5, sizes, SIX_SKILLS, 40, fusion_references="long")


def test_references_are_rendered_from_the_prompt_and_the_answer_stated():
    """render_reference gives back every item's own reference (short) and its worked
    form, read from the prompt alone; with a wrong answer, a response of the same form
    that states the wrong answer wherever the reference states the right one."""
    skills = ["arith", "reverse", "upper", "lookup"]
    short = build_corpus(11, {"pretrain": 100, "eval": 50}, skills)
    worked = build_corpus(11, {"fusion": 100}, skills, fusion_references="worked")
    for frame, style in ((short, "short"), (worked, "worked")):
        for r in frame.itertuples():
            assert render_reference(r.skill, r.prompt, r.answer, style) == r.reference, r
    # by hand, from the templates' meaning: the sum is stated three times in the worked
    # form, the operands never change, the letters' order follows the answer stated
    assert read_item_key("arith", "add 10 and 0 .") == (10, 0)
    wrong = render_reference("arith", "add 10 and 0 .", "11", "worked")
    assert wrong == (
        "we add 10 and 0 . 10 plus 0 makes 11 . check : 11 minus 0 makes 10 . the answer is 11"
    )
    assert render_reference("reverse", "write a b c backwards .", "b c a", "worked") == (
        "the letters are a b c . from the last one : b , c , a . the answer is b c a"
    )
    assert render_reference("upper", "uppercase the letters : a b c", "a b c", "worked") == (
        "the letters are a b c . a becomes a , b becomes b , c becomes c . the answer is a b c"
    )
    assert read_item_key("lookup", "tell me the colour of the zoba .") == "zoba"
    for skill, prompt, match in (
        ("arith", "what is 3 + ?", "cannot read"),
        ("reverse", "reverse the letters : a b", "cannot read"),
        ("code", "write a python function", "no reference styles"),
    ):
        with pytest.raises(ValueError, match=match):
            render_reference(skill, prompt, "1")
    with pytest.raises(ValueError, match="style 'long'"):
        render_reference("arith", "add 1 and 2 .", "3", "long")


def test_a_share_of_pretraining_references_is_worked_and_the_items_do_not_change():
    """pretrain_worked_share: each pretraining example of a skill with a worked form takes
    it with that probability (400 draws at 0.25: standard deviation 0.022, so the bounds
    [0.17, 0.33] are 3.7 of them away); items, answers and the other splits stay as with
    0."""
    sizes = {"pretrain": 400, "fusion": 20, "eval": 20}
    none = build_corpus(9, sizes, SIX_SKILLS, 40, fusion_references="worked")
    some = build_corpus(9, sizes, SIX_SKILLS, 40, "worked", pretrain_worked_share=0.25)
    assert some.drop(columns="reference").equals(none.drop(columns="reference"))
    pre = some.split == "pretrain"
    assert some[~pre].equals(none[~pre])
    changed = some[pre].reference != none[pre].reference
    share = changed.groupby(some[pre].skill).mean()
    assert share[["arith", "reverse", "upper", "lookup"]].between(0.17, 0.33).all(), share
    assert (share[["code", "greek"]] == 0).all(), share
    for r in some[pre][changed].itertuples():
        assert r.reference == render_reference(r.skill, r.prompt, r.answer, "worked")
    with pytest.raises(ValueError, match="pretrain_worked_share"):
        build_corpus(9, sizes, SIX_SKILLS, 40, pretrain_worked_share=1.5)

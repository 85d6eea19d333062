"""The tiny corpus's FuseChat-3.0 skills (code with tests, greek) and the skills filter of
tiny_corpus prompt sets."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fusekit.data import PROMPT_COLUMNS, prepare_prompts, prompt_tests
from fusekit.io import write_table
from fusekit.preference.coding import code_test_results
from fusekit.tiny.corpus import (
    COLUMNS,
    GENERATORS,
    SKILLS,
    TESTS_COLUMN,
    build_corpus,
    extract_answer,
    is_correct,
)
from fusekit.tiny.openllm_tasks import build_task_docs

ALL = list(GENERATORS)
LATIN = re.compile(r"[A-Za-z]")
GREEK = re.compile(r"[\u0370-\u03ff]")


def run_tests(code: str, tests: str) -> bool:
    """In-process check of trusted corpus code (the sandbox is tested on a few below)."""
    ns: dict = {}
    try:
        exec(compile(code, "<code>", "exec"), ns)  # noqa: S102
        exec(compile(tests, "<tests>", "exec"), ns)  # noqa: S102
    except Exception:  # noqa: BLE001 - any failure is a fail
        return False
    return True


def wrong_programs(answer: str) -> list[str]:
    """Typical wrong answers: each constant off by one, the constants swapped, the other
    operation, the bare value of f(1) instead of a function, and a syntax error."""
    consts = re.findall(r"\d+", answer.split("return", 1)[1])
    out = []
    for c in consts:
        out.append(answer.replace(f" {c}", f" {int(c) + 1}", 1))
    if len(consts) == 2 and consts[0] != consts[1]:
        a, b = consts
        out.append(answer.replace(f"* {a}", "* @A").replace(f" {b}", f" {a}").replace("@A", b))
    out.append(answer.replace("*", "+") if "*" in answer else answer.replace("+", "*"))
    out.append("4")
    out.append(answer.replace("return", "retrun"))
    return out


def test_code_references_pass_their_tests_and_wrong_answers_fail():
    df = build_corpus(5, {"pretrain": 60, "eval": 20}, skills=["code"])
    assert list(df.columns) == [*COLUMNS, TESTS_COLUMN]
    assert (df.reference == df.answer).all() and df.answer.str.startswith("def f(x): ").all()
    n_wrong = 0
    for row in df.itertuples():
        assert row.tests.count("assert f(") == 5
        assert run_tests(row.reference, row.tests), row.prompt
        for wrong in wrong_programs(row.answer):
            if wrong != row.answer:
                n_wrong += 1
                assert not run_tests(wrong, row.tests), (row.answer, wrong)
        # the prompt states the constants the answer uses
        assert set(re.findall(r"\d", row.answer)) <= set(re.findall(r"\d", row.prompt))
    assert n_wrong > 3 * len(df)
    # every operation appears, and the references are short enough for 40 new tokens
    ops = {re.sub(r"\d+", "N", a) for a in df.answer}
    assert len(ops) == 4 and df.answer.str.len().max() <= 30
    # is_correct (the world's exact match) and extract_answer take bare code whole
    assert all(is_correct(r, a) for r, a in zip(df.reference, df.answer, strict=True))


def test_code_items_in_the_real_sandbox():
    row = build_corpus(2, {"eval": 1}, skills=["code"]).iloc[0]
    gens = pd.DataFrame(
        {
            "prompt_id": [row.prompt_id] * 3,
            "model": "m",
            "sample": [0, 1, 2],
            "response": [row.answer, "def f(x): return x", f"```python\n{row.answer}\n```"],
        }
    )
    tests = pd.DataFrame({"prompt_id": [row.prompt_id], "tests": [row.tests]})
    res = code_test_results(gens, tests, timeout=5)
    assert res.status.tolist() == ["passed", "failed", "passed"]


def test_greek_items_are_non_latin_and_checkable():
    df = build_corpus(3, {"pretrain": 40, "eval": 10}, skills=["greek"])
    for row in df.itertuples():
        for text in (row.prompt, row.answer, row.reference):
            assert not LATIN.search(text), text
            assert GREEK.search(text), text
        assert row.answer == row.answer.upper() != row.answer.lower()
        letters = row.prompt.replace(":", " ").replace(".", " ").split()
        assert row.answer.split() == [t.upper() for t in letters if len(t) == 1]
        assert row.tests == ""
        assert extract_answer(row.reference) == row.answer
        assert is_correct(row.reference, row.answer)
        assert not is_correct(row.reference, row.answer.lower())
    assert (df.reference.str.len() > df.answer.str.len() + 10).all()


def test_the_last_answer_marker_wins_in_either_language():
    assert extract_answer("η απάντηση είναι Α . the answer is b") == "b"
    assert extract_answer("the answer is b . η απάντηση είναι Α Β .") == "Α Β"


def test_default_skills_are_profusers_and_new_skills_do_not_shift_old_items():
    assert set(SKILLS) == {"arith", "reverse", "upper", "lookup"} and {"code", "greek"} <= set(ALL)
    four = build_corpus(9, {"fusion": 5, "eval": 8})
    six = build_corpus(9, {"fusion": 5, "eval": 8}, skills=ALL)
    assert set(four.skill) == set(SKILLS)
    same = six[six.skill.isin(SKILLS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(same, four)


def test_openllm_tasks_ignore_the_new_skills():
    four = build_corpus(7, {"eval": 64})
    six = build_corpus(7, {"eval": 64}, skills=ALL)
    assert build_task_docs(six, seed=7) == build_task_docs(four, seed=7)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.parquet"
    write_table(build_corpus(0, {"pretrain": 5, "fusion": 6}, skills=ALL), path)
    return path


def test_skills_filter_and_tests_column(tmp_path, corpus):
    out = tmp_path / "p.parquet"
    spec = {"kind": "tiny_corpus", "split": "fusion"}
    four = prepare_prompts({**spec, "skills": list(SKILLS)}, 1, out, corpus, name="fusion_train")
    assert list(four.columns) == list(PROMPT_COLUMNS)  # no code: no tests column
    assert set(four.source) == {f"tiny:{s}" for s in SKILLS} and len(four) == 24
    six = prepare_prompts(spec, 1, out, corpus)
    assert list(six.columns) == [*PROMPT_COLUMNS, "tests"] and len(six) == 36
    code = six.source == "tiny:code"
    assert (six.tests[code].str.contains("assert f")).all() and (six.tests[~code] == "").all()
    assert prompt_tests(six).prompt_id.tolist() == six.prompt_id[code].tolist()
    assert prompt_tests(four).empty
    sampled = prepare_prompts({**spec, "skills": ["code"], "n_examples": 4}, 1, out, corpus)
    assert len(sampled) == 4 and set(sampled.source) == {"tiny:code"}
    assert pd.read_parquet(out).equals(sampled)


def test_skills_filter_errors_name_the_key(tmp_path):
    corpus = tmp_path / "corpus.parquet"
    write_table(build_corpus(0, {"fusion": 2}), corpus)  # the four default skills
    out = tmp_path / "p.parquet"
    spec = {"kind": "tiny_corpus", "split": "fusion"}
    with pytest.raises(ValueError, match=r"datasets\.fusechat_train\.skills: unknown skills "):
        prepare_prompts({**spec, "skills": ["arith", "code"]}, 1, out, corpus, "fusechat_train")
    with pytest.raises(ValueError, match=r"\['code'\]; the corpus .* has \['arith'"):
        prepare_prompts({**spec, "skills": ["code"]}, 1, out, corpus)
    with pytest.raises(ValueError, match=r"datasets\.d\.skills: an empty list"):
        prepare_prompts({**spec, "skills": []}, 1, out, corpus, "d")
    with pytest.raises(ValueError, match=r"datasets\.h\.skills: only a tiny_corpus"):
        prepare_prompts({"kind": "orca_best", "skills": ["arith"]}, 1, out, name="h")
    assert not out.exists()


def test_a_corpus_without_the_tests_column_still_reads(tmp_path):
    corpus = tmp_path / "old.parquet"
    write_table(build_corpus(0, {"fusion": 3})[list(COLUMNS)], corpus)
    df = prepare_prompts(
        {"kind": "tiny_corpus", "split": "fusion"}, 1, tmp_path / "p.parquet", corpus
    )
    assert list(df.columns) == list(PROMPT_COLUMNS)


@pytest.mark.parametrize(("kind", "vocab"), [("byte_bpe", 500), ("metaspace_bpe", 450)])
def test_new_skills_round_trip_through_both_tokenizer_kinds(kind, vocab):
    from fusekit.tiny.tokenizers import train_tokenizer

    df = build_corpus(0, {"pretrain": 150}, skills=ALL)
    texts = [f"{p} {r}" for p, r in zip(df.prompt, df.reference, strict=True)]
    tok = train_tokenizer(texts, kind, vocab, "chatml")
    for skill in ("greek", "code"):
        row = df[df.skill == skill].iloc[0]
        for text in (row.prompt, row.reference):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids
            assert tok.decode(ids) == text
    # Greek got tokens of its own (merges, not only single characters or bytes)
    words = [tok.convert_tokens_to_string([t]) for t in tok.get_vocab()]
    assert any(len(GREEK.findall(w)) >= 2 for w in words)

"""build_fusechat3_data, file to file, on hand-made generations and scores."""

from __future__ import annotations

import pandas as pd
import pytest

from fusekit.generation import GENERATION_COLUMNS
from fusekit.io import write_table
from fusekit.preference.build import build_fusechat3_data
from fusekit.rewards.scoring import SCORE_COLUMNS

PROMPTS = pd.DataFrame(
    {
        "prompt_id": ["m1", "m2", "i1", "i2", "i3"],
        "prompt": ["2 plus 3?", "4 plus 4?", "reverse ab", "reverse cd", "upper x"],
        "reference": ["2 plus 3 makes 5 . the answer is 5", "the answer is 8", "ba", "dc", "X"],
        "system": "",
        "source": ["tiny:arith", "tiny:arith", "tiny:reverse", "tiny:reverse", "tiny:upper"],
    }
)


def write_inputs(tmp_path, responses: dict[str, list[tuple[str, float]]], prompts=PROMPTS):
    """responses: model -> [(response, score)] per prompt in ``prompts`` order, 2 samples
    each."""
    write_table(prompts, tmp_path / "prompts.parquet")
    gens, scores = [], []
    for model, rows in responses.items():
        g, s = [], []
        for i, pid in enumerate(prompts.prompt_id):
            for sample in range(2):
                text, score = rows[2 * i + sample]
                g.append((pid, model, sample, prompts.prompt[i], text, 3, "stop"))
                s.append((pid, model, sample, "rm", score, False, 9))
        gcols, scols = list(GENERATION_COLUMNS), list(SCORE_COLUMNS)
        write_table(pd.DataFrame(g, columns=gcols), tmp_path / f"g_{model}.parquet")
        write_table(pd.DataFrame(s, columns=scols), tmp_path / f"s_{model}.parquet")
        gens.append(str(tmp_path / f"g_{model}.parquet"))
        scores.append(str(tmp_path / f"s_{model}.parquet"))
    return gens, scores


def run(tmp_path, gens, scores, domains, parts=None, **kwargs):
    return build_fusechat3_data(
        str(tmp_path / "prompts.parquet"),
        gens,
        scores,
        "rm",
        domains,
        0,
        (0.01, 1.0),
        parts or {"sft": 1, "dpo": 1},
        None,
        *(str(tmp_path / f) for f in ("sft.parquet", "dpo.parquet", "counts.csv", "comp.csv")),
        **kwargs,
    )


def test_domains_and_files(tmp_path):
    a = [
        ("the answer is 5", 0.2),
        ("the answer is 6", 0.9),  # m1: wrong one scores higher
        ("the answer is 8", 0.1),
        ("the answer is 8", 0.3),  # m2
        ("ba", 0.5),
        ("ab", 0.2),
        ("dc", 0.4),
        ("cd", 0.35),
        ("X", 0.3),
        ("x", 0.1),
    ]
    gens, scores = write_inputs(tmp_path, {"a": a})
    sft, pairs = run(tmp_path, gens, scores, {"tiny:arith": "mathematics"})
    both = pd.concat([sft.assign(kind="sft"), pairs.assign(kind="dpo")])
    assert set(both.prompt_id) <= set(PROMPTS.prompt_id)
    # a mathematics pair puts the correct answer first, whatever the reward model says
    m = pairs[pairs.domain == "mathematics"]
    assert (m.chosen_response == "the answer is 5").all() or m.empty
    assert (sft[sft.prompt_id == "m1"].response == "the answer is 5").all()
    comp = pd.read_csv(tmp_path / "comp.csv")
    total = comp[comp.category == "total"].iloc[0]
    assert total.sft == len(sft) and total.dpo == len(pairs)
    counts = pd.read_csv(tmp_path / "counts.csv")
    assert set(counts.domain) == {"instruction_following", "mathematics"}


def test_bad_inputs(tmp_path):
    a = [("r", 0.1)] * 10
    gens, scores = write_inputs(tmp_path, {"a": a})
    with pytest.raises(ValueError, match=r"unknown domains \['chinese'\]"):
        run(tmp_path, gens, scores, {"tiny:arith": "chinese"})
    bad = PROMPTS.copy()
    bad.loc[1, "reference"] = "eight"
    write_table(bad, tmp_path / "prompts.parquet")
    with pytest.raises(ValueError, match=r"no final answer in the reference .* 'm2'"):
        run(tmp_path, gens, scores, {"tiny:arith": "mathematics"})


TESTS = "assert f(0) == 1\nassert f(2) == 7\nassert f(-3) == -8\n"
CODE_PROMPTS = pd.DataFrame(
    {
        "prompt_id": ["c1", "c2", "g1", "g2", "i1"],
        "prompt": ["f: x * 3 + 1", "f: x * 3 + 1 again", "κεφαλαία α β", "κεφαλαία γ", "rev ab"],
        "reference": ["def f(x): return x * 3 + 1"] * 2 + ["Α Β", "Γ", "ba"],
        "system": "",
        "source": ["tiny:code", "tiny:code", "tiny:greek", "tiny:greek", "tiny:reverse"],
        "tests": [TESTS, TESTS, "", "", ""],
    }
)
CODE_DOMAINS = {"tiny:code": "coding", "tiny:greek": "single_source"}
GOOD = "def f(x): return x * 3 + 1"
CODE_RESPONSES = {
    "a": [
        (GOOD, 0.5),
        ("def f(x): return x * 1 + 3", 0.9),  # c1: the failing one scores higher
        ("def f(x): return x", 0.3),
        ("def f(x): return x", 0.2),  # c2: every response fails
        ("Α Β", 0.1),
        ("Α", 0.1),  # g: not the single source, ignored
        ("Γ", 0.1),
        ("Γ", 0.1),
        ("ba", 0.5),
        ("ab", 0.45),
    ],
    "b": [
        ("while True:\n    pass", 0.2),  # c1: hangs -> timeout
        ("raise RuntimeError('boom')", 0.1),  # c1: raises -> error
        ("def f(x): return 0", 0.3),
        ("", 0.0),  # c2: empty -> not run, counted as an empty response
        ("Α Β", 0.0),
        ("Α Β Γ", 0.0),  # g1: the single source's first sample
        ("", 0.0),
        (" ", 0.0),  # g2: no usable response from the single source
        ("ba", 0.3),
        ("x", 0.2),
    ],
}


def test_coding_and_single_source_domains(tmp_path):
    gens, scores = write_inputs(tmp_path, CODE_RESPONSES, CODE_PROMPTS)
    sft, pairs = run(
        tmp_path,
        gens,
        scores,
        CODE_DOMAINS,
        single_source={"model": "b", "domain_name": "greek"},
        code_limits={"timeout": 1.0, "memory_mb": 256},
        workers=2,
    )
    counts = pd.read_csv(tmp_path / "counts.csv")
    n = {(d, w): v for d, w, v in zip(counts.domain, counts.what, counts.n, strict=True)}
    assert set(counts.domain) == {"coding", "greek", "instruction_following"}
    assert set(counts.dataset) == {"prompts"}
    # coding: every usable response ran; the hang and the raise are counted statuses
    assert n["coding", "prompts"] == 2
    assert n["coding", "tests_passed"] == 1
    assert n["coding", "tests_failed"] == 4
    assert n["coding", "tests_timeout"] == 1
    assert n["coding", "tests_error"] == 1
    assert n["coding", "empty_responses"] == 1
    assert n["coding", "dropped_all_fail"] == 1
    assert n["coding", "sft"] + n["coding", "dpo"] == 1
    code_sft, code_pairs = sft[sft.domain == "coding"], pairs[pairs.domain == "coding"]
    assert set(code_sft.prompt_id) | set(code_pairs.prompt_id) == {"c1"}
    # passing before score: the 0.5 passing response beats the 0.9 failing one
    assert (code_sft.response == GOOD).all()
    assert (code_pairs.chosen_response == GOOD).all()
    assert (code_pairs.rejected_response == "def f(x): return x * 1 + 3").all()
    assert (code_pairs.gap < 0).all()  # no RM-gap rule for code
    # single source: SFT only, the named source's first non-empty sample, no score
    greek = sft[sft.domain == "greek"]
    assert greek[["prompt_id", "model", "sample", "response"]].values.tolist() == [
        ["g1", "b", 0, "Α Β"]
    ]
    assert greek.score.isna().all() and pairs[pairs.domain == "greek"].empty
    assert n["greek", "sft"] == 1 and n["greek", "dpo"] == 0
    assert n["greek", "dropped_no_usable_response"] == 1 and n["greek", "empty_responses"] == 2
    assert n["instruction_following", "prompts"] == 1
    # the composition lists every domain, and its total is the files' rows
    comp = pd.read_csv(tmp_path / "comp.csv")
    rows = comp.set_index("category")
    assert rows.loc["coding", "total"] == 1 and rows.loc["greek", "sft"] == 1
    assert rows.loc["total", "sft"] == len(sft) and rows.loc["total", "dpo"] == len(pairs)
    assert len(pd.read_parquet(tmp_path / "sft.parquet")) == len(sft)


def test_coding_and_single_source_bad_inputs(tmp_path):
    gens, scores = write_inputs(tmp_path, CODE_RESPONSES, CODE_PROMPTS)
    kw = {"single_source": {"model": "b"}, "code_limits": {"timeout": 1.0}}
    no_tests = CODE_PROMPTS.copy()
    no_tests.loc[1, "tests"] = " "
    write_table(no_tests, tmp_path / "prompts.parquet")
    with pytest.raises(ValueError, match=r"prompts\.parquet: coding prompt 'c2' has no tests"):
        run(tmp_path, gens, scores, CODE_DOMAINS, **kw)
    write_table(no_tests.drop(columns="tests"), tmp_path / "prompts.parquet")
    with pytest.raises(ValueError, match=r"coding prompt 'c1' has no tests \(2 in all\)"):
        run(tmp_path, gens, scores, CODE_DOMAINS, **kw)
    write_table(CODE_PROMPTS, tmp_path / "prompts.parquet")
    with pytest.raises(ValueError, match=r"single_source\.model: the single_source domain"):
        run(tmp_path, gens, scores, CODE_DOMAINS, code_limits={"timeout": 1.0})
    with pytest.raises(ValueError, match=r"single_source\.model: 'qwen' has no generations"):
        run(tmp_path, gens, scores, CODE_DOMAINS, single_source={"model": "qwen"})
    with pytest.raises(ValueError, match=r"single_source: unknown keys \['name'\]"):
        run(tmp_path, gens, scores, CODE_DOMAINS, single_source={"model": "b", "name": "x"})
    for limits, error in (
        ({"wall": 1}, r"coding: unknown sandbox limits \['wall'\]"),
        ({"timeout": 0}, r"coding\.timeout: must be positive"),
    ):
        with pytest.raises(ValueError, match=error):
            run(
                tmp_path,
                gens,
                scores,
                CODE_DOMAINS,
                single_source={"model": "b"},
                code_limits=limits,
            )
    assert not (tmp_path / "sft.parquet").exists()

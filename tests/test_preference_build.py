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


def write_inputs(tmp_path, responses: dict[str, list[tuple[str, float]]]):
    """responses: model -> [(response, score)] per prompt in PROMPTS order, 2 samples each."""
    write_table(PROMPTS, tmp_path / "prompts.parquet")
    gens, scores = [], []
    for model, rows in responses.items():
        g, s = [], []
        for i, pid in enumerate(PROMPTS.prompt_id):
            for sample in range(2):
                text, score = rows[2 * i + sample]
                g.append((pid, model, sample, PROMPTS.prompt[i], text, 3, "stop"))
                s.append((pid, model, sample, "rm", score, False, 9))
        gcols, scols = list(GENERATION_COLUMNS), list(SCORE_COLUMNS)
        write_table(pd.DataFrame(g, columns=gcols), tmp_path / f"g_{model}.parquet")
        write_table(pd.DataFrame(s, columns=scols), tmp_path / f"s_{model}.parquet")
        gens.append(str(tmp_path / f"g_{model}.parquet"))
        scores.append(str(tmp_path / f"s_{model}.parquet"))
    return gens, scores


def run(tmp_path, gens, scores, domains, parts=None):
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
    with pytest.raises(ValueError, match=r"unknown domains \['coding'\]"):
        run(tmp_path, gens, scores, {"tiny:arith": "coding"})
    bad = PROMPTS.copy()
    bad.loc[1, "reference"] = "eight"
    write_table(bad, tmp_path / "prompts.parquet")
    with pytest.raises(ValueError, match=r"no final answer in the reference .* 'm2'"):
        run(tmp_path, gens, scores, {"tiny:arith": "mathematics"})

import pandas as pd
import pytest

from fusekit.data import PROMPT_COLUMNS, orca_best_rows, prepare_prompts
from fusekit.io import atomic_path, read_table, write_table
from fusekit.tiny.corpus import build_corpus
from fusekit.workflow import dataset_inputs, final_targets, model_role, world_tables


def test_prepare_prompts_from_tiny_corpus(tmp_path):
    corpus = tmp_path / "corpus.parquet"
    write_table(build_corpus(0, {"pretrain": 5, "fusion": 6}), corpus)
    out = tmp_path / "p.parquet"
    df = prepare_prompts(
        {"kind": "tiny_corpus", "split": "fusion", "n_examples": 10}, 1, out, corpus
    )
    assert list(df.columns) == list(PROMPT_COLUMNS)
    assert len(df) == 10 and df.prompt_id.str.startswith("fusion-").all()
    assert read_table(out).equals(df)
    again = prepare_prompts(
        {"kind": "tiny_corpus", "split": "fusion", "n_examples": 10}, 1, out, corpus
    )
    assert again.equals(df)
    with pytest.raises(ValueError, match="split 'eval' is empty"):
        prepare_prompts({"kind": "tiny_corpus", "split": "eval"}, 1, out, corpus)


def test_a_tiny_prompt_set_can_take_its_references_in_the_worked_style(tmp_path):
    """datasets.<name>.reference_style: the held-out loss reads eval items in the style
    of the references fusion trains on; the eval split itself is short."""
    skills = ["arith", "lookup", "code"]
    worked = build_corpus(4, {"fusion": 6, "eval": 6}, skills, fusion_references="worked")
    short = build_corpus(4, {"fusion": 6, "eval": 6}, skills)
    corpus = tmp_path / "corpus.parquet"
    write_table(short, corpus)
    spec = {"kind": "tiny_corpus", "split": "fusion", "reference_style": "worked"}
    df = prepare_prompts(spec, 1, tmp_path / "w.parquet", corpus)
    # the fusion split of a worked corpus, code keeping its program
    assert df.reference.tolist() == worked[worked.split == "fusion"].reference.tolist()
    assert (df.reference != short[short.split == "fusion"].reference.values).sum() == 12
    spec = {"kind": "tiny_corpus", "split": "eval", "reference_style": "short"}
    df = prepare_prompts(spec, 1, tmp_path / "s.parquet", corpus)
    assert df.reference.tolist() == short[short.split == "eval"].reference.tolist()


def test_orca_best_rows_flattens_clusters():
    records = [
        {
            "instruction": "be brief",
            "cluster": {
                "samples": [{"input": "q1", "output": "a1"}, {"input": "q2", "output": "a2"}]
            },
        },
        {"instruction": "", "cluster": {"samples": [{"input": "q3", "output": "a3"}]}},
    ]
    df = orca_best_rows(records)
    assert df.prompt.tolist() == ["q1", "q2", "q3"]
    assert df.system.tolist() == ["be brief", "be brief", ""]
    with pytest.raises(ValueError, match="orca-best row 1"):
        orca_best_rows([records[0], {"question": "q", "response": "r"}])


def test_read_table_names_file_and_missing_columns(tmp_path):
    p = tmp_path / "t.csv"
    write_table(pd.DataFrame({"a": [1]}), p)
    with pytest.raises(ValueError, match=r"t\.csv: missing columns \['b'\]"):
        read_table(p, ["a", "b"])
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ValueError, match=r"bad\.parquet: cannot read table"):
        read_table(bad)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_table(tmp_path / "nope.csv")


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_path(tmp_path / "model", is_dir=True) as tmp:
        tmp.mkdir(exist_ok=True)
        (tmp / "w.bin").write_text("x")
    assert (tmp_path / "model" / "w.bin").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.txt"]


def test_workflow_layout():
    cfg = {
        "scale": "tiny",
        "datasets": {"d": {"kind": "tiny_corpus"}, "h": {"kind": "orca_best"}},
        "studies": {"s": {"sources": ["a", "b"], "target": "b"}},
        "tiny_world": {"models": {"a": {}, "b": {}}, "reward_models": {"r": {}}},
    }
    assert final_targets(cfg)[-1] == "results/tiny/world/skill_accuracy.csv"
    assert dataset_inputs(cfg, "d") == ["results/tiny/world/corpus.parquet"]
    assert dataset_inputs(cfg, "h") == []
    assert model_role(cfg, "a") == "source" and model_role(cfg, "b") == "source+target"
    assert model_role(cfg, "z") == "other"
    assert world_tables(cfg)[-1] == "results/tiny/world/eval/reward_models/r.csv"
    assert final_targets({**cfg, "scale": "paper"}) == [
        "results/data/d.parquet",
        "results/data/h.parquet",
    ]

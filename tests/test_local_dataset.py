"""The local_file data set kind: one .jsonl, .json, .csv or .parquet file of one's own
becomes a prompt set (fusekit.data.read_local_prompts), its faults are named down to the
file, row and column before anything is written, a missing file stops the plan, and the
file is an input of prepare_prompts, so editing it rebuilds the prompt set."""

from __future__ import annotations

import copy
import hashlib
import json
import re

import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_workflow, snakemake

from fusekit.checks import DataError
from fusekit.config import ConfigError, check_references
from fusekit.data import PROMPT_COLUMNS, prepare_prompts, read_local_prompts

# the file's own column names, mapped onto the prompt set's
MAPPING = {"prompt_id": "id", "prompt": "instruction", "reference": "output", "system": "sys"}
ROWS = [
    {"id": "q-1", "instruction": "What is 2 + 3?", "output": "5", "sys": "Be brief.", "x": 1},
    {"id": "q-2", "instruction": "Name a primary colour.", "output": "Red.", "sys": None, "x": 2},
    {"id": "q-3", "instruction": "Reverse 'abc'.", "output": "cba", "sys": "", "x": 3},
]
# what every format must give: ids and text as written, a null system as "", the extra
# column x dropped, source the configured path
EXPECTED = {
    "prompt_id": ["q-1", "q-2", "q-3"],
    "prompt": ["What is 2 + 3?", "Name a primary colour.", "Reverse 'abc'."],
    "reference": ["5", "Red.", "cba"],
    "system": ["Be brief.", "", ""],
}


def write(path, rows: list[dict]) -> str:
    """``rows`` as the file type of ``path``'s suffix (a CSV's null is an empty cell)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1))
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path, index=False)
    return str(path)


def spec(path, **extra) -> dict:
    return {"kind": "local_file", "path": str(path), **extra}


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_each_format_loads_to_the_prompt_columns(tmp_path, suffix):
    path = write(tmp_path / f"mine{suffix}", ROWS)
    out = tmp_path / "out.parquet"
    df = prepare_prompts(spec(path, columns=MAPPING), seed=0, out=str(out), name="mine")
    assert list(df.columns) == list(PROMPT_COLUMNS)
    for col, values in EXPECTED.items():
        assert df[col].tolist() == values, col
    assert df.source.tolist() == [path] * 3
    written = pd.read_parquet(out)
    assert written.prompt_id.tolist() == EXPECTED["prompt_id"]
    assert list(written.columns) == list(PROMPT_COLUMNS)


def test_default_names_and_hashed_ids(tmp_path):
    """Without a mapping the columns are read by their own names; without a prompt_id
    column the id is 'sha256-' and the first 16 hex digits of the prompt's SHA-256 (the
    documented rule, recomputed here), so it does not move when rows are reordered."""
    rows = [
        {"prompt": "add 1 and 2 .", "reference": "3"},
        {"prompt": "add 2 and 2 .", "reference": "4"},
    ]
    first = read_local_prompts(spec(write(tmp_path / "a.jsonl", rows)))
    want = ["sha256-" + hashlib.sha256(r["prompt"].encode()).hexdigest()[:16] for r in rows]
    assert first.prompt_id.tolist() == want
    assert first.system.tolist() == ["", ""]
    swapped = read_local_prompts(spec(write(tmp_path / "b.jsonl", rows[::-1])))
    assert dict(zip(swapped.prompt, swapped.prompt_id, strict=True)) == dict(
        zip(first.prompt, want, strict=True)
    )


def test_integer_ids_become_text_and_tests_are_kept(tmp_path):
    rows = [
        {"n": 7, "q": "Write f.", "a": "def f(): return 1", "t": "assert f() == 1"},
        {"n": 8, "q": "Say hi.", "a": "hi", "t": None},
    ]
    cols = {"prompt_id": "n", "prompt": "q", "reference": "a", "tests": "t"}
    df = read_local_prompts(spec(write(tmp_path / "c.parquet", rows), columns=cols))
    assert df.prompt_id.tolist() == ["7", "8"]
    assert list(df.columns) == [*PROMPT_COLUMNS, "tests"]
    assert df.tests.tolist() == ["assert f() == 1", ""]


def test_n_examples_samples_after_reading_and_keeps_file_order(tmp_path):
    rows = [{"prompt_id": f"p{i}", "prompt": f"q{i}", "reference": f"a{i}"} for i in range(10)]
    path = write(tmp_path / "d.csv", rows)
    a = prepare_prompts(spec(path, n_examples=4), 1, str(tmp_path / "a.parquet"))
    b = prepare_prompts(spec(path, n_examples=4), 1, str(tmp_path / "b.parquet"))
    assert len(a) == 4 and a.prompt_id.tolist() == b.prompt_id.tolist()
    positions = [int(i[1:]) for i in a.prompt_id]
    assert positions == sorted(positions) and set(positions) <= set(range(10))


# (id, file name, rows or raw text, mapping, words the error must hold after the path)
BAD = [
    (
        "missing-mapped-column",
        "e.jsonl",
        [{"id": "a", "instruction": "q", "answer": "r"}],
        MAPPING,
        ["missing column 'output'", "datasets.mine.columns.reference"],
    ),
    (
        "missing-reference-column-unmapped",
        "e.csv",
        [{"prompt": "q", "answer": "r"}],
        None,
        ["missing column 'reference'", "set datasets.mine.columns.reference"],
    ),
    (
        "duplicate-ids",
        "e.jsonl",
        [
            {"id": "a", "instruction": "q1", "output": "r1"},
            {"id": "b", "instruction": "q2", "output": "r2"},
            {"id": "a", "instruction": "q3", "output": "r3"},
        ],
        {"prompt_id": "id", "prompt": "instruction", "reference": "output"},
        ["row 2, column 'id': prompt id 'a' repeats row 0"],
    ),
    (
        "null-id",
        "e.json",
        [
            {"id": "a", "instruction": "q", "output": "r"},
            {"id": None, "instruction": "q2", "output": "r2"},
        ],
        {"prompt_id": "id", "prompt": "instruction", "reference": "output"},
        ["row 1, column 'id': missing prompt id"],
    ),
    (
        "repeated-prompt-hashed-ids",
        "e.jsonl",
        [{"prompt": "same", "reference": "r1"}, {"prompt": "same", "reference": "r2"}],
        None,
        ["row 1", "repeats row 0", "hashes of the prompt text", "datasets.mine.columns.prompt_id"],
    ),
    (
        "non-text-prompt",
        "e.jsonl",
        [{"prompt": "q", "reference": "r"}, {"prompt": 5, "reference": "r2"}],
        None,
        ["row 1, column 'prompt': expected text, got int 5"],
    ),
    (
        "null-reference",
        "e.parquet",
        [{"q": "q", "a": "r"}, {"q": "q2", "a": None}],
        {"prompt": "q", "reference": "a"},
        ["row 1", "column 'a': expected text"],
    ),
    (
        "blank-prompt",
        "e.csv",
        [{"prompt": "q", "reference": "r"}, {"prompt": "  ", "reference": "r2"}],
        None,
        ["row 1, column 'prompt': blank prompt"],
    ),
    ("empty-jsonl", "e.jsonl", "", None, ["empty file"]),
    ("blank-lines-jsonl", "e.jsonl", "\n\n", None, ["empty file"]),
    ("empty-csv", "e.csv", "", None, ["empty file"]),
    ("header-only-csv", "e.csv", "prompt,reference\n", None, ["no prompts"]),
    ("empty-json-list", "e.json", "[]", None, ["no prompts"]),
    ("empty-parquet", "e.parquet", "", None, ["empty file"]),
    (
        "invalid-json-line",
        "e.jsonl",
        '{"prompt": "q", "reference": "r"}\n{"prompt": \n',
        None,
        ["line 2"],
    ),
    ("json-not-a-list", "e.json", '{"prompt": "q"}', None, ["expected a JSON list of objects"]),
    ("unsupported-suffix", "e.txt", "q\tr\n", None, ["unsupported file type '.txt'"]),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("fname", "content", "mapping", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_file_raises_data_error_before_writing(tmp_path, fname, content, mapping, words):
    path = tmp_path / fname
    if isinstance(content, str):
        path.write_text(content)
    else:
        write(path, content)
    out = tmp_path / "out.parquet"
    s = spec(path, **({"columns": mapping} if mapping else {}))
    with pytest.raises(DataError) as err:
        prepare_prompts(s, 0, str(out), name="mine")
    msg = str(err.value)
    assert msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    assert not out.exists(), "a prompt set was written from a bad file"


# -- config checks ---------------------------------------------------------------------------


def tiny_config(dataset: dict) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    cfg["datasets"]["fusion_train"] = dataset
    return cfg


def test_existing_local_file_passes_the_config_checks(tmp_path):
    path = write(tmp_path / "ok.jsonl", [{"prompt": "q", "reference": "r"}])
    check_references(tiny_config(spec(path, columns={"prompt": "prompt"})))


BAD_CONFIG = [
    (
        "missing-file",
        {"path": "no/such/file.jsonl"},
        "config key datasets.fusion_train.path: no such file 'no/such/file.jsonl' (relative to",
    ),
    ("no-path", {"path": None}, "config key datasets.fusion_train.path: required for kind"),
    ("bad-suffix", {"path": "data.txt"}, "config key datasets.fusion_train.path: 'data.txt'"),
    ("skills", {"skills": ["arith"]}, "config key datasets.fusion_train.skills: only a tiny"),
    (
        "reference-style",
        {"reference_style": "worked"},
        "config key datasets.fusion_train.reference_style: only a tiny",
    ),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("change", "words"), [b[1:] for b in BAD_CONFIG], ids=[b[0] for b in BAD_CONFIG]
)
def test_local_file_config_errors_name_the_key(tmp_path, change, words):
    ds = spec(write(tmp_path / "ok.jsonl", [{"prompt": "q", "reference": "r"}]))
    ds.update(change)
    if ds["path"] is None:
        del ds["path"]
    with pytest.raises(ConfigError) as err:
        check_references(tiny_config(ds))
    assert words in str(err.value)


@pytest.mark.bad_input
def test_columns_on_a_hub_set_are_refused():
    cfg = tiny_config({"kind": "tiny_corpus", "split": "fusion"})
    cfg["datasets"]["hub"] = {"kind": "hub_prompts", "path": "x/y", "columns": {"prompt": "q"}}
    with pytest.raises(ConfigError, match=r"config key datasets\.hub\.columns: only a local_file"):
        check_references(cfg)


# -- the DAG ----------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "wf").mkdir()
    wd = copy_workflow(tmp_path / "wf")
    (wd / "data").mkdir()
    write(wd / "data" / "mine.jsonl", [{"prompt": "add 1 and 2 .", "reference": "3"}])
    return wd


def configfile(wd, path: str) -> str:
    cfg = tiny_config({"kind": "local_file", "path": path})
    (wd / "local.yaml").write_text(yaml.safe_dump(copy.deepcopy(cfg)))
    return "local.yaml"


def planned(proc) -> dict[str, dict[str, str]]:
    """Each planned job's output: its printed fields (input, reason, ...)."""
    jobs = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\nrule )|\n(?=rule )", proc.stdout):
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", block, re.M))
        if block.lstrip().startswith(("rule ", "[")) and "output" in fields:
            jobs[fields["output"]] = fields
    return jobs


def test_dry_run_plans_prepare_prompts_with_the_file_as_input(workdir):
    cfg = configfile(workdir, "data/mine.jsonl")
    jobs = planned(snakemake("-n", "--configfile", cfg, cwd=workdir))
    prompts = jobs["results/tiny/data/fusion_train.parquet"]
    assert prompts["input"] == "data/mine.jsonl"
    # the other set still reads the corpus
    assert jobs["results/tiny/data/fusechat_train.parquet"]["input"] == (
        "results/tiny/world/corpus.parquet"
    )


def test_editing_the_file_replans_the_prompt_set(workdir):
    cfg = configfile(workdir, "data/mine.jsonl")
    target = "results/tiny/data/fusion_train.parquet"
    snakemake("--cores", "1", target, "--configfile", cfg, cwd=workdir)
    built = pd.read_parquet(workdir / target)
    assert built.prompt.tolist() == ["add 1 and 2 ."]
    assert "Nothing to be done" in snakemake("-n", target, "--configfile", cfg, cwd=workdir).stdout
    with open(workdir / "data" / "mine.jsonl", "a") as f:
        f.write(json.dumps({"prompt": "add 2 and 2 .", "reference": "4"}) + "\n")
    jobs = planned(snakemake("-n", target, "--configfile", cfg, cwd=workdir))
    assert list(jobs) == [target]
    assert "Updated input files: data/mine.jsonl" in jobs[target]["reason"]


@pytest.mark.bad_input
def test_missing_file_stops_the_plan_naming_the_key(workdir):
    cfg = configfile(workdir, "data/absent.jsonl")
    proc = snakemake("-n", "--configfile", cfg, cwd=workdir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key datasets.fusion_train.path: no such file 'data/absent.jsonl'" in out
    assert "Job stats" not in out

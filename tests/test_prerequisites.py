"""Prerequisites of a run (issue 18 item 5): one message lists what is missing; a dry run
warns, a run stops before its first job."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import ROOT, copy_workflow, snakemake

from fusekit.prerequisites import check_prerequisites, format_missing

PAPER = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
TINY = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
KEY = "FUSEKIT_TEST_JUDGE_KEY_19"  # never set by anyone


@pytest.fixture
def paper(tmp_path, monkeypatch):
    """The paper config in an empty working directory, with the Arena-Hard files present
    (each test removes what it is about)."""
    monkeypatch.chdir(tmp_path)
    cfg = copy.deepcopy(PAPER)
    for key in ("questions", "baseline_answers"):
        path = tmp_path / cfg["evaluation"]["arena_hard"][key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    return cfg


def env(**extra) -> dict:
    """An environment with a token and the judge's key, no token file, online."""
    return {"HOME": "/nonexistent", "HF_TOKEN": "hf_x", "OPENAI_API_KEY": "sk-x", **extra}


def without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_nothing_missing(paper):
    assert check_prerequisites(paper, env()) == []
    assert check_prerequisites(TINY, {}) == []  # the tiny world builds everything


@pytest.mark.bad_input
def test_all_missing_in_one_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no Arena-Hard files here
    missing = check_prerequisites(PAPER, {"HOME": "/nonexistent"})
    msg = format_missing(missing)
    assert msg.startswith("missing prerequisites (4):")
    for words in (
        "hub token",
        "evaluation.arena_hard.questions",
        "evaluation.arena_hard.baseline_answers",
        "OPENAI_API_KEY",
    ):
        assert words in msg, msg


@pytest.mark.bad_input
def test_hub_token_for_gated_models(paper, tmp_path):
    missing = check_prerequisites(paper, without(env(), "HF_TOKEN"))
    assert len(missing) == 1 and "hub token" in missing[0]
    # the gated ones, and only those (Qwen, lmsys, mosaicml are not gated)
    assert "models.Llama-2-7b-chat (meta-llama/Llama-2-7b-chat-hf)" in missing[0]
    assert "models.gemma-2-27b-it" in missing[0] and "Mistral-Large" in missing[0]
    assert "evaluation.suites.fusechat3.benchmarks.gpqa_diamond" in missing[0]
    assert "vicuna" not in missing[0] and "Qwen" not in missing[0]
    # the file huggingface-cli login writes, under HF_HOME
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "token").write_text("hf_y\n")
    assert check_prerequisites(paper, without(env(HF_HOME=str(tmp_path / "hf")), "HF_TOKEN")) == []
    # offline: nothing is downloaded, so no token is needed (but the hub's files are)
    offline = check_prerequisites(paper, without(env(HF_HUB_OFFLINE="1"), "HF_TOKEN"))
    assert offline and not any("hub token" in m for m in offline)
    # no gated name: no token
    cfg = copy.deepcopy(paper)
    for group in ("models", "reward_models"):
        for spec in cfg[group].values():
            spec["gated"] = False
    del cfg["evaluation"]["suites"]["fusechat3"]["benchmarks"]["gpqa_diamond"]
    cfg["studies"]["fusechat3"]["tables"]["llama31_8b"]["suites"]["fusechat3"].remove(
        "gpqa_diamond"
    )
    assert check_prerequisites(cfg, without(env(), "HF_TOKEN")) == []


@pytest.mark.bad_input
def test_arena_hard_files(paper, tmp_path):
    (tmp_path / paper["evaluation"]["arena_hard"]["questions"]).unlink()
    missing = check_prerequisites(paper, env())
    assert len(missing) == 1
    assert missing[0].startswith("evaluation.arena_hard.questions: no such file")
    del paper["evaluation"]["arena_hard"]["baseline_answers"]
    missing = check_prerequisites(paper, env())
    assert missing[1].startswith("evaluation.arena_hard.baseline_answers: not set")
    # only when the job that reads them runs
    assert check_prerequisites(paper, env(), rules={"train_fusion"}) == []


@pytest.mark.bad_input
def test_offline_df_gamed(paper, tmp_path):
    paper["evaluation"]["alpaca_eval"]["lc_reference"] = "data/df_gamed.csv"
    missing = check_prerequisites(paper, env())
    assert len(missing) == 1
    assert missing[0].startswith(
        "evaluation.alpaca_eval.lc_reference: no such file data/df_gamed.csv"
    )
    (tmp_path / "data" / "df_gamed.csv").parent.mkdir(exist_ok=True)
    (tmp_path / "data" / "df_gamed.csv").write_text("x\n")
    assert check_prerequisites(paper, env()) == []
    # null: alpaca_eval downloads it, impossible offline
    paper["evaluation"]["alpaca_eval"]["lc_reference"] = None
    missing = check_prerequisites(paper, env(HF_HUB_OFFLINE="1"))
    assert any(m.startswith("evaluation.alpaca_eval.lc_reference: null") for m in missing)


@pytest.mark.bad_input
def test_judge_key_variable(paper):
    missing = check_prerequisites(paper, without(env(), "OPENAI_API_KEY"))
    assert len(missing) == 1 and missing[0].startswith("environment variable OPENAI_API_KEY")
    assert "gpt4_turbo" in missing[0]
    # needed by the judging jobs only
    assert check_prerequisites(paper, without(env(), "OPENAI_API_KEY"), {"train_fusion"}) == []
    assert check_prerequisites(
        paper, without(env(), "OPENAI_API_KEY"), {"evaluate_arena_model"}
    ) == [missing[0]]


def _tiny_with_api_judge() -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["judges"]["api"] = {
        "kind": "openai",
        "model": "judge-model",
        "api_key_env": KEY,
        "base_url": "http://127.0.0.1:9/v1",
    }
    cfg["evaluation"]["alpaca_eval"]["judge"] = "api"
    return cfg


def test_tiny_world_needs_only_api_keys():
    missing = check_prerequisites(_tiny_with_api_judge(), {})
    assert len(missing) == 1 and KEY in missing[0]


@pytest.mark.bad_input
def test_unset_judge_key_stops_the_run_before_any_job(tmp_path):
    """A dry run plans and warns; the run itself stops before its first job, with the
    variable named (Snakemake's onstart, after the DAG is built)."""
    (tmp_path / "wf").mkdir()
    wd = copy_workflow(tmp_path / "wf")
    path = tmp_path / "api_judge.yaml"
    path.write_text(yaml.safe_dump(_tiny_with_api_judge()))
    target = "results/tiny/chat_eval/alpaca_eval/judged/src_llama.json"
    dry = snakemake(target, "-n", "--configfile", str(path), cwd=wd)
    assert f"WARNING missing prerequisites (1):\n  - environment variable {KEY}" in dry.stderr
    proc = snakemake(target, "--cores", "1", "--configfile", str(path), cwd=wd, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"environment variable {KEY}" in out and "Job stats" in out, out
    assert not (wd / "results").exists(), "a job ran although a prerequisite is missing"

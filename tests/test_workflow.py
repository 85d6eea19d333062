"""The tiny world built by the real workflow (Snakemake, scripts, save/from_pretrained)."""

from __future__ import annotations

import filecmp
import json
import re
import shutil
from itertools import combinations

import pandas as pd
import pytest
import yaml
from conftest import snakemake
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from fusekit.tiny.corpus import SKILLS

pytestmark = pytest.mark.workflow
WORLD = "results/tiny/world"


@pytest.fixture(scope="module")
def table(tiny_world) -> pd.DataFrame:
    return pd.read_csv(tiny_world / WORLD / "skill_accuracy.csv")


def test_table_covers_every_model_and_skill(table, tiny_world):
    cfg = yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())
    lms = table[table.metric == "exact_match"]
    assert set(lms.model) == set(cfg["tiny_world"]["models"])
    assert set(table[table.metric == "preference_accuracy"].model) == set(
        cfg["tiny_world"]["reward_models"]
    )
    for _, rows in table.groupby("model"):
        assert set(rows.skill) == {*SKILLS, "all"}
        assert rows.accuracy.between(0, 1).all()
        assert (rows[rows.skill != "all"].n == 64).all()
    assert set(lms.architecture[lms.role == "source"]) >= {
        "LlamaForCausalLM",
        "GPTNeoXForCausalLM",
        "Qwen2ForCausalLM",
    }


def test_each_source_is_best_at_a_different_skill(table):
    src = table[(table.role == "source") & (table.skill != "all")]
    wide = src.pivot(index="skill", columns="model", values="accuracy")
    assert wide.shape[1] >= 3
    best = {}
    for model in wide.columns:
        others = wide.drop(columns=model).max(axis=1)
        margin = wide[model] - others
        # measurably best: ahead of every other source by at least 15 points
        best[model] = set(margin[margin >= 0.15].index)
    assert all(best.values()), best
    # a distinct skill for each source
    picks = {m: sorted(s)[0] for m, s in best.items()}
    assert len(set(picks.values())) == len(picks), best


def test_reward_models_differ_in_accuracy(table):
    rm = table[(table.metric == "preference_accuracy") & (table.skill == "all")]
    acc = dict(zip(rm.model, rm.accuracy, strict=True))
    assert len(acc) >= 3
    for a, b in combinations(acc, 2):
        assert abs(acc[a] - acc[b]) >= 0.05, acc
    assert max(acc.values()) > 0.8 and min(acc.values()) > 0.5


def test_models_load_with_from_pretrained_and_carry_provenance(tiny_world):
    for d in sorted((tiny_world / WORLD / "models").iterdir()):
        model = AutoModelForCausalLM.from_pretrained(d)
        tok = AutoTokenizer.from_pretrained(d)
        assert model.config.vocab_size == len(tok)
        prov = json.loads((d / "fusekit_provenance.json").read_text())
        assert prov["packages"]["torch"].startswith("2.13.0") and len(prov["config_hash"]) == 16
        log = pd.read_csv(d / "train_log.csv")
        assert log.loss.iloc[-20:].mean() < 0.5 * log.loss.iloc[:20].mean()
    for d in sorted((tiny_world / WORLD / "reward_models").iterdir()):
        assert AutoModelForSequenceClassification.from_pretrained(d).config.num_labels == 1


def test_prompt_set_comes_from_the_fusion_split(tiny_world):
    df = pd.read_parquet(tiny_world / "results/data/fusion_train.parquet")
    assert len(df) == 200 * len(SKILLS) and df.prompt_id.str.startswith("fusion-").all()


def test_benchmark_files_written(tiny_world):
    tsvs = list((tiny_world / "results/benchmarks/world").rglob("*.tsv"))
    assert len(tsvs) >= 19
    bench = pd.read_csv(tsvs[0], sep="\t")
    assert "s" in bench.columns and bench.s.iloc[0] > 0


def test_nothing_to_do_on_rerun(tiny_world):
    proc = snakemake("-n", "--profile", "profiles/tiny", cwd=tiny_world)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_model_reruns_only_what_depends_on_it(tiny_world, tmp_path):
    cfg = yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())
    cfg["tiny_world"]["models"]["src_neox"]["train"] = {"lr": 0.002}
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--profile", "profiles/tiny", "--configfile", str(path), cwd=tiny_world)
    table = re.search(r"Job stats:\n(.*?)\n\n", proc.stdout, re.S).group(1)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, re.M))
    # src_neox's own jobs (its training, evaluation, generations and their scores)
    # and the tables that include it; nothing of the other models
    assert counts == {
        "train_world_model": "1",
        "evaluate_world_model": "1",
        "generate_responses": "1",
        "score_responses": "3",
        "score_against_reference": "1",
        "tabulate_skill_accuracy": "1",
        "vote_responses": "1",
        "compare_advantage_methods": "1",
        "all": "1",
        "total": "11",
    }, proc.stdout
    assert set(re.findall(r"\b(?:name|model)=([\w-]+)", proc.stdout)) == {"src_neox"}


def test_inference_mode_vote(tiny_world):
    votes = pd.read_parquet(tiny_world / "results/profuser/inference_mode/votes.parquet")
    sources = {"src_llama", "src_neox", "src_qwen2"}
    assert len(votes) == 200 * len(SKILLS) and votes.prompt_id.is_unique
    assert set(votes.model) <= sources and votes.response.str.len().gt(0).all()
    assert set(votes.strongest_reward_model) == {"rm_strong"}  # measured: best held-out accuracy
    # three voters: a tie is possible only when all three pick different responses
    assert (votes.tie_broken == (votes.votes == 1)).all()
    assert votes.votes.between(1, 3).all()
    for gen in (tiny_world / "results/generations/fusion_train").glob("*.parquet"):
        df = pd.read_parquet(gen)
        assert len(df) == 800 and set(df.finish_reason) <= {"stop", "length"}
        tput = json.loads(
            (
                tiny_world
                / "results/benchmarks/generation/generate_responses/fusion_train"
                / f"{gen.stem}.throughput.json"
            ).read_text()
        )
        assert tput["generated_tokens"] == df.n_tokens.sum() and tput["tokens_per_s"] > 0


def test_advantage_methods_table(tiny_world):
    shares = pd.read_csv(tiny_world / "results/profuser/inference_mode/advantage_methods.csv")
    methods = {"rm:rm_strong", "rm:rm_medium", "rm:rm_weak", "vote", "reference"}
    assert set(shares.method) == methods
    assert set(shares.source) == {"src_llama", "src_neox", "src_qwen2"}
    assert shares.groupby("method").share.sum().round(9).eq(1).all()
    assert (shares.n_prompts == 800).all()
    agree = pd.read_csv(tiny_world / "results/profuser/inference_mode/method_agreement.csv")
    assert len(agree) == 10 and agree.agreement.between(0, 1).all()
    with_vote = agree[agree.method_b == "vote"].set_index("method_a").agreement
    # the tie-breaker agrees with the vote more than any other single reward model
    assert with_vote.idxmax() == "rm:rm_strong"


def test_second_run_is_byte_identical(tiny_world, tmp_path):
    first = tmp_path / "first"
    shutil.copytree(tiny_world / WORLD, first)
    votes = tmp_path / "votes.parquet"
    shutil.copy(tiny_world / "results/profuser/inference_mode/votes.parquet", votes)
    generations = tmp_path / "generations"
    shutil.copytree(tiny_world / "results/generations/fusion_train", generations)
    snakemake("--profile", "profiles/tiny", "--forceall", cwd=tiny_world)
    again = tiny_world / WORLD
    assert filecmp.cmp(first / "skill_accuracy.csv", again / "skill_accuracy.csv", shallow=False)
    for tok in sorted((first / "tokenizers").iterdir()):
        for f in tok.iterdir():
            assert filecmp.cmp(f, again / "tokenizers" / tok.name / f.name, shallow=False), f
    assert filecmp.cmp(first / "corpus.parquet", again / "corpus.parquet", shallow=False)
    assert pd.read_parquet(votes).equals(
        pd.read_parquet(tiny_world / "results/profuser/inference_mode/votes.parquet")
    )
    for gen in sorted(generations.iterdir()):
        assert pd.read_parquet(gen).equals(
            pd.read_parquet(tiny_world / "results/generations/fusion_train" / gen.name)
        ), gen.name

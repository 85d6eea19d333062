"""The tiny world built by the real workflow (Snakemake, scripts, save/from_pretrained)."""

from __future__ import annotations

import filecmp
import json
import re
import shutil
from itertools import combinations

import numpy as np
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
        assert set(rows.skill) == {*cfg["tiny_world"]["corpus"]["skills"], "all"}
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
    df = pd.read_parquet(tiny_world / "results/tiny/data/fusion_train.parquet")
    assert len(df) == 200 * len(SKILLS) and df.prompt_id.str.startswith("fusion-").all()


def test_benchmark_files_written(tiny_world):
    tsvs = list((tiny_world / "results/tiny/benchmarks/world").rglob("*.tsv"))
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
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake("-n", "--profile", "profiles/tiny", "--configfile", str(path), cwd=tiny_world)
    table = re.search(r"Job stats:\n(.*?)\n\n", proc.stdout, re.S).group(1)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, re.M))
    # src_neox's own jobs (training, evaluation, generations on the fusion prompts, the
    # preference prompts and the chat set, their scores, dumps, vocabulary map, its chat
    # judgments) and what reads them: the vote changes, so every voted dump and ProFuser
    # variant is redone; the preference data change, so every preference variant, its
    # reference log-probs and Target-SFT's samples are redone; and every evaluation,
    # table and figure of those. Nothing of the other models' own jobs.
    assert counts == {
        "train_world_model": "1",
        "evaluate_world_model": "1",
        "generate_responses": "3",  # fusion_train, fusechat_train, the chat set
        "score_responses": "4",  # three RMs on fusion_train, rm_strong on fusechat_train
        "score_against_reference": "1",
        "dump_reference_logits": "1",
        "map_vocabulary": "1",
        "align_logits": "4",
        "select_mince": "1",
        "dump_voted_logits": "3",
        "tabulate_skill_accuracy": "1",
        "vote_responses": "1",
        "compare_advantage_methods": "1",
        "tabulate_advantage_by_mode": "1",
        "train_fusion": "10",  # every ProFuser variant reads the votes
        "evaluate_openllm": "1",
        "evaluate_openllm_variant": "16",  # the variants in an OpenLLM table
        "evaluate_suite_variant": "2",
        "evaluate_alpaca_model": "1",
        "evaluate_arena_model": "1",
        "build_preference_data": "1",
        "build_wrpo_sft_data": "1",
        "build_wrpo_quadruples": "3",  # every source, and the subsets (both hold src_llama)
        "build_fuserl_data": "1",
        "generate_target_samples": "1",
        "score_target_samples": "1",
        "score_reference_logps": "18",
        "train_preference": "23",
        "generate_variant_responses": "25",  # every chat-evaluated variant
        "evaluate_alpaca": "25",
        "evaluate_arena": "25",
        "score_arena": "4",
        "tabulate_chat_eval": "4",
        "tabulate_paper_table": "9",
        "plot_table_vs_reported": "3",
        "publish_headline_table": "1",
        "verify_tables": "4",
        "plot_loss_curves": "1",
        "plot_advantage_by_mode": "1",
        "plot_advantage_methods": "1",
        "plot_wrpo_figures": "1",
        "tabulate_preference_accuracy": "1",
        "tabulate_judge_bias_variance": "1",
        "tabulate_fuserl_ablation": "1",
        "all": "1",
        "total": "212",
    }, proc.stdout
    own = {
        "train_world_model",
        "evaluate_world_model",
        "evaluate_openllm",
        "generate_responses",
        "score_responses",
        "score_against_reference",
        "dump_reference_logits",
        "map_vocabulary",
    }
    for block in re.split(r"^\[.*\]$", proc.stdout, flags=re.M):
        rule = re.search(r"^rule (\w+):", block, re.M)
        if rule and rule.group(1) in own:
            names = set(re.findall(r"\b(?:name|model|source)=([\w-]+)", block))
            assert names == {"src_neox"}, block


def _planned(tiny_world, tmp_path, edit) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` plans after ``edit`` (a function of the config
    dict) on the built tiny world; empty when nothing is to be done."""
    cfg = json.loads(json.dumps(yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())))
    edit(cfg)  # (the JSON round trip unshares the YAML anchors)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake("-n", "--profile", "profiles/tiny", "--configfile", str(path), cwd=tiny_world)
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}
    table = re.search(r"Job stats:\n(.*?)\n\n", proc.stdout, re.S).group(1)
    counts = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}
    counts.pop("total")
    return counts


def _set(*keys, value):
    def edit(cfg):
        node = cfg
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


RUN_ONLY_EDITS = [
    (("reward_models", "rm_weak", "batch_size"), 7),
    (("logits", "batch_size"), 5),
    (("studies", "profuser", "training", "save_every"), 3),
    (("studies", "fuserl", "training", "save_every"), 3),
    (("threads",), 2),
]


def test_settings_that_cannot_change_a_result_rerun_nothing(tiny_world, tmp_path):
    """Batch sizes of scoring and teacher-forced dumps, checkpoint frequency and threads
    reach the scripts untracked (fusekit.workflow.untracked): all five edits at once
    replan no job (one dry run, for CI's time; each key is its own edit in the README's
    table)."""

    def edit(cfg):
        for keys, value in RUN_ONLY_EDITS:
            _set(*keys, value=value)(cfg)

    assert _planned(tiny_world, tmp_path, edit) == {}


def test_one_variants_epochs_rerun_that_variant_and_what_shows_it(tiny_world, tmp_path):
    def csft_epochs(cfg):
        cfg["studies"]["profuser"]["variants"]["CSFT"]["stages"][0]["epochs"] = 2

    cfg = yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())
    study = cfg["studies"]["profuser"]
    tables = [
        t
        for t, spec in study["tables"].items()
        if any(row.get("variant") == "CSFT" for row in spec["rows"])
    ]
    # CSFT's training and OpenLLM evaluation; its chat answers, both judgments, the Arena
    # score and the chat table (CSFT is a chat-evaluated variant); every table that has a
    # CSFT row with its figure, the headline copy of Table 1, the verification and the loss
    # curves. Nothing of another variant.
    assert study["chat_eval_variants"].count("CSFT") == 1 and len(tables) == 2
    assert _planned(tiny_world, tmp_path, csft_epochs) == {
        "train_fusion": 1,
        "evaluate_openllm_variant": 1,
        "generate_variant_responses": 1,
        "evaluate_alpaca": 1,
        "evaluate_arena": 1,
        "score_arena": 1,
        "tabulate_chat_eval": 1,
        "tabulate_paper_table": len(tables),
        "plot_table_vs_reported": len(tables),
        "publish_headline_table": 1,
        "verify_tables": 1,
        "plot_loss_curves": 1,
        "all": 1,
    }


def test_a_sources_generation_length_leaves_training_mode_alone(tiny_world, tmp_path):
    """max_new_tokens changes what a source generates (its votes, its inference-mode
    dumps, the preference data) but not its teacher-forced dump of the references, MinCE,
    or a variant trained in training mode only (CSFT, Fuse)."""
    cfg = yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())
    variants = cfg["studies"]["profuser"]["variants"]
    training_only = sorted(
        v
        for v, spec in variants.items()
        if all(stage["modes"] == ["training"] for stage in spec.get("stages", [{"modes": []}]))
    )
    assert training_only == ["CSFT", "Fuse"]
    counts = _planned(
        tiny_world,
        tmp_path,
        _set("models", "src_neox", "generation", "max_new_tokens", value=30),
    )
    assert "dump_reference_logits" not in counts and "select_mince" not in counts, counts
    assert counts["train_fusion"] == len(variants) - len(training_only), counts
    assert counts["align_logits"] == len(cfg["studies"]["profuser"]["sources"]), counts
    assert counts["generate_responses"] == 3 and counts["dump_voted_logits"] == 3, counts


def test_training_mode_outputs(tiny_world):
    from fusekit.logits import read_dump

    sources = ["src_llama", "src_neox", "src_qwen2"]
    mince = pd.read_parquet(tiny_world / "results/tiny/profuser/training_mode/mince.parquet")
    ce = mince[[f"ce_{m}" for m in sources]].to_numpy()
    assert len(mince) == 800
    assert (mince.winner.to_numpy() == np.array(sources)[ce.argmin(axis=1)]).all()
    by_mode = pd.read_csv(tiny_world / "results/tiny/profuser/advantage_by_mode.csv")
    assert by_mode.source.tolist() == sources
    assert by_mode.training_mode.sum() == pytest.approx(
        1
    ) and by_mode.inference_mode.sum() == pytest.approx(1)
    votes = pd.read_parquet(tiny_world / "results/tiny/profuser/inference_mode/votes.parquet")
    assert by_mode.inference_mode.tolist() == pytest.approx(
        [float((votes.model == m).mean()) for m in sources]
    )
    for m in sources:
        dump = tiny_world / f"results/tiny/logits/fusion_train/{m}.parquet"
        rows, meta = read_dump(str(dump))
        tokens = sum(r["n_tokens"] for r in rows)
        assert meta["k"] == "10" and len(rows) == 800
        assert dump.stat().st_size / tokens <= 64  # sparse: int32 ids, float16 log-probs
        voted, _ = read_dump(
            str(tiny_world / f"results/tiny/profuser/inference_mode/logits/{m}.parquet")
        )
        assert len(voted) == int((votes.model == m).sum())
        for mode in ("training_mode", "inference_mode"):
            aligned, meta = read_dump(
                str(tiny_world / f"results/tiny/profuser/{mode}/aligned/{m}.parquet")
            )
            assert meta["vocab"] == "target" and len(aligned) == len(
                rows if mode == "training_mode" else voted
            )
    # the target's own, smaller vocabulary: sources keep whole words it splits (1:n) and
    # split words it keeps whole (n:1); the DP path on the real tokenizers shows both
    tgt = AutoTokenizer.from_pretrained(tiny_world / WORLD / "models/tgt_llama")
    kinds = {m: _alignment_kinds(tiny_world, m, tgt) for m in sources}
    assert kinds["src_llama"]["1:n"] > 0 and kinds["src_neox"]["1:n"] > 0, kinds
    assert kinds["src_qwen2"]["n:1"] > 0 and kinds["src_neox"]["n:1"] > 0, kinds
    for m in sources:
        aligned, meta = read_dump(
            str(tiny_world / f"results/tiny/profuser/training_mode/aligned/{m}.parquet")
        )
        stats = json.loads(meta["alignment"])
        # every target token either carries a source distribution or is a one-hot of itself
        one_hot = sum(
            int(
                (
                    (r["topk_ids"][:, 0] == r["token_ids"])
                    & (r["topk_logprobs"][:, 0] == 0)
                    & (r["topk_ids"][:, 1:] < 0).all(axis=1)
                ).sum()
            )
            for r in aligned
        )
        assert stats["carried_tokens"] + stats["one_hot_tokens"] == sum(
            r["n_tokens"] for r in aligned
        )
        # a carried row can also be a one-hot (a teacher certain of its token): at least
        # the counted one-hots look like one
        assert one_hot >= stats["one_hot_tokens"] > 0, (m, stats)
        assert stats["text_mismatch_rows"] == 0


def _alignment_kinds(world, model: str, tgt) -> dict[str, int]:
    """Counts of 1:1, 1:n (a source token spans several target tokens) and n:1 cells of
    the DP paths of every eighth reference response (all skills)."""
    from collections import Counter

    from fusekit.align import align_tokens
    from fusekit.logits import read_dump

    src = AutoTokenizer.from_pretrained(world / WORLD / f"models/{model}")
    rows, _ = read_dump(str(world / f"results/tiny/logits/fusion_train/{model}.parquet"))
    out = Counter()
    for r in rows[::8]:
        s = src.convert_ids_to_tokens(r["token_ids"][:-1])
        t = tgt.convert_ids_to_tokens(tgt(r["response"], add_special_tokens=False).input_ids)
        path = align_tokens(t, s, check_text=False)
        per_t, per_s = Counter(u for u, _ in path), Counter(j for _, j in path)
        for u, j in path:
            if per_t[u] == 1 and per_s[j] > 1:
                out["1:n"] += 1
            elif per_t[u] > 1 and per_s[j] == 1:
                out["n:1"] += 1
            else:
                out["1:1" if per_t[u] == per_s[j] == 1 else "m:n"] += 1
    return dict(out)


def test_fusion_variants_trained(tiny_world):
    cfg = yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())
    variants = cfg["studies"]["profuser"]["variants"]
    assert len(variants) == 10
    for name in variants:
        d = tiny_world / "results/tiny/profuser/models" / name
        assert AutoModelForCausalLM.from_pretrained(d).config.architectures == ["LlamaForCausalLM"]
        log = pd.read_csv(d / "train_log.csv")
        stages = json.loads((d / "fusekit_provenance.json").read_text())["config"]["stages"]
        # the last stage passes over the same examples `epochs` times (in the same order for
        # the ordered variants): its last pass has a lower mean loss than its first
        last = log[log.stage == len(stages) - 1].loss.to_numpy()
        per_epoch = len(last) // int(stages[-1]["epochs"])
        assert last[-per_epoch:].mean() < last[:per_epoch].mean(), name
        assert not (tiny_world / "results/tiny/profuser/checkpoints" / name).exists()
    # ProFuser's two stages: 800 prompts in inference mode once, then both modes twice
    log = pd.read_csv(tiny_world / "results/tiny/profuser/models/ProFuser/train_log.csv")
    assert log.groupby("stage").size().tolist() == [50, 100]


def test_second_run_is_byte_identical(tiny_world, tmp_path):
    first = tmp_path / "first"
    shutil.copytree(tiny_world / WORLD, first)
    votes = tmp_path / "votes.parquet"
    shutil.copy(tiny_world / "results/tiny/profuser/inference_mode/votes.parquet", votes)
    generations = tmp_path / "generations"
    shutil.copytree(tiny_world / "results/tiny/generations/fusion_train", generations)
    # everything up to the vote, rebuilt from nothing (training determinism: test_training)
    snakemake(
        "--profile",
        "profiles/tiny",
        "--forceall",
        f"{WORLD}/skill_accuracy.csv",
        "results/tiny/profuser/inference_mode/votes.parquet",
        cwd=tiny_world,
    )
    again = tiny_world / WORLD
    assert filecmp.cmp(first / "skill_accuracy.csv", again / "skill_accuracy.csv", shallow=False)
    for tok in sorted((first / "tokenizers").iterdir()):
        for f in tok.iterdir():
            assert filecmp.cmp(f, again / "tokenizers" / tok.name / f.name, shallow=False), f
    assert filecmp.cmp(first / "corpus.parquet", again / "corpus.parquet", shallow=False)
    assert pd.read_parquet(votes).equals(
        pd.read_parquet(tiny_world / "results/tiny/profuser/inference_mode/votes.parquet")
    )
    for gen in sorted(generations.iterdir()):
        assert pd.read_parquet(gen).equals(
            pd.read_parquet(tiny_world / "results/tiny/generations/fusion_train" / gen.name)
        ), gen.name

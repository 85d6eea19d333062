"""Config validation: shipped configs pass; bad ones fail before any job runs, naming the key."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import ROOT, copy_workflow, snakemake

from fusekit.config import ConfigError, check_references, check_schema


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("config"))


def _set(cfg: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        cfg = cfg[key]
    if value is _DELETE:
        del cfg[last]
    else:
        cfg[last] = value


_DELETE = object()

BAD = [
    # (what is wrong, key path, new value, words the error must contain)
    (
        "wrong type",
        "tiny_world.models.tgt_llama.train.steps",
        "many",
        ["config key tiny_world.models.tgt_llama.train.steps: 'many' is not of type 'integer'"],
    ),
    ("unknown key", "tiny_world.models.src_neox.layers", 3, ["'layers' was unexpected"]),
    ("unknown top-level key", "learning_rate", 0.1, ["'learning_rate' does not match"]),
    ("missing required", "studies.profuser.target", _DELETE, ["'target' is a required property"]),
    ("enum", "tiny_world.tokenizers.spm_700.kind", "unigram", ["'unigram' is not one of", "kind"]),
    ("tiny without world", "tiny_world", _DELETE, ["'tiny_world' is a required property"]),
    (
        "dangling tokenizer",
        "tiny_world.models.src_llama.tokenizer",
        "nope",
        ["tiny_world.models.src_llama.tokenizer", "'nope' is not defined"],
    ),
    (
        "dangling judge",
        "evaluation.alpaca_eval.judge",
        "gpt5",
        ["evaluation.alpaca_eval.judge", "'gpt5' is not defined under judges"],
    ),
    (
        "table row of no variant",
        "studies.profuser.tables.table1.rows",
        [{"variant": "MegaFuse"}],
        ["studies.profuser.tables.table1.rows[0].variant", "'MegaFuse'"],
    ),
    (
        "table row not in the paper",
        "studies.profuser.tables.table4.rows",
        [{"model": "tgt_llama", "reported": "vicuna-13b"}],
        ["table4.rows[0].reported", "'vicuna-13b' is not a model row"],
    ),
    (
        "table column not a benchmark",
        "studies.profuser.tables.table2.groups",
        {"Knowledge": ["mmlu", "trivia"]},
        ["table2.benchmarks", "'trivia' is not defined under evaluation.openllm.benchmarks"],
    ),
    (
        "dangling source",
        "studies.profuser.sources",
        ["src_llama", "ghost"],
        ["studies.profuser.sources[1]", "'ghost'"],
    ),
]


@pytest.mark.parametrize(("what", "key", "value", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_config_fails_before_any_job(workdir, tmp_path, what, key, value, words):
    cfg = load("tiny.yaml")
    _set(cfg, key, value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake("--cores", "1", "--configfile", str(path), cwd=workdir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for w in words:
        assert w in out, f"{what}: {w!r} not in:\n{out}"
    assert not (workdir / "results").exists(), "a job ran although the config is invalid"


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/tiny.yaml"])
def test_shipped_configs_plan_the_dag(configfile):
    proc = snakemake("-n", "--forceall", "--configfile", configfile)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout.split("Job stats:")[1], re.M))
    # three sources generate once each; three reward models score each of them
    assert counts["prepare_prompts"] == str(len(load(configfile.split("/")[1])["datasets"]))
    # ... and every model a study names answers the AlpacaEval and Arena-Hard sets
    cfg = load(configfile.split("/")[1])
    named = {m for s in cfg["studies"].values() for m in [*s["sources"], s["target"]]}
    # a preference study (FuseChat-3.0 at paper scale) samples each source on its own
    # prompt set, and its one reward model scores them
    pref = [
        s
        for s in cfg["studies"].values()
        if "inference_mode" not in s and s.get("variants") and s.get("train_dataset")
    ]
    # (a source shared by two preference studies on one prompt set samples once)
    sampled = len({(s["train_dataset"], m) for s in pref for m in s["sources"]})
    # ... each chat set once, or once for both where they share prompts (the tiny world)
    sets = 1 if cfg["evaluation"]["arena_hard"].get("answers_from") else 2
    assert counts["generate_responses"] == str(3 + sampled + sets * len(named))
    assert counts["score_responses"] == str(9 + sampled)
    # a source's or target's answers are judged once; each study's variants on their own
    assert counts["evaluate_alpaca_model"] == counts["evaluate_arena_model"] == str(len(named))
    assert (
        counts["evaluate_alpaca"]
        == counts["evaluate_arena"]
        == str(
            sum(
                len(s.get("variants", {}))
                if s.get("chat_eval_variants") is None
                else len(s["chat_eval_variants"])
                for s in cfg["studies"].values()
            )
        )
    )
    # only the rows of tables evaluate, on the suites of their tables' columns (OpenLLM:
    # benchmarks/groups, or no other kind of column; others: the table's suites)
    evals = {"openllm": set()}
    for name, s in cfg["studies"].items():
        for t in s.get("tables", {}).values():
            other = t.get("suites") or t.get("chat") or t.get("not_run")
            read = [*(t.get("suites") or {})]
            if t.get("groups") or t.get("benchmarks") or not other:
                read.append("openllm")
            rows = {
                (name if "variant" in r else "", r.get("model") or r["variant"]) for r in t["rows"]
            }
            for suite in read:
                evals.setdefault(suite, set()).update(rows)
    runs = {
        (suite, bool(study)): sum(1 for r in rows if bool(r[0]) == bool(study))
        for suite, rows in evals.items()
        for study in ("", "v")
    }
    assert counts["evaluate_openllm_variant"] == str(runs[("openllm", True)])
    assert counts["evaluate_openllm"] == str(runs[("openllm", False)])
    suite_runs = [sum(runs[(s, v)] for s in evals if s != "openllm") for v in (False, True)]
    assert counts.get("evaluate_suite", "0") == str(suite_runs[0])
    assert counts.get("evaluate_suite_variant", "0") == str(suite_runs[1])
    tables = sum(len(s.get("tables", {})) for s in cfg["studies"].values())
    assert counts["tabulate_paper_table"] == str(tables) and counts["publish_headline_table"] == "1"
    assert counts["vote_responses"] == counts["compare_advantage_methods"] == "1"
    if "tiny" in configfile:
        for rule in (
            "build_corpus",
            "train_tokenizer",
            "train_world_model",
            "tabulate_skill_accuracy",
        ):
            assert rule in proc.stdout


def test_paper_config_names_the_papers_models_and_hyperparameters():
    cfg = load("config.yaml")
    pro = cfg["studies"]["profuser"]
    assert [cfg["models"][m]["path"] for m in pro["sources"]] == [
        "lmsys/vicuna-7b-v1.5",
        "meta-llama/Llama-2-7b-chat-hf",
        "mosaicml/mpt-7b-8k-chat",
    ]
    assert pro["target"] == "vicuna-7b-v1.5"
    assert cfg["logits"] == {"top_k": 10, "top_p": 0.95, "temperature": 2.0, "max_length": 2048}
    assert cfg["reference_score"]["weights"] == {"bleu": 0.25, "rouge": 0.25, "bertscore": 0.5}
    assert pro["optimizer"]["lr"] == 1.5e-5 and pro["optimizer"]["global_batch_size"] == 128
    assert pro["stages"][0] == {"modes": ["inference"], "epochs": 1, "beta": 0.1}
    assert pro["stages"][1]["w_inference"] == 0.1 and pro["stages"][1]["lambda"] == 0.5
    assert cfg["datasets"]["orca_best"]["n_examples"] == 100000
    gsm8k = cfg["evaluation"]["openllm"]["benchmarks"]["gsm8k"]  # Open-Instruct style
    assert (gsm8k["task"], gsm8k["num_fewshot"], gsm8k["metric"]) == ("gsm8k_cot", 8, "exact_match")
    mmlu = cfg["evaluation"]["openllm"]["benchmarks"]["mmlu"]
    assert (mmlu["num_fewshot"], mmlu["aggregate"]) == (5, "macro")
    fc = cfg["studies"]["fusechat3"]
    assert fc["dpo"]["rm_gap"] == [0.01, 0.1] and fc["sft_dpo_split"] == [4, 6]
    # the card (PREFERENCE_FUSION.md §4.3): SFT 3 epochs at 5e-6, then LN-DPO beta 10 at 8e-7
    assert fc["variants"]["SFT"]["stages"] == [{"objective": "sft", "epochs": 3}]
    assert fc["optimizer"]["lr"] == 5.0e-6 and fc["training"]["warmup_ratio"] == 0.1
    dpo = fc["variants"]["DPO"]
    assert dpo["init"] == "SFT" and dpo["optimizer"]["lr"] == 8.0e-7
    assert dpo["stages"] == [{"objective": "ln_dpo", "beta": 10.0, "epochs": 1}]
    qwen = cfg["models"]["Qwen2.5-72B-Instruct"]["generation"]
    assert (qwen["temperature"], qwen["top_p"], qwen["repetition_penalty"]) == (0.7, 0.8, 1.05)


def test_check_references_direct():
    cfg = load("tiny.yaml")
    check_references(cfg)  # the shipped config is consistent
    bad = copy.deepcopy(cfg)
    bad["studies"]["profuser"]["inference_mode"]["strongest_reward_model"] = "rm_other"
    with pytest.raises(ConfigError, match="strongest_reward_model"):
        check_references(bad)
    bad = copy.deepcopy(cfg)
    bad["models"]["src_llama"]["path"] = "elsewhere/src_llama"
    with pytest.raises(ConfigError, match=r"models\.src_llama\.path"):
        check_references(bad)
    bad = copy.deepcopy(cfg)
    del bad["tiny_world"]["models"]["src_neox"]["skill_mix"]["upper"]
    with pytest.raises(ConfigError, match="skill_mix"):
        check_references(bad)
    paper = load("config.yaml")
    paper["studies"]["profuser"]["inference_mode"]["strongest_reward_model"] = None
    with pytest.raises(ConfigError, match="must be set at paper scale"):
        check_references(paper)


def test_preference_variants_are_checked():
    cfg = load("tiny.yaml")
    bad = copy.deepcopy(cfg)
    bad["studies"]["wrpo"]["variants"]["WRPO"]["init"] = "Target-SFT-typo"
    with pytest.raises(ConfigError, match=r"studies\.wrpo\.variants\.WRPO\.init"):
        check_references(bad)
    bad = copy.deepcopy(cfg)
    bad["studies"]["wrpo"]["variants"]["WRPO"]["init"] = "WRPO"  # itself
    with pytest.raises(ConfigError, match=r"variants\.WRPO\.init"):
        check_references(bad)
    bad = copy.deepcopy(cfg)
    bad["studies"]["wrpo"]["variants"]["WRPO-1src"]["data"] = "quadruples.three"
    with pytest.raises(ConfigError, match=r"WRPO-1src\.data.*'three'"):
        check_references(bad)
    bad = copy.deepcopy(cfg)
    bad["studies"]["wrpo"]["source_subsets"]["one"] = ["src_missing"]
    with pytest.raises(ConfigError, match=r"source_subsets\.one.*src_missing"):
        check_references(bad)


def test_wrpo_source_subsets_plan_their_own_quadruples():
    from fusekit import workflow as layout

    cfg = load("config.yaml")
    inputs = layout.preference_inputs(cfg, "wrpo", "WRPO-2src")
    assert inputs["data"] == ["results/wrpo/data/quadruples.two.parquet"]
    assert inputs["reference"] == ["results/wrpo/ref_logps/Target-SFT/quadruples.two.parquet"]
    assert layout.data_shape("quadruples.two") == "quadruple"
    # the subset's y_ws comes from its own sources' files only
    files = layout.preference_data_inputs(
        cfg, "wrpo", layout.source_subset(cfg, "wrpo", "quadruples.two")
    )
    assert [f.rsplit("/", 1)[1] for f in files["generations"]] == [
        "Mistral-Large-Instruct-2407.parquet",
        "gemma-2-27b-it.parquet",
    ]
    # WRPO Table 6 settings on Target-SFT
    v = cfg["studies"]["wrpo"]["variants"]
    assert v["WRPO"]["stages"][0] == {
        "objective": "wrpo",
        "beta": 0.01,
        "alpha_max": 0.1,
        "alpha_schedule": "linear",
        "epochs": 1,
    }
    assert v["WRPO_SimPO"]["stages"][0]["alpha_max"] == 0.5
    assert v["WRPO_SimPO"]["optimizer"]["lr"] == 6.0e-7
    assert v["IPO"]["stages"][0]["tau"] == 0.01 and v["IPO"]["optimizer"]["lr"] == 1.0e-6
    assert cfg["studies"]["wrpo"]["target"] == "Meta-Llama-3-8B-Instruct"
    assert len(cfg["studies"]["wrpo"]["sources"]) == 10


def test_wrpo_alpha_sweep_variants():
    from fusekit import workflow as layout

    assert layout.alpha_sweep(load("tiny.yaml"), "wrpo") == {
        "Target-SFT-DPO": 0.0,
        "WRPO": 0.1,
        "WRPO-alpha0.5": 0.5,
    }
    paper = layout.alpha_sweep(load("config.yaml"), "wrpo")
    assert sorted(paper.values()) == [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
    assert "WRPO-1src" not in paper and "SimPO" not in paper  # other data or objective


def test_eurus_loader_needs_remote_code_opted_in():
    cfg = load("config.yaml")
    cfg["reward_models"]["Eurus-RM-7b"]["trust_remote_code"] = False
    with pytest.raises(ConfigError, match=r"reward_models\.Eurus-RM-7b\.trust_remote_code"):
        check_references(cfg)


def test_eurus_scorer_refuses_remote_code_unless_opted_in():
    from fusekit.rewards.scoring import RewardScorer

    with pytest.raises(ValueError, match="set trust_remote_code: true"):
        RewardScorer("/nonexistent/eurus", {"loader": "eurus"})


# --- issue 19 item 3: every bad config stops at plan time with its key path ------------
SCHEMA = ROOT / "config" / "schema.yaml"
_CONFIGS: dict[str, dict] = {}


def plan_time_check(cfg: dict) -> None:
    """What rules/common.smk runs when Snakemake parses the workflow, in-process."""
    from snakemake.utils import validate

    check_schema(cfg, SCHEMA)
    validate(cfg, schema=str(SCHEMA))
    check_references(cfg)


def _fresh(name: str) -> dict:
    if name not in _CONFIGS:
        _CONFIGS[name] = load(name)
    return copy.deepcopy(_CONFIGS[name])


def _put(cfg: dict, path: str, value) -> None:
    """Set a dotted path whose parts may carry list indices: a.b[0].c."""
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    *parents, last = parts
    for key in parents:
        cfg = cfg[key] if isinstance(key, int) else cfg.setdefault(key, {})
    cfg[last] = value


# (case id, config, edits {path: value}, the key path the error starts with, words)
PLAN_TIME = [
    # issue 17: a reward-pair model the world does not build
    (
        "reward_pairs_unknown_model",
        "tiny.yaml",
        {"tiny_world.reward_pairs.models": ["src_llama", "nosuch"]},
        "tiny_world.reward_pairs.models.1",
        ["'nosuch' is not a tiny-world model"],
    ),
    # a reward model with neither corruptions nor source outputs has no training pairs
    (
        "reward_model_without_pairs",
        "tiny.yaml",
        {
            "tiny_world.reward_models.rm_weak.corruptions": [],
            "tiny_world.reward_models.rm_weak.source_outputs": False,
        },
        "tiny_world.reward_models.rm_weak.corruptions",
        ["should be non-empty"],
    ),
    # integer-valued floats for integer keys (JSON Schema's integer accepts 16.0)
    (
        "float_global_batch_size",
        "tiny.yaml",
        {"studies.profuser.optimizer.global_batch_size": 16.0},
        "studies.profuser.optimizer.global_batch_size",
        ["write 16"],
    ),
    ("float_top_k", "tiny.yaml", {"logits.top_k": 10.0}, "logits.top_k", ["write 10"]),
    (
        "float_variant_batch",
        "tiny.yaml",
        {"studies.wrpo.variants.WRPO.optimizer.global_batch_size": 8.0},
        "studies.wrpo.variants.WRPO.optimizer.global_batch_size",
        ["write 8"],
    ),
    (
        "float_tiny_steps",
        "tiny.yaml",
        {"tiny_world.models.src_llama.train.steps": 100.0},
        "tiny_world.models.src_llama.train.steps",
        ["write 100"],
    ),
    (
        "float_samples_override",
        "tiny.yaml",
        {"datasets.fusechat_train.generation.samples_per_prompt": 4.0},
        "datasets.fusechat_train.generation.samples_per_prompt",
        ["write 4"],
    ),
    (
        "float_paper_gpus",
        "config.yaml",
        {"studies.profuser.training.gpus": 8.0},
        "studies.profuser.training.gpus",
        ["write 8"],
    ),
    # negative seeds, every seed key
    ("seed_global", "tiny.yaml", {"seed": -7}, "seed", ["-7 is less than the minimum of 0"]),
    (
        "seed_generation",
        "tiny.yaml",
        {"models.src_llama.generation": {"max_new_tokens": 40, "seed": -7}},
        "models.src_llama.generation.seed",
        ["minimum of 0"],
    ),
    (
        "seed_dataset_override",
        "tiny.yaml",
        {"datasets.fusechat_train.generation.seed": -7},
        "datasets.fusechat_train.generation.seed",
        ["minimum of 0"],
    ),
    (
        "seed_fusechat3",
        "tiny.yaml",
        {"studies.fusechat3.seed": -7},
        "studies.fusechat3.seed",
        ["minimum of 0"],
    ),
    ("seed_wrpo", "tiny.yaml", {"studies.wrpo.seed": -7}, "studies.wrpo.seed", ["minimum of 0"]),
    (
        "seed_fuserl",
        "tiny.yaml",
        {"studies.fuserl.seed": -7},
        "studies.fuserl.seed",
        ["minimum of 0"],
    ),
    (
        "seed_alpaca",
        "tiny.yaml",
        {"evaluation.alpaca_eval.seed": -7},
        "evaluation.alpaca_eval.seed",
        ["minimum of 0"],
    ),
    (
        "seed_arena",
        "tiny.yaml",
        {"evaluation.arena_hard.seed": -7},
        "evaluation.arena_hard.seed",
        ["minimum of 0"],
    ),
    ("seed_too_large", "tiny.yaml", {"seed": 2**32}, "seed", ["maximum of 4294967295"]),
    # a local judge whose tie threshold is above its strong one
    (
        "judge_tie_above_strong",
        "tiny.yaml",
        {"judges.tiny_rm_judge.tie": 2.0},
        "judges.tiny_rm_judge.tie",
        ["2.0 is above strong (1.0)"],
    ),
    # tiny models whose attention cannot be built
    (
        "rm_heads_do_not_divide",
        "tiny.yaml",
        {
            "tiny_world.reward_models.rm_medium.size": {
                "hidden_size": 64,
                "num_layers": 2,
                "num_heads": 3,
                "intermediate_size": 128,
            }
        },
        "tiny_world.reward_models.rm_medium.size.num_heads",
        ["3 heads do not divide hidden_size 64"],
    ),
    (
        "odd_rotary_head",
        "tiny.yaml",
        {"tiny_world.models.src_llama.size": {"hidden_size": 60, "num_heads": 4}},
        "tiny_world.models.src_llama.size.num_heads",
        ["15 is odd"],
    ),
    (
        "qwen2_kv_heads",
        "tiny.yaml",
        {"tiny_world.models.src_qwen2.size": {"hidden_size": 80, "num_heads": 5}},
        "tiny_world.models.src_qwen2.size.num_heads",
        ["Qwen2's 2 key/value heads"],
    ),
    # splits of size 0
    (
        "fusion_split_zero",
        "tiny.yaml",
        {"tiny_world.corpus.sizes.fusion": 0},
        "tiny_world.corpus.sizes.fusion",
        ["less than the minimum of 1"],
    ),
    (
        "sft_part_zero",
        "tiny.yaml",
        {"studies.fusechat3.sft_dpo_split": [0, 6]},
        "studies.fusechat3.sft_dpo_split[0]",
        ["['SFT']"],
    ),
    (
        "fuserl_split_zero",
        "tiny.yaml",
        {"studies.fuserl.fuserl.split.po": 0},
        "studies.fuserl.fuserl.split.po",
        ["minimum of 1"],
    ),
    # max_length below the prompts
    (
        "train_max_length_below_prompt",
        "tiny.yaml",
        {"studies.profuser.optimizer.max_length": 9},
        "studies.profuser.optimizer.max_length",
        ["9 tokens cannot hold", "at least 10"],
    ),
    (
        "dump_max_length_below_prompt",
        "tiny.yaml",
        {"logits.max_length": 8},
        "logits.max_length",
        ["8 tokens cannot hold"],
    ),
    (
        "variant_max_length_below_prompt",
        "tiny.yaml",
        {"studies.wrpo.variants.WRPO.optimizer.max_length": 8},
        "studies.wrpo.variants.WRPO.optimizer.max_length",
        ["cannot hold"],
    ),
    (
        "paper_system_prompt",
        "config.yaml",
        {"studies.profuser.optimizer.max_length": 16},
        "studies.profuser.optimizer.max_length",
        ["vicuna-7b-v1.5", "system prompt"],
    ),
    # the tiny world's eval sizes: one per skill, within the skill's distinct items
    (
        "tiny_eval_size_missing_skill",
        "tiny.yaml",
        {"tiny_world.corpus.sizes.eval": {"arith": 393, "reverse": 1230}},
        "tiny_world.corpus.sizes.eval",
        ["none for skill 'upper'"],
    ),
    (
        "tiny_eval_size_unknown_skill",
        "tiny.yaml",
        {"tiny_world.corpus.sizes.eval.poetry": 3},
        "tiny_world.corpus.sizes.eval",
        ["unknown skills ['poetry']"],
    ),
    (
        "tiny_eval_size_leaves_no_fusion_item",
        "tiny.yaml",
        {"tiny_world.corpus.sizes.eval.arith": 600},
        "tiny_world.corpus.sizes.eval",
        ["600 eval arith items take all 600", "no arith item for the fusion split"],
    ),
    (
        "tiny_eval_size_beyond_items",
        "tiny.yaml",
        {"tiny_world.corpus.sizes.eval.arith": 601},
        "tiny_world.corpus.sizes.eval",
        ["601 distinct arith items", "600"],
    ),
    # a tiny-scale model the tiny world does not build
    (
        "tiny_model_not_built",
        "tiny.yaml",
        {"models.src_extra": {"path": "results/tiny/world/models/src_extra"}},
        "models.src_extra.path",
        ["builds no model 'src_extra'"],
    ),
    (
        "tiny_judge_rm_not_built",
        "tiny.yaml",
        {"judges.tiny_rm_judge.path": "results/tiny/world/reward_models/rm_ghost"},
        "judges.tiny_rm_judge.path",
        ["rm_ghost"],
    ),
    # empty lists are errors, never the study's defaults
    (
        "variant_stages_empty",
        "tiny.yaml",
        {"studies.profuser.variants.CSFT.stages": []},
        "studies.profuser.variants.CSFT.stages",
        ["should be non-empty"],
    ),
    (
        "variant_sources_empty",
        "tiny.yaml",
        {"studies.profuser.variants.CSFT.sources": []},
        "studies.profuser.variants.CSFT.sources",
        ["should be non-empty"],
    ),
    (
        "study_sources_empty",
        "tiny.yaml",
        {"studies.fuserl.sources": []},
        "studies.fuserl.sources",
        ["should be non-empty"],
    ),
    (
        "voting_rms_empty",
        "tiny.yaml",
        {"studies.profuser.inference_mode.reward_models": []},
        "studies.profuser.inference_mode.reward_models",
        ["should be non-empty"],
    ),
    (
        "preference_stages_empty",
        "tiny.yaml",
        {"studies.wrpo.variants.WRPO.stages": []},
        "studies.wrpo.variants.WRPO.stages",
        ["should be non-empty"],
    ),
    # the same fault classes elsewhere in the schema
    (
        "rm_gap_negative",
        "tiny.yaml",
        {"studies.fusechat3.dpo.rm_gap": [-0.1, 0.1]},
        "studies.fusechat3.dpo.rm_gap[0]",
        ["minimum of 0"],
    ),
    (
        "rm_gap_reversed",
        "tiny.yaml",
        {"studies.fusechat3.dpo.rm_gap": [0.5, 0.1]},
        "studies.fusechat3.dpo.rm_gap",
        ["above the high bound"],
    ),
    (
        "reference_weights_zero",
        "tiny.yaml",
        {"reference_score.weights": {"bleu": 0, "rouge": 0, "bertscore": 0}},
        "reference_score.weights",
        ["all weights are 0"],
    ),
    (
        "arena_temperature_negative",
        "tiny.yaml",
        {"evaluation.arena_hard.settings": {"temperature": -1, "max_tokens": 64}},
        "evaluation.arena_hard.settings.temperature",
        ["minimum of 0"],
    ),
    (
        "variant_unknown_optimizer_key",
        "tiny.yaml",
        {"studies.wrpo.variants.WRPO.optimizer.learning_rate": 1e-3},
        "studies.wrpo.variants.WRPO.optimizer.learning_rate",
        ["was unexpected"],
    ),
]


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("config_name", "edits", "key", "words"),
    [c[1:] for c in PLAN_TIME],
    ids=[c[0] for c in PLAN_TIME],
)
def test_bad_config_stops_at_plan_time_with_its_key(config_name, edits, key, words):
    cfg = _fresh(config_name)
    plan_time_check(copy.deepcopy(cfg))  # the shipped config passes ...
    for path, value in edits.items():
        _put(cfg, path, value)
    with pytest.raises(ConfigError) as err:  # ... and the edit alone breaks it
        plan_time_check(cfg)
    msg = str(err.value)
    assert msg.startswith(f"config key {key}: "), msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def _schema_paths(node, path, found, defs, seen=()):
    """Every property path of the schema, $refs followed: (dotted path, its schema)."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if ref and ref not in seen:
        _schema_paths(defs[ref.rsplit("/", 1)[1]], path, found, defs, (*seen, ref))
    for name, sub in node.get("properties", {}).items():
        found.append((f"{path}.{name}".lstrip("."), {**sub}))
        _schema_paths(sub, f"{path}.{name}", found, defs, seen)
    for key in ("additionalProperties", "items"):
        if isinstance(node.get(key), dict):
            _schema_paths(node[key], f"{path}.*", found, defs, seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(key, []):
            _schema_paths(sub, path, found, defs, seen)


def test_every_seed_key_is_bounded_and_exercised():
    """A schema walk (not a list kept by hand): every key named seed has the bounds numpy
    and torch accept, and the plan-time cases above exercise each of them."""
    schema = yaml.safe_load(SCHEMA.read_text())
    found: list = []
    _schema_paths(schema, "", found, schema["$defs"])
    seeds = [(p, s) for p, s in found if p.rsplit(".", 1)[-1] == "seed"]
    assert len(seeds) >= 7, seeds
    for path, sub in seeds:
        assert sub.get("minimum") == 0 and sub.get("maximum") == 2**32 - 1, path
    # each seed definition is covered: the generation one through models.* and overrides
    exercised = {k for c in PLAN_TIME if c[0].startswith("seed_") for k in c[2]}
    assert {
        "seed",
        "studies.fusechat3.seed",
        "studies.wrpo.seed",
        "studies.fuserl.seed",
        "evaluation.alpaca_eval.seed",
        "evaluation.arena_hard.seed",
    } <= exercised


def test_check_defaults_match_the_schema_and_the_judge():
    """fusekit.config's fallbacks for configs that skipped default filling are the
    schema's and LocalJudge's own defaults."""
    import inspect

    from fusekit import config as fc
    from fusekit.judges import LocalJudge

    defs = yaml.safe_load(SCHEMA.read_text())["$defs"]
    for key, value in fc.SIZE_DEFAULTS.items():
        assert defs["size"]["properties"][key]["default"] == value, key
    assert defs["optimizer"]["properties"]["max_length"]["default"] == fc.MAX_LENGTH_DEFAULT
    params = inspect.signature(LocalJudge.__init__).parameters
    assert {k: params[k].default for k in ("tie", "strong")} == fc.LOCAL_JUDGE_DEFAULTS
    fc3 = yaml.safe_load(SCHEMA.read_text())["properties"]["studies"]["properties"]["fusechat3"]
    assert tuple(fc3["properties"]["sft_dpo_split"]["default"]) == fc.SFT_DPO_SPLIT_DEFAULT


def test_min_prompt_tokens_is_a_lower_bound():
    """The bound counts whitespace pieces and special tokens of the rendered prompt: for
    chatml, <|im_start|> user / prompt words / <|im_end|> / <|im_start|> assistant."""
    from fusekit.config import min_prompt_tokens

    # '<|im_start|>user\nadd 1 and 2 .<|im_end|>\n<|im_start|>assistant\n'
    assert min_prompt_tokens("chatml", None, "add 1 and 2 .") == 2 + 5 + 1 + 2
    assert min_prompt_tokens(None, None, "one two") == 2
    # vicuna: '<s>' 'USER:' 'hi' 'ASSISTANT:', plus the system prompt's words
    assert min_prompt_tokens("vicuna", None, "hi") == 4
    assert min_prompt_tokens("vicuna", "be brief", "hi") == 6


@pytest.mark.bad_input
def test_bad_config_stops_snakemake_dry_run_with_its_key(workdir, tmp_path):
    """The same check in Snakemake: `snakemake -n` stops while parsing, naming the key."""
    cfg = load("tiny.yaml")
    cfg["studies"]["profuser"]["optimizer"]["global_batch_size"] = 16.0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(path), cwd=workdir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key studies.profuser.optimizer.global_batch_size: 16.0 is not of type" in out
    assert "Job stats" not in out, "a DAG was planned although the config is invalid"

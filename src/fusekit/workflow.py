"""The workflow's file layout as pure functions of the config.

Rules call these through small input functions in ``rules/common.smk``, so
the DAG's wiring is testable without Snakemake (fusekit never imports it).
"""

from __future__ import annotations

WORLD = "results/tiny/world"
"""The tiny world's models, tokenizers, corpus and tables (tiny scale only)."""

RESULTS_ROOTS = {"paper": "results", "tiny": "results/tiny"}
"""Each scale's outputs under a root of their own, so that a tiny run never overwrites
(or passes for) a paper-scale result: ``results/table1.csv`` is the paper's headline
table, ``results/tiny/table1.csv`` the tiny world's."""

LOGS_ROOTS = {"paper": "logs", "tiny": "logs/tiny"}


def results_root(config: dict) -> str:
    """Where the outputs of ``config``'s scale go (:data:`RESULTS_ROOTS`)."""
    return RESULTS_ROOTS[config["scale"]]


def logs_root(config: dict) -> str:
    """Where the job logs of ``config``'s scale go (:data:`LOGS_ROOTS`)."""
    return LOGS_ROOTS[config["scale"]]


def chat_root(config: dict) -> str:
    """The chat evaluation sets and the judgments shared across studies."""
    return f"{results_root(config)}/chat_eval"


def final_targets(config: dict) -> list[str]:
    """What ``snakemake`` with no target builds: the outputs of the finished stages."""
    targets = [
        f"{results_root(config)}/data/{name}.parquet" for name in sorted(config.get("datasets", {}))
    ]
    if config["scale"] == "tiny":
        targets.append(f"{WORLD}/skill_accuracy.csv")
    for study in inference_mode_studies(config):
        spec = config["studies"][study]
        if config["scale"] == "tiny":
            targets.append(f"{results_root(config)}/{study}/inference_mode/vote_accuracy.csv")
        targets += [
            f"{results_root(config)}/{study}/inference_mode/votes.parquet",
            f"{results_root(config)}/{study}/inference_mode/advantage_methods.csv",
            f"{results_root(config)}/{study}/advantage_by_mode.csv",
        ]
        targets += [
            f"{results_root(config)}/{study}/{mode}/aligned/{m}.parquet"
            for mode in ("training_mode", "inference_mode")
            for m in spec["sources"]
        ]
        targets += [
            f"{results_root(config)}/{study}/models/{v}" for v in sorted(spec.get("variants", {}))
        ]
    return (
        targets
        + preference_targets(config)
        + report_targets(config)
        + chat_targets(config)
        + fuserl_analysis_targets(config)
    )


# --- what triggers a rerun ---------------------------------------------------
#
# Snakemake reruns a job when a param changes, except a param computed by a function
# that takes ``resources`` (or input, output, threads): a "derived" param, which is not a
# rerun trigger (snakemake.rules.Rule._is_deriving_function). A rule therefore passes a
# config fragment to its script whole through :func:`untracked`, and declares the part
# that can change its output, :func:`result_settings`, as a plain (tracked) param.

RUN_ONLY_KEYS = frozenset({"batch_size", "save_every"})
"""Settings that cannot change a result, at any depth of a config fragment: the batch
size of reward scoring and of teacher-forced logit dumps (each row is computed alone;
the batch only pads), and how often a trainer checkpoints. A generation's batch size is
not among them where sampling draws from one generator across batches, so a generation
spec keeps it (see :func:`result_settings`)."""


def result_settings(spec: dict, drop: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> dict:
    """``spec`` without the settings that cannot change the output of the job it
    configures: :data:`RUN_ONLY_KEYS` at every depth (except those in ``keep``), and the
    top-level keys ``drop`` (a model's ``generation`` settings for a job that does not
    generate). Returns a new dict; ``spec`` is not modified."""
    run_only = RUN_ONLY_KEYS - set(keep)

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in run_only}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip({k: v for k, v in spec.items() if k not in drop})


def untracked(get):
    """A param function that Snakemake does not treat as a rerun trigger: ``get``
    (a function of the wildcards) wrapped in a function that also takes ``resources``,
    which makes it a derived param. Use it for a value a script needs whole, alongside
    a tracked :func:`result_settings` param."""

    def param(wildcards, resources):
        return get(wildcards)

    return param


def inference_mode_studies(config: dict) -> list[str]:
    """Studies that judge source outputs with reward models (ProFuser)."""
    return sorted(s for s, spec in config.get("studies", {}).items() if "inference_mode" in spec)


def built_model(config: dict, name: str, reward: bool = False) -> list[str]:
    """The model directory as a file dependency when the workflow builds it (the tiny
    world); nothing for hub models."""
    group = "reward_models" if reward else "models"
    if name in config.get("tiny_world", {}).get(group, {}):
        return [config[group][name]["path"]]
    return []


def generations_file(config: dict, dataset: str, model: str) -> str:
    return f"{results_root(config)}/generations/{dataset}/{model}.parquet"


def scores_file(config: dict, dataset: str, reward_model: str, model: str) -> str:
    return f"{results_root(config)}/scores/{dataset}/{reward_model}/{model}.parquet"


def reference_file(config: dict, dataset: str, model: str) -> str:
    return f"{results_root(config)}/reference_scores/{dataset}/{model}.parquet"


def vote_inputs(config: dict, study: str) -> dict[str, list[str]]:
    """Score and generation files of a study's sources; the world table when the
    strongest reward model is measured rather than configured."""
    spec = config["studies"][study]
    ds, inf = spec["train_dataset"], spec["inference_mode"]
    inputs = {
        "scores": [
            scores_file(config, ds, rm, m) for rm in inf["reward_models"] for m in spec["sources"]
        ],
        "generations": [generations_file(config, ds, m) for m in spec["sources"]],
        "world": [],
    }
    if inf.get("strongest_reward_model") is None:
        inputs["world"] = [f"{WORLD}/skill_accuracy.csv"]
    return inputs


def method_inputs(config: dict, study: str) -> dict[str, list[str]]:
    """Inputs of the advantage-method comparison of a study."""
    spec = config["studies"][study]
    ds = spec["train_dataset"]
    return {
        "scores": vote_inputs(config, study)["scores"],
        "reference": [reference_file(config, ds, m) for m in spec["sources"]],
        "votes": [f"{results_root(config)}/{study}/inference_mode/votes.parquet"],
    }


def dataset_inputs(config: dict, dataset: str) -> list[str]:
    """Files a prompt set is made from, the inputs of rule ``prepare_prompts``: the tiny
    corpus (``tiny_corpus``), the file itself as configured (``local_file``: relative to
    the working directory or absolute, so editing it rebuilds the set and what depends on
    it), nothing for hub sets (``orca_best``, ``hub_prompts``)."""
    spec = config["datasets"][dataset]
    if spec["kind"] == "tiny_corpus":
        return [f"{WORLD}/corpus.parquet"]
    if spec["kind"] == "local_file":
        return [spec["path"]]
    return []


def tokenizer_dir(config: dict, group: str, name: str) -> str:
    """The tokenizer directory that tiny-world model ``name`` (in ``group``) is trained with."""
    return f"{WORLD}/tokenizers/{config['tiny_world'][group][name]['tokenizer']}"


def world_tables(config: dict) -> list[str]:
    """Per-model evaluation tables that make up the world's accuracy table."""
    world = config["tiny_world"]
    return [f"{WORLD}/eval/models/{n}.csv" for n in sorted(world["models"])] + [
        f"{WORLD}/eval/reward_models/{n}.csv" for n in sorted(world.get("reward_models", {}))
    ]


def reward_pair_models(config: dict) -> list[str]:
    """The world models whose own outputs the reward models learn from and are measured
    on (``tiny_world.reward_pairs.models``; all world models by default)."""
    world = config["tiny_world"]
    return list(world.get("reward_pairs", {}).get("models") or sorted(world["models"]))


def reward_training_outputs(config: dict, name: str) -> list[str]:
    """Output files reward model ``name`` trains on (none unless its spec sets
    ``source_outputs``)."""
    if not config["tiny_world"]["reward_models"][name].get("source_outputs"):
        return []
    return [f"{WORLD}/outputs/{m}.parquet" for m in reward_pair_models(config)]


def world_eval_responses(config: dict) -> list[str]:
    """The world models' eval-split responses (the reward models' held-out pairs)."""
    return [f"{WORLD}/eval/responses/{m}.parquet" for m in reward_pair_models(config)]


def model_role(config: dict, name: str) -> str:
    """'source', 'target', 'source+target' or 'other', over all studies."""
    roles = set()
    for study in config.get("studies", {}).values():
        if name in study["sources"]:
            roles.add("source")
        if name == study["target"]:
            roles.add("target")
    return "+".join(sorted(roles)) or "other"


def world_meta(config: dict, group: str, name: str) -> dict:
    """Descriptive columns of a tiny-world model's rows in the accuracy table."""
    spec = config["tiny_world"][group][name]
    role = "reward_model" if group == "reward_models" else model_role(config, name)
    return {
        "model": name,
        "role": role,
        "architecture": spec["architecture"],
        "tokenizer": spec["tokenizer"],
    }


def reference_dump(config: dict, dataset: str, model: str) -> str:
    return f"{results_root(config)}/logits/{dataset}/{model}.parquet"


def vocab_map_file(config: dict, source: str, target: str) -> str:
    return f"{results_root(config)}/vocab_maps/{source}__to__{target}.parquet"


def align_inputs(config: dict, study: str, mode: str, model: str) -> dict[str, list[str]]:
    """A source's dump in ``mode`` (training_mode: on the references; inference_mode:
    on its voted outputs), the vocabulary map to the study's target, and the two
    models' directories where the workflow builds them (their tokenizers)."""
    spec = config["studies"][study]
    dump = (
        reference_dump(config, spec["train_dataset"], model)
        if mode == "training_mode"
        else f"{results_root(config)}/{study}/inference_mode/logits/{model}.parquet"
    )
    return {
        "dump": [dump],
        "vocab_map": [vocab_map_file(config, model, spec["target"])],
        "models": built_model(config, model) + built_model(config, spec["target"]),
    }


def fusion_inputs(config: dict, study: str, variant: str) -> dict[str, list[str]]:
    """What training a variant reads: the prompt set; the votes if a stage trains in
    inference mode or the order is ``rm_score``; the inference-mode dumps of its sources
    if a stage trains in inference mode; their training-mode dumps
    if a stage trains in training mode; the target model where the workflow builds it.
    Nothing a variant's stages do not read, so that it is not retrained when that
    changes."""
    from fusekit.train.fusion import resolve_variant

    spec = config["studies"][study]
    resolved = resolve_variant(spec, variant)
    sources = resolved["sources"]
    modes = {m for stage in resolved["stages"] for m in stage.get("modes", [])}
    inference = "inference" in modes
    return {
        "prompts": [f"{results_root(config)}/data/{spec['train_dataset']}.parquet"],
        "votes": [f"{results_root(config)}/{study}/inference_mode/votes.parquet"]
        if inference or resolved["order"] == "rm_score"
        else [],
        "inference": [
            f"{results_root(config)}/{study}/inference_mode/aligned/{m}.parquet" for m in sources
        ]
        if inference
        else [],
        "training": [
            f"{results_root(config)}/{study}/training_mode/aligned/{m}.parquet" for m in sources
        ]
        if "training" in modes
        else [],
        "target": built_model(config, spec["target"]),
    }


# --- evaluation and reports -------------------------------------------------


def openllm_file(config: dict, study: str, row: dict) -> str:
    """The evaluation JSON of a table row: shared per model, per study for a variant."""
    if "model" in row:
        return f"{results_root(config)}/evaluation/openllm/{row['model']}.json"
    return f"{results_root(config)}/{study}/evaluation/openllm/{row['variant']}.json"


def suite_file(config: dict, study: str, row: dict, suite: str) -> str:
    """The evaluation JSON of a table row on a benchmark suite (``evaluation.suites``):
    shared per model, per study for a variant; the OpenLLM suite is :func:`openllm_file`."""
    if suite == "openllm":
        return openllm_file(config, study, row)
    if "model" in row:
        return f"{results_root(config)}/evaluation/suites/{suite}/{row['model']}.json"
    return f"{results_root(config)}/{study}/evaluation/suites/{suite}/{row['variant']}.json"


def openllm_tasks(config: dict) -> list[str]:
    """The local task folder lm-eval reads, when the workflow builds it (the tiny world)."""
    tasks_dir = config.get("evaluation", {}).get("openllm", {}).get("tasks_dir")
    return [tasks_dir] if tasks_dir else []


def benchmark_suites(config: dict) -> dict[str, dict]:
    """``evaluation.suites``: benchmark suites other than OpenLLM, by name."""
    return config.get("evaluation", {}).get("suites") or {}


def suite_benchmarks(config: dict, suite: str) -> dict[str, dict]:
    """The benchmarks a suite's evaluation runs (key -> spec): all of OpenLLM's; a
    suite's, less those that execute generated code unless it allows that."""
    if suite == "openllm":
        return config["evaluation"]["openllm"]["benchmarks"]
    spec = benchmark_suites(config)[suite]
    return {
        k: b
        for k, b in spec.get("benchmarks", {}).items()
        if spec.get("allow_code_execution") or not b.get("executes_code")
    }


def suite_settings(config: dict, suite: str) -> dict:
    """A suite's lm-eval settings: ``evaluation.openllm``'s without its benchmarks,
    overridden by ``evaluation.suites.<suite>.settings``; ``confirm_run_unsafe_code``
    where the suite allows code execution."""
    settings = {k: v for k, v in config["evaluation"]["openllm"].items() if k != "benchmarks"}
    if suite != "openllm":
        spec = benchmark_suites(config)[suite]
        settings.update(spec.get("settings") or {})
        if spec.get("allow_code_execution"):
            settings["confirm_run_unsafe_code"] = True
    return settings


def suite_job_settings(config: dict, suite: str, model: str) -> dict:
    """What one evaluation job of a suite receives as ``--settings``:
    :func:`suite_settings` plus the seed and the model's ``trust_remote_code`` (for a
    variant: its study's target's)."""
    return {
        **suite_settings(config, suite),
        "seed": config["seed"],
        "trust_remote_code": config["models"][model].get("trust_remote_code", False),
    }


def suite_code_env(config: dict, suite: str) -> str:
    """The shell prefix that lets lm-eval run generated code (``HF_ALLOW_CODE_EVAL=1``)
    where the suite allows code execution; else empty."""
    allowed = benchmark_suites(config)[suite].get("allow_code_execution")
    return "HF_ALLOW_CODE_EVAL=1 " if allowed else ""


def _columns(config: dict, study: str, table: str) -> list[dict]:
    from fusekit.report.tables import table_columns

    spec = config["studies"][study]["tables"][table]
    benchmarks = config.get("evaluation", {}).get("openllm", {}).get("benchmarks", {})
    return table_columns(spec, benchmarks, benchmark_suites(config))


def table_suites(config: dict, study: str, table: str) -> list[str]:
    """The suites whose evaluations a table reads ('openllm' first): those of its run
    benchmark columns (none for a table of chat and not-run columns only)."""
    suites = {s for c in _columns(config, study, table) for s, _ in c["keys"]}
    return sorted(suites, key=lambda s: (s != "openllm", s))


def table_has_chat(config: dict, study: str, table: str) -> bool:
    """Whether a table has columns from the study's chat_eval.csv."""
    return any(c["source"] == "chat" for c in _columns(config, study, table))


def table_not_run(config: dict, study: str, table: str) -> dict[str, str]:
    """Label -> reason of a table's columns without a reproduced value."""
    return {
        c["label"]: c["reason"] for c in _columns(config, study, table) if c["source"] == "not_run"
    }


def table_evaluations(config: dict, study: str, table: str) -> dict[str, str]:
    """Row name (model or variant) -> OpenLLM evaluation JSON, for every row of a table
    that has OpenLLM columns (empty otherwise)."""
    if "openllm" not in table_suites(config, study, table):
        return {}
    rows = config["studies"][study]["tables"][table]["rows"]
    return {row.get("model") or row["variant"]: openllm_file(config, study, row) for row in rows}


def table_suite_evaluations(config: dict, study: str, table: str) -> dict[str, dict[str, str]]:
    """Suite -> row name -> evaluation JSON, for the suites other than OpenLLM that a
    table reads."""
    rows = config["studies"][study]["tables"][table]["rows"]
    return {
        suite: {
            row.get("model") or row["variant"]: suite_file(config, study, row, suite)
            for row in rows
        }
        for suite in table_suites(config, study, table)
        if suite != "openllm"
    }


def table_inputs(config: dict, study: str, table: str) -> list[str]:
    """The files a table reads besides its reported CSV: its rows' evaluations (OpenLLM,
    other suites) and the study's chat_eval.csv when it has chat columns."""
    files = list(table_evaluations(config, study, table).values())
    for rows in table_suite_evaluations(config, study, table).values():
        files += list(rows.values())
    if table_has_chat(config, study, table):
        files.append(f"{results_root(config)}/{study}/chat_eval.csv")
    return files


def study_tables(config: dict, study: str) -> dict[str, str]:
    """Table name -> CSV, for every configured table of a study."""
    return {
        t: f"{results_root(config)}/{study}/{t}.csv"
        for t in config["studies"][study].get("tables", {})
    }


def study_not_run(config: dict, study: str) -> dict[str, dict[str, str]]:
    """Table name -> its not-run columns (label -> reason), for tables that have any."""
    out = {t: table_not_run(config, study, t) for t in study_tables(config, study)}
    return {t: cols for t, cols in out.items() if cols}


def study_benchmarks(config: dict, study: str) -> tuple[list[str], dict[str, dict]]:
    """What verification.md describes: the OpenLLM benchmark keys (all of them when the
    study has no table; else those its tables read, in config order) and the other
    suites its tables read (``evaluation.suites.<suite>`` with the benchmarks run)."""
    openllm = config["evaluation"]["openllm"]["benchmarks"]
    tables = list(study_tables(config, study))
    if not tables:
        return list(openllm), {}
    used = {(s, k) for t in tables for c in _columns(config, study, t) for s, k in c["keys"]}
    keys = [k for k in openllm if ("openllm", k) in used]
    suites = {}
    for suite, spec in benchmark_suites(config).items():
        bench = {k: b for k, b in suite_benchmarks(config, suite).items() if (suite, k) in used}
        if bench:
            suites[suite] = {**spec, "benchmarks": bench}
    return keys, suites


def study_benchmark_list(config: dict, study: str) -> list[dict]:
    """The OpenLLM benchmarks verification.md describes (:func:`study_benchmarks`), as
    the list of specs with a ``key`` that scripts receive, in config order."""
    keys, _ = study_benchmarks(config, study)
    bench = config["evaluation"]["openllm"]["benchmarks"]
    return [{**bench[k], "key": k} for k in keys]


def study_figures(config: dict, study: str) -> list[str]:
    """The PNGs of a study: advantage figures where it has inference mode, loss curves
    where it trains variants, one reproduced-vs-reported plot per table."""
    spec = config["studies"][study]
    figs = []
    if "inference_mode" in spec:
        figs += [
            f"{results_root(config)}/{study}/figures/advantage_by_mode.png",
            f"{results_root(config)}/{study}/figures/advantage_methods.png",
        ]
    if spec.get("variants"):
        figs.append(f"{results_root(config)}/{study}/figures/loss_curves.png")
    figs += [
        f"{results_root(config)}/{study}/figures/{t}_vs_reported.png"
        for t in spec.get("tables", {})
    ]
    return figs


def evaluation_targets(config: dict, study: str) -> list[str]:
    """The benchmark evaluations a study's tables read: each row of a table, on each
    suite of that table's run columns (OpenLLM or another), once; no other model of the
    study is evaluated (at paper scale its sources include 236B models)."""
    out: dict[str, None] = {}
    for table in study_tables(config, study):
        for rows in [
            {"openllm": table_evaluations(config, study, table)},
            table_suite_evaluations(config, study, table),
        ]:
            for files in rows.values():
                out.update(dict.fromkeys(files.values()))
    return sorted(out)


def report_targets(config: dict) -> list[str]:
    """Tables, verification notes, figures and the headline table."""
    out = []
    for study, spec in sorted(config.get("studies", {}).items()):
        if spec.get("tables"):  # the tables' rows are evaluated, on the tables' suites
            out += evaluation_targets(config, study)
            out += list(study_tables(config, study).values())
        if spec.get("tables") or chat_eval_enabled(config):  # OpenLLM and/or chat cells
            out.append(f"{results_root(config)}/{study}/verification.md")
        if "inference_mode" in spec:
            out += study_figures(config, study)
            # its loss curves' verdicts (issue 17 item 3)
            out.append(f"{results_root(config)}/{study}/convergence.csv")
    headline = config.get("evaluation", {}).get("headline")
    if headline and headline[1] in config.get("studies", {}).get(headline[0], {}).get("tables", {}):
        out.append(f"{results_root(config)}/{headline[1]}.csv")
    return out


# --- AlpacaEval-2 and Arena-Hard ---------------------------------------------


CHAT_SETS = ("alpaca_eval", "arena_hard")


def chat_eval_enabled(config: dict) -> bool:
    ev = config.get("evaluation", {})
    return bool(ev.get("alpaca_eval") and ev.get("arena_hard"))


def prompts_file(config: dict, dataset: str) -> str:
    """The prompt set a model answers: a configured data set, or a chat-evaluation set."""
    if dataset in CHAT_SETS:
        return f"{chat_root(config)}/{dataset}/prompts.parquet"
    return f"{results_root(config)}/data/{dataset}.parquet"


def chat_set_files(config: dict) -> dict[str, str]:
    """What the evaluation-set builder writes, by name."""
    baseline = config["evaluation"]["arena_hard"]["baseline"]
    files = {
        "reference": f"{chat_root(config)}/alpaca_eval/reference_outputs.json",
        "alpaca_prompts": prompts_file(config, "alpaca_eval"),
        "questions": f"{chat_root(config)}/arena_hard/question.jsonl",
        "baseline": f"{chat_root(config)}/arena_hard/model_answer/{baseline}.jsonl",
        "arena_prompts": prompts_file(config, "arena_hard"),
    }
    if config["scale"] == "tiny":
        files.update(
            concise=f"{chat_root(config)}/alpaca_eval/gamed_concise.json",
            verbose=f"{chat_root(config)}/alpaca_eval/gamed_verbose.json",
        )
    return files


def lc_reference(config: dict) -> list[str]:
    """The df_gamed.csv the length-controlled win rate reads: built by the workflow
    ('build'), a local file, or none (alpaca_eval fetches its own)."""
    ref = config["evaluation"]["alpaca_eval"].get("lc_reference")
    if ref == "build":
        return [f"{chat_root(config)}/alpaca_eval/df_gamed.csv"]
    return [ref] if ref else []


def judge_inputs(config: dict, evaluation: str) -> list[str]:
    """The judge's model folder when the workflow builds it (a tiny reward model)."""
    judge = config["judges"][config["evaluation"][evaluation]["judge"]]
    if judge["kind"] == "local" and judge["path"].startswith(f"{WORLD}/"):
        return [judge["path"]]
    return []


def chat_entries(config: dict, study: str) -> dict[str, str]:
    """Every model a study evaluates on the chat sets -> 'model' or 'variant': its sources,
    its target and its trained variants (those of ``chat_eval_variants`` where set)."""
    spec = config["studies"][study]
    entries = {m: "model" for m in [*spec["sources"], spec["target"]]}
    chosen = spec.get("chat_eval_variants")
    variants = [v for v in spec.get("variants", {}) if chosen is None or v in chosen]
    entries.update({v: "variant" for v in variants})
    return entries


def chat_answer_set(config: dict, dataset: str) -> str:
    """The set whose answers a chat evaluation reads: itself, or for Arena-Hard with
    ``evaluation.arena_hard.answers_from`` (the tiny world's sets share their prompts) the
    AlpacaEval-2 answers."""
    if dataset == "arena_hard":
        return config["evaluation"]["arena_hard"].get("answers_from") or dataset
    return dataset


def chat_generations(config: dict, study: str, dataset: str, entry: str) -> str:
    """A model's answers to a chat-evaluation set (shared), or a variant's (per study)."""
    dataset = chat_answer_set(config, dataset)
    if chat_entries(config, study)[entry] == "model":
        return f"{results_root(config)}/generations/{dataset}/{entry}.parquet"
    return f"{results_root(config)}/{study}/generations/{dataset}/{entry}.parquet"


def chat_result(config: dict, study: str, dataset: str, entry: str, ext: str) -> str:
    """A chat-evaluation result of one entry (``ext``: ``parquet`` judgments, ``json``
    AlpacaEval metrics): a model's is shared by every study that names it (the same
    answers, the same judge: judged once), a variant's belongs to its study."""
    if chat_entries(config, study)[entry] == "model":
        return f"{chat_root(config)}/{dataset}/judged/{entry}.{ext}"
    return f"{results_root(config)}/{study}/chat_eval/{dataset}/{entry}.{ext}"


def chat_results(config: dict, study: str, dataset: str, ext: str) -> list[str]:
    """:func:`chat_result` of every entry of a study, in entry order."""
    return [chat_result(config, study, dataset, e, ext) for e in chat_entries(config, study)]


def chat_table_inputs(config: dict, study: str) -> list[str]:
    """What a study's verification.md reads of the chat evaluation: its ``chat_eval.csv``
    and the reported CSV of ``studies.<study>.chat_table``; nothing without chat eval."""
    if not chat_eval_enabled(config):
        return []
    spec = config["studies"][study].get("chat_table")
    return [f"{results_root(config)}/{study}/chat_eval.csv", *([spec["reported"]] if spec else [])]


def chat_targets(config: dict) -> list[str]:
    """One chat-evaluation table per study (and what it reads)."""
    if not chat_eval_enabled(config):
        return []
    return [
        f"{results_root(config)}/{study}/chat_eval.csv"
        for study in sorted(config.get("studies", {}))
    ]


# --- preference studies (FuseChat-3.0) ---------------------------------------------


def preference_studies(config: dict) -> list[str]:
    """Studies that build preference data and train variants by objective (FuseChat-3.0)."""
    return sorted(
        s
        for s, spec in config.get("studies", {}).items()
        if "inference_mode" not in spec and spec.get("variants") and spec.get("train_dataset")
    )


def with_generation(config: dict, model: str, override: dict | None) -> dict:
    """``models.<model>`` with ``override`` applied over its generation settings."""
    spec = dict(config["models"][model])
    spec["generation"] = {**spec.get("generation", {}), **(override or {})}
    return spec


def generation_spec(config: dict, dataset: str, model: str) -> dict:
    """``models.<model>`` with the prompt set's generation overrides applied."""
    return with_generation(
        config, model, config.get("datasets", {}).get(dataset, {}).get("generation")
    )


def target_sample_spec(config: dict, study: str) -> dict:
    """The study's target with the sampling settings of its own samples (WRPO)."""
    spec = config["studies"][study]
    return with_generation(config, spec["target"], spec["target_samples"].get("generation"))


# the shape of the examples each data set of a preference study holds
DATA_SHAPES = {
    "sft": "sft",
    "dpo": "pair",
    "target_sft": "sft",
    "quadruples": "quadruple",
    "fusesft": "weighted_sft",
    "fusepo": "group",
    "heldout": "group",  # FuseRL's held-out prompts: scored, never trained on
}


def data_shape(data: str) -> str:
    """The example shape of a preference data name: ``quadruples.<subset>`` (WRPO's
    quadruples over a subset of the sources) has its base name's shape."""
    return DATA_SHAPES[data.split(".", 1)[0]]


def source_subset(config: dict, study: str, data: str) -> list[str]:
    """The sources a data name draws on: ``<name>.<subset>`` names
    ``studies.<study>.source_subsets.<subset>``; a plain name, every source of the study.
    Raises ValueError for an unknown data name or subset (naming the config key)."""
    spec = config["studies"][study]
    base, _, subset = data.partition(".")
    if base not in DATA_SHAPES:
        raise ValueError(f"studies.{study}: unknown data {data!r}; known: {sorted(DATA_SHAPES)}")
    if not subset:
        return list(spec["sources"])
    if base != "quadruples":
        raise ValueError(f"studies.{study}: only quadruples take a source subset, not {data!r}")
    subsets = spec.get("source_subsets", {})
    if subset not in subsets:
        raise ValueError(
            f"studies.{study}: data {data!r} names source subset {subset!r}, not in "
            f"studies.{study}.source_subsets ({sorted(subsets)})"
        )
    return list(subsets[subset])


def wrpo_studies(config: dict) -> list[str]:
    """Preference studies that sample their own SFT'd target (WRPO)."""
    return [s for s in preference_studies(config) if "target_samples" in config["studies"][s]]


def fuserl_studies(config: dict) -> list[str]:
    """Preference studies that weight every source's responses (FuseRL)."""
    return [s for s in preference_studies(config) if "fuserl" in config["studies"][s]]


def fusechat_studies(config: dict) -> list[str]:
    """Preference studies that build SFT rows and same-source pairs (FuseChat-3.0)."""
    other = {*wrpo_studies(config), *fuserl_studies(config)}
    return [s for s in preference_studies(config) if s not in other]


def preference_data_files(config: dict, study: str) -> dict[str, str]:
    return {
        "sft": f"{results_root(config)}/{study}/data/sft.parquet",
        "dpo": f"{results_root(config)}/{study}/data/dpo.parquet",
        "counts": f"{results_root(config)}/{study}/data/counts.csv",
        "composition": f"{results_root(config)}/{study}/{study}_data_composition.csv",
        "target_sft": f"{results_root(config)}/{study}/data/target_sft.parquet",
        "wrpo_prompts": f"{results_root(config)}/{study}/data/wrpo_prompts.parquet",
        "best_source_share": f"{results_root(config)}/{study}/best_source_share.csv",
        "quadruples": f"{results_root(config)}/{study}/data/quadruples.parquet",
        "quadruple_counts": f"{results_root(config)}/{study}/data/quadruple_counts.csv",
        "fusesft": f"{results_root(config)}/{study}/data/fusesft.parquet",
        "fusepo": f"{results_root(config)}/{study}/data/fusepo.parquet",
        "fuserl_counts": f"{results_root(config)}/{study}/data/fuserl_counts.csv",
        "heldout": f"{results_root(config)}/{study}/data/heldout.parquet",
    }


#: data built from a variant's own samples (WRPO's quadruples from Target-SFT's): in the
#: claims run each seed builds its own, from its own sampling variant
SAMPLED_DATA = ("quadruples",)


def preference_data_file(config: dict, study: str, data: str, seed: int | str | None = None) -> str:
    """The file of a variant's ``data``: a name of :func:`preference_data_files`, or
    ``quadruples.<subset>`` (WRPO over a subset of the sources). With ``seed`` (the claims
    run) data of :data:`SAMPLED_DATA` are that seed's; the others are the study's."""
    base, _, subset = data.partition(".")
    if seed is not None and base in SAMPLED_DATA:
        return f"{seeded_dir(config, study, seed)}/data/{data}.parquet"
    if subset:
        return f"{results_root(config)}/{study}/data/{base}.{subset}.parquet"
    return preference_data_files(config, study)[data]


def target_sample_files(config: dict, study: str, seed: int | str | None = None) -> dict[str, str]:
    """The sampling variant's generations on the WRPO prompts, and their scores (with
    ``seed``: the claims run's variant of that seed)."""
    v = config["studies"][study]["target_samples"]["variant"]
    base = f"{results_root(config)}/{study}" if seed is None else seeded_dir(config, study, seed)
    return {
        "generations": f"{base}/target_samples/{v}.parquet",
        "scores": f"{base}/target_samples/{v}.scores.parquet",
    }


def preference_data_inputs(
    config: dict, study: str, sources: list[str] | None = None
) -> dict[str, list[str]]:
    """The prompt set, the generations of every source (or of ``sources``) on it and the
    reward model's scores."""
    spec = config["studies"][study]
    ds, rm = spec["train_dataset"], spec["reward_model"]
    sources = spec["sources"] if sources is None else sources
    return {
        "prompts": [f"{results_root(config)}/data/{ds}.parquet"],
        "generations": [generations_file(config, ds, m) for m in sources],
        "scores": [scores_file(config, ds, rm, m) for m in sources],
    }


def preference_model_dir(config: dict, study: str, name: str) -> str:
    """The model a variant starts from: the study's target, or another variant's output."""
    if name == "target":
        return config["models"][config["studies"][study]["target"]]["path"]
    return f"{results_root(config)}/{study}/models/{name}"


def preference_init_inputs(
    config: dict, study: str, init: str, seed: int | str | None = None
) -> list[str]:
    """The model a variant starts from as a file dependency: the built target (nothing for
    a hub model), or another variant's output folder (with ``seed``: the claims run's
    variant of that seed)."""
    if init == "target":
        return built_model(config, config["studies"][study]["target"])
    if seed is not None:
        return [seeded_model_dir(config, study, init, seed)]
    return [preference_model_dir(config, study, init)]


def reference_logps_file(
    config: dict, study: str, init: str, data: str, seed: int | str | None = None
) -> str:
    """The reference log-probs of ``init`` on ``data`` (with ``seed``: that seed's model)."""
    base = f"{results_root(config)}/{study}" if seed is None else seeded_dir(config, study, seed)
    return f"{base}/ref_logps/{init}/{data}.parquet"


def preference_inputs(
    config: dict, study: str, variant: str, seed: int | str | None = None
) -> dict[str, list[str]]:
    """A preference variant's data, its starting model and, when an objective needs one,
    the reference log-probs of that model on that data. With ``seed`` (the claims run) the
    starting model and its log-probs are that seed's, and so are data sampled from a
    variant (:data:`SAMPLED_DATA`); the other data are the study's, shared."""
    from fusekit.train.preference import needs_reference

    spec = config["studies"][study]
    v = spec["variants"][variant]
    init = v["init"]
    out = {
        "data": [preference_data_file(config, study, v["data"], seed)],
        "init": preference_init_inputs(config, study, init, seed),
    }
    if needs_reference(v["stages"]):
        out["reference"] = [reference_logps_file(config, study, init, v["data"], seed)]
    return out


def alpha_sweep(config: dict, study: str) -> dict[str, float]:
    """The WRPO variants that differ only in alpha: one ``wrpo`` stage on the full
    quadruples, from the same model -> their alpha_max (alpha 0 is Target-SFT-DPO). Empty
    when fewer than two alphas are configured."""
    spec = config["studies"][study]
    out = {}
    for name, v in spec.get("variants", {}).items():
        stages = v.get("stages", [])
        if v.get("data") == "quadruples" and len(stages) == 1:
            if stages[0]["objective"] == "wrpo":
                out[name] = float(stages[0].get("alpha_max", 0.0))
    return out if len(set(out.values())) >= 2 else {}


def wrpo_figure_files(config: dict, study: str) -> dict[str, str]:
    return {
        "dynamics": f"{results_root(config)}/{study}/figures/reward_dynamics.png",
        "sweep": f"{results_root(config)}/{study}/figures/alpha_sweep.png",
        "sweep_csv": f"{results_root(config)}/{study}/alpha_sweep.csv",
    }


def preference_targets(config: dict) -> list[str]:
    out = []
    for study in preference_studies(config):
        files = preference_data_files(config, study)
        if study in wrpo_studies(config):
            out.append(files["best_source_share"])
        elif study in fuserl_studies(config):
            out.append(files["fuserl_counts"])
        else:
            out.append(files["composition"])
        if study in wrpo_studies(config) and alpha_sweep(config, study):
            out += list(wrpo_figure_files(config, study).values())
        out += [
            f"{results_root(config)}/{study}/models/{v}"
            for v in sorted(config["studies"][study]["variants"])
        ]
    return out


# --- FuseRL's analyses (rules/fuserl.smk) ------------------------------------------


def fuserl_analysis_studies(config: dict) -> list[str]:
    """FuseRL studies whose split holds prompts out (``studies.<study>.fuserl.split``
    has a ``heldout`` part above 0): their trained models are analysed on them."""
    return [
        s
        for s in fuserl_studies(config)
        if config["studies"][s]["fuserl"]["split"].get("heldout", 0) > 0
    ]


def fuserl_analysis_files(config: dict, study: str) -> dict[str, str]:
    """The analyses' tables (``<results root>/<study>/analysis/``) and figures."""
    a, f = f"{results_root(config)}/{study}/analysis", f"{results_root(config)}/{study}/figures"
    return {
        "accuracy": f"{a}/preference_accuracy.csv",
        "accuracy_figure": f"{f}/preference_accuracy.png",
        "bias_variance": f"{a}/bias_variance.csv",
        "bias_variance_figure": f"{f}/bias_variance.png",
        "ablation": f"{a}/ablation.csv",
        "ablation_figure": f"{f}/ablation.png",
    }


def fuserl_analysis_models(config: dict, study: str) -> list[str]:
    """The models analysed on the held-out prompts: ``studies.<study>.analysis.models``,
    else the target (``target``) and every variant in config order."""
    spec = config["studies"][study]
    models = (spec.get("analysis") or {}).get("models")
    return list(models) if models else ["target", *spec["variants"]]


def fuserl_heldout_logps(config: dict, study: str) -> dict[str, str]:
    """Model -> its per-row log-probs on the held-out groups (score_reference_logps)."""
    return {
        m: reference_logps_file(config, study, m, "heldout")
        for m in fuserl_analysis_models(config, study)
    }


def fuserl_judge(config: dict, study: str) -> str:
    """The reference judge of Figure 5: ``studies.<study>.analysis.judge``, else the
    study's reward model."""
    spec = config["studies"][study]
    return (spec.get("analysis") or {}).get("judge") or spec["reward_model"]


def fuserl_judge_scores(config: dict, study: str) -> list[str]:
    """The judge's score files of every source on the study's prompt set, when the judge
    is not the study's reward model (whose scores the held-out groups carry); else none."""
    spec = config["studies"][study]
    judge = fuserl_judge(config, study)
    if judge == spec["reward_model"]:
        return []
    return [scores_file(config, spec["train_dataset"], judge, m) for m in spec["sources"]]


def fuserl_bias_settings(config: dict, study: str) -> dict[str, float]:
    """Figure 5's Bradley-Terry scales [A]: ``beta`` (the model's, on average log-probs;
    default 1.0) and ``judge_temperature`` (score units; default the FuseSFT temperature
    ``studies.<study>.fuserl.temperature``), from ``studies.<study>.analysis``."""
    spec = config["studies"][study]
    a = spec.get("analysis") or {}
    return {
        "beta": float(a.get("beta", 1.0)),
        "judge_temperature": float(a.get("judge_temperature", spec["fuserl"]["temperature"])),
    }


def fuserl_analysis_targets(config: dict) -> list[str]:
    """The analyses of every FuseRL study with held-out prompts; the ablation (from
    chat_eval.csv) only where the chat evaluation runs."""
    out = []
    for study in fuserl_analysis_studies(config):
        files = fuserl_analysis_files(config, study)
        keep = ["accuracy", "accuracy_figure", "bias_variance", "bias_variance_figure"]
        if chat_eval_enabled(config):
            keep += ["ablation", "ablation_figure"]
        out += [files[k] for k in keep]
    return out


def verification_spec(config: dict, study: str) -> dict:
    """What verification.md adds for a study (``studies.<study>.verification``):
    ``unreported`` (the verdict of a cell without a reported number; default
    :data:`fusekit.report.verify.NO_REPORTED`) and ``assumptions`` (list of ``{item,
    default, source}``; an item with ``key`` (a dotted path under the study) gets its
    default from the config)."""
    spec = config["studies"][study].get("verification") or {}
    items = []
    for a in spec.get("assumptions", []):
        item = dict(a)
        if "key" in item:
            value = config["studies"][study]
            for part in str(item["key"]).split("."):
                value = value[int(part)] if isinstance(value, list) else value[part]
            item["default"] = value
        items.append(item)
    out = {"assumptions": items}
    if spec.get("unreported"):
        out["unreported"] = spec["unreported"]
    return out


# --- the claims run (issue 17) -----------------------------------------------
#
# A study's ``claims`` compare variants and models on a metric over the training seeds
# ``claims_seeds``: every variant a claim names is trained and evaluated once per seed
# under <root>/<study>/seeds/<seed>/ (in a preference study also the variants it starts
# from, so that a seed reaches the whole chain); a model (source, base target) is
# evaluated once, as for the tables. Metrics: OpenLLM (a benchmark key or ``average``)
# or the chat evaluation (:data:`CLAIM_CHAT_METRICS`). Not part of the default target.

#: chat-evaluation metrics a claim can name -> the evaluation that measures them
#: (fusekit.chat_eval.TABLE_COLUMNS' names: AlpacaEval-2 LC and raw win rate, Arena-Hard)
CLAIM_CHAT_METRICS = {
    "lc_win_rate": "alpaca_eval",
    "win_rate": "alpaca_eval",
    "arena_hard": "arena_hard",
}


def claims_studies(config: dict) -> list[str]:
    """Studies with claims and seeds whose variants train in the DAG: fusion studies
    (ProFuser) and preference studies (FuseChat-3.0, WRPO, FuseRL)."""
    trainable = {*inference_mode_studies(config), *preference_studies(config)}
    return sorted(
        s
        for s in trainable
        if config["studies"][s].get("claims") and config["studies"][s].get("claims_seeds")
    )


def claims_targets(config: dict) -> list[str]:
    """Every claims study's Markdown page and, where a study has one, its budget check's
    (``snakemake claims`` builds them all)."""
    pages = [claims_files(config, s)["markdown"] for s in claims_studies(config)]
    return pages + [budget_check_files(config, s)["markdown"] for s in budget_check_studies(config)]


def budget_check_spec(config: dict, study: str) -> dict | None:
    """The claims run's budget check of a fusion study (``studies.<study>.budget_check``;
    :mod:`fusekit.report.budget_check`): ``{factor, seed, seeds, variants, seeded,
    single}``. ``seeds`` are the claims seeds, ``seed`` the first of them; ``seeded``
    the variants the study's claims compare on an OpenLLM metric (their longer run
    repeats claims seed ``seed``); ``single`` the other variants of
    ``budget_check.variants`` (their longer run repeats the default DAG's run);
    ``variants`` both, sorted. None where the study has no check, no claims or
    no seeded variant."""
    spec = config["studies"][study]
    check = spec.get("budget_check")
    if not check or study not in claims_studies(config):
        return None
    if study not in inference_mode_studies(config):
        return None
    seeded = sorted(claim_sides(spec, "openllm") & set(spec.get("variants", {})))
    if not seeded:
        return None
    single = sorted(set(check.get("variants", [])) - set(seeded))
    return {
        "factor": int(check["factor"]),
        "seed": int(spec["claims_seeds"][0]),
        "seeds": [int(x) for x in spec["claims_seeds"]],
        "variants": sorted([*seeded, *single]),
        "seeded": seeded,
        "single": single,
    }


def budget_check_base(config: dict, study: str, variant: str) -> dict[str, str]:
    """The normal-budget run a budget check's longer run repeats: ``{model, evaluation}``
    (a claims seed's for a seeded variant, the default DAG's for a single-run one)."""
    spec = budget_check_spec(config, study)
    if variant in spec["seeded"]:
        base = f"{seeded_dir(config, study, spec['seed'])}"
        return {
            "model": f"{base}/models/{variant}",
            "evaluation": f"{base}/evaluation/openllm/{variant}.json",
        }
    return {
        "model": f"{results_root(config)}/{study}/models/{variant}",
        "evaluation": openllm_file(config, study, {"variant": variant}),
    }


def budget_check_studies(config: dict) -> list[str]:
    """Claims studies with a budget check (:func:`budget_check_spec`)."""
    return [s for s in claims_studies(config) if budget_check_spec(config, s)]


def budget_check_dir(config: dict, study: str) -> str:
    """Where the budget check keeps its longer runs and their evaluations."""
    return f"{results_root(config)}/{study}/budget_check"


def budget_check_files(config: dict, study: str) -> dict[str, str]:
    """The budget check's outputs: its table, Markdown page and figure."""
    base = f"{results_root(config)}/{study}"
    return {
        "table": f"{base}/budget_check.csv",
        "markdown": f"{base}/budget_check.md",
        "figure": f"{base}/figures/budget_check.png",
    }


def claim_sides(spec: dict, kind: str | None = None) -> set[str]:
    """The models and variants on either side of a study's claims (``spec`` is
    ``studies.<study>``); with ``kind``, only the claims whose metric that evaluation
    measures (:func:`claim_evaluation_kind`)."""
    return {
        c[side]
        for c in spec.get("claims", [])
        for side in ("better", "worse")
        if kind is None or claim_evaluation_kind(c["metric"]) == kind
    }


def claims_names(config: dict, study: str) -> tuple[list[str], list[str]]:
    """(variants, models) that the study's claims name, each sorted."""
    spec = config["studies"][study]
    names = claim_sides(spec)
    variants = sorted(names & set(spec.get("variants", {})))
    return variants, sorted(names - set(variants))


def seeded_dir(config: dict, study: str, seed: int | str) -> str:
    """Where the claims run keeps one training seed's models and evaluations."""
    return f"{results_root(config)}/{study}/seeds/{seed}"


def seeded_model_dir(config: dict, study: str, name: str, seed: int | str) -> str:
    """A preference variant's starting model in the claims run: the study's target, or
    another variant trained with the same seed."""
    if name == "target":
        return preference_model_dir(config, study, name)
    return f"{seeded_dir(config, study, seed)}/models/{name}"


def claim_evaluation_kind(metric: str) -> str:
    """The evaluation that measures a claim's ``metric``: ``alpaca_eval`` or
    ``arena_hard`` (:data:`CLAIM_CHAT_METRICS`), else ``openllm``."""
    return CLAIM_CHAT_METRICS.get(metric, "openllm")


def claims_evaluation_file(
    config: dict, study: str, kind: str, model: str, seed: int | str | None
) -> str:
    """One evaluation a claim reads: a seeded variant's (``seed`` set) or a seed-independent
    model's shared one (an OpenLLM JSON, AlpacaEval-2 metrics JSON or Arena-Hard
    judgments)."""
    if kind == "openllm":
        if seed is None:
            return openllm_file(config, study, {"model": model})
        return f"{seeded_dir(config, study, seed)}/evaluation/openllm/{model}.json"
    ext = {"alpaca_eval": "json", "arena_hard": "parquet"}[kind]
    if seed is None:
        return f"{chat_root(config)}/{kind}/judged/{model}.{ext}"
    return f"{seeded_dir(config, study, seed)}/chat_eval/{kind}/{model}.{ext}"


def seeded_chat_generations(
    config: dict, study: str, dataset: str, entry: str, seed: int | str
) -> str:
    """A seeded variant's answers to a chat-evaluation set (:func:`chat_answer_set`)."""
    answers = chat_answer_set(config, dataset)
    return f"{seeded_dir(config, study, seed)}/generations/{answers}/{entry}.parquet"


def claims_evaluations(config: dict, study: str) -> list[dict]:
    """Every evaluation the claims read: ``{model, seed, kind, path}``; ``seed`` is None
    for a seed-independent model (its shared evaluation), ``kind`` the
    :func:`claim_evaluation_kind` of a claim's metric: a model or variant is evaluated by
    the kinds its own claims' metrics need."""
    spec = config["studies"][study]
    seeds, variants = spec["claims_seeds"], set(spec.get("variants", {}))
    out, seen = [], set()
    for claim in spec.get("claims", []):
        kind = claim_evaluation_kind(claim["metric"])
        for name in (claim["better"], claim["worse"]):
            for seed in seeds if name in variants else [None]:
                if (name, seed, kind) not in seen:
                    seen.add((name, seed, kind))
                    path = claims_evaluation_file(config, study, kind, name, seed)
                    out.append({"model": name, "seed": seed, "kind": kind, "path": path})
    return out


def claims_files(config: dict, study: str) -> dict[str, str]:
    """The claims run's outputs: the long results table, the claims table, its Markdown
    page and its forest plot."""
    base = f"{results_root(config)}/{study}"
    return {
        "results": f"{base}/claims_results.csv",
        "table": f"{base}/claims.csv",
        "markdown": f"{base}/claims.md",
        "figure": f"{base}/figures/claims.png",
    }

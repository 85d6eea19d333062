# Config validation and the helpers every stage uses. Input functions are one-liners
# over fusekit.workflow, which holds the file layout as pure, tested functions.
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from fusekit import forkserver
from fusekit import workflow as layout
from fusekit.config import check_references, check_schema
from fusekit.determinism import derive_seed
from fusekit.report.claims import check_all_claims
from fusekit.prerequisites import check_prerequisites, format_missing, judge_key_vars

# plan time: the schema with strict integers and dotted key paths, then its defaults
# (Snakemake's validate), then what JSON Schema cannot say; each error names its key
check_schema(config, os.path.join(workflow.basedir, "config", "schema.yaml"))
validate(config, schema="../config/schema.yaml")
check_references(config)
check_all_claims(config)

SCALE = config["scale"]
# every output of this scale under its own root: results/ (paper) or results/tiny/ (tiny)
# (with a trailing slash: f"{R}data/x" is a relative path to the linter)
R = layout.results_root(config) + "/"
LOGS = layout.logs_root(config) + "/"

# Every script runs as `fusekit-python scripts/x.py`, which is python itself, or, while a
# fork server runs (`forkserver: true` with local execution; onstart below), a fork of
# Python with torch and transformers already imported (fusekit.forkserver).


def one_of(names):
    return "|".join(re.escape(n) for n in sorted(names)) or "NONE"


wildcard_constraints:
    dataset=one_of(
        [
            *config["datasets"],
            *(layout.CHAT_SETS if layout.chat_eval_enabled(config) else []),
        ]
    ),
    model=one_of(config["models"]),
    reward_model=one_of(config["reward_models"]),
    study=one_of(config["studies"]),
    source=one_of(config["models"]),
    target=one_of(config["models"]),
    mode="training_mode|inference_mode",
    entry=one_of(
        {
            *config["models"],
            *(v for s in config["studies"].values() for v in s.get("variants", {})),
        }
    ),
    table=one_of({t for s in config["studies"].values() for t in s.get("tables", {})}),
    variant=one_of(
        {v for s in config["studies"].values() for v in s.get("variants", {})}
    ),


WORLD = layout.WORLD
TINY = config.get("tiny_world", {})


def as_json(obj):
    """A config fragment as one shell-safe argument (quote it with :q)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def job_seed(*names):
    return derive_seed(config["seed"], *names)


def get_final_targets():
    return layout.final_targets(config)


def get_prompts_file(wildcards):
    return layout.prompts_file(config, wildcards.dataset)


def get_dataset_input(wildcards):
    return layout.dataset_inputs(config, wildcards.dataset)


def get_tokenizer_dir(group):
    return lambda wildcards: layout.tokenizer_dir(config, group, wildcards.name)


def get_world_tables(wildcards):
    return layout.world_tables(config)


def get_world_meta(group):
    return lambda wildcards: as_json(layout.world_meta(config, group, wildcards.name))


def get_model_dir(wildcards):
    return layout.built_model(config, wildcards.model)


def get_reward_model_dir(wildcards):
    return layout.built_model(config, wildcards.reward_model, reward=True)


def get_strongest_arg(wildcards):
    name = config["studies"][wildcards.study]["inference_mode"][
        "strongest_reward_model"
    ]
    return f"--strongest {name}" if name else ""


def get_vote_inputs(wildcards):
    return layout.vote_inputs(config, wildcards.study)


def get_method_inputs(wildcards):
    return layout.method_inputs(config, wildcards.study)


def get_align_inputs(wildcards):
    return layout.align_inputs(config, wildcards.study, wildcards.mode, wildcards.model)


def get_mince_inputs(wildcards):
    spec = config["studies"][wildcards.study]
    return [
        layout.reference_dump(config, spec["train_dataset"], m) for m in spec["sources"]
    ]


def get_vocab_map_models(wildcards):
    return layout.built_model(config, wildcards.source) + layout.built_model(
        config, wildcards.target
    )


def get_fusion_inputs(wildcards):
    return layout.fusion_inputs(config, wildcards.study, wildcards.variant)


def get_variant(wildcards):
    from fusekit.train.fusion import resolve_variant

    return resolve_variant(config["studies"][wildcards.study], wildcards.variant)


def get_dump_map(mode):
    def f(wildcards):
        sources = get_variant(wildcards)["sources"]
        return as_json(
            {m: f"{R}{wildcards.study}/{mode}/aligned/{m}.parquet" for m in sources}
        )

    return f


def get_training_launcher(wildcards):
    """fusekit-python on CPU; accelerate launch over the configured GPUs at paper scale."""
    gpus = config["studies"][wildcards.study]["training"]["gpus"]
    if SCALE == "paper" and gpus > 1:
        return f"accelerate launch --num_processes {gpus}"
    return "fusekit-python"


def get_resources(kind, key, field=None):
    """One resource value of a job, from fusekit.resources.job_resources."""
    from fusekit.resources import job_resources

    def f(wildcards):
        if field == "study_target":
            name = config["studies"][wildcards.study]["target"]
        else:
            name = getattr(wildcards, field) if field else None
        # None: no such resource (a GPU model when none is set, cores per GPU of a CPU
        # job), which Snakemake leaves out rather than passing 0
        return job_resources(config, kind, name).get(key)

    return f


OPENLLM = config["evaluation"]["openllm"]
# benchmarks in config order (as_json sorts keys; a list keeps the paper's column order)
BENCHMARK_LIST = json.dumps(
    [{**b, "key": k} for k, b in OPENLLM["benchmarks"].items()], sort_keys=True
)


def get_openllm_tasks(wildcards):
    return layout.openllm_tasks(config)


def get_openllm_settings(wildcards):
    """evaluation.openllm without its benchmarks, plus the seed and the model's
    trust_remote_code (for a variant: its study's target's)."""
    name = getattr(wildcards, "model", None)
    if name is None:
        name = config["studies"][wildcards.study]["target"]
    settings = {k: v for k, v in OPENLLM.items() if k != "benchmarks"}
    settings["seed"] = config["seed"]
    settings["trust_remote_code"] = config["models"][name].get(
        "trust_remote_code", False
    )
    return as_json(settings)


def get_table_evaluations(wildcards):
    return layout.table_evaluations(config, wildcards.study, wildcards.table)


def get_table_spec(wildcards):
    return config["studies"][wildcards.study]["tables"][wildcards.table]


def get_study_tables(wildcards):
    return layout.study_tables(config, wildcards.study)


def get_variant_models(wildcards):
    spec = config["studies"][wildcards.study]
    return [
        f"{R}{wildcards.study}/models/{v}" for v in sorted(spec.get("variants", {}))
    ]


# AlpacaEval-2 and Arena-Hard (rules/chat_evaluation.smk)
CHAT_FILES = layout.chat_set_files(config) if layout.chat_eval_enabled(config) else {}
JUDGE_KEYS = sorted(judge_key_vars(config))
# the API key reaches jobs through the environment only (never params, logs or results),
# declared to Snakemake with envvars:. Snakemake refuses an unset declared variable on
# every command, dry runs included, so only the set ones are declared; an unset one is
# reported with the other prerequisites below.
if [k for k in JUDGE_KEYS if k in os.environ]:

    envvars:
        *[k for k in JUDGE_KEYS if k in os.environ],


# Prerequisites (fusekit.prerequisites): a dry run lists what is missing as a warning
# (planning works without keys or data); a run stops before its first job, listing what
# the rules of its planned jobs miss (onstart runs after the DAG, never on dry runs).
if workflow.output_settings.dryrun:
    _MISSING = check_prerequisites(config)
    if _MISSING:
        print(
            f"WARNING {format_missing(_MISSING)}\n(a dry run; a run stops before its first job if one of its jobs needs these)",
            file=sys.stderr,
        )


# Before the first job: the prerequisites of the jobs to run, then, with `forkserver:
# true` and local execution, the fork server that `fusekit-python` uses (stopped after
# the last job; it also exits when this process does).
FORKSERVER = []


onstart:
    _rules = {job.rule.name for job in workflow.dag.needrun_jobs()}
    _missing = check_prerequisites(config, rules=_rules)
    if _missing:
        raise WorkflowError(format_missing(_missing))
    if config["forkserver"] and workflow.local_exec and not workflow.remote_exec:
        FORKSERVER.extend(
            filter(None, [forkserver.try_start_local(config["threads"])])
        )


onsuccess:
    forkserver.stop_local(FORKSERVER)


onerror:
    forkserver.stop_local(FORKSERVER)


def get_judge(evaluation):
    name = config["evaluation"][evaluation]["judge"]
    return as_json(config["judges"][name])


def get_chat_generations(dataset):
    return lambda w: layout.chat_generations(config, w.study, dataset, w.entry)


def get_chat_entries(study):
    return layout.chat_entries(config, study)


# --- preference studies (FuseChat-3.0) ---------------------------------------------

PREFERENCE_STUDIES = layout.preference_studies(config)


def get_preference_data_inputs(wildcards):
    return layout.preference_data_inputs(config, wildcards.study)


def get_preference_inputs(wildcards):
    return layout.preference_inputs(config, wildcards.study, wildcards.variant)


def get_init_model(wildcards):
    return layout.preference_init_inputs(config, wildcards.study, wildcards.init)


def get_preference_variant(wildcards):
    return config["studies"][wildcards.study]["variants"][wildcards.variant]


def get_preference_optim(wildcards):
    spec = config["studies"][wildcards.study]
    return {
        **spec["optimizer"],
        **get_preference_variant(wildcards).get("optimizer", {}),
    }


def get_target_sample_spec(wildcards):
    return layout.target_sample_spec(config, wildcards.study)


def get_study_reward_model_dir(wildcards):
    rm = config["studies"][wildcards.study]["reward_model"]
    return layout.built_model(config, rm, reward=True)


def get_wrpo_quadruple_inputs(wildcards):
    seed = wildcards.get("seed")  # the claims run's seeded copy of the rule
    samples = layout.target_sample_files(config, wildcards.study, seed)
    sources = layout.source_subset(
        config, wildcards.study, f"quadruples{wildcards.subset}"
    )
    return {
        **layout.preference_data_inputs(config, wildcards.study, sources),
        "target_generations": [samples["generations"]],
        "target_scores": [samples["scores"]],
    }


# the claims run's budget check (rules/claims.smk)
BUDGET_CHECKS = layout.budget_check_studies(config)


def budget_spec(w):
    return layout.budget_check_spec(config, w.study)


def budget_variant(w):
    """The variant as the longer run trains it: every stage's epochs times the factor."""
    from fusekit.train.fusion import scale_epochs

    return scale_epochs(get_variant(w), budget_spec(w)["factor"])


def budget_epochs(w):
    """Each checked variant's passes at the normal budget."""
    from fusekit.train.fusion import resolve_variant, variant_epochs

    study = config["studies"][w.study]
    return {
        v: variant_epochs(resolve_variant(study, v)) for v in budget_spec(w)["variants"]
    }


def budget_seed(w):
    """The longer run's training seed: that of the normal run it repeats."""
    spec = budget_spec(w)
    if w.variant in spec["seeded"]:
        return job_seed("fusion", w.study, w.variant, "claims", str(spec["seed"]))
    return job_seed("fusion", w.study, w.variant)


def budget_check_inputs(w):
    spec, base = budget_spec(w), layout.budget_check_dir(config, w.study)
    normal = {v: layout.budget_check_base(config, w.study, v) for v in spec["variants"]}
    return {
        "results": layout.claims_files(config, w.study)["results"],
        "evaluations": [
            f"{base}/evaluation/openllm/{v}.json" for v in spec["variants"]
        ],
        "base_models": [normal[v]["model"] for v in spec["variants"]],
        "budget_models": [f"{base}/models/{v}" for v in spec["variants"]],
        "single_evaluations": [normal[v]["evaluation"] for v in spec["single"]],
    }

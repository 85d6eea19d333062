"""What a run needs beyond the config: hub access, local files, API keys.

:func:`check_prerequisites` lists, in one go, every prerequisite that is missing for the
jobs about to run, each line naming the config key or environment variable and what to
do. ``rules/common.smk`` calls it twice: on a dry run (``snakemake -n``) it prints the
list as a warning, so that planning works on a machine without keys or data (CI); when
jobs are about to run (Snakemake's ``onstart``, after the DAG is built, never on dry
runs) it stops the run with the list before any job starts, checking only what the
rules of the planned jobs need.

Checked:

- a hub token (``HF_TOKEN``, ``HUGGING_FACE_HUB_TOKEN`` or the token file of
  ``huggingface-cli login``) when the config names a gated hub model or data set (the
  organisations of :data:`GATED_PREFIXES`, a model's or reward model's ``gated: true``,
  an lm-eval task of :data:`GATED_TASK_PREFIXES`); not in offline mode
  (``HF_HUB_OFFLINE``), where nothing is downloaded;
- the Arena-Hard v0.1 question and baseline answer files (paper scale: arena-hard-auto
  is not a package, its files are copied by hand);
- ``df_gamed.csv`` for AlpacaEval-2's length-controlled win rate: the local copy
  ``evaluation.alpaca_eval.lc_reference`` names, or with ``lc_reference: null`` hub
  access (not in offline mode); likewise the AlpacaEval-2 reference outputs;
- the environment variable of every API judge (``judges.<name>.api_key_env``).

fusekit never imports Snakemake: the caller passes the environment and the rules.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

# hub organisations / repositories whose models ask for accepted terms and a token
GATED_PREFIXES = ("meta-llama/", "google/gemma", "mistralai/")
# lm-eval tasks that read a gated hub data set (GPQA)
GATED_TASK_PREFIXES = ("gpqa",)
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")

# the rules that need each prerequisite (rules/*.smk)
MODEL_RULES = frozenset(
    {
        "generate_responses",
        "generate_variant_responses",
        "generate_target_samples",
        "score_responses",
        "score_target_samples",
        "dump_reference_logits",
        "dump_voted_logits",
        "map_vocabulary",
        "align_logits",
        "score_reference_logps",
        "train_fusion",
        "train_preference",
        "evaluate_openllm",
        "evaluate_openllm_variant",
        "evaluate_suite",
        "evaluate_suite_variant",
    }
)
SUITE_RULES = frozenset({"evaluate_suite", "evaluate_suite_variant"})
CHAT_SET_RULES = frozenset({"build_chat_eval_sets"})
ALPACA_RULES = frozenset({"evaluate_alpaca", "evaluate_alpaca_model", "build_lc_reference"})
ARENA_RULES = frozenset({"evaluate_arena", "evaluate_arena_model"})


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_token_available(env: Mapping[str, str]) -> bool:
    """A token in ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN``, or the file that
    ``huggingface-cli login`` writes (``HF_TOKEN_PATH``, else ``$HF_HOME/token``, else
    ``~/.cache/huggingface/token``) with something in it."""
    if any(env.get(v, "").strip() for v in TOKEN_VARS):
        return True
    if env.get("HF_TOKEN_PATH"):
        path = Path(env["HF_TOKEN_PATH"])
    else:
        cache = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")) / ".cache")
        path = Path(env.get("HF_HOME") or cache / "huggingface") / "token"
    path = path.expanduser()
    return path.is_file() and bool(path.read_text(errors="replace").strip())


def offline(env: Mapping[str, str]) -> bool:
    """Whether the hub is switched off (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``)."""
    return _truthy(env.get("HF_HUB_OFFLINE")) or _truthy(env.get("HF_DATASETS_OFFLINE"))


def gated_names(config: dict) -> list[str]:
    """Config keys of gated hub models and tasks: ``models.<name>``,
    ``reward_models.<name>``, ``evaluation.<suite>.benchmarks.<key>``."""
    out = []
    for group in ("models", "reward_models"):
        for name, spec in config.get(group, {}).items():
            gated = spec.get("gated")
            path = str(spec.get("path", ""))
            if gated is None:
                gated = path.startswith(GATED_PREFIXES) and not Path(path).is_dir()
            if gated:
                out.append(f"{group}.{name} ({path})")
    evaluation = config.get("evaluation", {})
    suites = {"openllm": evaluation.get("openllm", {}), **(evaluation.get("suites") or {})}
    for suite, spec in suites.items():
        for key, bench in (spec.get("benchmarks") or {}).items():
            if str(bench.get("task", "")).startswith(GATED_TASK_PREFIXES):
                where = "evaluation.openllm" if suite == "openllm" else f"evaluation.suites.{suite}"
                out.append(f"{where}.benchmarks.{key} (task {bench['task']})")
    return out


def judge_key_vars(config: dict, evaluations: Iterable[str] = ("alpaca_eval", "arena_hard")):
    """The environment variables holding API keys of the judges ``evaluations`` use:
    {variable: [judge names]}."""
    out: dict[str, list[str]] = {}
    judges = config.get("judges", {})
    for evaluation in evaluations:
        spec = config.get("evaluation", {}).get(evaluation)
        judge = judges.get(spec["judge"], {}) if spec else {}
        if judge.get("kind") == "openai" and judge.get("api_key_env"):
            names = out.setdefault(judge["api_key_env"], [])
            if spec["judge"] not in names:
                names.append(spec["judge"])
    return out


def check_prerequisites(
    config: dict, env: Mapping[str, str] | None = None, rules: Iterable[str] | None = None
) -> list[str]:
    """Every missing prerequisite of a run of ``config``, one line each, naming the config
    key or environment variable and what to do; ``[]`` when nothing is missing.

    ``env``: the environment (default ``os.environ``). ``rules``: names of the rules whose
    jobs will run; a prerequisite is needed only when one of its rules runs (``None``:
    every rule, i.e. the whole config). Relative paths are read from the working
    directory. The tiny world needs only the API judges' keys (it builds its models, sets and
    df_gamed.csv).
    """
    env = os.environ if env is None else env
    wanted = None if rules is None else set(rules)

    def runs(names: frozenset) -> bool:
        return wanted is None or bool(wanted & names)

    missing: list[str] = []
    evaluation = config.get("evaluation", {})
    hub_off = offline(env)
    paper = config.get("scale") != "tiny"  # the tiny world builds its models and sets

    # a hub token for gated models and data sets
    gated = gated_names(config)
    needs_token = runs(MODEL_RULES) or (
        runs(SUITE_RULES) and any(g.startswith("evaluation.") for g in gated)
    )
    if paper and gated and needs_token and not hub_off and not hub_token_available(env):
        missing.append(
            "a Hugging Face hub token (HF_TOKEN, or `huggingface-cli login`) for the gated "
            f"{', '.join(gated)}: accept each one's terms on the hub, then set HF_TOKEN"
        )

    arena = evaluation.get("arena_hard")
    if paper and arena and runs(CHAT_SET_RULES):
        for key, what in (
            ("questions", "question.jsonl"),
            ("baseline_answers", f"model_answer/{arena.get('baseline', '<baseline>')}.jsonl"),
        ):
            path = arena.get(key)
            if not path:
                missing.append(
                    f"evaluation.arena_hard.{key}: not set; copy arena-hard-auto's "
                    f"data/arena-hard-v0.1/{what} and name it here"
                )
            elif not Path(path).is_file():
                missing.append(
                    f"evaluation.arena_hard.{key}: no such file {path} (arena-hard-auto's "
                    f"data/arena-hard-v0.1/{what}; it is not a package, copy it by hand)"
                )

    alpaca = evaluation.get("alpaca_eval")
    if paper and alpaca:
        ref = alpaca.get("lc_reference")
        if runs(ALPACA_RULES) and ref not in (None, "build") and not Path(ref).is_file():
            missing.append(
                f"evaluation.alpaca_eval.lc_reference: no such file {ref} (alpaca_eval's "
                "df_gamed.csv: hf_hub_download('tatsu-lab/alpaca_eval', 'df_gamed.csv', "
                "repo_type='dataset') on a machine with hub access)"
            )
        if runs(ALPACA_RULES) and ref is None and hub_off:
            missing.append(
                "evaluation.alpaca_eval.lc_reference: null fetches df_gamed.csv from the hub, "
                "but HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set: download it where the hub "
                "is reachable and name the local copy here"
            )
        reference = alpaca.get("reference", "hub")
        if runs(CHAT_SET_RULES) and reference != "hub" and not Path(reference).is_file():
            missing.append(
                f"evaluation.alpaca_eval.reference: no such file {reference} (AlpacaEval-2 "
                "reference outputs JSON, or 'hub')"
            )
        if runs(CHAT_SET_RULES) and reference == "hub" and hub_off:
            missing.append(
                "evaluation.alpaca_eval.reference: 'hub' downloads the reference outputs, but "
                "HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set: name a local copy here"
            )

    evaluations = [
        e for e, r in (("alpaca_eval", ALPACA_RULES), ("arena_hard", ARENA_RULES)) if runs(r)
    ]
    for var, judges in judge_key_vars(config, evaluations).items():
        if not env.get(var, "").strip():
            missing.append(
                f"environment variable {var} (API key of judges {', '.join(judges)}, "
                f"judges.<name>.api_key_env) is not set: export {var}=... before running"
            )
    return missing


def format_missing(missing: list[str]) -> str:
    """The one message listing what is missing."""
    lines = "\n".join(f"  - {m}" for m in missing)
    return f"missing prerequisites ({len(missing)}):\n{lines}"

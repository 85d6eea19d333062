"""Checks on a workflow config beyond what JSON Schema can say.

The schema (``config/schema.yaml``) checks types, bounds, unknown keys and required
entries and fills in defaults. :func:`check_schema` runs it first with two changes to
plain JSON Schema: an ``integer`` key refuses a float even when its value is whole
(``global_batch_size: 16.0``), and the error names the dotted key path. Then
:func:`check_references` checks that names refer to things that exist and values that
JSON Schema cannot relate (a local judge's thresholds, a tiny model's head count, a
``max_length`` against the prompts). Every error is a :class:`ConfigError` whose
message starts with ``config key <path>:``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

TINY_ROOT = "results/tiny/world"

# defaults the checks below need when a config has not been through the schema's
# default filling (tests/test_config.py checks them against config/schema.yaml and
# fusekit.judges.LocalJudge)
SIZE_DEFAULTS = {"hidden_size": 128, "num_heads": 4, "intermediate_size": 256}
MAX_LENGTH_DEFAULT = 2048
SFT_DPO_SPLIT_DEFAULT = (4, 6)
LOCAL_JUDGE_DEFAULTS = {"tie": 0.5, "strong": 2.0}


class ConfigError(ValueError):
    """A config entry is wrong; the message starts with its key."""


def _need(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"config key {key}: {msg}")


def _names_in(names, pool: dict, key: str, what: str) -> None:
    for i, name in enumerate(names):
        _need(
            name in pool,
            f"{key}[{i}]",
            f"{name!r} is not defined under {what} (known: {sorted(pool)})",
        )


def tiny_model_path(name: str, reward: bool = False) -> str:
    """Where the tiny world writes the model ``name``."""
    return f"{TINY_ROOT}/{'reward_models' if reward else 'models'}/{name}"


def check_references(config: dict) -> None:
    """Raise :class:`ConfigError` when a name in ``config`` points at nothing (a
    ``local_file`` data set's ``path`` too: a missing file is ``config key
    datasets.<name>.path: no such file ...``) or keys do not fit together."""
    models, rms, datasets = (
        config["models"],
        config.get("reward_models", {}),
        config.get("datasets", {}),
    )
    for study, spec in config.get("studies", {}).items():
        key = f"studies.{study}"
        _names_in(spec["sources"], models, f"{key}.sources", "models")
        _need(
            spec["target"] in models,
            f"{key}.target",
            f"{spec['target']!r} is not defined under models",
        )
        if "train_dataset" in spec:
            _need(
                spec["train_dataset"] in datasets,
                f"{key}.train_dataset",
                f"{spec['train_dataset']!r} is not defined under datasets "
                f"(known: {sorted(datasets)})",
            )
        if "reward_model" in spec:
            _need(
                spec["reward_model"] in rms,
                f"{key}.reward_model",
                f"{spec['reward_model']!r} is not defined under reward_models",
            )
        for name, variant in spec.get("variants", {}).items():
            extra = sorted(set(variant.get("sources", [])) - set(spec["sources"]))
            _need(
                not extra,
                f"{key}.variants.{name}.sources",
                f"{extra} are not sources of the study ({spec['sources']})",
            )
        unknown = sorted(set(spec.get("chat_eval_variants") or []) - set(spec.get("variants", {})))
        _need(
            not unknown,
            f"{key}.chat_eval_variants",
            f"{unknown} are not variants of the study ({sorted(spec.get('variants', {}))})",
        )
        _check_preference_variants(config, study)
        for table, tspec in spec.get("tables", {}).items():
            _check_table(config, spec, f"{key}.tables.{table}", tspec)
        if spec.get("chat_table"):
            _check_chat_table(spec, f"{key}.chat_table", spec["chat_table"])
        inf = spec.get("inference_mode")
        if inf:
            _names_in(
                inf["reward_models"], rms, f"{key}.inference_mode.reward_models", "reward_models"
            )
            strongest = inf.get("strongest_reward_model")
            _need(
                strongest is None or strongest in inf["reward_models"],
                f"{key}.inference_mode.strongest_reward_model",
                f"{strongest!r} is not one of the voting reward models {inf['reward_models']}",
            )
            _need(
                strongest is not None or config["scale"] == "tiny",
                f"{key}.inference_mode.strongest_reward_model",
                "must be set at paper scale (only the tiny world measures it)",
            )
    for name, rm in rms.items():
        _need(
            rm.get("loader") != "eurus" or rm.get("trust_remote_code", False),
            f"reward_models.{name}.trust_remote_code",
            "the eurus loader runs the model's own code: set it to true to allow that",
        )
    for name, ds in datasets.items():
        _check_dataset(config, name, ds)
    for evaluation in ("alpaca_eval", "arena_hard"):
        spec = config.get("evaluation", {}).get(evaluation)
        if spec:
            judges = config.get("judges", {})
            _need(
                spec["judge"] in judges,
                f"evaluation.{evaluation}.judge",
                f"{spec['judge']!r} is not defined under judges (known: {sorted(judges)})",
            )
            judge = judges[spec["judge"]]
            needs = ("model", "api_key_env") if judge["kind"] == "openai" else ("path",)
            for key in needs:
                _need(
                    key in judge,
                    f"judges.{spec['judge']}.{key}",
                    f"required for kind {judge['kind']!r}",
                )
    headline = config.get("evaluation", {}).get("headline")
    if headline and config.get("studies"):
        study, table = headline
        _need(
            table in config["studies"].get(study, {}).get("tables", {}),
            "evaluation.headline",
            f"{study}.{table} is not a table under studies.{study}.tables",
        )
    if config["scale"] == "tiny":
        _check_tiny(config)
    _check_values(config)


def _check_dataset(config: dict, name: str, ds: dict) -> None:
    """A data set's keys fit its kind: ``path`` for every kind but tiny_corpus (which
    needs scale tiny), ``skills`` and ``reference_style`` only for tiny_corpus,
    ``columns`` only for local_file;
    a local_file ``path`` has a readable suffix and names an existing file (relative
    paths from the working directory, where Snakemake runs)."""
    from fusekit.data import LOCAL_FILE_SUFFIXES

    key, kind = f"datasets.{name}", ds["kind"]
    if kind != "tiny_corpus":
        _need("path" in ds, f"{key}.path", f"required for kind {kind!r}")
        for only in ("skills", "reference_style"):
            _need(
                ds.get(only) is None,
                f"{key}.{only}",
                f"only a tiny_corpus data set has {only} (this one is {kind!r})",
            )
    else:
        _need(config["scale"] == "tiny", f"{key}.kind", "tiny_corpus needs scale: tiny")
    _need(
        kind == "local_file" or not ds.get("columns"),
        f"{key}.columns",
        f"only a local_file data set maps columns (this one is {kind!r})",
    )
    if kind != "local_file":
        return
    path = Path(ds["path"])
    _need(
        path.suffix.lower() in LOCAL_FILE_SUFFIXES,
        f"{key}.path",
        f"{ds['path']!r}: a local_file data set is a {', '.join(LOCAL_FILE_SUFFIXES)} file "
        f"(by its suffix), not {path.suffix or 'a file without a suffix'!r}",
    )
    where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
    _need(
        path.is_file(),
        f"{key}.path",
        f"{'no such file' if not path.exists() else 'not a file'} {ds['path']!r}{where}",
    )


def _check_preference_variants(config: dict, study: str) -> None:
    """A preference variant starts from the target or another variant (not itself), and
    its data names a known data set and, for ``quadruples.<subset>``, a subset of the
    study's sources under ``source_subsets``."""
    from fusekit.workflow import source_subset

    spec = config["studies"][study]
    key = f"studies.{study}"
    for name, members in spec.get("source_subsets", {}).items():
        extra = sorted(set(members) - set(spec["sources"]))
        _need(
            not extra,
            f"{key}.source_subsets.{name}",
            f"{extra} are not sources of the study ({spec['sources']})",
        )
    variants = spec.get("variants", {})
    for name, variant in variants.items():
        if "init" not in variant:
            continue
        init = variant["init"]
        _need(
            init != name and (init == "target" or init in variants),
            f"{key}.variants.{name}.init",
            f"{init!r} is neither 'target' nor another variant ({sorted(set(variants) - {name})})",
        )
        try:
            source_subset(config, study, variant["data"])
        except ValueError as err:
            raise ConfigError(f"config key {key}.variants.{name}.data: {err}") from None


def _check_table(config: dict, study: dict, key: str, spec: dict) -> None:
    """Rows name models or variants that exist (a table with chat columns: models the
    study evaluates); columns name configured benchmarks, suites and chat columns, once
    each; an average only over run benchmark columns; the reported CSV exists (in its
    layout) and holds every named row and column."""
    from fusekit.report.tables import (
        average_label,
        read_reported_spec,
        table_columns,
    )

    evaluation = config.get("evaluation", {})
    benchmarks = evaluation.get("openllm", {}).get("benchmarks", {})
    suites = evaluation.get("suites") or {}
    used = spec.get("benchmarks", [])
    for cols in spec.get("groups", {}).values():
        used = [*used, *cols]
    _names_in(used, benchmarks, f"{key}.benchmarks", "evaluation.openllm.benchmarks")
    for suite, keys in (spec.get("suites") or {}).items():
        _need(suite in suites, f"{key}.suites.{suite}", "is not defined under evaluation.suites")
        _names_in(
            keys,
            suites[suite].get("benchmarks", {}),
            f"{key}.suites.{suite}",
            f"evaluation.suites.{suite}.benchmarks",
        )
    try:
        columns = table_columns(spec, benchmarks, suites)
    except ValueError as err:
        raise ConfigError(f"config key {key}: {err}") from err
    chat = any(c["source"] == "chat" for c in columns)
    if chat:
        ev = evaluation
        _need(
            bool(ev.get("alpaca_eval") and ev.get("arena_hard")),
            f"{key}.chat",
            "chat columns need evaluation.alpaca_eval and evaluation.arena_hard",
        )
    _need(
        not average_label(spec) or all(c["source"] == "benchmark" for c in columns),
        f"{key}.average",
        "the average is recomputed from run benchmark columns only; this table has "
        f"{sorted(c['label'] for c in columns if c['source'] != 'benchmark')}: set "
        "average: false (and list the paper's average under not_run)",
    )
    named = {*study.get("sources", []), study.get("target")}
    for i, row in enumerate(spec["rows"]):
        if "model" in row:
            _need(
                row["model"] in config["models"],
                f"{key}.rows[{i}].model",
                f"{row['model']!r} is not defined under models",
            )
            _need(
                not chat or row["model"] in named,
                f"{key}.rows[{i}].model",
                f"{row['model']!r} is not a source or the target of the study "
                "(chat columns read the study's chat_eval.csv)",
            )
        else:
            _need(
                row["variant"] in study.get("variants", {}),
                f"{key}.rows[{i}].variant",
                f"{row['variant']!r} is not a variant of the study",
            )
    path = Path(spec["reported"])
    _need(path.is_file(), f"{key}.reported", f"no such file {path}")
    try:  # the same reader and column layout the tables are built with
        reported = read_reported_spec(spec)
    except ValueError as err:
        raise ConfigError(f"config key {key}.reported: {err}") from err
    for i, row in enumerate(spec["rows"]):
        name = row.get("reported")
        _need(
            name is None or str(name) in reported.index,
            f"{key}.rows[{i}].reported",
            f"{name!r} is not a model row of {path}",
        )
    header = list(reported.columns)
    missing = [c["label"] for c in columns if c["label"] not in header]
    _need(not missing, f"{key}.reported", f"{path} has no column {missing} (has {header})")


def _check_chat_table(study: dict, key: str, spec: dict) -> None:
    """Rows name models or variants the study evaluates; the reported CSV exists, has the
    chat columns and every named row."""
    from fusekit.report.tables import CHAT_COLUMNS, read_reported

    named = {*study.get("sources", []), study.get("target"), *study.get("variants", {})}
    for i, row in enumerate(spec.get("rows", [])):
        name = row.get("model") or row.get("variant")
        _need(name in named, f"{key}.rows[{i}]", f"{name!r} is not a model the study evaluates")
    path = Path(spec["reported"])
    _need(path.is_file(), f"{key}.reported", f"no such file {path}")
    try:
        reported = read_reported(path)
    except ValueError as err:
        raise ConfigError(f"config key {key}.reported: {err}") from err
    missing = [c for c in CHAT_COLUMNS if c not in reported.columns]
    _need(not missing, f"{key}.reported", f"{path} has no column {missing}")
    for i, row in enumerate(spec.get("rows", [])):
        _need(
            row["reported"] in reported.index,
            f"{key}.rows[{i}].reported",
            f"{row['reported']!r} is not a model row of {path}",
        )


def _check_tiny_eval_sizes(corpus: dict) -> None:
    """tiny_world.corpus.sizes.eval, at plan time: what
    :func:`fusekit.tiny.corpus.eval_sizes` (and so ``build_corpus``) would raise."""
    from fusekit.tiny.corpus import eval_sizes

    try:
        eval_sizes(corpus.get("sizes") or {}, corpus["skills"], corpus["n_entities"])
    except ValueError as err:
        msg = str(err).removeprefix("sizes.eval: ")
        raise ConfigError(f"config key tiny_world.corpus.sizes.eval: {msg}") from None


def _check_tiny(config: dict) -> None:
    world = config["tiny_world"]
    toks, skills = world["tokenizers"], set(world["corpus"]["skills"])
    _check_tiny_eval_sizes(world["corpus"])
    for i, name in enumerate(world.get("reward_pairs", {}).get("models") or []):
        _need(
            name in world.get("models", {}),
            f"tiny_world.reward_pairs.models.{i}",
            f"{name!r} is not a tiny-world model (tiny_world.models has "
            f"{sorted(world.get('models', {}))})",
        )
    for group, reward in (("models", False), ("reward_models", True)):
        declared = config.get(group, {})
        for name, spec in world.get(group, {}).items():
            key = f"tiny_world.{group}.{name}"
            _need(
                spec["tokenizer"] in toks,
                f"{key}.tokenizer",
                f"{spec['tokenizer']!r} is not defined under tiny_world.tokenizers "
                f"(known: {sorted(toks)})",
            )
            _need(name in declared, key, f"{name!r} must also be declared under {group}")
            want = tiny_model_path(name, reward)
            _need(
                Path(declared[name]["path"]).as_posix() == want,
                f"{group}.{name}.path",
                f"a tiny-world model must live at {want!r}",
            )
            if "skill_mix" in spec:
                mix = spec["skill_mix"]
                _need(
                    set(mix) == skills,
                    f"{key}.skill_mix",
                    f"needs a weight for exactly the corpus skills {sorted(skills)}, "
                    f"has {sorted(mix)}",
                )
                _need(sum(mix.values()) > 0, f"{key}.skill_mix", "weights sum to zero")
            _check_size(spec, key)
        for name, spec in declared.items():
            if name in world.get(group, {}):
                continue
            path = Path(spec["path"])
            _need(
                not path.as_posix().startswith(f"{TINY_ROOT}/") and path.is_dir(),
                f"{group}.{name}.path",
                f"scale tiny: the tiny world builds no {group[:-1].replace('_', ' ')} "
                f"{name!r} (tiny_world.{group} has {sorted(world.get(group, {}))}) and "
                f"{path} is no saved model directory: add tiny_world.{group}.{name} or "
                "point path at a model saved with save_pretrained",
            )
    built = world.get("reward_models", {})
    for name, judge in config.get("judges", {}).items():
        path = judge.get("path", "")
        if judge.get("kind") == "local" and path.startswith(f"{TINY_ROOT}/"):
            rm = path.rstrip("/").rsplit("/", 1)[-1]
            _need(
                rm in built and path.rstrip("/") == tiny_model_path(rm, reward=True),
                f"judges.{name}.path",
                f"the tiny world builds no reward model at {path} "
                f"(tiny_world.reward_models has {sorted(built)})",
            )


def _check_size(spec: dict, key: str) -> None:
    """The attention of a tiny model can be built: heads divide the hidden width, rotary
    heads have an even width, Qwen2's key/value heads divide its heads, MPT's MLP is at
    least as wide as the model."""
    size = {**SIZE_DEFAULTS, **spec.get("size", {})}
    hidden, heads = size["hidden_size"], size["num_heads"]
    arch = spec["architecture"]
    _need(
        hidden % heads == 0,
        f"{key}.size.num_heads",
        f"{heads} heads do not divide hidden_size {hidden} (each head takes an equal "
        "share of the hidden width)",
    )
    head_dim = hidden // heads
    if arch.startswith(("Llama", "Qwen2")):
        _need(
            head_dim % 2 == 0,
            f"{key}.size.num_heads",
            f"head width hidden_size / num_heads = {head_dim} is odd; {arch}'s rotary "
            "position embedding needs an even head width",
        )
    if arch.startswith("Qwen2"):
        kv = max(1, heads // 2)
        _need(
            heads % kv == 0,
            f"{key}.size.num_heads",
            f"{heads} heads are not a multiple of Qwen2's {kv} key/value heads (num_heads // 2)",
        )
    if arch.startswith("Mpt"):
        _need(
            size["intermediate_size"] >= hidden,
            f"{key}.size.intermediate_size",
            f"{size['intermediate_size']} is below hidden_size {hidden}: MPT's MLP width is "
            "a whole multiple of it (expansion_ratio = intermediate_size // hidden_size >= 1)",
        )


# --- the schema, with strict integers and dotted key paths ---------------------------


def key_path(parts) -> str:
    """``('studies', 'profuser', 'sources', 1)`` -> ``'studies.profuser.sources[1]'``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@functools.lru_cache(maxsize=4)
def _validator(schema_path: str):
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    base = jsonschema.validators.validator_for(schema)
    strict = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return jsonschema.validators.extend(base, type_checker=strict)(schema)


def _error_key(error) -> list:
    """The path of the offending key: for a missing or unexpected property, that
    property's own path rather than its parent's."""
    parts = list(error.absolute_path)
    inst = error.instance
    if error.validator == "required" and isinstance(inst, dict):
        missing = [k for k in error.validator_value if k not in inst]
        parts += missing[:1]
    elif error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(
        inst, dict
    ):
        known = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        extra = [k for k in inst if k not in known and not any(re.search(p, k) for p in patterns)]
        parts += sorted(extra)[:1]
    return parts


def check_schema(config: dict, schema_path: str | Path) -> None:
    """Validate ``config`` against the JSON Schema at ``schema_path`` (no default filling:
    Snakemake's ``validate`` does that afterwards). An ``integer`` key refuses floats such
    as ``16.0``, which plain JSON Schema accepts. Raises :class:`ConfigError` for the most
    relevant error, its message ``config key <dotted path>: <what is wrong>``."""
    import jsonschema

    validator = _validator(str(Path(schema_path).resolve()))
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    msg = error.message
    if (
        error.validator == "type"
        and isinstance(error.instance, float)
        and error.instance.is_integer()
        and "integer" in error.validator_value
    ):
        msg += f" (write {int(error.instance)}: a float is refused even when it is whole)"
    raise ConfigError(f"config key {key_path(_error_key(error))}: {msg}")


# --- values JSON Schema cannot relate -----------------------------------------------

_SPECIAL = re.compile(r"<s>|</s>|<\|im_start\|>|<\|im_end\|>")


def min_prompt_tokens(template: str | None, system: str | None, prompt: str) -> int:
    """A lower bound on the tokens of ``prompt`` rendered by the fusekit chat template
    ``template`` (``None``: the tokenizer's own, unknown here: the prompt alone) with
    ``system``: one token per special token and per whitespace-separated piece. Byte-level,
    Metaspace and SentencePiece tokenizers never merge across whitespace, so no tokenizer
    of the workflow gives fewer."""
    text = prompt
    if template is not None:
        import jinja2

        from fusekit.chat import CHAT_TEMPLATES

        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        text = (
            jinja2.Environment()
            .from_string(CHAT_TEMPLATES[template])
            .render(
                messages=messages, add_generation_prompt=True, bos_token="<s>", eos_token="</s>"
            )
        )
    n = 0
    for piece in text.split():
        n += len(_SPECIAL.findall(piece)) + (1 if _SPECIAL.sub("", piece) else 0)
    return n


@functools.lru_cache(maxsize=16)
def _shortest_tiny_prompt(skills: tuple[str, ...]) -> str:
    """The prompt with the fewest whitespace-separated pieces the tiny corpus writes for
    ``skills`` (every template of each skill is drawn many times)."""
    import random

    from fusekit.tiny.corpus import GENERATORS, fact_table

    facts = fact_table(0, 132)
    best = None
    for skill in skills:
        rng = random.Random(f"shortest-{skill}")
        for _ in range(256):
            prompt = GENERATORS[skill](rng, facts).prompt
            if best is None or len(prompt.split()) < len(best.split()):
                best = prompt
    return best or "x"


def _shortest_prompt(config: dict, dataset: str | None) -> tuple[str, str]:
    """(the shortest prompt a data set can hold, where that bound comes from)."""
    spec = config.get("datasets", {}).get(dataset or "", {})
    if config["scale"] == "tiny" and spec.get("kind") == "tiny_corpus":
        from fusekit.tiny.corpus import SKILLS

        corpus = config["tiny_world"]["corpus"].get("skills") or SKILLS
        skills = tuple(sorted(spec.get("skills") or corpus))
        where = f"the shortest prompt of data set {dataset} (skills {list(skills)})"
        return _shortest_tiny_prompt(skills), where
    return "x", "a one-word prompt"


def _template_of(config: dict, model: str) -> str | None:
    spec = config["models"][model]
    if spec.get("chat_template"):
        return spec["chat_template"]
    world = config.get("tiny_world", {}) if config["scale"] == "tiny" else {}
    tiny = world.get("models", {}).get(model)
    if tiny:
        return world["tokenizers"].get(tiny["tokenizer"], {}).get("chat_template")
    return None


def _check_holds_prompt(config: dict, key: str, max_length: int, model: str, dataset) -> None:
    if model not in config["models"]:
        return
    template = _template_of(config, model)
    prompt, where = _shortest_prompt(config, dataset)
    system = config["models"][model].get("system_prompt")
    need = min_prompt_tokens(template, system, prompt) + 2
    shown = template or "(the tokenizer's own)"
    _need(
        max_length >= need,
        key,
        f"{max_length} tokens cannot hold a prompt and a response of {model}: {where} "
        f"({prompt!r}) rendered with its chat template "
        f"{shown}{' and system prompt' if system else ''} "
        f"takes at least {need - 2} tokens (one per special token and whitespace-separated "
        f"piece), plus at least one response token and EOS: at least {need}",
    )


def _check_values(config: dict) -> None:
    """Bounds that relate two keys, or a key and the code."""
    for name, judge in config.get("judges", {}).items():
        if judge.get("kind") != "local":
            continue
        tie = judge.get("tie", LOCAL_JUDGE_DEFAULTS["tie"])
        strong = judge.get("strong", LOCAL_JUDGE_DEFAULTS["strong"])
        _need(
            tie <= strong,
            f"judges.{name}.tie",
            f"{tie} is above strong ({strong}): a score difference below tie is a tie and "
            "one above strong a strong verdict, so tie must be <= strong",
        )
    weights = config.get("reference_score", {}).get("weights")
    if weights:
        _need(
            sum(weights.values()) > 0,
            "reference_score.weights",
            "all weights are 0: the reference score would be 0 for every response",
        )
    logits_max = config.get("logits", {}).get("max_length", MAX_LENGTH_DEFAULT)
    for study, spec in config.get("studies", {}).items():
        key = f"studies.{study}"
        dataset = spec.get("train_dataset")
        optim = spec.get("optimizer", {})
        _check_holds_prompt(
            config,
            f"{key}.optimizer.max_length",
            optim.get("max_length", MAX_LENGTH_DEFAULT),
            spec["target"],
            dataset,
        )
        for name, variant in spec.get("variants", {}).items():
            length = (variant.get("optimizer") or {}).get("max_length")
            if length is not None:
                _check_holds_prompt(
                    config,
                    f"{key}.variants.{name}.optimizer.max_length",
                    length,
                    spec["target"],
                    dataset,
                )
        if "inference_mode" in spec:  # ProFuser dumps every source and the target
            for model in [*spec["sources"], spec["target"]]:
                _check_holds_prompt(config, "logits.max_length", logits_max, model, dataset)
        if "sft_dpo_split" in spec or study == "fusechat3":
            split = spec.get("sft_dpo_split", list(SFT_DPO_SPLIT_DEFAULT))
            for i, part in enumerate(("sft", "dpo")):
                users = sorted(
                    v for v, vs in spec.get("variants", {}).items() if vs.get("data") == part
                )
                _need(
                    split[i] > 0 or not users,
                    f"{key}.sft_dpo_split[{i}]",
                    f"the {part} part has no prompts, but variants {users} train on it",
                )
        gap = spec.get("dpo", {}).get("rm_gap")
        if gap:
            _need(
                gap[0] <= gap[1],
                f"{key}.dpo.rm_gap",
                f"the low bound {gap[0]} is above the high bound {gap[1]}: no pair passes",
            )

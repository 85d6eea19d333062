"""Checks on a workflow config beyond what JSON Schema can say.

The schema (``config/schema.yaml``) checks types, unknown keys and required
entries and fills in defaults; :func:`check_references` then checks that names
refer to things that exist. Errors name the config key.
"""

from __future__ import annotations

from pathlib import Path

TINY_ROOT = "results/tiny/world"


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
    """Raise :class:`ConfigError` when a name in ``config`` points at nothing."""
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
        if ds["kind"] != "tiny_corpus":
            _need("path" in ds, f"datasets.{name}.path", f"required for kind {ds['kind']!r}")
        else:
            _need(
                config["scale"] == "tiny", f"datasets.{name}.kind", "tiny_corpus needs scale: tiny"
            )
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


def _check_tiny(config: dict) -> None:
    world = config["tiny_world"]
    toks, skills = world["tokenizers"], set(world["corpus"]["skills"])
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

"""The workflow's file layout as pure functions of the config.

Rules call these through small input functions in ``rules/common.smk``, so
the DAG's wiring is testable without Snakemake (fusekit never imports it).
"""

from __future__ import annotations

WORLD = "results/tiny/world"


def final_targets(config: dict) -> list[str]:
    """What ``snakemake`` with no target builds: the outputs of the finished stages."""
    targets = [f"results/data/{name}.parquet" for name in sorted(config.get("datasets", {}))]
    if config["scale"] == "tiny":
        targets.append(f"{WORLD}/skill_accuracy.csv")
    return targets


def dataset_inputs(config: dict, dataset: str) -> list[str]:
    """Files a prompt set is made from (the tiny corpus; nothing for hub sets)."""
    return (
        [f"{WORLD}/corpus.parquet"] if config["datasets"][dataset]["kind"] == "tiny_corpus" else []
    )


def tokenizer_dir(config: dict, group: str, name: str) -> str:
    """The tokenizer directory that tiny-world model ``name`` (in ``group``) is trained with."""
    return f"{WORLD}/tokenizers/{config['tiny_world'][group][name]['tokenizer']}"


def world_tables(config: dict) -> list[str]:
    """Per-model evaluation tables that make up the world's accuracy table."""
    world = config["tiny_world"]
    return [f"{WORLD}/eval/models/{n}.csv" for n in sorted(world["models"])] + [
        f"{WORLD}/eval/reward_models/{n}.csv" for n in sorted(world.get("reward_models", {}))
    ]


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

"""Cluster resources of each job, from the config (model size, tensor parallelism,
GPUs per training job), never numbers written into rules.

Keys are the ones snakemake-executor-plugin-slurm reads: ``gpu`` (0: no GPU
request), ``gpu_model``, ``cpus_per_gpu``, ``mem_mb``, ``runtime`` (minutes),
``slurm_partition``. Local runs ignore them.
"""

from __future__ import annotations

import math

KINDS = ("cpu", "generate", "score", "dump", "train", "evaluate")


def _gpus(config: dict, kind: str, name: str | None) -> int:
    if kind == "cpu":
        return 0
    if config["scale"] == "tiny":  # CPU models; one GPU each only to test dispatch
        return 1 if config["cluster"].get("tiny_gpu_jobs") else 0
    if kind == "train":
        return config["studies"][name]["training"]["gpus"]
    if kind == "score":
        return 1
    if kind == "evaluate":  # lm-eval's transformers backend: one GPU per model
        return 1
    return config["models"][name].get("tensor_parallel_size", 1)


def job_resources(config: dict, kind: str, name: str | None = None) -> dict:
    """Resources of a job of ``kind`` about model (or, for ``train``, study) ``name``."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {list(KINDS)}")
    cluster = config["cluster"]
    gpus = _gpus(config, kind, name)
    if gpus == 0:
        return {
            "gpu": 0,
            "mem_mb": cluster["cpu_mem_mb"],
            "runtime": cluster["runtime"]["cpu"],
            "slurm_partition": cluster["cpu_partition"],
        }
    if config["scale"] == "tiny":
        params_b = 0
    elif kind == "score":
        params_b = config["reward_models"][name].get("params_b", 7)
    elif kind == "train":
        params_b = config["models"][config["studies"][name]["target"]].get("params_b", 7)
    else:
        params_b = config["models"][name].get("params_b", 7)
    # host memory: the bf16 weights once per GPU job plus headroom for data and workers
    mem_mb = max(cluster["cpu_mem_mb"], int(math.ceil(params_b * 2 * 1024 * 1.5)) + 8192 * gpus)
    res = {
        "gpu": gpus,
        "cpus_per_gpu": cluster["cpus_per_gpu"],
        "mem_mb": mem_mb,
        "runtime": cluster["runtime"][kind],
        "slurm_partition": cluster["gpu_partition"],
    }
    if cluster.get("gpu_model"):
        res["gpu_model"] = cluster["gpu_model"]
    return res

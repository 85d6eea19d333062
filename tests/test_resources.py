"""Cluster resources come from the config: model size, tensor parallelism, GPUs per job."""

import copy

import pytest
import yaml
from conftest import ROOT

from fusekit.resources import job_resources


@pytest.fixture(scope="module")
def paper():
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["cluster"] = {
        "cpu_partition": "cpu",
        "gpu_partition": "gpu",
        "gpu_model": None,
        "cpus_per_gpu": 8,
        "cpu_mem_mb": 8000,
        "runtime": {
            "cpu": 60,
            "generate": 720,
            "score": 240,
            "dump": 480,
            "train": 2880,
            "evaluate": 360,
        },
    }
    cfg["studies"]["profuser"]["training"] = {"gpus": 8}
    return cfg


def test_gpu_jobs_follow_the_config(paper):
    big = job_resources(paper, "generate", "Mistral-Large-Instruct-2407")
    assert big["gpu"] == 8 and big["slurm_partition"] == "gpu"  # tensor_parallel_size 8
    small = job_resources(paper, "generate", "vicuna-7b-v1.5")
    assert small["gpu"] == 1 and small["mem_mb"] < big["mem_mb"]
    assert job_resources(paper, "train", "profuser")["gpu"] == 8
    assert job_resources(paper, "score", "Eurus-RM-7b")["gpu"] == 1
    assert job_resources(paper, "dump", "mpt-7b-8k-chat")["runtime"] == 480
    assert job_resources(paper, "evaluate", "vicuna-7b-v1.5")["gpu"] == 1
    cfg = copy.deepcopy(paper)
    cfg["models"]["vicuna-7b-v1.5"]["tensor_parallel_size"] = 2
    cfg["cluster"]["gpu_model"] = "a100"
    res = job_resources(cfg, "generate", "vicuna-7b-v1.5")
    assert res["gpu"] == 2 and res["gpu_model"] == "a100"


def test_cpu_jobs_and_the_tiny_world_request_no_gpu(paper):
    assert job_resources(paper, "cpu") == {
        "gpu": 0,
        "mem_mb": 8000,
        "runtime": 60,
        "slurm_partition": "cpu",
    }
    tiny = {**paper, "scale": "tiny"}
    assert job_resources(tiny, "generate", "vicuna-7b-v1.5")["gpu"] == 0
    dispatch = {**tiny, "cluster": {**paper["cluster"], "tiny_gpu_jobs": True}}
    res = job_resources(dispatch, "train", "profuser")
    assert res["gpu"] == 1 and res["slurm_partition"] == "gpu"
    assert res["mem_mb"] < job_resources(paper, "train", "profuser")["mem_mb"]
    with pytest.raises(ValueError, match="unknown job kind"):
        job_resources(paper, "telepathy")

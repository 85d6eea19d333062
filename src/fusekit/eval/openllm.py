"""OpenLLM benchmarks through lm-eval's Python API (``lm_eval.simple_evaluate``).

One call per model evaluates every configured benchmark
(``evaluation.openllm``: lm-eval task, shots, metric, the answer filter whose
value is read, and for group tasks such as MMLU whether the score is the macro
average over subtasks or lm-eval's own size-weighted group score). The result is
one JSON per model with every benchmark's value and standard error in percent and
the lm-eval result key it was read from, so tables only read files.

Answer filters. A generation task reports one value per lm-eval filter
(``exact_match,strict-match``, ``exact_match,flexible-extract``, ...). The benchmark's
``filter`` names the one read; a fusekit filter (:mod:`fusekit.eval.filters`, e.g.
``final-number``, GSM8K as Open-Instruct scores it) is added to the task before it runs.
Without ``filter`` the value is read from the first filter present among
:data:`FILTER_PREFERENCE` (``none`` first; for GSM8K the final-number rule, else
lm-eval's last-number ``flexible-extract``, never the literal-phrase ``strict-match``
while another is there).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# runs offline: tasks and models are local (the tiny world) or already in the hub cache
OFFLINE_ENV = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
FILTER_PREFERENCE = ("none", "final-number", "flexible-extract", "strict-match")
log = logging.getLogger("fusekit")


def process_results_mc2(doc: dict, results: Sequence[tuple[float, bool]]) -> dict[str, float]:
    """TruthfulQA's mc2: the share of (normalised) probability on the true answers.

    ``results`` holds one (log-likelihood, is_greedy) pair per choice of
    ``doc["mc2_targets"]``; computed in log space so long answers do not underflow.
    """
    ll = np.array([r[0] for r in results], dtype=np.float64)
    labels = np.asarray(doc["mc2_targets"]["labels"])
    if len(ll) != len(labels):
        raise ValueError(f"mc2: {len(ll)} log-likelihoods for {len(labels)} labelled choices")
    log_total = np.logaddexp.reduce(ll)
    return {"acc": float(np.exp(np.logaddexp.reduce(ll[labels == 1]) - log_total))}


def _leaves(task: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    children = group_subtasks.get(task)
    if not children:
        return [task]
    return [leaf for child in children for leaf in _leaves(child, group_subtasks)]


def _metric_key(results: dict, task: str, metric: str, filter: str | None = None) -> str:
    """The key of ``metric`` in lm-eval's results of ``task``: ``<metric>,<filter>``.

    ``filter`` given: that filter, or ``KeyError`` naming the filters there are.
    Otherwise the first of :data:`FILTER_PREFERENCE` present, else the only one.
    """
    row = results.get(task, {})
    keys = [k for k in row if k.split(",")[0] == metric and "_stderr" not in k]
    if filter is not None:
        key = f"{metric},{filter}"
        if key in row:
            return key
        raise KeyError(
            f"lm-eval results of task {task!r} have no metric {metric!r} with filter "
            f"{filter!r}: {sorted(keys) or sorted(row)}"
        )
    for name in FILTER_PREFERENCE:
        if f"{metric},{name}" in row:
            return f"{metric},{name}"
    if metric in row:
        return metric
    if len(keys) == 1:
        return keys[0]
    raise KeyError(f"lm-eval results of task {task!r} have no metric {metric!r}: {sorted(row)}")


def _stderr(results: dict, task: str, key: str) -> float | None:
    """The standard error lm-eval reports beside metric ``key`` (e.g. acc_stderr,none)."""
    se = results[task].get(key.replace(",", "_stderr,", 1))
    return se if isinstance(se, float) else None


def benchmark_value(
    output: dict, task: str, metric: str, aggregate: str, filter: str | None = None
) -> dict:
    """One benchmark's score (0-100) and standard error (points) from lm-eval's output.

    ``aggregate='macro'``: the unweighted mean over the group's leaf subtasks
    (MMLU as the Open LLM Leaderboard v1 reports it), its standard error
    ``sqrt(sum se_i^2) / n`` (independent subtasks); ``'lm_eval'``: the task's or
    group's own value. ``filter``: the lm-eval filter whose value is read (see the module
    doc); the key read is returned as ``key``. ``KeyError`` when it is missing.
    """
    results, groups = output["results"], output.get("group_subtasks", {})
    leaves = _leaves(task, groups)
    if aggregate == "macro" and leaves != [task]:
        keys = {t: _metric_key(results, t, metric, filter) for t in leaves}
        values = [results[t][keys[t]] for t in leaves]
        ses = [_stderr(results, t, keys[t]) for t in leaves]
        value = float(np.mean(values))
        se = (
            math.sqrt(sum(s * s for s in ses)) / len(ses)
            if all(s is not None for s in ses)
            else None
        )
        group_key = _metric_key(results, task, metric, filter) if task in results else None
        return {
            "value": 100 * value,
            "stderr": None if se is None else 100 * se,
            "key": keys[leaves[0]],
            "n_subtasks": len(leaves),
            "subtasks": {t: 100 * float(v) for t, v in zip(leaves, values, strict=True)},
            # lm-eval's own (size-weighted) group score, kept for comparison
            "lm_eval_group_value": 100 * float(results[task][group_key]) if group_key else None,
        }
    key = _metric_key(results, task, metric, filter)
    if filter is None and key.endswith(",flexible-extract"):
        log.warning(
            "%s: no final-number filter in lm-eval's results; reading %s (last number, "
            "lm-eval's rule) instead of strict-match",
            task,
            key,
        )
    se = _stderr(results, task, key)
    return {
        "value": 100 * float(results[task][key]),
        "stderr": None if se is None else 100 * se,
        "key": key,
        "n_subtasks": len(leaves),
    }


def _with_filters(manager, benchmarks: dict[str, dict], tasks: list[str]) -> list:
    """``tasks`` for ``simple_evaluate``: names, or the loaded task object where a
    benchmark names a fusekit filter (:mod:`fusekit.eval.filters`) the task lacks."""
    from fusekit.eval.filters import FILTERS, filter_ensemble

    wanted: dict[str, set[str]] = {}
    for spec in benchmarks.values():
        if spec.get("filter") in FILTERS and spec["task"] in tasks:
            wanted.setdefault(spec["task"], set()).add(spec["filter"])
    out: list = []
    for task in tasks:
        if task not in wanted:
            out.append(task)
            continue
        loaded = manager.load([task])
        if task not in loaded["tasks"]:
            raise ValueError(
                f"evaluation.openllm: filter {sorted(wanted[task])} needs a single task, "
                f"{task!r} is a group"
            )
        obj = loaded["tasks"][task]
        have = {f.name for f in getattr(obj, "_filters", [])}
        for name in sorted(wanted[task] - have):
            obj._filters.append(filter_ensemble(name))
            log.info("%s: added fusekit answer filter %r", task, name)
        out.append(obj)
    return out


def evaluate_model(
    model_path: str,
    benchmarks: dict[str, dict],
    include_path: str | None = None,
    include_defaults: bool = True,
    apply_chat_template: bool = False,
    batch_size: int | str = 16,
    device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    seed: int = 1234,
    limit: int | None = None,
    confirm_run_unsafe_code: bool = False,
) -> dict:
    """Run every benchmark of ``benchmarks`` (``evaluation.openllm``) on one model.

    ``confirm_run_unsafe_code``: lets lm-eval execute model-written code (HumanEval,
    MBPP; also needs ``HF_ALLOW_CODE_EVAL=1``); a suite opts in by config.

    Benchmarks with the same shot count run in one ``simple_evaluate`` call.
    Returns ``{"benchmarks": {key: {label, task, num_fewshot, metric, aggregate, filter,
    value, stderr, key, n_subtasks}}, "lm_eval": {...versions and settings}}``; value and
    stderr in percent points (stderr None where lm-eval gives none, e.g. with ``limit``).
    """
    os.environ.update(OFFLINE_ENV)
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # indexing lm-eval's own ~15k task files takes seconds: skip it when every task is local
    manager = TaskManager(
        include_path=str(Path(include_path).resolve()) if include_path else None,
        include_defaults=include_defaults or not include_path,
    )
    known = set(manager.all_tasks)
    missing = sorted({b["task"] for b in benchmarks.values()} - known)
    if missing:
        raise ValueError(
            f"lm-eval knows no task {missing} (include_path={include_path!r}); "
            "check evaluation.openllm.<benchmark>.task"
        )
    from fusekit.eval.filters import FILTERS

    for key, spec in benchmarks.items():
        f = spec.get("filter")
        if f is not None and not isinstance(f, str):
            raise ValueError(f"evaluation.openllm.benchmarks.{key}.filter: a name, got {f!r}")
        if f is not None and f not in FILTERS:
            log.info("%s: reading lm-eval's own filter %r (%s)", key, f, spec["task"])
    from lm_eval.models.huggingface import HFLM

    # one model for every shot count (simple_evaluate would load it once per call)
    lm = HFLM(
        pretrained=model_path,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        batch_size=batch_size,
        device=device,
    )
    by_shots: dict[int, list[str]] = {}
    for key, spec in benchmarks.items():
        by_shots.setdefault(spec["num_fewshot"], []).append(key)
    out: dict[str, dict] = {}
    for shots, keys in sorted(by_shots.items()):
        tasks = sorted({benchmarks[k]["task"] for k in keys})
        output = lm_eval.simple_evaluate(
            model=lm,
            tasks=_with_filters(manager, {k: benchmarks[k] for k in keys}, tasks),
            num_fewshot=shots,
            task_manager=manager,
            apply_chat_template=apply_chat_template,
            fewshot_as_multiturn=apply_chat_template and shots > 0,
            log_samples=False,
            limit=limit,
            bootstrap_iters=0 if limit else 1000,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            confirm_run_unsafe_code=confirm_run_unsafe_code,
        )
        for key in keys:
            spec = benchmarks[key]
            out[key] = {
                "label": spec.get("label", key),
                "task": spec["task"],
                "num_fewshot": shots,
                "metric": spec["metric"],
                "aggregate": spec.get("aggregate", "lm_eval"),
                "filter": spec.get("filter"),
                **benchmark_value(
                    output,
                    spec["task"],
                    spec["metric"],
                    spec.get("aggregate", "lm_eval"),
                    spec.get("filter"),
                ),
            }
    return {
        "model_path": model_path,
        "benchmarks": out,
        "lm_eval": {
            "version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else None,
            "apply_chat_template": apply_chat_template,
            "batch_size": batch_size,
            "dtype": dtype,
            "device": device,
            "limit": limit,
        },
    }


def evaluate_to_file(
    model_path: str, benchmarks: dict[str, dict], settings: dict, out: str
) -> dict:
    """File to file: evaluate one model (``settings``: evaluation.openllm without its
    benchmarks) and write the JSON with provenance."""
    from fusekit.io import write_json

    result = evaluate_model(
        model_path,
        benchmarks,
        include_path=settings.get("tasks_dir"),
        include_defaults=settings.get("include_default_tasks", True),
        apply_chat_template=settings.get("apply_chat_template", False),
        batch_size=settings.get("batch_size", 16),
        dtype=settings.get("dtype", "auto"),
        trust_remote_code=settings.get("trust_remote_code", False),
        seed=settings.get("seed", 1234),
        limit=settings.get("limit"),
        confirm_run_unsafe_code=settings.get("confirm_run_unsafe_code", False),
    )
    write_json(result, out)
    return result

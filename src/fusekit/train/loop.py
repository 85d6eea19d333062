"""The one training loop: stages of fusion objectives over a fixed, seeded batch plan.

Every step's batch is a pure function of (seed, stage, epoch), so a job that
restarts from its last checkpoint replays exactly the steps it had not done and
ends with the same weights as an uninterrupted run. Checkpoints (model,
optimizer, scheduler and RNG state through ``accelerate``) live outside the
declared output; the output is written once, atomically, at the end.

Several processes (``accelerate launch --num_processes N``: DDP, or DeepSpeed ZeRO when
``training.deepspeed_zero_stage`` is set) train the one-process run's steps: every step's
global batch is cut into the same micro-batches as in one process, and the micro-batches
are dealt out among the processes (:func:`step_shard`); gradients accumulate through
``accelerate`` and are reduced once per optimizer step, so N processes compute the
one-process gradient up to float summation order. Only the main process writes the
model, gathered first (ZeRO-3 shards included). The DDP path is tested on CPU with
gloo (tests/test_multiprocess_training.py); the DeepSpeed path needs GPUs and is untested.

Defaults of the optimizer and training settings are the schema's
(``studies.*.optimizer`` and ``studies.*.training`` in config/schema.yaml, which
Snakemake's validation fills into the config): :data:`OPTIMIZER_DEFAULTS` and
:data:`TRAINING_DEFAULTS`, checked against the schema by tests/test_training.py and
filled in one place, :func:`resolve_settings`.

A checkpoint records the fingerprint of the training it belongs to (the model it
started from, stages, optimizer, training settings, seed, examples, batch plan and
process count, :func:`training_fingerprint`); a checkpoint of another training is
discarded with a warning, never resumed. The main process holds an owner lock on the
checkpoint folder (:func:`fusekit.io.folder_lock`) for the whole run, so two trainers
(an orphan of a killed driver and its restart) never write one folder.

Given a held-out set, the run also scores the target on it before the first step and at
every epoch end (:func:`epoch_ends`, :mod:`fusekit.train.heldout`), without drawing a
random number or computing a gradient: the weights are those of a run without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fusekit.io import (
    PROVENANCE_FILE,
    atomic_path,
    check_writable,
    disk_full_named,
    folder_lock,
    provenance,
    spec_hash,
)
from fusekit.train.examples import Example, collate

log = logging.getLogger("fusekit")
MODES = ("inference", "training")
STATE_FILE = "fusekit_state.json"
# training settings that cannot change the trained weights: not part of the fingerprint
# (``gpus`` sizes the launch; the process count a run had is its own fingerprint part)
RESULT_NEUTRAL_SETTINGS = frozenset({"save_every", "gpus"})
LOCK_WAIT_S = 10.0  # how long a trainer waits for the checkpoint folder's owner lock

# The schema's defaults (config/schema.yaml: $defs.optimizer, $defs.training and a fusion
# variant's order); tests/test_training.py checks that they agree with it.
OPTIMIZER_DEFAULTS = {
    "name": "adam",
    "lr": 1.5e-5,
    "schedule": "cosine",
    "global_batch_size": 128,
    "max_length": 2048,
}
TRAINING_DEFAULTS = {
    "micro_batch_size": 4,
    "save_every": 200,
    "precision": "bf16",
    "deepspeed_zero_stage": None,
    "warmup_ratio": 0.03,
    "gpus": 8,
}
ORDER_DEFAULT = "random"  # studies.<fusion study>.variants.<name>.order
TRAINING_OBJECTIVE_DEFAULT = "profuser_eq4"  # $defs.training_objective
OPTIMIZERS = ("adam", "adamw")


def resolve_settings(optim: dict, train_cfg: dict) -> tuple[dict, dict]:
    """``optim`` and ``train_cfg`` with the schema's defaults filled in for missing keys.

    ``train_cfg`` may also carry ``order`` (a fusion variant's example order, default
    :data:`ORDER_DEFAULT`). Raises ValueError naming a key the schema does not know
    (``optimizer.<key>`` or ``training.<key>``) or an unknown optimizer name.
    """
    for block, given, known in (
        ("optimizer", optim, OPTIMIZER_DEFAULTS),
        ("training", train_cfg, {**TRAINING_DEFAULTS, "order": ORDER_DEFAULT}),
    ):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"unknown {block} setting(s) {', '.join(f'{block}.{k}' for k in unknown)}; "
                f"known: {sorted(known)}"
            )
    optim = {**OPTIMIZER_DEFAULTS, **optim}
    train_cfg = {**TRAINING_DEFAULTS, "order": ORDER_DEFAULT, **train_cfg}
    if optim["name"] not in OPTIMIZERS:
        raise ValueError(f"optimizer.name {optim['name']!r} is unknown; known: {list(OPTIMIZERS)}")
    return optim, train_cfg


def micro_steps(global_batch: int, micro_batch: int, num_processes: int) -> int:
    """Micro-batches each process runs per optimizer step (its gradient accumulation
    steps): the ``ceil(global_batch / micro_batch)`` micro-batches of a full step dealt
    out among ``num_processes``, rounded up."""
    return math.ceil(math.ceil(global_batch / micro_batch) / num_processes)


def step_shard(
    idx: list[int], micro_batch: int, rank: int, num_processes: int, n_micro: int
) -> list[tuple[list[int], float]]:
    """The micro-batches process ``rank`` runs for one step over example indices ``idx``,
    each with its weight in the step's loss.

    The step is cut as one process cuts it (``idx[0:m], idx[m:2m], ...`` for micro-batch
    size ``m``); micro-batch ``j`` goes to process ``j % num_processes`` with weight
    ``len(chunk) / len(idx)``, so the weights of all processes sum to 1 and their
    micro-batches are the one-process run's. A process with fewer than ``n_micro`` (see
    :func:`micro_steps`) gets copies of the step's first micro-batch with weight 0:
    every process runs exactly ``n_micro`` forward and backward passes per step, which
    the gradient reductions of DDP and DeepSpeed need (a process with no examples in a
    short last step still takes part). Raises ValueError when the step has more
    micro-batches than ``n_micro * num_processes``.
    """
    chunks = [idx[i : i + micro_batch] for i in range(0, len(idx), micro_batch)]
    if len(chunks) > n_micro * num_processes:
        raise ValueError(
            f"a step of {len(idx)} examples has {len(chunks)} micro-batches of "
            f"{micro_batch}, more than {n_micro} per process on {num_processes}"
        )
    mine = [(c, len(c) / len(idx)) for c in chunks[rank::num_processes]]
    return mine + [(chunks[0], 0.0)] * (n_micro - len(mine))


@dataclass(frozen=True)
class Stage:
    modes: tuple[str, ...]
    epochs: float
    beta: float = 0.5
    lam: float = 0.5
    w_inference: float = 1.0
    w_training: float = 1.0
    training_objective: str = TRAINING_OBJECTIVE_DEFAULT
    # a stage of the preference studies: an objective of fusekit.losses.registry by name,
    # with its hyperparameters; such a stage trains on SequenceExamples of its shape
    objective: str | None = None
    hparams: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, spec: dict, training_objective: str = TRAINING_OBJECTIVE_DEFAULT) -> Stage:
        """A stage from its config entry; ``training_objective`` is the study's default
        for stages that do not name one (:data:`fusekit.losses.TRAINING_OBJECTIVES`).
        An entry with ``objective`` is a preference stage: every other key except
        ``epochs`` is a hyperparameter of that objective (checked here)."""
        from fusekit.losses import TRAINING_OBJECTIVES

        if "objective" in spec:
            from fusekit.losses.registry import get_objective

            hparams = {k: v for k, v in spec.items() if k not in ("objective", "epochs")}
            get_objective(spec["objective"]).resolve(hparams)
            return cls((), spec["epochs"], objective=spec["objective"], hparams=hparams)
        bad = set(spec["modes"]) - set(MODES)
        if bad:
            raise ValueError(f"unknown modes {sorted(bad)}; known: {list(MODES)}")
        objective = spec.get("training_objective", training_objective)
        if objective not in TRAINING_OBJECTIVES:
            raise ValueError(
                f"unknown training objective {objective!r}; known: {sorted(TRAINING_OBJECTIVES)}"
            )
        return cls(
            tuple(spec["modes"]),
            spec["epochs"],
            spec.get("beta", 0.5),
            spec.get("lambda", 0.5),
            spec.get("w_inference", 1.0),
            spec.get("w_training", 1.0),
            objective,
        )


def batch_plan(
    examples: list[Example],
    stages: list[Stage],
    global_batch: int,
    seed: int,
    order: str = "random",
) -> list[tuple[int, list[int]]]:
    """(stage index, example indices) for every optimizer step, in order.

    A stage uses the examples that have a part for each of its modes, for
    ``epochs`` passes (a fractional last pass takes a prefix); ``order`` is
    ``random`` (reshuffled each epoch), ``rm_score`` (most votes first) or
    ``gt_length`` (shortest reference first).
    """
    plan = []
    for s, stage in enumerate(stages):
        pool = [i for i, e in enumerate(examples) if _accepts(stage, e)]
        if not pool:
            what = stage.objective or "+".join(stage.modes)
            raise ValueError(f"stage {s} ({what}) has no examples it can train on")
        if order == "rm_score":
            pool.sort(key=lambda i: (-examples[i].rm_score, examples[i].prompt_id))
        elif order == "gt_length":
            pool.sort(key=lambda i: (examples[i].gt_length, examples[i].prompt_id))
        elif order != "random":
            raise ValueError(f"unknown order {order!r}; known: random, rm_score, gt_length")
        todo = math.ceil(len(pool) * stage.epochs)
        epoch, flat = 0, []
        while len(flat) < todo:
            ids = list(pool)
            if order == "random":
                random.Random(f"{seed}-{s}-{epoch}").shuffle(ids)
            flat += ids
            epoch += 1
        flat = flat[:todo]
        plan += [(s, flat[i : i + global_batch]) for i in range(0, len(flat), global_batch)]
    return plan


def epoch_ends(examples: list, stages: list[Stage], global_batch: int) -> list[dict]:
    """The optimizer steps after which a pass over a stage's examples is complete, in
    :func:`batch_plan`'s steps: one dict per step with ``step`` (1-based, counted over
    all stages), ``stage``, ``stage_epoch`` (passes over the stage's examples done) and
    ``epoch`` (passes done over all stages: the earlier stages' ``epochs`` plus
    ``stage_epoch``).

    A pass ends with the step that trains its last example, so when a stage's pool is
    not a multiple of ``global_batch`` that step also holds the first examples of the
    next pass; a fractional last pass ends with the stage. Where several passes end in
    one step (a pool smaller than a batch), the step is listed once, with the last."""
    out, offset, before = [], 0, 0.0
    for s, stage in enumerate(stages):
        pool = sum(1 for e in examples if _accepts(stage, e))
        todo = math.ceil(pool * stage.epochs)
        for n in range(1, math.ceil(stage.epochs) + 1):
            step = offset + math.ceil(min(n * pool, todo) / global_batch)
            row = {
                "step": step,
                "stage": s,
                "stage_epoch": min(float(n), float(stage.epochs)),
                "epoch": before + min(float(n), float(stage.epochs)),
            }
            if out and out[-1]["step"] == step:
                out[-1] = row
            else:
                out.append(row)
        offset += math.ceil(todo / global_batch)
        before += float(stage.epochs)
    return out


def _accepts(stage: Stage, example) -> bool:
    """Whether ``stage`` trains on ``example``: a preference stage on SequenceExamples of
    its objective's shape, a fusion stage on Examples with a part for each of its modes."""
    if stage.objective is not None:
        from fusekit.losses.registry import get_objective

        return getattr(example, "shape", None) == get_objective(stage.objective).shape
    if not isinstance(example, Example):
        return False
    return all(
        (example.inference if m == "inference" else example.training) is not None
        for m in stage.modes
    )


def _objective_loss(model, stage: Stage, batch, pad_id: int, device, step: int, total: int):
    """A preference stage's loss and metrics on a micro-batch of SequenceExamples."""
    from fusekit.losses.registry import get_objective
    from fusekit.train.sequences import collate_extras, collate_rows

    obj = get_objective(stage.objective)
    ids, mask, labels, ref = collate_rows(batch, pad_id)
    extras = {k: v.to(device) for k, v in collate_extras(batch).items()}
    if obj.needs_reference and ref is None:
        raise ValueError(f"objective {stage.objective!r} needs reference log-probs")
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    tensors = {"logits": logits, "labels": labels.to(device), **extras}
    if ref is not None:
        tensors["ref_logp"] = ref.to(device)
    return obj(tensors, stage.hparams, step, total)


def _stage_loss(model, stage: Stage, parts_infer, parts_train, pad_id: int, device):
    from fusekit.losses import profuser_loss

    def run(parts):
        if not parts:
            return None
        ids, mask, labels, topk, lps = (t.to(device) for t in collate(parts, pad_id))
        logits = model(input_ids=ids, attention_mask=mask).logits
        return logits, labels, topk, lps

    infer = run(parts_infer) if "inference" in stage.modes else None
    train = run(parts_train) if "training" in stage.modes else None
    return profuser_loss(
        infer,
        train,
        stage.beta,
        stage.lam,
        stage.w_inference,
        stage.w_training,
        stage.training_objective,
    )


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    pointer = ckpt_dir / "latest"
    if pointer.exists():
        path = ckpt_dir / pointer.read_text().strip()
        if (path / STATE_FILE).exists():
            return path
    return None


def _digest(obj, h) -> None:
    """Feed ``obj`` (dataclasses, arrays, lists, dicts, scalars) into the hash ``h``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"<{type(obj).__name__}".encode())
        for f in dataclasses.fields(obj):
            h.update(f"{f.name}=".encode())
            _digest(getattr(obj, f.name), h)
        h.update(b">")
    elif isinstance(obj, np.ndarray):
        h.update(f"<nd {obj.dtype.str} {obj.shape}>".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (list, tuple)):
        h.update(f"[{len(obj)}".encode())
        arr = _numeric_array(obj)
        if arr is not None:
            _digest(arr, h)
        else:
            for x in obj:
                _digest(x, h)
        h.update(b"]")
    elif isinstance(obj, dict):
        h.update(f"{{{len(obj)}".encode())
        for k in sorted(obj, key=str):
            _digest(k, h)
            _digest(obj[k], h)
        h.update(b"}")
    elif hasattr(obj, "numpy") and hasattr(obj, "detach"):  # a torch tensor
        _digest(obj.detach().cpu().numpy(), h)
    else:
        text = repr(obj).encode()
        h.update(f"<{type(obj).__name__} {len(text)}>".encode() + text)


def _numeric_array(seq) -> np.ndarray | None:
    """A flat list of numbers (Python or numpy) as int64 or float64; None otherwise."""
    if not seq or isinstance(seq[0], bool) or not isinstance(seq[0], (int, float, np.number)):
        return None
    try:
        arr = np.asarray(seq)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        return None
    return arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)


def _model_identity(model_path: str, model_spec: dict) -> dict:
    """The model training starts from: its path and spec and, for a local folder, each
    file's size and modification time (a rebuilt init model is another start)."""
    files = None
    root = Path(model_path)
    if root.is_dir():
        files = sorted(
            [str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns]
            for f in root.rglob("*")
            if f.is_file()
        )
    return {"path": str(model_path), "spec": model_spec, "files": files}


def training_fingerprint(
    model_path: str,
    model_spec: dict,
    examples: list,
    stages: list[Stage],
    optim: dict,
    train_cfg: dict,
    seed: int,
    plan: list[tuple[int, list[int]]],
    num_processes: int = 1,
) -> dict[str, str]:
    """What determines a training run, as a short hash per part.

    Parts: ``model`` (path, spec, and the files of a local init model), ``stages``,
    ``optimizer``, ``training`` (``train_cfg`` less :data:`RESULT_NEUTRAL_SETTINGS`),
    ``seed``, ``processes``, ``examples`` (every token id, label, teacher row and score)
    and ``batch_plan`` (the example indices of every step). Two runs with equal
    fingerprints train the same weights, so a checkpoint resumes only a run of its
    own fingerprint.
    """
    h = hashlib.sha256()
    _digest(examples, h)
    parts = {
        "model": _model_identity(model_path, model_spec),
        "stages": [dataclasses.asdict(s) for s in stages],
        "optimizer": optim,
        "training": {k: v for k, v in train_cfg.items() if k not in RESULT_NEUTRAL_SETTINGS},
        "seed": seed,
        "processes": num_processes,
        "examples": h.hexdigest(),
        "batch_plan": plan,
    }
    return {k: spec_hash(v) for k, v in parts.items()}


def _fingerprint_changes(recorded, current: dict[str, str]) -> list[str]:
    """The parts of ``current`` that a checkpoint's recorded fingerprint does not match."""
    if not isinstance(recorded, dict):
        return ["fingerprint (the checkpoint has none: an older fusekit wrote it)"]
    return [k for k in current if recorded.get(k) != current[k]] + [
        k for k in recorded if k not in current
    ]


def _discard_checkpoints(ckpt_dir: Path) -> None:
    """Remove every checkpoint, the ``latest`` pointer and partial saves (not the lock)."""
    for entry in ckpt_dir.iterdir():
        if entry.name == "latest" or entry.name.startswith(("step-", ".step-", ".latest.")):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def train_fusion(
    model_path: str,
    model_spec: dict,
    examples: list[Example],
    stages: list[Stage],
    optim: dict,
    train_cfg: dict,
    out: str,
    checkpoint_dir: str,
    seed: int,
    threads: int = 1,
    stop_after: int | None = None,
    heldout: list | None = None,
) -> pd.DataFrame:
    """Train the target on ``examples`` through ``stages``; write the model to ``out``.

    ``optim``: name (adam/adamw), lr, schedule (cosine/linear/constant),
    global_batch_size (examples per optimizer step, over all processes), max_length.
    ``train_cfg``: micro_batch_size (examples per forward pass and process),
    save_every (steps), precision (no/bf16/fp16, GPU only), deepspeed_zero_stage
    (null, or 1/2/3 on GPUs), warmup_ratio, gpus, order. Missing keys take the
    schema's defaults (:func:`resolve_settings`). ``stop_after`` ends the run after
    that many steps without writing ``out`` (to simulate a crash in tests). Returns
    the log: one row per optimizer step (step, stage, loss summed over the step's
    micro-batches and processes, lr, grad_norm of the step's gradient before clipping
    to 1, and a preference objective's metrics).

    ``heldout``: rows of a held-out set (:func:`fusekit.train.heldout.build_heldout`);
    given, the held-out loss is evaluated before the first step and after every step
    that ends a pass over a stage's examples (:func:`epoch_ends`), in batches of the
    micro-batch size, and written to ``out`` as
    :data:`fusekit.train.heldout.HELDOUT_FILE`. It draws no random number and computes
    no gradient, so the weights are those of a run without it; it is not part of the
    fingerprint (a checkpoint keeps the held-out points logged so far).

    Under ``accelerate launch`` with N processes, each process runs its share of every
    step (:func:`step_shard`) and the result equals the one-process run up to float
    rounding. A run resumes only with the process count it was checkpointed with
    (part of the fingerprint); the main process alone locks the checkpoint folder and
    writes checkpoint metadata and the output.

    Before the model loads, the folder of ``out`` and ``checkpoint_dir`` are checked
    writable (PermissionError naming the folder) and ``checkpoint_dir`` is locked
    (:class:`fusekit.io.FolderInUseError` when another live trainer holds it, after
    :data:`LOCK_WAIT_S` seconds). A checkpoint there resumes the run only when its
    :func:`training_fingerprint` equals this run's; otherwise it is discarded with a
    warning naming the parts that changed, and training starts from step 0. A full
    disk raises OSError (ENOSPC) naming the checkpoint or output being written.
    ValueError: an unknown setting, or ``deepspeed_zero_stage`` set without CUDA;
    ImportError: ``deepspeed_zero_stage`` set and deepspeed not installed.
    """
    optim, train_cfg = resolve_settings(optim, train_cfg)
    acc = _accelerator(train_cfg)
    log.info(
        "process %d of %d training on %s, mixed precision %s",
        acc.process_index,
        acc.num_processes,
        acc.device,
        acc.mixed_precision,
    )
    ckpt_dir = Path(checkpoint_dir)
    with contextlib.ExitStack() as held:
        if acc.is_main_process:  # one owner per folder; the other processes follow it
            check_writable(Path(out).parent, ckpt_dir)
            held.enter_context(folder_lock(ckpt_dir, LOCK_WAIT_S))
            for partial in ckpt_dir.glob(".step-*"):  # saves a killed run left unfinished
                shutil.rmtree(partial, ignore_errors=True)
        acc.wait_for_everyone()
        return _train(
            acc,
            model_path,
            model_spec,
            examples,
            stages,
            optim,
            train_cfg,
            out,
            ckpt_dir,
            seed,
            threads,
            stop_after,
            heldout,
        )


def _accelerator(train_cfg: dict):
    """The Accelerator of a run: CPU (DDP over gloo when launched with several
    processes), CUDA with the configured mixed precision, or DeepSpeed ZeRO.

    ``split_batches``: a step's batch is the global batch, split among the processes,
    so the LR scheduler steps once per optimizer step (accelerate's default steps it
    once per process). Gradient accumulation steps are set once the process count is
    known (:func:`_train`).
    """
    import importlib.util

    import torch
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    cuda = torch.cuda.is_available()
    plugin = None
    stage = train_cfg["deepspeed_zero_stage"]
    if stage is not None:  # paper scale, GPU only
        if not cuda:
            raise ValueError(
                f"training.deepspeed_zero_stage is {stage} but no CUDA device is visible: "
                "DeepSpeed trains on GPUs only; set it to null to train on CPU"
            )
        if importlib.util.find_spec("deepspeed") is None:
            raise ImportError(
                f"training.deepspeed_zero_stage is {stage} but deepspeed is not installed "
                "(install requirements-gpu.txt, or set it to null)"
            )
        from accelerate.utils import DeepSpeedPlugin

        plugin = DeepSpeedPlugin(
            zero_stage=stage,
            gradient_clipping=1.0,
            zero3_save_16bit_model=True,  # lets get_state_dict gather ZeRO-3 shards
        )
    return Accelerator(
        cpu=not cuda,
        mixed_precision=train_cfg["precision"] if cuda else "no",
        deepspeed_plugin=plugin,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


def _train(
    acc,
    model_path: str,
    model_spec: dict,
    examples: list,
    stages: list[Stage],
    optim: dict,
    train_cfg: dict,
    out: str,
    ckpt_dir: Path,
    seed: int,
    threads: int,
    stop_after: int | None,
    heldout: list | None,
) -> pd.DataFrame:
    """The body of :func:`train_fusion`, with the settings resolved and the folders
    checked and locked."""
    import torch
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    from fusekit.backends.hf import load_causal_lm, load_tokenizer

    set_seed(seed)
    torch.set_num_threads(threads)
    tok = load_tokenizer(model_path, model_spec)
    model = load_causal_lm(model_path, {**model_spec, "dtype": "float32"}, threads)
    model.train()
    global_batch = optim["global_batch_size"]
    micro = min(train_cfg["micro_batch_size"], global_batch)
    rank, world = acc.process_index, acc.num_processes
    n_micro = micro_steps(global_batch, micro, world)
    # accelerate's accumulation: no gradient reduction until the n_micro-th backward;
    # under DeepSpeed the same count is the engine's gradient_accumulation_steps, so
    # the engine steps once per optimizer step, not once per micro-batch
    acc.gradient_accumulation_steps = n_micro
    if acc.state.deepspeed_plugin is not None:
        ds_config = acc.state.deepspeed_plugin.deepspeed_config
        ds_config["gradient_accumulation_steps"] = n_micro
        ds_config["train_micro_batch_size_per_gpu"] = micro
    plan = batch_plan(examples, stages, global_batch, seed, train_cfg["order"])
    opt_cls = torch.optim.AdamW if optim["name"] == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=optim["lr"], weight_decay=0.0)
    warmup = int(train_cfg["warmup_ratio"] * len(plan))
    sched = get_scheduler(
        optim["schedule"], opt, num_warmup_steps=warmup, num_training_steps=len(plan)
    )
    model, opt, sched = acc.prepare(model, opt, sched)
    if acc.is_main_process:
        log.info(
            "%d steps of %d examples: %d micro-batch(es) of up to %d per process and step",
            len(plan),
            global_batch,
            n_micro,
            micro,
        )

    fingerprint = training_fingerprint(
        model_path, model_spec, examples, stages, optim, train_cfg, seed, plan, world
    )
    start, records, heldout_records = 0, [], []
    latest = _latest_checkpoint(ckpt_dir)
    if latest is not None:
        state = json.loads((latest / STATE_FILE).read_text())
        changed = _fingerprint_changes(state.get("fingerprint"), fingerprint)
        acc.wait_for_everyone()  # every process has read it before it may go
        if changed:
            if acc.is_main_process:
                log.warning(
                    "discarding checkpoint %s: it was written for another training "
                    "(changed: %s); starting from step 0 of %d",
                    latest,
                    ", ".join(changed),
                    len(plan),
                )
                _discard_checkpoints(ckpt_dir)
            acc.wait_for_everyone()
        else:
            acc.load_state(str(latest))
            start, records = state["step"], state["log"]
            heldout_records = state.get("heldout_log", []) if heldout else []
            if acc.is_main_process:
                log.info("resuming from %s at step %d of %d", latest, start, len(plan))
                if heldout and not heldout_records:
                    log.warning(
                        "the checkpoint has no held-out loss (written without one): the "
                        "held-out curve starts after step %d",
                        start,
                    )

    ends = {e["step"]: e for e in epoch_ends(examples, stages, global_batch)} if heldout else {}
    heldout_s = 0.0

    def evaluate_heldout(point: dict) -> None:
        """Append the held-out loss after ``point['step']`` steps to the held-out log."""
        nonlocal heldout_s
        from fusekit.train.heldout import heldout_loss

        t0 = time.perf_counter()
        loss, tokens = heldout_loss(model, heldout, micro, tok.pad_token_id, acc.device)
        heldout_s += time.perf_counter() - t0
        heldout_records.append({**point, "loss": loss, "tokens": tokens, "examples": len(heldout)})
        if acc.is_main_process:
            log.info(
                "held-out loss after step %d (epoch %g): %.4f nats/token",
                point["step"],
                point["epoch"],
                loss,
            )

    if heldout and start == 0:
        evaluate_heldout({"step": 0, "stage": 0, "stage_epoch": 0.0, "epoch": 0.0})

    save_every = train_cfg["save_every"]
    from tqdm.auto import tqdm

    first_step = {}  # stage -> index of its first step, for schedules within a stage
    for i, (s, _) in enumerate(plan):
        first_step.setdefault(s, i)
    stage_steps = {s: sum(1 for t, _ in plan if t == s) for s in first_step}
    # acc.backward divides by n_micro, and DDP and DeepSpeed average over the processes:
    # this factor turns the sum of weighted micro-batch losses into the step's gradient
    scale = n_micro * world

    for step in tqdm(
        range(start, len(plan)),
        desc="train",
        initial=start,
        total=len(plan),
        mininterval=5,
        disable=not acc.is_local_main_process,
    ):
        s, idx = plan[step]
        stage = stages[s]
        total, metrics = 0.0, {}
        for chunk, weight in step_shard(idx, micro, rank, world, n_micro):
            batch = [examples[i] for i in chunk]
            with acc.accumulate(model):
                if stage.objective is not None:
                    loss, logged = _objective_loss(
                        model,
                        stage,
                        batch,
                        tok.pad_token_id,
                        acc.device,
                        step - first_step[s],
                        stage_steps[s],
                    )
                    for k, v in logged.items():
                        metrics[k] = metrics.get(k, 0.0) + weight * float(v)
                else:
                    loss = _stage_loss(
                        model,
                        stage,
                        [e.inference for e in batch],
                        [e.training for e in batch],
                        tok.pad_token_id,
                        acc.device,
                    )
                acc.backward(loss * (weight * scale))
            total += weight * loss.item()
        if not acc.sync_gradients:  # cannot happen: every process ran n_micro passes
            raise RuntimeError(f"step {step + 1}: gradients were not synchronised")
        norm = acc.clip_grad_norm_(model.parameters(), 1.0)  # before clipping
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        names = sorted(metrics)
        summed = acc.reduce(
            torch.tensor([total] + [metrics[k] for k in names], dtype=torch.float64).to(acc.device),
            reduction="sum",
        ).tolist()
        records.append(
            {
                "step": step + 1,
                "stage": s,
                "loss": summed[0],
                "lr": sched.get_last_lr()[0],
                "grad_norm": math.nan if norm is None else float(norm),
                **dict(zip(names, summed[1:], strict=True)),
            }
        )
        done = step + 1
        if done in ends:
            evaluate_heldout(ends[done])
        if save_every and done % save_every == 0 and done < len(plan):
            _save_checkpoint(acc, ckpt_dir, done, records, fingerprint, heldout_records)
        if stop_after is not None and done >= stop_after:
            log.info("stopping after step %d (stop_after)", done)
            return pd.DataFrame(records)

    frame = pd.DataFrame(records)
    curve = None
    if heldout:
        from fusekit.train.heldout import HELDOUT_COLUMNS

        curve = pd.DataFrame(heldout_records, columns=HELDOUT_COLUMNS)
        if acc.is_main_process:
            log.info("held-out loss: %d evaluations, %.1f s", len(heldout_records), heldout_s)
    _save_model(acc, model, tok, frame, out, stages, optim, train_cfg, seed, curve)
    if acc.is_main_process:  # the lock file goes too; the lock itself ends with the run
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return frame


def _save_model(acc, model, tok, frame, out, stages, optim, train_cfg, seed, curve=None) -> None:
    """Write the trained model, tokenizer, log, held-out curve (``curve``, when given)
    and provenance to ``out``, atomically.

    Every process takes part in gathering the weights (``get_state_dict`` collects
    ZeRO-3 shards, in 16-bit, from all ranks); the main process alone writes. Returns
    once every process is past the write.
    """
    acc.wait_for_everyone()
    state = acc.get_state_dict(model)
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(model)
        with atomic_path(out, is_dir=True) as tmp:
            unwrapped.save_pretrained(tmp, state_dict=state, is_main_process=True)
            tok.save_pretrained(tmp)
            frame.to_csv(tmp / "train_log.csv", index=False, float_format="%.6g")
            if curve is not None:
                from fusekit.train.heldout import HELDOUT_FILE

                curve.to_csv(tmp / HELDOUT_FILE, index=False, float_format="%.6g")
            spec = {"stages": [s.__dict__ for s in stages], "optim": optim, "train": train_cfg}
            (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance(spec, seed), indent=2) + "\n")
    acc.wait_for_everyone()


def _save_checkpoint(
    acc,
    ckpt_dir: Path,
    step: int,
    records: list[dict],
    fingerprint: dict[str, str],
    heldout_records: list[dict] | None = None,
) -> None:
    """Save the full training state as step-N, then point ``latest`` at it.

    Every process writes its part (``accelerate`` saves the model once, RNG states per
    process) into a partial folder ``.step-N`` that the main process then renames into
    place, so a killed save leaves no checkpoint that looks whole. A full disk raises
    OSError (ENOSPC) naming the checkpoint; the partial folder is removed.
    """
    name = f"step-{step:07d}"
    final, partial = ckpt_dir / name, ckpt_dir / f".{name}"
    if acc.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    acc.wait_for_everyone()
    try:
        with disk_full_named(final):
            acc.save_state(str(partial))
            acc.wait_for_everyone()
            if acc.is_main_process:
                state = {"step": step, "log": records, "fingerprint": fingerprint}
                if heldout_records:
                    state["heldout_log"] = heldout_records
                (partial / STATE_FILE).write_text(json.dumps(state))
                if final.exists():
                    shutil.rmtree(final)
                os.replace(partial, final)
    except BaseException:
        if acc.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    if acc.is_main_process:
        with atomic_path(ckpt_dir / "latest") as tmp:
            tmp.write_text(name)
        for old in ckpt_dir.glob("step-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()

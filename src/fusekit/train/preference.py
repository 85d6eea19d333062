"""One preference-study variant, file to file: data tables and reference log-probs in,
a trained model out, through the one training loop (:func:`fusekit.train.loop.train_fusion`).

A variant (config, not code) names the model it starts from (``init``: the study's
target, or another variant's output), the data set it trains on, and its stages, each
an objective of :mod:`fusekit.losses.registry` with its hyperparameters, e.g. FuseChat-3.0:

    SFT: {init: target, data: sft, stages: [{objective: sft, epochs: 3}]}
    DPO: {init: SFT, data: dpo, stages: [{objective: ln_dpo, beta: 10.0, epochs: 1}]}

The objective's batch shape decides how the data table is read
(:data:`fusekit.train.sequences.ROLES`); an objective that needs a reference reads the
log-probabilities :mod:`fusekit.train.reference` wrote for the same data under ``init``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fusekit.io import check_writable, read_table
from fusekit.losses.registry import get_objective
from fusekit.train.loop import Stage, resolve_settings, train_fusion
from fusekit.train.sequences import attach_reference, build_sequence_examples

log = logging.getLogger("fusekit")


def variant_shape(stages: list[dict]) -> str:
    """The one batch shape of a variant's stages; ValueError when they differ."""
    shapes = {get_objective(s["objective"]).shape for s in stages}
    if len(shapes) != 1:
        raise ValueError(f"a preference variant's stages read one data shape, got {shapes}")
    return shapes.pop()


def needs_reference(stages: list[dict]) -> bool:
    return any(get_objective(s["objective"]).needs_reference for s in stages)


def train_preference_variant(
    variant: dict,
    data_path: str,
    reference_path: str | None,
    init_path: str,
    model_spec: dict,
    optim: dict,
    train_cfg: dict,
    seed: int,
    out: str,
    checkpoint_dir: str,
    threads: int = 1,
):
    """Train ``variant`` (its ``stages``: objective entries) from the model at
    ``init_path`` on the data table at ``data_path``; ``reference_path`` holds the
    reference log-probs when an objective needs them. Returns the training log.
    The output and checkpoint folders are checked writable first (PermissionError
    naming the folder), before the data is read.
    """
    from fusekit.backends.hf import load_tokenizer

    check_writable(Path(out).parent, checkpoint_dir)
    optim, train_cfg = resolve_settings(optim, train_cfg)
    if not variant.get("stages"):
        raise ValueError("a preference variant needs at least one stage")
    stages = [Stage.from_config(s) for s in variant["stages"]]
    shape = variant_shape(variant["stages"])
    tok = load_tokenizer(init_path, model_spec)
    examples = build_sequence_examples(
        tok,
        read_table(data_path),
        shape,
        optim["max_length"],
        model_spec.get("system_prompt"),
        data_path,
    )
    if needs_reference(variant["stages"]):
        if reference_path is None:
            raise ValueError(f"objectives {variant['stages']} need reference log-probs")
        attach_reference(examples, read_table(reference_path), reference_path)
    log.info("%d %s examples from %s", len(examples), shape, data_path)
    return train_fusion(
        init_path,
        model_spec,
        examples,
        stages,
        optim,
        train_cfg,
        out,
        checkpoint_dir,
        seed,
        threads,
    )

"""One fusion variant, file to file: examples from votes and aligned dumps, then the loop."""

from __future__ import annotations

import logging
from pathlib import Path

from fusekit.io import check_writable
from fusekit.train.examples import build_examples
from fusekit.train.heldout import HELDOUT_DEFAULTS, build_heldout
from fusekit.train.loop import (
    ORDER_DEFAULT,
    TRAINING_OBJECTIVE_DEFAULT,
    Stage,
    resolve_settings,
    train_fusion,
)

log = logging.getLogger("fusekit")
FUSION_DEFAULT = "min_ce"  # the schema's studies.<fusion study>.variants.<name>.fusion


def resolve_variant(study: dict, name: str) -> dict:
    """A variant with the study's defaults filled in: stages, sources, fusion, order."""
    spec = study.get("variants", {}).get(name)
    if spec is None:
        raise ValueError(f"unknown variant {name!r}; known: {sorted(study.get('variants', {}))}")
    return {
        "stages": spec["stages"] if "stages" in spec else study["stages"],
        "sources": spec["sources"] if "sources" in spec else study["sources"],
        "fusion": spec.get("fusion", FUSION_DEFAULT),
        "order": spec.get("order", ORDER_DEFAULT),
        "training_objective": study.get("training_objective", TRAINING_OBJECTIVE_DEFAULT),
    }


def scale_epochs(variant: dict, factor: int) -> dict:
    """``variant`` (a :func:`resolve_variant` result) with every stage's ``epochs``
    multiplied by ``factor`` (a positive integer); everything else, the stages' order and
    their shares of the budget included, unchanged: the budget check's longer run
    (:mod:`fusekit.report.budget_check`). Raises ValueError for a factor that is not a
    positive integer."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"budget factor {factor!r}: a positive integer")
    stages = [{**s, "epochs": s.get("epochs", 1) * factor} for s in variant["stages"]]
    return {**variant, "stages": stages}


def variant_epochs(variant: dict) -> float:
    """Passes over the prompts of all the variant's stages together."""
    return float(sum(s.get("epochs", 1) for s in variant["stages"]))


def train_variant(
    variant: dict,
    prompts_path: str,
    votes_path: str,
    inference_dumps: dict[str, str],
    training_dumps: dict[str, str],
    target_path: str,
    target_spec: dict,
    optim: dict,
    train_cfg: dict,
    seed: int,
    out: str,
    checkpoint_dir: str,
    threads: int = 1,
    heldout_path: str | None = None,
    heldout_max_examples: int = HELDOUT_DEFAULTS["max_examples"],
):
    """Train the target as ``variant`` says (a :func:`resolve_variant` result).

    The output and checkpoint folders are checked writable first (PermissionError
    naming the folder), then the held-out set is read (``heldout_path``, a prompt set
    none of whose prompts is in ``prompts_path``; at most ``heldout_max_examples`` rows:
    :func:`fusekit.train.heldout.build_heldout`), before the examples are built. Without
    ``heldout_path`` no held-out loss is evaluated.
    """
    from fusekit.backends.hf import load_tokenizer

    check_writable(Path(out).parent, checkpoint_dir)
    optim, train_cfg = resolve_settings(optim, train_cfg)
    objective = variant.get("training_objective", TRAINING_OBJECTIVE_DEFAULT)
    stages = [Stage.from_config(s, objective) for s in variant["stages"]]
    modes = {m for s in stages for m in s.modes}
    tok = load_tokenizer(target_path, target_spec)
    heldout = None
    if heldout_path is not None:
        heldout = build_heldout(
            tok, heldout_path, heldout_max_examples, optim["max_length"], prompts_path
        )
    examples = build_examples(
        tok,
        prompts_path,
        votes_path if "inference" in modes else None,
        inference_dumps if "inference" in modes else {},
        training_dumps if "training" in modes else {},
        variant["fusion"],
        optim["max_length"],
    )
    log.info(
        "%d examples (%d with an inference part, %d with a training part)",
        len(examples),
        sum(e.inference is not None for e in examples),
        sum(e.training is not None for e in examples),
    )
    return train_fusion(
        target_path,
        target_spec,
        examples,
        stages,
        optim,
        {**train_cfg, "order": variant["order"]},
        out,
        checkpoint_dir,
        seed,
        threads,
        heldout=heldout,
    )

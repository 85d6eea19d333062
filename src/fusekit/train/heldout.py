"""A held-out loss for fusion training (issue 17 item 3): is a variant still learning?

The loss of one training batch is too noisy to tell whether a run has converged
(:mod:`fusekit.report.convergence`). The held-out loss is the target's mean per-token
cross-entropy (nats per token: the SFT / CLM loss of :mod:`fusekit.losses.core`) on
(prompt, reference answer) pairs it never trains on, each formatted as training formats
its SFT examples (:func:`fusekit.chat.encode_example`: the target's chat template, the
reference followed by EOS, labels on the reference and EOS only). The mean is over
tokens: the sum of every labelled token's negative log-likelihood over their number.

:func:`fusekit.train.loop.train_fusion` evaluates it before the first step and after
every step that completes a pass over a stage's examples
(:func:`fusekit.train.loop.epoch_ends`) and writes the curve beside ``train_log.csv`` as
:data:`HELDOUT_FILE` (:data:`HELDOUT_COLUMNS`). The evaluation cannot change the
trained weights: no gradients (``torch.no_grad``), the model in eval mode and then back
in the mode it was in, and every random-number generator (python's ``random``, numpy's
global generator, torch's CPU generator and, once CUDA is initialised, every CUDA
generator) restored to its state before the evaluation (:func:`preserved_rng`), so a
training with and without it writes byte-identical weights (tests/test_training.py).
Every process of a multi-process run evaluates the whole set (the same forward passes on
every rank, as ZeRO-3 needs); the main process writes it.

The set: ``studies.<study>.heldout: {dataset: <a name in datasets>, max_examples: N}``
(:func:`resolve_heldout`; absent or null: no held-out loss). In the tiny world a
``tiny_corpus`` data set of the ``eval`` split restricted to the study's skills: the
corpus never puts an eval item in the fusion split (:mod:`fusekit.tiny.corpus`), and
:func:`build_heldout` refuses a held-out prompt that is also a training prompt.
"""

from __future__ import annotations

import contextlib
import logging
import random

import numpy as np

from fusekit.chat import encode_example
from fusekit.checks import DataError
from fusekit.train.sequences import Row

log = logging.getLogger("fusekit")
HELDOUT_FILE = "heldout_log.csv"
# step: optimizer steps done (0: before training); stage: the stage the step belongs to;
# stage_epoch: passes over that stage's examples done; epoch: passes over all stages
# done (the sum of the earlier stages' epochs and stage_epoch); loss: nats per token;
# tokens and examples: what the mean is over
HELDOUT_COLUMNS = ["step", "stage", "stage_epoch", "epoch", "loss", "tokens", "examples"]
HELDOUT_DEFAULTS = {"max_examples": 256}
HELDOUT_KEYS = ("dataset", *HELDOUT_DEFAULTS)


def resolve_heldout(spec: dict | None, study: str, datasets: dict) -> dict | None:
    """The held-out settings of ``study`` (its ``studies.<study>.heldout`` entry ``spec``)
    with :data:`HELDOUT_DEFAULTS` filled in; None when ``spec`` is None (no held-out
    loss). Raises ValueError naming the key: an unknown key, no ``dataset``, a dataset
    that is not a name in ``datasets`` (the config's ``datasets``), a ``max_examples``
    that is not a positive integer."""
    if spec is None:
        return None
    where = f"studies.{study}.heldout"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping with {list(HELDOUT_KEYS)}, got {spec!r}")
    unknown = sorted(set(spec) - set(HELDOUT_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; "
            f"known: {list(HELDOUT_KEYS)}"
        )
    if "dataset" not in spec:
        raise ValueError(f"{where}.dataset is missing: name the held-out prompt set")
    if spec["dataset"] not in datasets:
        raise ValueError(
            f"{where}.dataset {spec['dataset']!r} is not a data set; known: {sorted(datasets)}"
        )
    out = {**HELDOUT_DEFAULTS, **spec}
    n = out["max_examples"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{where}.max_examples must be a positive integer, got {n!r}")
    return out


def study_heldout(config: dict, study: str) -> dict | None:
    """The held-out settings of ``study`` in the workflow ``config``
    (:func:`resolve_heldout` of ``studies.<study>.heldout``); None when it has none."""
    spec = config["studies"][study].get("heldout")
    return resolve_heldout(spec, study, config.get("datasets", {}))


def heldout_inputs(config: dict, study: str) -> list[str]:
    """The held-out prompt set a training of ``study`` reads (the data set's prompt-set
    file, :func:`fusekit.workflow.results_root` ``/data/<dataset>.parquet``); none when
    the study has no held-out loss."""
    from fusekit.workflow import results_root

    spec = study_heldout(config, study)
    return [f"{results_root(config)}/data/{spec['dataset']}.parquet"] if spec else []


def spread_rows(n: int, m: int) -> list[int]:
    """``min(n, m)`` row positions of ``n``, evenly spaced from the first: ``i * n // m``.
    A set in skill blocks keeps each skill's share; no random number is drawn."""
    if m >= n:
        return list(range(n))
    return [i * n // m for i in range(m)]


def build_heldout(
    tokenizer,
    path: str,
    max_examples: int,
    max_length: int,
    train_prompts_path: str | None = None,
) -> list[Row]:
    """The held-out rows of the prompt set at ``path`` (columns prompt_id, prompt,
    reference, system; :func:`fusekit.data.read_prompts`), in the target's tokenization.

    At most ``max_examples`` rows, evenly spaced in file order (:func:`spread_rows`);
    each is ``prompt + reference + EOS`` as training encodes it, with labels on the
    reference and EOS. A row longer than ``max_length`` tokens is dropped (counted in
    the log), never cut. Raises :class:`fusekit.checks.DataError` naming the file and
    row: a malformed prompt set, a held-out prompt that is also in the training prompt
    set ``train_prompts_path`` (it would be trained on), or no row that fits."""
    from fusekit.data import read_prompts

    columns = ["prompt_id", "prompt", "reference", "system"]
    df = read_prompts(path, columns)
    if train_prompts_path is not None:
        train = read_prompts(train_prompts_path, ["prompt_id", "prompt"])
        seen = dict(zip(train.prompt, train.prompt_id, strict=True))
        for i, (pid, prompt) in enumerate(zip(df.prompt_id, df.prompt, strict=True)):
            if prompt in seen:
                raise DataError(
                    f"{path}: row {df.index[i]} (prompt_id {pid!r}): its prompt is training "
                    f"prompt {seen[prompt]!r} of {train_prompts_path}; a held-out loss needs "
                    "pairs the target never trains on"
                )
    picked = df.iloc[spread_rows(len(df), max_examples)]
    rows, too_long = [], 0
    for prompt, reference, system in zip(
        picked.prompt, picked.reference, picked.system, strict=True
    ):
        system = system if isinstance(system, str) and system else None
        enc = encode_example(tokenizer, prompt, reference, system)
        if len(enc.input_ids) > max_length:
            too_long += 1
        else:
            rows.append(Row(enc.input_ids, enc.n_prompt))
    if not rows:
        raise DataError(
            f"{path}: none of the {len(picked)} held-out rows fits optimizer.max_length = "
            f"{max_length} tokens (prompt + reference + EOS)"
        )
    log.info(
        "held-out set %s: %d of %d rows (max_examples %d), %d tokens scored%s",
        path,
        len(rows),
        len(df),
        max_examples,
        sum(r.n_tokens for r in rows),
        f", {too_long} longer than {max_length} tokens dropped" if too_long else "",
    )
    return rows


@contextlib.contextmanager
def preserved_rng():
    """Run the block and then put every random-number generator back as it was: python's
    ``random``, numpy's global generator, torch's CPU generator and, when CUDA is
    initialised, each CUDA device's (the generators a training step may draw from)."""
    import torch

    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def heldout_loss(model, rows: list[Row], batch_size: int, pad_id: int, device) -> tuple:
    """(mean per-token cross-entropy in nats, number of tokens) of ``model`` on ``rows``,
    in right-padded batches of ``batch_size`` (rows sorted by length, so that little is
    padding). No gradients, eval mode (restored afterwards) and no random number drawn
    (:func:`preserved_rng`)."""
    import torch

    from fusekit.batching import pad_right
    from fusekit.losses.core import IGNORE, shift, token_nll

    order = sorted(range(len(rows)), key=lambda i: len(rows[i].input_ids))
    was_training = model.training
    total, tokens = 0.0, 0
    with preserved_rng(), torch.no_grad():
        model.eval()
        try:
            for start in range(0, len(order), batch_size):
                batch = [rows[i] for i in order[start : start + batch_size]]
                ids, mask, labels = pad_right(
                    [r.input_ids for r in batch], pad_id, True, [r.n_prompt for r in batch]
                )
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                logits, labels = shift(logits, labels.to(device))
                total += float(token_nll(logits, labels).double().sum())
                tokens += int((labels != IGNORE).sum())
        finally:
            model.train(was_training)
    return total / tokens, tokens

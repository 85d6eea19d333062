"""Reference log-probabilities, computed once per (data set, reference model).

DPO-style objectives compare the policy with a frozen reference model (the SFT model a
preference stage starts from). Instead of holding a second model during training (TRL's
``precompute_ref_log_probs``), :func:`score_reference_logps` writes, for every row of
every example, ``log pi_ref(y | x)`` summed over the response tokens and the token count
(PREFERENCE_FUSION.md §1, §5.3), with the same tokenization, chat template and
length rule as training (:mod:`fusekit.train.sequences`). Training reads the file
(:func:`fusekit.train.sequences.attach_reference`), which checks that it matches.
"""

from __future__ import annotations

import logging

import pandas as pd

from fusekit.io import read_table, write_table
from fusekit.train.sequences import SequenceExample, build_sequence_examples

log = logging.getLogger("fusekit")
REFERENCE_COLUMNS = ("prompt_id", "row", "logp_sum", "n_tokens")


def reference_logps(
    model, examples: list[SequenceExample], pad_id: int, batch_size: int = 16
) -> pd.DataFrame:
    """``log pi(y|x)`` sums (nats) and token counts of every row of ``examples`` under
    ``model`` (eval mode, no gradients); columns :data:`REFERENCE_COLUMNS`."""
    import torch
    from tqdm.auto import tqdm

    from fusekit.losses.preference import sequence_logps
    from fusekit.train.sequences import collate_rows, row_order

    out = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(examples), batch_size), desc="reference", mininterval=5):
            batch = examples[start : start + batch_size]
            ids, mask, labels, _ = collate_rows(batch, pad_id)
            logits = model(
                input_ids=ids.to(model.device), attention_mask=mask.to(model.device)
            ).logits
            logp, n = sequence_logps(logits, labels.to(model.device))
            order = row_order(batch)
            for (b, role), lp, nt in zip(order, logp.tolist(), n.tolist(), strict=True):
                out.append((batch[b].prompt_id, role, lp, int(nt)))
    return pd.DataFrame(out, columns=list(REFERENCE_COLUMNS))


def score_reference_logps(
    data_path: str,
    shape: str,
    model_path: str,
    model_spec: dict,
    max_length: int,
    out: str,
    batch_size: int = 16,
    threads: int = 1,
) -> pd.DataFrame:
    """File to file: the reference model at ``model_path`` on the ``shape`` examples of
    the data table at ``data_path``; writes :data:`REFERENCE_COLUMNS` to ``out``."""
    from fusekit.backends.hf import load_causal_lm, load_tokenizer

    tok = load_tokenizer(model_path, model_spec)
    table = read_table(data_path)
    examples = build_sequence_examples(
        tok, table, shape, max_length, model_spec.get("system_prompt"), data_path
    )
    model = load_causal_lm(model_path, model_spec, threads)
    frame = reference_logps(model, examples, tok.pad_token_id, batch_size)
    write_table(frame, out)
    log.info(
        "reference log-probs of %s under %s: %d examples, %d rows, mean %.2f nats per token",
        data_path,
        model_path,
        len(examples),
        len(frame),
        frame.logp_sum.sum() / max(frame.n_tokens.sum(), 1),
    )
    return frame

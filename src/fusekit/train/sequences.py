"""Training examples of the preference studies: whole responses, no teacher rows.

A :class:`SequenceExample` is one prompt's rows in the order its objective's batch
layout reads them (:data:`fusekit.losses.registry.SHAPES`): one response for ``sft``;
(chosen, rejected) for ``pair``; (y_ws, y_wt, y_l) for ``quadruple``. Each row is the
prompt and response in the target's chat template with labels -100 on the prompt
(:func:`fusekit.chat.encode_example`: the response is followed by EOS, as generation
produces it). A row longer than ``max_length`` drops the whole example (counted and
logged), never cut: a cut response would be scored as if whole.

:func:`collate_rows` lays a micro-batch out as the registry expects: role-major for
pairs and quadruples (all chosen, then all rejected), with the reference model's
log-probability sums (:mod:`fusekit.train.reference`) in the same order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from fusekit.chat import encode_example

log = logging.getLogger("fusekit")

# the response columns of each shape, in the layout's row order
ROLES: dict[str, tuple[str, ...]] = {
    "sft": ("response",),
    "pair": ("chosen_response", "rejected_response"),
    "quadruple": ("ws_response", "wt_response", "l_response"),  # fusekit.preference.wrpo
}


@dataclass
class Row:
    input_ids: list[int]
    n_prompt: int  # the first n_prompt ids are the prompt; the rest the response + EOS

    @property
    def n_tokens(self) -> int:
        """Response tokens scored (the labels that are not -100)."""
        return len(self.input_ids) - self.n_prompt


@dataclass
class SequenceExample:
    prompt_id: str
    shape: str  # a key of ROLES
    rows: list[Row]
    ref_logp: list[float] | None = None  # one per row, from the reference file
    extras: dict = field(default_factory=dict)


def _row(tokenizer, prompt: str, response: str, system: str | None) -> Row:
    enc = encode_example(tokenizer, prompt, response, system)
    return Row(enc.input_ids, enc.n_prompt)


def build_sequence_examples(
    tokenizer,
    table: pd.DataFrame,
    shape: str,
    max_length: int,
    system: str | None = None,
    where: str = "data",
) -> list[SequenceExample]:
    """Examples of ``shape`` from a data table with ``prompt_id``, ``prompt`` and the
    shape's response columns (:data:`ROLES`). ``where`` names the table in errors.
    Raises ValueError for an unknown shape, missing columns or repeated prompt ids."""
    if shape not in ROLES:
        raise ValueError(f"unknown example shape {shape!r}; known: {sorted(ROLES)}")
    need = ["prompt_id", "prompt", *ROLES[shape]]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing} for {shape} examples")
    if table.prompt_id.duplicated().any():
        pid = table.prompt_id[table.prompt_id.duplicated()].iloc[0]
        raise ValueError(f"{where}: prompt_id {pid!r} appears more than once")
    out, too_long = [], 0
    for rec in table.itertuples(index=False):
        rows = [_row(tokenizer, rec.prompt, getattr(rec, c), system) for c in ROLES[shape]]
        if any(len(r.input_ids) > max_length for r in rows):
            too_long += 1
            continue
        out.append(SequenceExample(str(rec.prompt_id), shape, rows))
    if too_long:
        log.warning(
            "%s: %d of %d examples dropped: a prompt + response longer than %d tokens",
            where,
            too_long,
            len(table),
            max_length,
        )
    return out


def attach_reference(
    examples: list[SequenceExample], ref: pd.DataFrame, where: str = "reference log-probs"
) -> None:
    """Give each example its reference log-probability sums (``ref``: prompt_id, row,
    logp_sum, n_tokens, as :func:`fusekit.train.reference.reference_logps` writes them).

    Raises ValueError naming the prompt when a row is missing or its token count differs
    from the example's (the file was computed on other data or another tokenization)."""
    table = {
        (str(p), int(r)): (float(lp), int(n))
        for p, r, lp, n in zip(ref.prompt_id, ref.row, ref.logp_sum, ref.n_tokens, strict=True)
    }
    for e in examples:
        values = []
        for i, row in enumerate(e.rows):
            got = table.get((e.prompt_id, i))
            n = row.n_tokens
            if got is None:
                raise ValueError(f"{where}: no row {i} for prompt {e.prompt_id!r}")
            if got[1] != n:
                raise ValueError(
                    f"{where}: prompt {e.prompt_id!r} row {i} has {got[1]} tokens, the "
                    f"training data {n}: computed on other data or another tokenizer"
                )
            values.append(got[0])
        e.ref_logp = values


def collate_rows(examples: list[SequenceExample], pad_id: int):
    """Right-padded input_ids, attention_mask, labels [N, L] of the examples' rows in the
    registry's layout (role-major), and ref_logp [N] (None when any example lacks it)."""
    import torch

    from fusekit.batching import pad_right

    n_roles = len(examples[0].rows)
    rows = [e.rows[r] for r in range(n_roles) for e in examples]
    ids, mask, labels = pad_right(
        [r.input_ids for r in rows], pad_id, True, [r.n_prompt for r in rows]
    )
    ref = None
    if all(e.ref_logp is not None for e in examples):
        ref = torch.tensor(
            [e.ref_logp[r] for r in range(n_roles) for e in examples], dtype=torch.float32
        )
    return ids, mask, labels, ref

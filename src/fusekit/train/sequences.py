"""Training examples of the preference studies: whole responses, no teacher rows.

A :class:`SequenceExample` is one prompt's rows in the order its objective's batch
layout reads them (:data:`fusekit.losses.registry.SHAPES`): one response for ``sft``;
(chosen, rejected) for ``pair``; (y_ws, y_wt, y_l) for ``quadruple``; FuseRL's K sources'
best responses for ``weighted_sft`` and each source's (best, worst) for ``group``, built
from a table with one line per (prompt, source) (:mod:`fusekit.preference.fuserl`), with
the sources' reward scores and a mask (a source without a response, or without a pair,
gets placeholder rows: the empty response, weight 0). Each row is the
prompt and response in the target's chat template with labels -100 on the prompt
(:func:`fusekit.chat.encode_example`: the response is followed by EOS, as generation
produces it). A row longer than ``max_length`` drops the whole example (counted and
logged), never cut: a cut response would be scored as if whole.

:func:`collate_rows` lays a micro-batch out as the registry expects: role-major for
pairs and quadruples (all chosen, then all rejected), with the reference model's
log-probability sums (:mod:`fusekit.train.reference`) in the same order; FuseRL's
shapes are prompt-major (all rows of prompt 0, then prompt 1, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from fusekit.chat import encode_example
from fusekit.checks import check_finite, check_not_empty, check_prompt_ids, check_text

log = logging.getLogger("fusekit")

# the response columns of each shape, in the layout's row order
ROLES: dict[str, tuple[str, ...]] = {
    "sft": ("response",),
    "pair": ("chosen_response", "rejected_response"),
    "quadruple": ("ws_response", "wt_response", "l_response"),  # fusekit.preference.wrpo
}


# FuseRL's shapes: one table line per (prompt, source); each source gives these rows
GROUP_ROLES: dict[str, tuple[str, ...]] = {
    "weighted_sft": ("best_response",),
    "group": ("best_response", "worst_response"),
}
PROMPT_MAJOR = frozenset(GROUP_ROLES)


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
    Raises ValueError for an unknown shape or missing columns, and
    :class:`fusekit.checks.DataError` naming ``where``, the row and column for an empty
    table, a missing or repeated prompt id, a prompt or response that is not text, or
    (FuseRL's shapes) a score that is not finite."""
    if shape in GROUP_ROLES:
        return _grouped_examples(tokenizer, table, shape, max_length, system, where)
    if shape not in ROLES:
        known = sorted([*ROLES, *GROUP_ROLES])
        raise ValueError(f"unknown example shape {shape!r}; known: {known}")
    need = ["prompt_id", "prompt", *ROLES[shape]]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing} for {shape} examples")
    check_not_empty(table, where, f"{shape} examples")
    check_prompt_ids(table, where)
    check_text(table, ["prompt", *ROLES[shape]], where)
    out, too_long = [], 0
    for rec in table.itertuples(index=False):
        rows = [_row(tokenizer, rec.prompt, getattr(rec, c), system) for c in ROLES[shape]]
        if any(len(r.input_ids) > max_length for r in rows):
            too_long += 1
            continue
        out.append(SequenceExample(str(rec.prompt_id), shape, rows))
    _warn_too_long(where, too_long, len(table), max_length)
    return out


def _warn_too_long(where: str, n: int, total: int, max_length: int) -> None:
    if n:
        log.warning(
            "%s: %d of %d examples dropped: a prompt + response longer than %d tokens",
            where,
            n,
            total,
            max_length,
        )


def _grouped_examples(tokenizer, table, shape, max_length, system, where):
    """FuseRL examples: per prompt, K = every source of the table (sorted) in order;
    ``weighted_sft`` rows = each source's best response, extras ``scores`` [K] (best
    score) and ``mask`` [K] (the source answered); ``group`` rows = (best, worst) per
    source, extras ``rewards`` [K][2] and ``mask`` [K] (the source has a pair).
    Prompts where no source is kept are dropped (counted and logged)."""
    roles = GROUP_ROLES[shape]
    need = ["prompt_id", "prompt", "model", "best_score", *roles]
    if shape == "group":
        need += ["worst_score", "has_pair"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing} for {shape} examples")
    check_not_empty(table, where, f"{shape} lines")
    check_prompt_ids(table, where, unique=False)
    check_text(table, ["prompt", "model", "best_response"], where)
    check_finite(table, "best_score", where, context=("model",))
    if shape == "group":
        pairs = table[table["has_pair"].astype(bool)]
        check_text(pairs, ["worst_response"], where)
        check_finite(pairs, "worst_score", where, context=("model",))
    key = table[["prompt_id", "model"]].astype(str)
    if key.duplicated().any():
        pid, m = key[key.duplicated()].iloc[0]
        raise ValueError(f"{where}: prompt {pid!r} has two lines for source {m!r}")
    sources = sorted(table["model"].astype(str).unique())
    out, too_long, none_kept, n_prompts = [], 0, 0, 0
    for pid, lines in table.groupby(table["prompt_id"].astype(str), sort=True):
        n_prompts += 1
        by_source = {str(r.model): r for r in lines.itertuples(index=False)}
        prompt = lines["prompt"].iloc[0]
        rows, mask, values = [], [], []
        for src in sources:
            r = by_source.get(src)
            kept = r is not None and (shape == "weighted_sft" or bool(r.has_pair))
            mask.append(kept)
            for role in roles:
                rows.append(_row(tokenizer, prompt, getattr(r, role) if kept else "", system))
            if shape == "weighted_sft":
                values.append(float(r.best_score) if kept else 0.0)
            else:
                values.append([float(r.best_score), float(r.worst_score)] if kept else [0.0, 0.0])
        if not any(mask):
            none_kept += 1
            continue
        if any(len(r.input_ids) > max_length for r in rows):
            too_long += 1
            continue
        extras = {"scores" if shape == "weighted_sft" else "rewards": values, "mask": mask}
        out.append(SequenceExample(pid, shape, rows, extras=extras))
    if none_kept:
        log.warning("%s: %d prompts dropped: no source kept (%s)", where, none_kept, shape)
    _warn_too_long(where, too_long, n_prompts, max_length)
    return out


def row_order(examples: list[SequenceExample]) -> list[tuple[int, int]]:
    """(example index, row index) of every row of a collated micro-batch, in the
    registry's layout: role-major for sft/pair/quadruple, prompt-major for FuseRL."""
    n_rows = len(examples[0].rows)
    if examples[0].shape in PROMPT_MAJOR:
        return [(b, i) for b in range(len(examples)) for i in range(n_rows)]
    return [(b, i) for i in range(n_rows) for b in range(len(examples))]


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
    registry's layout (:func:`row_order`), and ref_logp [N] (None when any example lacks
    it)."""
    import torch

    from fusekit.batching import pad_right

    order = row_order(examples)
    rows = [examples[b].rows[i] for b, i in order]
    ids, mask, labels = pad_right(
        [r.input_ids for r in rows], pad_id, True, [r.n_prompt for r in rows]
    )
    ref = None
    if all(e.ref_logp is not None for e in examples):
        ref = torch.tensor([examples[b].ref_logp[i] for b, i in order], dtype=torch.float32)
    return ids, mask, labels, ref


def collate_extras(examples: list[SequenceExample]) -> dict:
    """FuseRL's per-prompt tensors of a micro-batch: ``scores`` [B, K] (weighted_sft) or
    ``rewards`` [B, K, 2] (group), and ``source_mask`` [B, K] bool; empty for other
    shapes."""
    import torch

    if examples[0].shape not in PROMPT_MAJOR:
        return {}
    name = "scores" if examples[0].shape == "weighted_sft" else "rewards"
    return {
        name: torch.tensor([e.extras[name] for e in examples], dtype=torch.float32),
        "source_mask": torch.tensor([e.extras["mask"] for e in examples], dtype=torch.bool),
    }

"""Training examples for fusion, in the target's tokenization.

An example has up to two parts, each (input_ids, labels, topk_ids, topk_logprobs)
with teacher rows at the position of the token they predict:

- ``inference``: the voted response, with the winning source's aligned
  distribution (ProFuser's inference mode);
- ``training``: the reference answer, with the sources' aligned distributions
  fused by MinCE or AvgCE (FuseLLM / ProFuser's training mode).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fusekit.chat import encode_prompt
from fusekit.checks import DataError, check_finite, check_same_k, check_same_prompts
from fusekit.logits import read_dump
from fusekit.losses import avg_ce_fusion, min_ce_fusion

IGNORE = -100
FUSIONS = {"min_ce": min_ce_fusion, "avg_ce": avg_ce_fusion}
log = logging.getLogger("fusekit")


@dataclass
class Part:
    input_ids: list[int]
    labels: list[int]
    topk_ids: np.ndarray  # [len, k] int32
    topk_logprobs: np.ndarray  # [len, k] float32


@dataclass
class Example:
    prompt_id: str
    inference: Part | None
    training: Part | None
    rm_score: float = 0.0  # for the RMScore curriculum
    gt_length: int = 0  # for the GTLen curriculum


def _part(prompt_ids: list[int], row_ids, row_ids_topk, row_lps, max_length: int) -> Part | None:
    """Prompt + response as one part; None when it is longer than ``max_length`` (the
    part is dropped, never cut: a cut would train on a response the teacher rows and
    MinCE did not see whole)."""
    if len(prompt_ids) + len(row_ids) > max_length:
        return None
    n_p = len(prompt_ids)
    k = row_ids_topk.shape[1]
    ids = prompt_ids + list(row_ids)
    labels = [IGNORE] * n_p + list(row_ids)
    topk = np.full((len(ids), k), -1, dtype=np.int32)
    lps = np.full((len(ids), k), -np.inf, dtype=np.float32)
    topk[n_p:] = row_ids_topk
    lps[n_p:] = row_lps
    return Part(ids, labels, topk, lps)


def build_examples(
    tokenizer,
    prompts_path: str,
    votes_path: str | None,
    inference_dumps: dict[str, str],
    training_dumps: dict[str, str],
    fusion: str = "min_ce",
    max_length: int = 2048,
) -> list[Example]:
    """Join prompts, votes and aligned dumps (keyed by source) into examples.

    Sources missing from ``inference_dumps`` contribute no inference part (a
    source-subset variant); prompts without any part are dropped. The training
    part fuses the sources' rows (MinCE: :func:`fusekit.losses.min_ce_index`)
    over the prompts every source kept (:func:`fusekit.training_mode.common_rows`).
    A part longer than ``max_length`` target tokens is dropped and counted.
    Inputs are checked before any example is built, each error a
    :class:`fusekit.checks.DataError` naming the file and row: the prompt set
    (:func:`fusekit.data.read_prompts`), the votes (one row per prompt, finite votes,
    every prompt in the prompt set), every dump (:func:`fusekit.logits.read_dump`; its
    prompts in the prompt set; an inference dump's rows only on prompts the votes give
    to its source; top-k ids within the target tokenizer; one ``k`` for all dumps).
    Raises ValueError naming the dump when the sources' target tokens differ.
    """
    from fusekit.data import read_prompts
    from fusekit.inference_mode import read_votes
    from fusekit.training_mode import common_rows

    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; known: {sorted(FUSIONS)}")
    prompts = read_prompts(prompts_path, ["prompt_id", "prompt", "reference", "system"])
    read = {p: read_dump(p) for p in [*inference_dumps.values(), *training_dumps.values()]}
    _check_dumps(read, prompts, prompts_path, len(tokenizer))
    too_long = {"inference": 0, "training": 0}
    infer: dict[str, Part] = {}
    score: dict[str, float] = {}
    votes = None
    if votes_path:
        votes = read_votes(votes_path, ["prompt_id", "model", "votes"])
        check_finite(votes, "votes", votes_path)
        check_same_prompts(votes.prompt_id, prompts.prompt_id, votes_path, prompts_path)
        score = dict(zip(votes.prompt_id, votes.votes.astype(float), strict=True))
        winner = dict(zip(votes.prompt_id, votes.model, strict=True))
        for source, path in inference_dumps.items():
            rows, _ = read[path]
            for i, r in enumerate(rows):
                if winner.get(r["prompt_id"]) != source:
                    got = winner.get(r["prompt_id"])
                    why = "has no vote" if got is None else f"was won by {got!r}"
                    raise DataError(
                        f"{path}: row {i} (prompt_id {r['prompt_id']!r}) is an inference dump "
                        f"row of {source!r}, but that prompt {why} in {votes_path}; were the "
                        "dumps built from these votes?"
                    )
    elif inference_dumps:
        raise ValueError("inference dumps need the votes file (votes_path)")
    prompt_ids = {
        pid: encode_prompt(tokenizer, p, s or None)
        for pid, p, s in zip(prompts.prompt_id, prompts.prompt, prompts.system, strict=True)
    }
    lengths = dict(zip(prompts.prompt_id, prompts.reference.str.len(), strict=True))
    if votes is not None:
        for path in inference_dumps.values():
            rows, _ = read[path]
            for r in rows:
                part = _part(
                    prompt_ids[r["prompt_id"]],
                    r["token_ids"],
                    r["topk_ids"],
                    r["topk_logprobs"],
                    max_length,
                )
                if part is None:
                    too_long["inference"] += 1
                else:
                    infer[r["prompt_id"]] = part
    train: dict[str, Part] = {}
    if training_dumps:
        per_source, _ = common_rows(training_dumps, read)
        names = list(per_source)
        for pid in sorted(per_source[names[0]]):
            rows = [per_source[n][pid] for n in names]
            for n, r in zip(names[1:], rows[1:], strict=True):
                if r["token_ids"] != rows[0]["token_ids"]:
                    raise ValueError(
                        f"{training_dumps[n]}: prompt {pid!r} has other target tokens than "
                        f"{training_dumps[names[0]]}; aligned dumps of one prompt set must "
                        "share the target's tokenization of the reference"
                    )
            try:
                ids, lps = FUSIONS[fusion](
                    [(r["topk_ids"], r["topk_logprobs"]) for r in rows],
                    [r["ce"] for r in rows],
                    names,
                )
            except ValueError as err:
                raise ValueError(
                    f"prompt {pid!r} in {list(training_dumps.values())}: {err}"
                ) from err
            part = _part(prompt_ids[pid], rows[0]["token_ids"], ids, lps, max_length)
            if part is None:
                too_long["training"] += 1
            else:
                train[pid] = part
    for mode, n in too_long.items():
        if n:
            log.warning(
                "%d %s parts dropped: prompt + response longer than %d", n, mode, max_length
            )
    keys = sorted(set(infer) | set(train))
    return [
        Example(pid, infer.get(pid), train.get(pid), score.get(pid, 0.0), int(lengths.get(pid, 0)))
        for pid in keys
    ]


def _check_dumps(
    read: dict[str, tuple[list[dict], dict]], prompts, prompts_path: str, n_target: int
) -> None:
    """Aligned dumps against the prompt set and the target tokenizer: every row's prompt
    in the prompt set, top-k and token ids below ``n_target``, one ``k`` for all."""
    ks = {p: int(meta.get("k", 0)) for p, (rows, meta) in read.items() if rows}
    check_same_k(ks, "every dump one variant trains on must keep the same top-k")
    for path, (rows, meta) in read.items():
        check_same_prompts([r["prompt_id"] for r in rows], prompts.prompt_id, path, prompts_path)
        if meta.get("vocab", "target") != "target":
            raise DataError(
                f"{path}: a dump in the {meta.get('vocab')!r} vocabulary; training needs "
                "dumps aligned to the target (align_logits)"
            )
        for i, r in enumerate(rows):
            top = int(r["topk_ids"].max(initial=-1))
            tok = max(r["token_ids"], default=0)
            if top >= n_target or tok >= n_target:
                col, v = ("topk_ids", top) if top >= n_target else ("token_ids", tok)
                raise DataError(
                    f"{path}: row {i} (prompt_id {r['prompt_id']!r}), column {col!r}: id {v} "
                    f"outside the target tokenizer's {n_target} ids; was this dump aligned to "
                    "this target?"
                )


def collate(parts: list[Part], pad_id: int):
    """Right-pad parts into tensors: input_ids, attention_mask, labels, topk_ids, topk_logprobs."""
    import torch

    width = max(len(p.input_ids) for p in parts)
    k = parts[0].topk_ids.shape[1]
    b = len(parts)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    labels = torch.full((b, width), IGNORE, dtype=torch.long)
    topk = torch.full((b, width, k), -1, dtype=torch.long)
    lps = torch.full((b, width, k), float("-inf"))
    for i, p in enumerate(parts):
        n = len(p.input_ids)
        ids[i, :n] = torch.tensor(p.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(p.labels)
        topk[i, :n] = torch.from_numpy(p.topk_ids)
        lps[i, :n] = torch.from_numpy(p.topk_logprobs)
    return ids, mask, labels, topk, lps

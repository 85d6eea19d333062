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
from fusekit.io import read_table
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
    Raises ValueError naming the dump when the sources' target tokens differ.
    """
    from fusekit.training_mode import common_rows

    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; known: {sorted(FUSIONS)}")
    prompts = read_table(prompts_path, ["prompt_id", "prompt", "reference", "system"])
    prompt_ids = {
        pid: encode_prompt(tokenizer, p, s or None)
        for pid, p, s in zip(prompts.prompt_id, prompts.prompt, prompts.system, strict=True)
    }
    lengths = dict(zip(prompts.prompt_id, prompts.reference.str.len(), strict=True))
    too_long = {"inference": 0, "training": 0}
    infer: dict[str, Part] = {}
    score: dict[str, float] = {}
    if votes_path:
        votes = read_table(votes_path, ["prompt_id", "model", "votes"])
        score = dict(zip(votes.prompt_id, votes.votes.astype(float), strict=True))
        for path in inference_dumps.values():
            rows, _ = read_dump(path)
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
        per_source, _ = common_rows(training_dumps)
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

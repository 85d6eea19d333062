"""Padding token-id sequences into batches, once for every stage."""

from __future__ import annotations

import torch


def pad_right(
    seqs: list[list[int]], pad_id: int, fill_labels: bool = False, n_prompt: list[int] | None = None
):
    """Right-pad to the longest sequence: (input_ids, attention_mask, labels).

    With ``fill_labels``, labels copy the ids after each sequence's first
    ``n_prompt[i]`` tokens and are -100 on prompt and padding; else None.
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long) if fill_labels else None
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        if labels is not None:
            labels[i, n_prompt[i] : len(s)] = torch.tensor(s[n_prompt[i] :])
    return ids, mask, labels


def pad_left(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad for generation: (input_ids, attention_mask)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, width - len(s) :] = torch.tensor(s)
        mask[i, width - len(s) :] = 1
    return ids, mask

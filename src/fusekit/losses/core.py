"""SFT, sparse KL and the fusion objectives built from them (each written once)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def shift(logits: torch.Tensor, labels: torch.Tensor, *targets: torch.Tensor):
    """Align predictions with what they predict: logits[:, :-1] vs labels[:, 1:] (and the
    same for each per-token target tensor)."""
    return (logits[:, :-1], labels[:, 1:], *(t[:, 1:] for t in targets))


def _mean_over(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    return (values * mask).sum() / n.clamp(min=1)


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100."""
    logits, labels = shift(logits, labels)
    if not (labels != IGNORE).any():
        return logits.sum() * 0.0
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )


def sparse_kl(
    logits: torch.Tensor, labels: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor
) -> torch.Tensor:
    """Token-level KL(P_S || P_T) on the teacher's support, averaged over labelled positions.

    The teacher's kept entries are renormalised to a distribution q; the student's
    distribution is restricted to the same ids and renormalised there, so the
    KL is zero exactly when the student matches the teacher on its support.
    Restricting makes the student's full-vocabulary normaliser cancel: only the
    logits at the k teacher ids are gathered ([B, L, k]); no dense teacher
    tensor and no second log-softmax over the vocabulary is built.
    """
    logits, labels, topk_ids, topk_logprobs = shift(logits, labels, topk_ids, topk_logprobs)
    valid = topk_ids >= 0
    mask = (labels != IGNORE) & valid.any(-1)
    neg_inf = torch.finfo(torch.float32).min
    t_lp = topk_logprobs.float().masked_fill(~valid, neg_inf)
    q_log = t_lp - torch.logsumexp(t_lp, -1, keepdim=True)
    s_lp = logits.gather(-1, topk_ids.clamp(min=0).long()).float().masked_fill(~valid, neg_inf)
    s_log = s_lp - torch.logsumexp(s_lp, -1, keepdim=True)
    q = q_log.exp() * valid
    kl = (q * (q_log - s_log)).masked_fill(~valid, 0.0).sum(-1)
    return _mean_over(mask, kl)


def fuse_loss(logits, labels, topk_ids, topk_logprobs, beta: float) -> torch.Tensor:
    """ProFuser's L_Fuse = L_SFT + beta * KL(P_S || P_T)."""
    return sft_loss(logits, labels) + beta * sparse_kl(logits, labels, topk_ids, topk_logprobs)


def fusellm_loss(logits, labels, topk_ids, topk_logprobs, lam: float) -> torch.Tensor:
    """FuseLLM: lambda * L_CLM + (1 - lambda) * L_fuse, L_fuse the KL to the fused distribution."""
    clm = sft_loss(logits, labels)
    if lam >= 1.0:
        return clm
    return lam * clm + (1 - lam) * sparse_kl(logits, labels, topk_ids, topk_logprobs)


def profuser_loss(
    infer: tuple | None,
    train: tuple | None,
    beta: float,
    lam: float,
    w_inference: float,
    w_training: float,
) -> torch.Tensor:
    """ProFuser's L = w1 * L_InferFuse + w2 * L_TrainFuse.

    ``infer`` / ``train``: (logits, labels, topk_ids, topk_logprobs) on the voted
    output and on the reference, or None when the stage leaves that mode out.
    L_InferFuse is :func:`fuse_loss` with ``beta``; L_TrainFuse is
    :func:`fusellm_loss` with ``lam``.
    """
    if infer is None and train is None:
        raise ValueError("a fusion step needs at least one mode")
    total = 0.0
    if infer is not None:
        total = total + w_inference * fuse_loss(*infer, beta=beta)
    if train is not None:
        total = total + w_training * fusellm_loss(*train, lam=lam)
    return total

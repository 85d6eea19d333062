"""SFT, sparse KL and the fusion objectives built from them (each written once)."""

from __future__ import annotations

import torch

IGNORE = -100


def shift(logits: torch.Tensor, labels: torch.Tensor, *targets: torch.Tensor):
    """Align predictions with what they predict: logits[:, :-1] vs labels[:, 1:] (and the
    same for each per-token target tensor)."""
    return (logits[:, :-1], labels[:, 1:], *(t[:, 1:] for t in targets))


def _mean_over(mask: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    n = mask.sum()
    return (values * mask).sum() / n.clamp(min=1)


def token_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax over the vocabulary in float32 (what every loss gathers from)."""
    return torch.log_softmax(logits.float(), dim=-1)


def sft_loss(
    logits: torch.Tensor, labels: torch.Tensor, logp: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100."""
    logits, labels = shift(logits, labels)
    logp = token_log_probs(logits) if logp is None else logp[:, :-1]
    mask = labels != IGNORE
    nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return _mean_over(mask, nll)


def sparse_kl(
    logits: torch.Tensor,
    labels: torch.Tensor,
    topk_ids: torch.Tensor,
    topk_logprobs: torch.Tensor,
    logp: torch.Tensor | None = None,
) -> torch.Tensor:
    """Token-level KL(P_S || P_T) on the teacher's support, averaged over labelled positions.

    The teacher's kept entries are renormalised to a distribution q; the student's
    log-probs at the same ids are renormalised over that support too, so the KL
    is zero exactly when the student matches the teacher there. Only a
    [B, L, k] gather is built, never a dense teacher tensor.
    """
    logits, labels, topk_ids, topk_logprobs = shift(logits, labels, topk_ids, topk_logprobs)
    logp = token_log_probs(logits) if logp is None else logp[:, :-1]
    valid = topk_ids >= 0
    mask = (labels != IGNORE) & valid.any(-1)
    neg_inf = torch.finfo(torch.float32).min
    t_lp = topk_logprobs.float().masked_fill(~valid, neg_inf)
    q_log = t_lp - torch.logsumexp(t_lp, -1, keepdim=True)
    s_lp = logp.gather(-1, topk_ids.clamp(min=0).long()).masked_fill(~valid, neg_inf)
    s_log = s_lp - torch.logsumexp(s_lp, -1, keepdim=True)
    q = q_log.exp() * valid
    kl = (q * (q_log - s_log)).masked_fill(~valid, 0.0).sum(-1)
    return _mean_over(mask, kl)


def fuse_loss(logits, labels, topk_ids, topk_logprobs, beta: float) -> torch.Tensor:
    """ProFuser's L_Fuse = L_SFT + beta * KL(P_S || P_T)."""
    logp = token_log_probs(logits)
    return sft_loss(logits, labels, logp) + beta * sparse_kl(
        logits, labels, topk_ids, topk_logprobs, logp
    )


def fusellm_loss(logits, labels, topk_ids, topk_logprobs, lam: float) -> torch.Tensor:
    """FuseLLM: lambda * L_CLM + (1 - lambda) * L_fuse, L_fuse the KL to the fused distribution."""
    logp = token_log_probs(logits)
    clm = sft_loss(logits, labels, logp)
    if lam >= 1.0:
        return clm
    return lam * clm + (1 - lam) * sparse_kl(logits, labels, topk_ids, topk_logprobs, logp)


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

"""SFT, sparse KL and the fusion objectives built from them (each written once).

Every term reads the student's full-vocabulary log-softmax; a fusion step
computes it once (:func:`sft_and_kl`) and reads the label's and the teacher
ids' log-probabilities from it.
"""

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


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """The student's full-vocabulary log-probabilities in float32: [..., V] -> [..., V]."""
    return torch.log_softmax(logits.float(), dim=-1)


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position negative log-likelihood (nats), the one cross-entropy of the library
    (torch's fused ``cross_entropy``): [..., V] logits and [...] targets -> [...].
    Positions whose target is -100 give 0."""
    flat = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    )
    return flat.view(targets.shape)


def mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cross-entropy (nats per token) of ``targets`` [n] under ``logits`` [n, V], as
    a float: what a logit dump's ``ce`` column holds and MinCE compares."""
    return token_nll(logits, targets).mean().item()


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100."""
    logits, labels = shift(logits, labels)
    return _mean_over(labels != IGNORE, token_nll(logits, labels))


def _kl_terms(labels, topk_ids, topk_logprobs, logp) -> torch.Tensor:
    """Mean KL(P_S || P_T) over labelled positions with a teacher row (shifted inputs;
    ``logp`` the student's log-softmax)."""
    valid = topk_ids >= 0
    mask = (labels != IGNORE) & valid.any(-1)
    floor = torch.finfo(torch.float32).min
    t_lp = topk_logprobs.float().masked_fill(~valid, floor)
    q_log = t_lp - torch.logsumexp(t_lp, -1, keepdim=True)
    s_log = logp.gather(-1, topk_ids.clamp(min=0).long())
    kl = (q_log.exp() * (q_log - s_log)).masked_fill(~valid, 0.0).sum(-1)
    return _mean_over(mask, kl)


def sparse_kl(
    logits: torch.Tensor, labels: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor
) -> torch.Tensor:
    """Token-level KL(P_S || P_T), averaged over labelled positions with a teacher row.

    P_S (teacher): the kept top-k entries renormalised to a distribution q over
    its ids (the sparse fused distribution of FuseLLM / ProFuser). P_T (student):
    the full-vocabulary softmax of ``logits``, read at the teacher's ids:
    ``KL = sum_i q_i (log q_i - log p_T(i))``. A one-hot teacher row gives the
    student's cross-entropy of that token. Shapes: ``logits`` [B, L, V],
    ``labels`` [B, L], ``topk_ids`` / ``topk_logprobs`` [B, L, k] (-1 / -inf padding).
    Source: ProFuser Eq. 4's KL term; FuseLLM Eq. (fusion loss).
    """
    logits, labels, topk_ids, topk_logprobs = shift(logits, labels, topk_ids, topk_logprobs)
    return _kl_terms(labels, topk_ids, topk_logprobs, log_softmax(logits))


def sft_and_kl(logits, labels, topk_ids, topk_logprobs) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sft_loss` and :func:`sparse_kl` of the same batch from one log-softmax."""
    logits, labels, topk_ids, topk_logprobs = shift(logits, labels, topk_ids, topk_logprobs)
    logp = log_softmax(logits)
    nll = torch.nn.functional.nll_loss(
        logp.reshape(-1, logp.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    sft = nll / (labels != IGNORE).sum().clamp(min=1)
    return sft, _kl_terms(labels, topk_ids, topk_logprobs, logp)


def fuse_loss(logits, labels, topk_ids, topk_logprobs, beta: float) -> torch.Tensor:
    """ProFuser Eq. 4: L_Fuse = L_SFT + beta * KL(P_S || P_T)."""
    if beta == 0:
        return sft_loss(logits, labels)
    sft, kl = sft_and_kl(logits, labels, topk_ids, topk_logprobs)
    return sft + beta * kl


def fusellm_loss(logits, labels, topk_ids, topk_logprobs, lam: float) -> torch.Tensor:
    """FuseLLM: lambda * L_CLM + (1 - lambda) * L_Fusion, L_Fusion the KL to the fused
    distribution (FuseLLM Eq. 5)."""
    if lam >= 1.0:
        return sft_loss(logits, labels)
    clm, kl = sft_and_kl(logits, labels, topk_ids, topk_logprobs)
    return lam * clm + (1 - lam) * kl


# Training-mode objectives by name (config: studies.<s>.training_objective or a stage's
# training_objective): each maps (logits, labels, topk_ids, topk_logprobs, beta, lam) to a loss.
TRAINING_OBJECTIVES = {
    # ProFuser Eq. 4: L_SFT + beta * KL, the stage's beta
    "profuser_eq4": lambda lg, lb, ids, lps, beta, lam: fuse_loss(lg, lb, ids, lps, beta),
    # FuseLLM: lambda * L_CLM + (1 - lambda) * KL, the stage's lambda
    "fusellm_lambda": lambda lg, lb, ids, lps, beta, lam: fusellm_loss(lg, lb, ids, lps, lam),
}


def profuser_loss(
    infer: tuple | None,
    train: tuple | None,
    beta: float,
    lam: float,
    w_inference: float,
    w_training: float,
    training_objective: str = "profuser_eq4",
) -> torch.Tensor:
    """ProFuser's L = w1 * L_InferFuse + w2 * L_TrainFuse.

    ``infer`` / ``train``: (logits, labels, topk_ids, topk_logprobs) on the voted
    output and on the reference, or None when the stage leaves that mode out.
    L_InferFuse is :func:`fuse_loss` with ``beta`` (ProFuser Eq. 4); L_TrainFuse is
    the named ``training_objective`` (:data:`TRAINING_OBJECTIVES`).
    Raises ValueError when both modes are None or the objective is unknown.
    """
    if infer is None and train is None:
        raise ValueError("a fusion step needs at least one mode")
    if training_objective not in TRAINING_OBJECTIVES:
        raise ValueError(
            f"unknown training objective {training_objective!r}; "
            f"known: {sorted(TRAINING_OBJECTIVES)}"
        )
    total = 0.0
    if infer is not None:
        total = total + w_inference * fuse_loss(*infer, beta=beta)
    if train is not None:
        total = total + w_training * TRAINING_OBJECTIVES[training_objective](*train, beta, lam)
    return total

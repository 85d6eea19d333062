"""Preference losses of FuseChat-3.0, WRPO and FuseRL, each written once, as pure functions
of per-sequence quantities (never of logits).

Notation (``../shared/PREFERENCE_FUSION.md`` §1): for a response y to prompt x,
``logp`` = log pi_theta(y|x) summed over the response tokens (nats), ``ref`` = the same sum
under the frozen reference model, ``n`` = |y|, the number of labelled response tokens (the
end-of-turn token included). :func:`sequence_logps` turns logits and labels into ``logp``
and ``n``; every loss below reads only such [B] (or [B, K]) tensors, so reference
log-probabilities can come from a file computed once.

Every pairwise loss compares two *implicit rewards* (:func:`implicit_reward`):

=========  ==========================  =========================================
kind       reward of y                 used by
=========  ==========================  =========================================
dpo        beta * (logp - ref)         DPO, WRPO, FusePO-DPO
ln_dpo     beta * (logp - ref) / n     LN-DPO (FuseChat-3.0), FusePO-LN-DPO
ipo        (logp - ref) / n            IPO, WRPO_IPO (TRL's per-token IPO)
simpo      beta * logp / n             SimPO, WRPO_SimPO, FusePO-SimPO
=========  ==========================  =========================================

Token counts are clamped to at least 1 before dividing (as TRL 1.16 does), so a row with
no labelled token has reward 0 (with ``ref`` 0) and finite gradients.

Reduction, the same for every loss here: with ``weights=None`` the plain mean over the
examples; with ``weights`` (same shape as the per-example losses, [B] or [B, K]) the sum of
``weights * loss`` divided by B, the size of the first dimension: weights are *not*
renormalised. So per-prompt source weights that sum to 1 over K (:func:`source_weights`)
give FuseRL's (1/|X|) sum_x sum_i w_{x,i} l(x, i) (§2.2, §2.3), and weights of ones give
the plain mean. All losses are float32 scalars when their inputs are float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fusekit.losses.core import IGNORE, shift, token_nll

REWARD_KINDS = ("dpo", "ln_dpo", "ipo", "simpo")
FUSEPO_KINDS = ("dpo", "ln_dpo", "simpo")


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sequence log-probability sums and token counts.

    ``logits`` [B, L, V] (any float dtype; computed in float32), ``labels`` [B, L] with -100
    on prompt and padding; position t of ``logits`` predicts ``labels[:, t + 1]`` (:func:`shift`).
    Returns ``(logp_sum [B] float32 nats, n_tokens [B] int64)``: minus the per-token
    cross-entropy (:func:`token_nll`, torch's fused ``cross_entropy``, no dense log-softmax
    kept) summed over positions whose label is not -100, and the number of those positions.
    A row with no labelled position gives (0, 0). Source: PREFERENCE_FUSION.md §1.
    """
    logits, labels = shift(logits, labels)
    logp_sum = -token_nll(logits, labels).sum(-1)
    return logp_sum, (labels != IGNORE).sum(-1)


def _per_token(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    return x / n.to(x.dtype).clamp(min=1.0)


def implicit_reward(
    kind: str,
    logp: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    n_tokens: torch.Tensor | None = None,
    beta: float = 1.0,
) -> torch.Tensor:
    """The reward a preference loss of ``kind`` gives a response (module table).

    Tensors of any one shape ([B] or [B, K]); ``ref_logp`` is required for dpo, ln_dpo and
    ipo, ``n_tokens`` for ln_dpo, ipo and simpo (clamped to >= 1); ``beta`` is unused by ipo.
    Raises ValueError for an unknown kind or a missing input. Sources: DPO (Rafailov et
    al. 2023) Eq. 7; TRL 1.16 ``trl/trainer/dpo_trainer.py`` ``sigmoid_norm`` and ``ipo``;
    SimPO Eq. 4 (``princeton-nlp/SimPO`` ``scripts/simpo_trainer.py``).
    """
    if kind not in REWARD_KINDS:
        raise ValueError(f"unknown reward kind {kind!r}; known: {list(REWARD_KINDS)}")
    if kind != "simpo" and ref_logp is None:
        raise ValueError(f"a {kind} reward needs reference log-probabilities")
    if kind != "dpo" and n_tokens is None:
        raise ValueError(f"a {kind} reward needs token counts")
    if kind == "dpo":
        return beta * (logp - ref_logp)
    if kind == "ln_dpo":
        return beta * _per_token(logp - ref_logp, n_tokens)
    if kind == "ipo":
        return _per_token(logp - ref_logp, n_tokens)
    return beta * _per_token(logp, n_tokens)


def _reduce(per_example: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over examples, or sum(weights * loss) / B (module docstring)."""
    if per_example.dim() == 0 or per_example.shape[0] == 0:
        raise ValueError("a loss needs at least one example")
    if weights is None:
        return per_example.mean()
    if weights.shape != per_example.shape:
        raise ValueError(
            f"weights of shape {tuple(weights.shape)} do not match the per-example losses "
            f"{tuple(per_example.shape)}"
        )
    return (per_example * weights.to(per_example.dtype)).sum() / per_example.shape[0]


def _sigmoid_loss(margin: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid(margin)


def _ipo_loss(margin: torch.Tensor, tau: float) -> torch.Tensor:
    if tau <= 0:
        raise ValueError(f"IPO needs tau > 0, got {tau}")
    return (margin - 1.0 / (2.0 * tau)) ** 2


def dpo_loss(
    pw: torch.Tensor,
    pl: torch.Tensor,
    rw: torch.Tensor,
    rl: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """DPO: mean_b w_b * -log sigma(beta * ((pw - rw) - (pl - rl))).

    ``pw``/``pl`` policy and ``rw``/``rl`` reference log-prob sums (nats) of chosen and
    rejected, [B] or [B, K]; ``weights`` as in the module docstring. Source: DPO Eq. 7;
    PREFERENCE_FUSION.md §2.3; equals TRL 1.16 ``DPOTrainer`` ``loss_type="sigmoid"``.
    """
    margin = implicit_reward("dpo", pw, rw, beta=beta) - implicit_reward("dpo", pl, rl, beta=beta)
    return _reduce(_sigmoid_loss(margin), weights)


def ln_dpo_loss(
    pw: torch.Tensor,
    pl: torch.Tensor,
    rw: torch.Tensor,
    rl: torch.Tensor,
    nw: torch.Tensor,
    nl: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Length-normalised DPO (FuseChat-3.0's Llama targets):
    -log sigma(beta * ((pw - rw) / nw - (pl - rl) / nl)).

    ``nw``/``nl`` token counts (clamped to >= 1); other inputs as :func:`dpo_loss`. With
    nw = nl = 1 it is :func:`dpo_loss`. Source: PREFERENCE_FUSION.md §4.3, §5.3; equals TRL
    1.16 ``DPOTrainer`` ``loss_type="sigmoid_norm"``.
    """
    r_w = implicit_reward("ln_dpo", pw, rw, nw, beta)
    margin = r_w - implicit_reward("ln_dpo", pl, rl, nl, beta)
    return _reduce(_sigmoid_loss(margin), weights)


def ipo_loss(
    pw: torch.Tensor,
    pl: torch.Tensor,
    rw: torch.Tensor,
    rl: torch.Tensor,
    nw: torch.Tensor,
    nl: torch.Tensor,
    tau: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """IPO in TRL's per-token form: ((pw - rw) / nw - (pl - rl) / nl - 1 / (2 tau))^2.

    Inputs as :func:`ln_dpo_loss`; ``tau`` > 0 (the IPO paper's tau, TRL's ``beta``), else
    ValueError. Source: IPO (Azar et al. 2023) Eq. 17 with TRL's per-token normalisation;
    equals TRL 1.16 ``DPOTrainer`` ``loss_type="ipo"``; PREFERENCE_FUSION.md §3.1.
    """
    margin = implicit_reward("ipo", pw, rw, nw) - implicit_reward("ipo", pl, rl, nl)
    return _reduce(_ipo_loss(margin, tau), weights)


def simpo_loss(
    pw: torch.Tensor,
    pl: torch.Tensor,
    nw: torch.Tensor,
    nl: torch.Tensor,
    beta: float,
    gamma: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """SimPO: -log sigma(beta * (pw / nw - pl / nl) - gamma), no reference model.

    ``pw``/``pl`` policy log-prob sums, ``nw``/``nl`` token counts, [B] or [B, K]; ``gamma``
    the target margin in reward units (SimPO's code writes gamma / beta as
    ``gamma_beta_ratio`` inside beta * (...)). Source: SimPO Eq. 6; PREFERENCE_FUSION.md
    §2.3; equals TRL 1.16 ``trl.experimental.cpo`` ``loss_type="simpo"``, ``cpo_alpha=0``.
    """
    margin = implicit_reward("simpo", pw, None, nw, beta) - implicit_reward(
        "simpo", pl, None, nl, beta
    )
    return _reduce(_sigmoid_loss(margin - gamma), weights)


def wrpo_chosen_reward(r_ws: torch.Tensor, r_wt: torch.Tensor, alpha: float) -> torch.Tensor:
    """WRPO's mixed chosen reward r_w = alpha * r(y_ws) + (1 - alpha) * r(y_wt): alpha
    multiplies the source-best response (the repository's weight vector [alpha, 1 - alpha] on
    chosen = [y_ws, y_wt]). ``alpha`` in [0, 1], else ValueError. Source: WRPO Eq. 6,
    ``SLIT-AI/WRPO`` ``scripts/wrpo_trainer.py`` ``wrpo_loss``; PREFERENCE_FUSION.md §3.1.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WRPO needs alpha in [0, 1], got {alpha}")
    return alpha * r_ws + (1.0 - alpha) * r_wt


def wrpo_loss(
    p_ws: torch.Tensor,
    p_wt: torch.Tensor,
    p_l: torch.Tensor,
    r_ws: torch.Tensor,
    r_wt: torch.Tensor,
    r_l: torch.Tensor,
    beta: float,
    alpha: float,
) -> torch.Tensor:
    """WRPO: -log sigma(alpha r(y_ws) + (1 - alpha) r(y_wt) - r(y_l)), r(y) = beta (logp - ref).

    ``p_*`` policy and ``r_*`` reference log-prob sums [B] of the source-best (ws),
    target-best (wt) and rejected (l) responses; token sums, no length normalisation.
    alpha = 0 is :func:`dpo_loss` on (y_wt, y_l), alpha = 1 on (y_ws, y_l). ``alpha`` comes
    from :func:`wrpo_alpha`. Source: WRPO Eq. 6, ``scripts/wrpo_trainer.py`` (label
    smoothing 0); PREFERENCE_FUSION.md §3.1.
    """
    r_w = wrpo_chosen_reward(
        implicit_reward("dpo", p_ws, r_ws, beta=beta),
        implicit_reward("dpo", p_wt, r_wt, beta=beta),
        alpha,
    )
    return _reduce(_sigmoid_loss(r_w - implicit_reward("dpo", p_l, r_l, beta=beta)), None)


def wrpo_simpo_loss(
    p_ws: torch.Tensor,
    p_wt: torch.Tensor,
    p_l: torch.Tensor,
    n_ws: torch.Tensor,
    n_wt: torch.Tensor,
    n_l: torch.Tensor,
    beta: float,
    gamma: float,
    alpha: float,
) -> torch.Tensor:
    """WRPO_SimPO: -log sigma(alpha beta p_ws/n_ws + (1 - alpha) beta p_wt/n_wt - beta p_l/n_l
    - gamma). Inputs [B] as :func:`wrpo_loss` (policy sums) with token counts ``n_*``.
    alpha = 0 is :func:`simpo_loss` on (y_wt, y_l). Source: WRPO paper Table 5;
    PREFERENCE_FUSION.md §3.1.
    """
    r_w = wrpo_chosen_reward(
        implicit_reward("simpo", p_ws, None, n_ws, beta),
        implicit_reward("simpo", p_wt, None, n_wt, beta),
        alpha,
    )
    margin = r_w - implicit_reward("simpo", p_l, None, n_l, beta)
    return _reduce(_sigmoid_loss(margin - gamma), None)


def wrpo_ipo_loss(
    p_ws: torch.Tensor,
    p_wt: torch.Tensor,
    p_l: torch.Tensor,
    r_ws: torch.Tensor,
    r_wt: torch.Tensor,
    r_l: torch.Tensor,
    n_ws: torch.Tensor,
    n_wt: torch.Tensor,
    n_l: torch.Tensor,
    tau: float,
    alpha: float,
) -> torch.Tensor:
    """WRPO_IPO: (alpha D_ws/n_ws + (1 - alpha) D_wt/n_wt - D_l/n_l - 1/(2 tau))^2 with
    D = logp - ref (per-token form, as TRL's IPO; the per-token choice is assumed, §3.1).
    alpha = 0 is :func:`ipo_loss` on (y_wt, y_l). Source: WRPO paper Table 5;
    PREFERENCE_FUSION.md §3.1.
    """
    r_w = wrpo_chosen_reward(
        implicit_reward("ipo", p_ws, r_ws, n_ws), implicit_reward("ipo", p_wt, r_wt, n_wt), alpha
    )
    margin = r_w - implicit_reward("ipo", p_l, r_l, n_l)
    return _reduce(_ipo_loss(margin, tau), None)


def wrpo_alpha(step: int, total_steps: int, alpha_max: float, dynamic: bool = True) -> float:
    """WRPO's alpha at optimizer step ``step`` (0-based: the number of optimizer steps already
    completed) of ``total_steps``: alpha_max * min(1, step / total_steps) when ``dynamic``
    (linear from 0; the first step uses 0, the last alpha_max (T - 1) / T), else alpha_max.
    Raises ValueError for total_steps < 1, step < 0 or alpha_max outside [0, 1]. Source:
    ``scripts/wrpo_trainer.py`` ``LinearDecayScheduler`` (misnamed: it increases);
    PREFERENCE_FUSION.md §3.1.
    """
    if not 0.0 <= alpha_max <= 1.0:
        raise ValueError(f"alpha_max must lie in [0, 1], got {alpha_max}")
    if not dynamic:
        return float(alpha_max)
    if total_steps < 1 or step < 0:
        raise ValueError(f"need step >= 0 and total_steps >= 1, got {step} of {total_steps}")
    return float(alpha_max) * min(1.0, step / total_steps)


def source_weights(
    scores: torch.Tensor, temperature: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """FuseRL's per-prompt source weights: softmax over K of score / temperature.

    ``scores`` [B, K] (reward of each source's best response for each prompt), ``mask``
    [B, K] bool (True = source kept; None keeps all). Returns float32 [B, K], each row summing
    to 1 over its kept sources, 0 on the others, no gradient. ``temperature`` = 0: one-hot on
    the highest score (ties to the lowest index); ``math.inf``: uniform over the kept sources.
    Raises ValueError for a negative temperature, a shape mismatch or a row with no kept
    source (drop that prompt upstream). Source: FuseRL Eq. 8 as in PREFERENCE_FUSION.md
    §2.2 (weights within a prompt), §2.3 (renormalised over the kept sources).
    """
    if temperature < 0 or math.isnan(temperature):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, K], got shape {tuple(scores.shape)}")
    scores = scores.detach().float()
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    elif mask.shape != scores.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match scores {tuple(scores.shape)}")
    mask = mask.bool()
    if not bool(mask.any(-1).all()):
        raise ValueError("a prompt has no kept source; drop it before weighting")
    if temperature == 0:
        best = scores.masked_fill(~mask, -math.inf).argmax(-1)  # first maximum wins
        return F.one_hot(best, scores.shape[1]).float()
    if math.isinf(temperature):
        return mask.float() / mask.sum(-1, keepdim=True)
    logits = (scores / temperature).masked_fill(~mask, -math.inf)
    return torch.softmax(logits, -1)


def weighted_sft_loss(nll: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """FuseSFT: (1/B) sum_b sum_k w_bk * nll_bk.

    ``nll`` [B, K]: per-response NLL of each source's best response, the token mean
    -logp / n by default (§2.2 [A]; pass the sum for ``reduction: sum``); ``weights`` [B, K]
    from :func:`source_weights`. One-hot weights give the mean over prompts of the best
    response's token-mean NLL (equal to :func:`fusekit.losses.sft_loss` on those responses
    when B = 1 or all lengths are equal; sft_loss averages over all tokens of the batch).
    Source: PREFERENCE_FUSION.md §2.2.
    """
    if nll.dim() != 2:
        raise ValueError(f"nll must be [B, K], got shape {tuple(nll.shape)}")
    return _reduce(nll, weights)


def fusepo_loss(
    kind: str,
    pw: torch.Tensor,
    pl: torch.Tensor,
    rw: torch.Tensor | None,
    rl: torch.Tensor | None,
    nw: torch.Tensor | None,
    nl: torch.Tensor | None,
    weights: torch.Tensor,
    beta: float,
    gamma: float = 0.0,
) -> torch.Tensor:
    """FusePO: (1/B) sum_b sum_k w_bk * l_kind(pair (b, k)).

    Per-pair tensors [B, K] (source k's best/worst response for prompt b): policy sums
    ``pw``/``pl``, reference sums ``rw``/``rl`` (dpo, ln_dpo; ignored by simpo), token counts
    ``nw``/``nl`` (ln_dpo, simpo); ``weights`` [B, K] from :func:`source_weights`. Entries of
    dropped sources must be finite (zeros do). ``kind`` in dpo, ln_dpo, simpo (``gamma`` for
    simpo only); other kinds raise ValueError. With K = 1 and weights 1 it is the base loss.
    Source: PREFERENCE_FUSION.md §2.3 (structure [Rev]/[S]; weights reuse [A]).
    """
    if kind == "dpo":
        return dpo_loss(pw, pl, rw, rl, beta, weights)
    if kind == "ln_dpo":
        return ln_dpo_loss(pw, pl, rw, rl, nw, nl, beta, weights)
    if kind == "simpo":
        return simpo_loss(pw, pl, nw, nl, beta, gamma, weights)
    raise ValueError(f"unknown FusePO kind {kind!r}; known: {list(FUSEPO_KINDS)}")


def rloo_advantages(
    rewards: torch.Tensor,
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    beta_kl: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Leave-one-out advantages A_j = r~_j - mean_{m != j} r~_m of a group, with the
    KL-penalised reward r~_j = r_j - beta_kl * sg[logp_j - ref_logp_j].

    All [B, n] (``mask`` bool, True = response in the group; None keeps all). Returns [B, n],
    detached, 0 on masked entries. Raises ValueError when a group has fewer than 2 responses.
    Source: RLOO (Ahmadian et al. 2024) Eq. 7 with TRL ``RLOOTrainer``'s sequence-level KL;
    PREFERENCE_FUSION.md §2.3 [A].
    """
    if mask is None:
        mask = torch.ones_like(rewards, dtype=torch.bool)
    mask = mask.bool()
    n = mask.sum(-1, keepdim=True)
    if bool((n < 2).any()):
        raise ValueError("a leave-one-out baseline needs at least 2 responses per group")
    shaped = (rewards.float() - beta_kl * (logp - ref_logp).detach().float()).masked_fill(~mask, 0)
    baseline = (shaped.sum(-1, keepdim=True) - shaped) / (n - 1).to(shaped.dtype)
    return (shaped - baseline).masked_fill(~mask, 0)


def rloo_offline_loss(
    logp: torch.Tensor,
    n_tok: torch.Tensor,
    ref_logp: torch.Tensor,
    rewards: torch.Tensor,
    weights: torch.Tensor,
    beta_kl: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Offline RLOO (FusePO-RLOO as assumed here): (1/B) sum_b -sum_j w_bj A_bj logp_bj / n_bj.

    [B, n] tensors over the prompt's group of n responses (FuseRL: the K sources' best and
    worst): policy ``logp`` and reference ``ref_logp`` sums, token counts ``n_tok``, scalar
    reward-model ``rewards``, per-response ``weights`` (the source weight w_{x,s(j)} of each
    response's source), optional ``mask`` (True = in the group). A from
    :func:`rloo_advantages` (stop-gradient); no importance ratio. Equal rewards with
    beta_kl = 0 give 0; n = 2 gives A = +-(r_1 - r_2). The form is an assumption (hence the
    name): PREFERENCE_FUSION.md §2.3.
    """
    adv = rloo_advantages(rewards, logp, ref_logp, beta_kl, mask)
    per_response = -adv * _per_token(logp, n_tok)
    return _reduce(per_response, weights)


def preference_metrics(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    source_chosen: torch.Tensor | None = None,
    target_chosen: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """The reward metrics TRL and WRPO log, as floats (means over the examples).

    ``chosen``/``rejected`` [B] (or [B, K]) implicit rewards (:func:`implicit_reward`; for
    WRPO ``chosen`` is the mixed r_w) give ``rewards/chosen``, ``rewards/rejected``,
    ``rewards/margins`` (mean chosen - rejected) and ``rewards/accuracies`` (share with
    chosen > rejected). WRPO adds, from ``source_chosen`` = r(y_ws) and ``target_chosen`` =
    r(y_wt): ``rewards/source_chosen``, ``rewards/target_chosen``,
    ``rewards/source_accuracies`` and ``rewards/pivot_accuracies`` (target-chosen beats
    rejected; WRPO's name). ``mask`` (bool, same shape) restricts the means to kept entries.
    Source: TRL 1.16 ``dpo_trainer.py`` metrics; ``scripts/wrpo_trainer.py``
    ``get_batch_loss_metrics``.
    """

    def mean(x: torch.Tensor) -> float:
        x = x.detach().float()
        if mask is not None:
            x = x[mask.bool()]
        return x.mean().item()

    out = {
        "rewards/chosen": mean(chosen),
        "rewards/rejected": mean(rejected),
        "rewards/margins": mean(chosen - rejected),
        "rewards/accuracies": mean((chosen > rejected).float()),
    }
    if source_chosen is not None:
        out["rewards/source_chosen"] = mean(source_chosen)
        out["rewards/source_accuracies"] = mean((source_chosen > rejected).float())
    if target_chosen is not None:
        out["rewards/target_chosen"] = mean(target_chosen)
        out["rewards/pivot_accuracies"] = mean((target_chosen > rejected).float())
    return out

"""Fusion losses on sparse top-k targets (never a dense [batch, length, vocab] target).

Shapes: ``logits`` [B, L, V] are the student's outputs; position ``t`` predicts
token ``t + 1``. Targets are given per predicted token, aligned with
``labels`` [B, L] (-100 where nothing is predicted: prompt and padding), and
the sparse teacher rows ``topk_ids`` / ``topk_logprobs`` [B, L, k] (id -1,
log-prob -inf for empty entries) hold, at position ``t``, the teacher's
distribution over token ``t`` (the same convention as the logit dumps). The
shift happens once, here, in :func:`shift`.
"""

from fusekit.losses.core import (
    TRAINING_OBJECTIVES,
    fuse_loss,
    fusellm_loss,
    log_softmax,
    mean_cross_entropy,
    profuser_loss,
    sft_and_kl,
    sft_loss,
    shift,
    sparse_kl,
    token_nll,
)
from fusekit.losses.sources import avg_ce_fusion, min_ce_fusion, min_ce_index

__all__ = [
    "TRAINING_OBJECTIVES",
    "log_softmax",
    "mean_cross_entropy",
    "sft_and_kl",
    "token_nll",
    "avg_ce_fusion",
    "fuse_loss",
    "fusellm_loss",
    "min_ce_fusion",
    "min_ce_index",
    "profuser_loss",
    "sft_loss",
    "shift",
    "sparse_kl",
]

# Preference losses (FuseChat-3.0, WRPO, FuseRL) and the objectives registry.
from fusekit.losses.preference import (  # noqa: E402
    dpo_loss,
    fusepo_loss,
    implicit_reward,
    ipo_loss,
    ln_dpo_loss,
    preference_metrics,
    rloo_advantages,
    rloo_offline_loss,
    sequence_logps,
    simpo_loss,
    source_weights,
    weighted_sft_loss,
    wrpo_alpha,
    wrpo_chosen_reward,
    wrpo_ipo_loss,
    wrpo_loss,
    wrpo_simpo_loss,
)
from fusekit.losses.registry import OBJECTIVES, SHAPES, Objective, get_objective  # noqa: E402

__all__ += [
    "OBJECTIVES",
    "SHAPES",
    "Objective",
    "get_objective",
    "dpo_loss",
    "fusepo_loss",
    "implicit_reward",
    "ipo_loss",
    "ln_dpo_loss",
    "preference_metrics",
    "rloo_advantages",
    "rloo_offline_loss",
    "sequence_logps",
    "simpo_loss",
    "source_weights",
    "weighted_sft_loss",
    "wrpo_alpha",
    "wrpo_chosen_reward",
    "wrpo_ipo_loss",
    "wrpo_loss",
    "wrpo_simpo_loss",
]

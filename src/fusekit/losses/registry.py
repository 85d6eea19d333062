"""Training objectives by name: the one place a training loop looks up its loss.

Contract (what a loop does)::

    obj = get_objective(name)             # ValueError listing the known names
    rows = obj.shape                      # how to lay the batch out (SHAPES)
    loss, metrics = obj(batch, hparams, step, total_steps)

``batch`` is a dict of tensors laid out as :data:`SHAPES` says for ``obj.shape``;
``hparams`` a mapping holding at least ``obj.hparams`` (other keys, such as lr or epochs,
are ignored; ``obj.defaults`` fill optional ones); ``step`` the number of optimizer steps
already completed (0-based) and ``total_steps`` the stage's number of optimizer steps (only
WRPO's alpha schedule reads them). ``loss`` is a scalar tensor: the mean over the batch's
examples (prompts), so a loop that scales a micro-batch by its share of the global batch
(``train.loop``) gets the global mean. ``metrics`` is a ``dict[str, float]`` to log (TRL's
and WRPO's reward metrics for preference objectives; empty for plain SFT).

Per-sequence inputs come in one of two forms, whichever the loop prefers: ``logits``
[N, L, V] and ``labels`` [N, L] (-100 outside the response), turned into sums with
:func:`~fusekit.losses.preference.sequence_logps`; or ``logp`` [N] and ``n_tokens`` [N]
already computed that way (for a loop with a chunked or fused LM head). N is the number
of rows of the layout; a reference that the objective needs is ``ref_logp`` [N] in the same
row order (read from the precomputed reference file, never from a second model here).
Token-level objectives (shape ``topk``) need logits, labels and the teacher rows.

Every loss is written once in :mod:`fusekit.losses.preference` or
:mod:`fusekit.losses.core`; this module only maps layouts and hyperparameters onto them.
Bad input (a missing key or hyperparameter, a row count that does not match the layout, a
reference of the wrong length) raises ValueError naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from fusekit.losses import preference as P
from fusekit.losses.core import TRAINING_OBJECTIVES, sft_loss

SHAPES: dict[str, str] = {
    "sft": "B rows, one response per prompt: logits [B, L, V], labels [B, L]",
    "topk": (
        "B rows with sparse teacher rows: logits [B, L, V], labels [B, L], topk_ids and "
        "topk_logprobs [B, L, k] (fusekit.losses.core conventions)"
    ),
    "weighted_sft": (
        "B*K rows, prompt-major (row b*K + k = source k's best response to prompt b); "
        "scores [B, K] (each source's best reward), optional source_mask [B, K] bool"
    ),
    "pair": (
        "2B rows: the B chosen responses, then the B rejected ones in the same prompt order "
        "(TRL's layout); ref_logp [2B] when the objective uses a reference"
    ),
    "quadruple": (
        "3B rows: B source-best (y_ws), then B target-best (y_wt), then B rejected (y_l) "
        "(WRPO's chosen = [y_ws, y_wt], rejected = [y_l]); ref_logp [3B] when needed"
    ),
    "group": (
        "2BK rows ordered (prompt b, source k, role) with role 0 = the source's best and "
        "1 = its worst response (row 2(bK + k) + role); rewards [B, K, 2] reward-model "
        "scores of those rows; ref_logp [2BK] when needed; optional source_mask [B, K] bool"
    ),
}


@dataclass(frozen=True)
class Objective:
    """One named objective: its batch layout, hyperparameters and function.

    ``hparams`` are required names, ``defaults`` optional names with their values,
    ``needs_reference`` whether ``ref_logp`` is read. Call it as the module docstring says.
    """

    name: str
    shape: str
    hparams: tuple[str, ...]
    fn: Callable[[Mapping[str, torch.Tensor], dict[str, Any], int, int], tuple]
    needs_reference: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def resolve(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The hyperparameters this objective reads, defaults filled in; ValueError when a
        required one is missing or a numeric one is not a number."""
        missing = [k for k in self.hparams if k not in hparams]
        if missing:
            raise ValueError(f"objective {self.name!r} needs hyperparameters {missing}")
        out = {k: hparams.get(k, v) for k, v in self.defaults.items()}
        for k in self.hparams:
            v = hparams[k]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError(
                    f"objective {self.name!r}: hyperparameter {k} must be a number, got {v!r} "
                    "(YAML reads 3e-7 as a string; write 3.0e-7)"
                )
            out[k] = float(v)
        return out

    def __call__(
        self,
        batch: Mapping[str, torch.Tensor],
        hparams: Mapping[str, Any],
        step: int = 0,
        total_steps: int = 1,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return self.fn(batch, self.resolve(hparams), step, total_steps)


def _need(batch: Mapping[str, torch.Tensor], *keys: str) -> None:
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(f"the batch lacks {missing} (has {sorted(batch)})")


def _n_rows(batch: Mapping[str, torch.Tensor]) -> int:
    if "logp" in batch:
        return batch["logp"].shape[0]
    _need(batch, "logits", "labels")
    return batch["labels"].shape[0]


def _rows(batch: Mapping[str, torch.Tensor], n_rows: int, reference: bool):
    """(logp [N], n_tokens [N], ref_logp [N] or None) for a layout of ``n_rows`` rows."""
    if "logp" in batch:
        _need(batch, "n_tokens")
        logp, n = batch["logp"], batch["n_tokens"]
    else:
        _need(batch, "logits", "labels")
        logp, n = P.sequence_logps(batch["logits"], batch["labels"])
    if logp.shape[0] != n_rows:
        raise ValueError(f"the layout needs {n_rows} rows, the batch has {logp.shape[0]}")
    ref = None
    if reference:
        _need(batch, "ref_logp")
        ref = batch["ref_logp"].to(device=logp.device, dtype=torch.float32)
        if ref.shape != (n_rows,):
            raise ValueError(
                f"ref_logp has shape {tuple(ref.shape)}, the batch has {n_rows} rows: the "
                "reference log-probabilities do not match the batch"
            )
    return logp, n, ref


def _split(n_blocks: int, *tensors):
    """Each [n_blocks * B] tensor split into n_blocks [B] blocks (None stays None)."""
    return [None if t is None else t.chunk(n_blocks) for t in tensors]


def _logps(logp_w, logp_l) -> dict[str, float]:
    return {
        "logps/chosen": logp_w.detach().float().mean().item(),
        "logps/rejected": logp_l.detach().float().mean().item(),
    }


def _even(n: int) -> int:
    if n % 2:
        raise ValueError(f"a pair layout needs an even number of rows, got {n}")
    return n


# ---- plain and token-level objectives (fusekit.losses.core) ---------------------------


def _sft(batch, hp, step, total):
    _need(batch, "logits", "labels")
    return sft_loss(batch["logits"], batch["labels"]), {}


def _token_level(name: str):
    def fn(batch, hp, step, total):
        _need(batch, "logits", "labels", "topk_ids", "topk_logprobs")
        loss = TRAINING_OBJECTIVES[name](
            batch["logits"],
            batch["labels"],
            batch["topk_ids"],
            batch["topk_logprobs"],
            hp.get("beta", 0.0),
            hp.get("lam", 1.0),
        )
        return loss, {}

    return fn


# ---- pair objectives -------------------------------------------------------------------


def _pair(kind: str):
    reference = kind != "simpo"

    def fn(batch, hp, step, total):
        n_rows = _even(_n_rows(batch))
        logp, n, ref = _rows(batch, n_rows, reference)
        (pw, pl), (nw, nl) = _split(2, logp, n)
        rw, rl = (None, None) if ref is None else ref.chunk(2)
        if kind == "dpo":
            loss = P.dpo_loss(pw, pl, rw, rl, hp["beta"])
        elif kind == "ln_dpo":
            loss = P.ln_dpo_loss(pw, pl, rw, rl, nw, nl, hp["beta"])
        elif kind == "ipo":
            loss = P.ipo_loss(pw, pl, rw, rl, nw, nl, hp["tau"])
        else:
            loss = P.simpo_loss(pw, pl, nw, nl, hp["beta"], hp["gamma"])
        beta = hp.get("beta", 1.0)
        cw = P.implicit_reward(kind, pw, rw, nw, beta)
        cl = P.implicit_reward(kind, pl, rl, nl, beta)
        return loss, {**P.preference_metrics(cw, cl), **_logps(pw, pl)}

    return fn


# ---- WRPO (quadruples) -----------------------------------------------------------------


def _alpha(hp, step, total) -> float:
    schedule = hp["alpha_schedule"]
    if schedule not in ("linear", "constant"):
        raise ValueError(f"alpha_schedule must be linear or constant, got {schedule!r}")
    return P.wrpo_alpha(step, total, hp["alpha_max"], dynamic=schedule == "linear")


def _wrpo(kind: str):
    reward_kind = {"wrpo": "dpo", "wrpo_simpo": "simpo", "wrpo_ipo": "ipo"}[kind]
    reference = kind != "wrpo_simpo"

    def fn(batch, hp, step, total):
        n_rows = _n_rows(batch)
        if n_rows % 3:
            raise ValueError(f"a quadruple layout needs a multiple of 3 rows, got {n_rows}")
        logp, n, ref = _rows(batch, n_rows, reference)
        alpha = _alpha(hp, step, total)
        (p_ws, p_wt, p_l), (n_ws, n_wt, n_l) = _split(3, logp, n)
        r_ws, r_wt, r_l = (None, None, None) if ref is None else ref.chunk(3)
        if kind == "wrpo":
            loss = P.wrpo_loss(p_ws, p_wt, p_l, r_ws, r_wt, r_l, hp["beta"], alpha)
        elif kind == "wrpo_simpo":
            loss = P.wrpo_simpo_loss(
                p_ws, p_wt, p_l, n_ws, n_wt, n_l, hp["beta"], hp["gamma"], alpha
            )
        else:
            loss = P.wrpo_ipo_loss(
                p_ws, p_wt, p_l, r_ws, r_wt, r_l, n_ws, n_wt, n_l, hp["tau"], alpha
            )
        beta = hp.get("beta", 1.0)
        c_ws = P.implicit_reward(reward_kind, p_ws, r_ws, n_ws, beta)
        c_wt = P.implicit_reward(reward_kind, p_wt, r_wt, n_wt, beta)
        c_l = P.implicit_reward(reward_kind, p_l, r_l, n_l, beta)
        c_w = P.wrpo_chosen_reward(c_ws, c_wt, alpha)
        metrics = P.preference_metrics(c_w, c_l, source_chosen=c_ws, target_chosen=c_wt)
        metrics["logps/source_chosen"] = p_ws.detach().float().mean().item()
        metrics["logps/target_chosen"] = p_wt.detach().float().mean().item()
        metrics["logps/rejected"] = p_l.detach().float().mean().item()
        metrics["cur_alpha"] = alpha
        return loss, metrics

    return fn


# ---- FuseRL: FuseSFT, FusePO, offline RLOO ---------------------------------------------


def _source_mask(batch, shape):
    mask = batch.get("source_mask")
    if mask is not None and tuple(mask.shape) != tuple(shape):
        raise ValueError(f"source_mask {tuple(mask.shape)} does not match [B, K] = {shape}")
    return mask


def _fuse_sft(batch, hp, step, total):
    _need(batch, "scores")
    scores = batch["scores"]
    b, k = scores.shape
    logp, n, _ = _rows(batch, b * k, reference=False)
    if hp["reduction"] not in ("token_mean", "sum"):
        raise ValueError(f"reduction must be token_mean or sum, got {hp['reduction']!r}")
    nll = -logp if hp["reduction"] == "sum" else -logp / n.to(logp.dtype).clamp(min=1.0)
    weights = P.source_weights(scores, hp["temperature"], _source_mask(batch, (b, k)))
    weights = weights.to(logp.device)
    loss = P.weighted_sft_loss(nll.view(b, k), weights)
    return loss, {"weights/top_mean": weights.max(-1).values.mean().item()}


def _group_inputs(batch, reference: bool):
    _need(batch, "rewards")
    rewards = batch["rewards"]
    if rewards.dim() != 3 or rewards.shape[2] != 2:
        raise ValueError(f"rewards must be [B, K, 2], got {tuple(rewards.shape)}")
    b, k, _ = rewards.shape
    logp, n, ref = _rows(batch, 2 * b * k, reference)
    mask = _source_mask(batch, (b, k))
    return rewards, b, k, logp.view(b, k, 2), n.view(b, k, 2), ref, mask


def _fusepo(kind: str):
    reference = kind != "simpo"

    def fn(batch, hp, step, total):
        rewards, b, k, logp, n, ref, mask = _group_inputs(batch, reference)
        weights = P.source_weights(rewards[..., 0], hp["temperature"], mask).to(logp.device)
        pw, pl, nw, nl = logp[..., 0], logp[..., 1], n[..., 0], n[..., 1]
        rw = rl = None
        if ref is not None:
            ref = ref.view(b, k, 2)
            rw, rl = ref[..., 0], ref[..., 1]
        gamma = hp.get("gamma", 0.0)
        loss = P.fusepo_loss(kind, pw, pl, rw, rl, nw, nl, weights, hp["beta"], gamma)
        cw = P.implicit_reward(kind, pw, rw, nw, hp["beta"])
        cl = P.implicit_reward(kind, pl, rl, nl, hp["beta"])
        kept = weights > 0
        metrics = P.preference_metrics(cw, cl, mask=kept)
        metrics["weights/top_mean"] = weights.max(-1).values.mean().item()
        return loss, metrics

    return fn


def _rloo(batch, hp, step, total):
    rewards, b, k, logp, n, ref, mask = _group_inputs(batch, reference=True)
    weights = P.source_weights(rewards[..., 0], hp["temperature"], mask).to(logp.device)
    per_response_w = weights.unsqueeze(-1).expand(b, k, 2).reshape(b, 2 * k)
    group_mask = None if mask is None else mask.bool().unsqueeze(-1).expand(b, k, 2).reshape(b, -1)
    logp_g, n_g, ref_g, rew_g = (t.reshape(b, 2 * k) for t in (logp, n, ref, rewards))
    loss = P.rloo_offline_loss(
        logp_g, n_g, ref_g, rew_g.to(logp.device), per_response_w, hp["beta_kl"], group_mask
    )
    adv = P.rloo_advantages(rew_g.to(logp.device), logp_g, ref_g, hp["beta_kl"], group_mask)
    kl = (logp_g - ref_g).detach()
    keep = torch.ones_like(adv, dtype=torch.bool) if group_mask is None else group_mask
    return loss, {
        "rloo/advantage_abs_mean": adv.abs()[keep].mean().item(),
        "rloo/logratio_mean": kl[keep].mean().item(),
        "weights/top_mean": weights.max(-1).values.mean().item(),
    }


_WRPO_DEFAULTS = {"alpha_schedule": "linear"}

OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("sft", "sft", (), _sft, source="core.sft_loss: mean token NLL of the batch"),
        Objective(
            "profuser_eq4",
            "topk",
            ("beta",),
            _token_level("profuser_eq4"),
            source="ProFuser Eq. 4 (core.TRAINING_OBJECTIVES['profuser_eq4'])",
        ),
        Objective(
            "fusellm_lambda",
            "topk",
            ("lam",),
            _token_level("fusellm_lambda"),
            source="FuseLLM Eq. 5 (core.TRAINING_OBJECTIVES['fusellm_lambda'])",
        ),
        Objective("dpo", "pair", ("beta",), _pair("dpo"), True, source="preference.dpo_loss"),
        Objective(
            "ln_dpo", "pair", ("beta",), _pair("ln_dpo"), True, source="preference.ln_dpo_loss"
        ),
        Objective("ipo", "pair", ("tau",), _pair("ipo"), True, source="preference.ipo_loss"),
        Objective(
            "simpo", "pair", ("beta", "gamma"), _pair("simpo"), source="preference.simpo_loss"
        ),
        Objective(
            "wrpo",
            "quadruple",
            ("beta", "alpha_max"),
            _wrpo("wrpo"),
            True,
            _WRPO_DEFAULTS,
            source="preference.wrpo_loss, alpha from preference.wrpo_alpha",
        ),
        Objective(
            "wrpo_simpo",
            "quadruple",
            ("beta", "gamma", "alpha_max"),
            _wrpo("wrpo_simpo"),
            False,
            _WRPO_DEFAULTS,
            source="preference.wrpo_simpo_loss",
        ),
        Objective(
            "wrpo_ipo",
            "quadruple",
            ("tau", "alpha_max"),
            _wrpo("wrpo_ipo"),
            True,
            _WRPO_DEFAULTS,
            source="preference.wrpo_ipo_loss",
        ),
        Objective(
            "fuse_sft",
            "weighted_sft",
            ("temperature",),
            _fuse_sft,
            False,
            {"reduction": "token_mean"},
            source="preference.weighted_sft_loss with preference.source_weights",
        ),
        Objective(
            "fusepo_dpo",
            "group",
            ("beta", "temperature"),
            _fusepo("dpo"),
            True,
            source="preference.fusepo_loss('dpo')",
        ),
        Objective(
            "fusepo_ln_dpo",
            "group",
            ("beta", "temperature"),
            _fusepo("ln_dpo"),
            True,
            source="preference.fusepo_loss('ln_dpo')",
        ),
        Objective(
            "fusepo_simpo",
            "group",
            ("beta", "gamma", "temperature"),
            _fusepo("simpo"),
            source="preference.fusepo_loss('simpo')",
        ),
        Objective(
            "rloo_offline",
            "group",
            ("beta_kl", "temperature"),
            _rloo,
            True,
            source="preference.rloo_offline_loss (form assumed, PREFERENCE_FUSION.md §2.3)",
        ),
    )
}


def get_objective(name: str) -> Objective:
    """The objective called ``name``; ValueError listing the known names otherwise."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}") from None


__all__ = ["OBJECTIVES", "SHAPES", "Objective", "get_objective"]

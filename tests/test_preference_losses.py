"""Preference losses (fusekit.losses.preference) and the objectives registry.

Expected values are closed forms computed by hand (with ``math`` on the same numbers), the
limits of PREFERENCE_FUSION.md §5.3, and TRL 1.16's own losses on one tiny model and batch
(skipped, with the reason, when trl 1.16.0 is not installed: it is a dev extra only).
"""

from __future__ import annotations

import math

import pytest
import torch

from fusekit.losses import (
    OBJECTIVES,
    SHAPES,
    TRAINING_OBJECTIVES,
    dpo_loss,
    fusepo_loss,
    ipo_loss,
    ln_dpo_loss,
    preference_metrics,
    rloo_advantages,
    rloo_offline_loss,
    sequence_logps,
    sft_loss,
    simpo_loss,
    source_weights,
    weighted_sft_loss,
    wrpo_alpha,
    wrpo_ipo_loss,
    wrpo_loss,
    wrpo_simpo_loss,
)
from fusekit.losses.registry import get_objective


def t(*xs) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


def softplus_neg(x: float) -> float:
    """-log sigma(x) by hand."""
    return math.log1p(math.exp(-x))


# ---- sequence_logps --------------------------------------------------------------------


def test_sequence_logps_equals_gathered_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 11, generator=g)
    labels = torch.randint(0, 11, (3, 6), generator=g)
    labels[0, :2] = -100  # a prompt
    labels[1, 4:] = -100  # padding
    labels[2, :] = -100  # nothing to predict
    logp, n = sequence_logps(logits, labels)
    lsm = torch.log_softmax(logits.double(), -1)
    for b in range(3):
        want, count = 0.0, 0
        for pos in range(1, 6):  # logits at pos - 1 predict labels at pos
            if labels[b, pos] != -100:
                want += lsm[b, pos - 1, labels[b, pos]].item()
                count += 1
        assert logp[b].item() == pytest.approx(want, abs=1e-5)
        assert n[b].item() == count
    assert logp.dtype == torch.float32 and n.tolist() == [4, 3, 0]


def test_sequence_logps_ignores_masked_positions_and_reads_bf16_in_float32():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, -100, -100]])
    base, _ = sequence_logps(logits, labels)
    moved = logits.clone()
    moved[0, [0, 4]] += 5.0  # position 0 predicts a -100 label; 4 predicts nothing
    moved[1, [2, 3, 4]] -= 3.0
    again, _ = sequence_logps(moved, labels)
    assert torch.equal(base, again)
    half, _ = sequence_logps(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    assert torch.allclose(half, sequence_logps(logits.bfloat16().float(), labels)[0])


# ---- closed forms ----------------------------------------------------------------------


def test_dpo_closed_form_and_weights():
    # pair 1: beta ((-3 + 4) - (-5 + 4)) = 0.5 * 2 = 1; pair 2: 0.5 * ((-2 + 1) - (-1 + 3)) = -1.5
    pw, pl, rw, rl = t(-3.0, -2.0), t(-5.0, -1.0), t(-4.0, -1.0), t(-4.0, -3.0)
    l1, l2 = softplus_neg(1.0), softplus_neg(-1.5)
    assert dpo_loss(pw, pl, rw, rl, 0.5).item() == pytest.approx((l1 + l2) / 2, abs=1e-6)
    # weights are not renormalised: (2 * l1 + 0 * l2) / B
    w = t(2.0, 0.0)
    assert dpo_loss(pw, pl, rw, rl, 0.5, w).item() == pytest.approx(l1, abs=1e-6)
    with pytest.raises(ValueError, match="weights"):
        dpo_loss(pw, pl, rw, rl, 0.5, t(1.0, 1.0, 1.0))


def test_ln_dpo_closed_form_and_equals_dpo_for_single_tokens():
    # (-6 + 3) / 3 - (-4 + 4) / 2 = -1, beta 2 -> margin -2
    got = ln_dpo_loss(t(-6.0), t(-4.0), t(-3.0), t(-4.0), t(3), t(2), 2.0)
    assert got.item() == pytest.approx(softplus_neg(-2.0), abs=1e-6)
    g = torch.Generator().manual_seed(2)
    pw, pl, rw, rl = (torch.randn(5, generator=g) * 3 for _ in range(4))
    ones = torch.ones(5, dtype=torch.long)
    assert torch.allclose(
        ln_dpo_loss(pw, pl, rw, rl, ones, ones, 0.7), dpo_loss(pw, pl, rw, rl, 0.7), atol=1e-7
    )


def test_ipo_closed_form():
    # (-6 + 2) / 4 - (-9 + 3) / 3 = -1 + 2 = 1; tau 0.25 -> target 2; (1 - 2)^2 = 1
    got = ipo_loss(t(-6.0), t(-9.0), t(-2.0), t(-3.0), t(4), t(3), 0.25)
    assert got.item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="tau"):
        ipo_loss(t(-6.0), t(-9.0), t(-2.0), t(-3.0), t(4), t(3), 0.0)


def test_simpo_closed_form():
    # beta (-4/2 - -9/3) - gamma = 2.5 * 1 - 0.5 = 2
    got = simpo_loss(t(-4.0), t(-9.0), t(2), t(3), 2.5, 0.5)
    assert got.item() == pytest.approx(softplus_neg(2.0), abs=1e-6)


def test_zero_token_rows_are_finite():
    got = ln_dpo_loss(t(0.0), t(-2.0), t(0.0), t(-1.0), t(0), t(1), 1.0)
    assert got.item() == pytest.approx(softplus_neg(1.0), abs=1e-6)  # count clamped to 1


def test_preference_metrics_by_hand():
    m = preference_metrics(t(1.0, -1.0, 3.0), t(0.0, 0.0, 1.0))
    assert m["rewards/chosen"] == pytest.approx(1.0)
    assert m["rewards/rejected"] == pytest.approx(1.0 / 3)
    assert m["rewards/margins"] == pytest.approx(2.0 / 3)
    assert m["rewards/accuracies"] == pytest.approx(2.0 / 3)
    w = preference_metrics(
        t(0.5, 0.5), t(0.0, 1.0), source_chosen=t(2.0, 2.0), target_chosen=t(-1.0, 0.0)
    )
    assert w["rewards/source_accuracies"] == 1.0 and w["rewards/pivot_accuracies"] == 0.0
    assert w["rewards/target_chosen"] == pytest.approx(-0.5)
    masked = preference_metrics(t(1.0, 9.0), t(0.0, 0.0), mask=torch.tensor([True, False]))
    assert masked["rewards/chosen"] == 1.0


# ---- WRPO ------------------------------------------------------------------------------


def _quad(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, generator=g) * 5 - 20 for _ in range(6)]


def test_wrpo_limits_are_dpo_on_target_and_on_source_pairs():
    p_ws, p_wt, p_l, r_ws, r_wt, r_l = _quad(3)
    at0 = wrpo_loss(p_ws, p_wt, p_l, r_ws, r_wt, r_l, 0.1, 0.0)
    at1 = wrpo_loss(p_ws, p_wt, p_l, r_ws, r_wt, r_l, 0.1, 1.0)
    assert torch.allclose(at0, dpo_loss(p_wt, p_l, r_wt, r_l, 0.1), atol=1e-7)
    assert torch.allclose(at1, dpo_loss(p_ws, p_l, r_ws, r_l, 0.1), atol=1e-7)
    assert not torch.allclose(at0, at1)


def test_wrpo_closed_form():
    # r_ws = 0.5 (-1 + 3) = 1, r_wt = 0.5 (-2 + 2) = 0, r_l = 0.5 (-5 + 3) = -1
    # alpha 0.3: r_w = 0.3; margin 1.3
    got = wrpo_loss(t(-1.0), t(-2.0), t(-5.0), t(-3.0), t(-2.0), t(-3.0), 0.5, 0.3)
    assert got.item() == pytest.approx(softplus_neg(1.3), abs=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        wrpo_loss(t(-1.0), t(-2.0), t(-5.0), t(-3.0), t(-2.0), t(-3.0), 0.5, 1.5)


def test_wrpo_simpo_and_ipo_forms():
    # SimPO: 0.5 * 2 * (-4/2) + 0.5 * 2 * (-3/3) - 2 * (-8/2) - 1 = -2 - 1 + 8 - 1 = 4
    got = wrpo_simpo_loss(t(-4.0), t(-3.0), t(-8.0), t(2), t(3), t(2), 2.0, 1.0, 0.5)
    assert got.item() == pytest.approx(softplus_neg(4.0), abs=1e-6)
    # IPO: D/n: ws (-4 + 2)/2 = -1, wt (-3 + 6)/3 = 1, l (-8 + 4)/2 = -2
    # alpha 0.25: -0.25 + 0.75 + 2 = 2.5; tau 0.5 -> target 1; (1.5)^2
    args = (t(-4.0), t(-3.0), t(-8.0), t(-2.0), t(-6.0), t(-4.0), t(2), t(3), t(2))
    assert wrpo_ipo_loss(*args, 0.5, 0.25).item() == pytest.approx(2.25, abs=1e-6)
    p_ws, p_wt, p_l, r_ws, r_wt, r_l = _quad(4)
    n_ws, n_wt, n_l = t(3, 5, 2, 7), t(4, 4, 1, 9), t(6, 2, 2, 3)
    assert torch.allclose(
        wrpo_simpo_loss(p_ws, p_wt, p_l, n_ws, n_wt, n_l, 2.0, 0.3, 0.0),
        simpo_loss(p_wt, p_l, n_wt, n_l, 2.0, 0.3),
        atol=1e-7,
    )
    assert torch.allclose(
        wrpo_ipo_loss(p_ws, p_wt, p_l, r_ws, r_wt, r_l, n_ws, n_wt, n_l, 0.1, 1.0),
        ipo_loss(p_ws, p_l, r_ws, r_l, n_ws, n_l, 0.1),
        atol=1e-6,
    )


def test_wrpo_alpha_schedule():
    assert wrpo_alpha(0, 10, 0.1) == 0.0
    assert wrpo_alpha(9, 10, 0.1) == pytest.approx(0.1 * 9 / 10)
    assert wrpo_alpha(5, 10, 0.1) == pytest.approx(0.05)
    assert wrpo_alpha(12, 10, 0.1) == pytest.approx(0.1)
    assert wrpo_alpha(0, 10, 0.1, dynamic=False) == pytest.approx(0.1)
    for bad in [(0, 0, 0.1), (-1, 10, 0.1), (0, 10, 1.5)]:
        with pytest.raises(ValueError):
            wrpo_alpha(*bad)


# ---- FuseRL: source weights, FuseSFT, FusePO, offline RLOO -----------------------------


def test_source_weights_closed_form_and_limits():
    scores = t(0.0, 0.035).view(1, 2)
    w = source_weights(scores, 0.05)
    # exp(0.035 / 0.05) = e^0.7 : 1
    assert (w[0, 1] / w[0, 0]).item() == pytest.approx(math.exp(0.7), rel=1e-5)
    many = torch.tensor([[0.1, 0.5, 0.3], [0.2, 0.2, 0.1], [0.9, 0.0, 0.9]])
    for temp in (0.0, 0.01, 0.05, 1.0, math.inf):
        assert torch.allclose(source_weights(many, temp).sum(-1), torch.ones(3))
    hard = source_weights(many, 0.0)
    assert hard.tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 0]]  # ties go to the first
    # tau -> 0: the argmax where it is unique; tied maxima share the weight (tau = 0 breaks ties)
    near0 = source_weights(many, 1e-4)
    assert torch.allclose(near0[0], hard[0], atol=1e-6)
    assert torch.allclose(near0[1:], torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]), atol=1e-6)
    assert torch.allclose(source_weights(many, math.inf), torch.full((3, 3), 1 / 3))
    assert torch.allclose(source_weights(many, 1e6), torch.full((3, 3), 1 / 3), atol=1e-6)


def test_source_weights_mask_and_errors():
    scores = torch.tensor([[0.9, 0.1, 0.5]])
    keep = torch.tensor([[False, True, True]])
    assert source_weights(scores, 0.0, keep).tolist() == [[0, 0, 1]]
    assert torch.allclose(source_weights(scores, math.inf, keep), t(0.0, 0.5, 0.5).view(1, 3))
    soft = source_weights(scores, 0.1, keep)
    assert soft[0, 0] == 0 and soft[0, 2] / soft[0, 1] == pytest.approx(math.exp(4.0), rel=1e-5)
    with pytest.raises(ValueError, match="no kept source"):
        source_weights(scores, 0.1, torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="temperature"):
        source_weights(scores, -1.0)


def _rows(seed: int, n_rows: int, length: int = 6, vocab: int = 9):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n_rows, length, vocab, generator=g)
    labels = torch.randint(0, vocab, (n_rows, length), generator=g)
    labels[:, :2] = -100
    return logits, labels


def test_weighted_sft_argmax_weights_is_sft_on_the_best_response():
    logits, labels = _rows(5, 3)  # one prompt, three sources, equal lengths
    logp, n = sequence_logps(logits, labels)
    nll = (-logp / n).view(1, 3)
    scores = torch.tensor([[0.2, 0.7, 0.1]])
    got = weighted_sft_loss(nll, source_weights(scores, 0.0))
    assert torch.allclose(got, sft_loss(logits[1:2], labels[1:2]), atol=1e-6)
    # temperature -> infinity: the plain mean of the three responses' token means
    uniform = weighted_sft_loss(nll, source_weights(scores, math.inf))
    assert uniform.item() == pytest.approx(nll.mean().item(), abs=1e-6)
    # two prompts of equal lengths: argmax weights equal sft_loss over the two best responses
    logits2, labels2 = _rows(6, 4)
    lp2, n2 = sequence_logps(logits2, labels2)
    scores2 = torch.tensor([[0.1, 0.4], [0.9, 0.3]])  # best rows: 1 and 2
    got2 = weighted_sft_loss((-lp2 / n2).view(2, 2), source_weights(scores2, 0.0))
    assert torch.allclose(got2, sft_loss(logits2[1:3], labels2[1:3]), atol=1e-6)


def test_fusepo_with_one_source_is_the_base_loss():
    g = torch.Generator().manual_seed(7)
    pw, pl, rw, rl = (torch.randn(3, 1, generator=g) * 4 - 10 for _ in range(4))
    nw, nl = torch.tensor([[3], [5], [2]]), torch.tensor([[4], [1], [6]])
    w = source_weights(torch.randn(3, 1, generator=g), 0.05)
    assert torch.equal(w, torch.ones(3, 1))
    flat = [x.view(-1) for x in (pw, pl, rw, rl, nw, nl)]
    pw1, pl1, rw1, rl1, nw1, nl1 = flat
    cases = {
        "dpo": dpo_loss(pw1, pl1, rw1, rl1, 0.1),
        "ln_dpo": ln_dpo_loss(pw1, pl1, rw1, rl1, nw1, nl1, 0.1),
        "simpo": simpo_loss(pw1, pl1, nw1, nl1, 2.0, 0.5),
    }
    for kind, want in cases.items():
        beta = 2.0 if kind == "simpo" else 0.1
        got = fusepo_loss(kind, pw, pl, rw, rl, nw, nl, w, beta, gamma=0.5)
        assert torch.allclose(got, want, atol=1e-7), kind
    with pytest.raises(ValueError, match="FusePO kind"):
        fusepo_loss("ipo", pw, pl, rw, rl, nw, nl, w, 0.1)


def test_fusepo_closed_form_two_sources():
    # prompt 0: pairs with DPO margins 1 and -1 (beta 1), weights 0.75 / 0.25
    # prompt 1: one kept pair with margin 2 (the other source dropped, weight 0)
    pw = torch.tensor([[-1.0, -2.0], [0.0, 0.0]])
    pl = torch.tensor([[-2.0, -1.0], [-2.0, 0.0]])
    zeros = torch.zeros(2, 2)
    w = torch.tensor([[0.75, 0.25], [1.0, 0.0]])
    want = (0.75 * softplus_neg(1.0) + 0.25 * softplus_neg(-1.0) + 1.0 * softplus_neg(2.0)) / 2
    got = fusepo_loss("dpo", pw, pl, zeros, zeros, None, None, w, 1.0)
    assert got.item() == pytest.approx(want, abs=1e-6)


def test_rloo_equal_rewards_and_no_kl_give_zero():
    logp = torch.tensor([[-3.0, -5.0, -4.0, -2.0]], requires_grad=True)
    loss = rloo_offline_loss(
        logp, t(3, 5, 4, 2).view(1, 4), t(-1.0, -1.0, -1.0, -1.0).view(1, 4),
        torch.full((1, 4), 0.7), torch.full((1, 4), 0.5), beta_kl=0.0,
    )  # fmt: skip
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logp.grad) == 0


def test_rloo_two_responses_and_leave_one_out_baseline():
    ref = torch.zeros(1, 2)
    adv = rloo_advantages(t(0.9, 0.2).view(1, 2), torch.zeros(1, 2), ref, 0.0)
    assert torch.allclose(adv, t(0.7, -0.7).view(1, 2))
    # n = 3, rewards 1, 2, 6: A_1 = 1 - 4 = -3, A_2 = 2 - 3.5 = -1.5, A_3 = 6 - 1.5 = 4.5
    adv3 = rloo_advantages(t(1.0, 2.0, 6.0).view(1, 3), torch.zeros(1, 3), torch.zeros(1, 3), 0.0)
    assert torch.allclose(adv3, t(-3.0, -1.5, 4.5).view(1, 3))
    # KL in the reward: r~ = r - 0.5 (logp - ref): equal rewards, logp - ref = 2 and 0 -> -1, 0
    kl = rloo_advantages(
        t(1.0, 1.0).view(1, 2), t(-1.0, -3.0).view(1, 2), t(-3.0, -3.0).view(1, 2), 0.5
    )
    assert torch.allclose(kl, t(-1.0, 1.0).view(1, 2))
    # masked response: out of the baseline, advantage 0
    m = torch.tensor([[True, True, False]])
    adv_m = rloo_advantages(
        t(1.0, 2.0, 100.0).view(1, 3), torch.zeros(1, 3), torch.zeros(1, 3), 0.0, m
    )
    assert torch.allclose(adv_m, t(-1.0, 1.0, 0.0).view(1, 3))
    with pytest.raises(ValueError, match="at least 2"):
        rloo_advantages(t(1.0, 2.0).view(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), 0.0,
                        torch.tensor([[True, False]]))  # fmt: skip


def test_rloo_loss_closed_form_and_gradient():
    # A = (0.7, -0.7); loss = -(w1 A1 logp1/n1 + w2 A2 logp2/n2) / B
    logp = torch.tensor([[-4.0, -9.0]], requires_grad=True)
    n = t(2, 3).view(1, 2)
    w = t(0.6, 0.6).view(1, 2)
    loss = rloo_offline_loss(logp, n, torch.zeros(1, 2), t(0.9, 0.2).view(1, 2), w, 0.0)
    want = -(0.6 * 0.7 * (-4.0 / 2) + 0.6 * (-0.7) * (-9.0 / 3))
    assert loss.item() == pytest.approx(want, abs=1e-6)
    loss.backward()
    assert torch.allclose(logp.grad, t(-0.6 * 0.7 / 2, 0.6 * 0.7 / 3).view(1, 2))


# ---- gradients with rows that have nothing to predict -----------------------------------


@pytest.mark.parametrize("name", ["dpo", "ln_dpo", "ipo", "simpo"])
def test_gradients_finite_with_all_masked_rows(name):
    logits, labels = _rows(8, 4)
    labels[1] = -100  # the second chosen response has no token to predict
    labels[3] = -100  # nor the second rejected one
    logits.requires_grad_(True)
    ref = torch.zeros(4)
    hp = {"beta": 0.5, "tau": 0.5, "gamma": 0.2}
    loss, metrics = get_objective(name)({"logits": logits, "labels": labels, "ref_logp": ref}, hp)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.count_nonzero(logits.grad[1]) == 0 and torch.count_nonzero(logits.grad[3]) == 0
    assert all(math.isfinite(v) for v in metrics.values())


# ---- the registry -----------------------------------------------------------------------

HPARAMS = {
    "beta": 0.5,
    "gamma": 0.3,
    "tau": 0.5,
    "alpha_max": 0.1,
    "temperature": 0.05,
    "beta_kl": 0.05,
    "lam": 0.7,
}


def _batch_for(shape: str, seed: int = 9) -> dict[str, torch.Tensor]:
    b, k = 2, 3
    n_rows = {"sft": b, "topk": b, "weighted_sft": b * k, "pair": 2 * b, "quadruple": 3 * b}
    n_rows["group"] = 2 * b * k
    logits, labels = _rows(seed, n_rows[shape])
    g = torch.Generator().manual_seed(seed + 1)
    batch = {
        "logits": logits,
        "labels": labels,
        "ref_logp": -20 * torch.rand(n_rows[shape], generator=g),
    }
    if shape == "topk":
        batch["topk_ids"] = torch.randint(0, 9, (b, 6, 3), generator=g)
        batch["topk_logprobs"] = torch.log_softmax(torch.randn(b, 6, 3, generator=g), -1)
    if shape == "weighted_sft":
        batch["scores"] = torch.rand(b, k, generator=g)
    if shape == "group":
        batch["rewards"] = torch.rand(b, k, 2, generator=g)
    return batch


def test_registry_names_shapes_and_unknown_name():
    want = {
        "sft", "profuser_eq4", "fusellm_lambda", "dpo", "ln_dpo", "ipo", "simpo", "wrpo",
        "wrpo_simpo", "wrpo_ipo", "fuse_sft", "fusepo_dpo", "fusepo_ln_dpo", "fusepo_simpo",
        "rloo_offline",
    }  # fmt: skip
    assert set(OBJECTIVES) == want
    assert all(o.shape in SHAPES for o in OBJECTIVES.values())
    with pytest.raises(ValueError, match="known: .*ln_dpo"):
        get_objective("orpo")


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_runs_on_its_layout(name):
    obj = get_objective(name)
    batch = _batch_for(obj.shape)
    batch["logits"].requires_grad_(True)
    loss, metrics = obj(batch, HPARAMS, step=3, total_steps=10)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(batch["logits"].grad).all() and batch["logits"].grad.abs().sum() > 0
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    missing = {k: v for k, v in HPARAMS.items() if k not in obj.hparams}
    if obj.hparams:
        with pytest.raises(ValueError, match="needs hyperparameters"):
            obj(batch, missing)


def test_registry_matches_the_functions():
    batch = _batch_for("pair")
    logp, n = sequence_logps(batch["logits"], batch["labels"])
    pw, pl = logp.chunk(2)
    nw, nl = n.chunk(2)
    rw, rl = batch["ref_logp"].chunk(2)
    loss, m = get_objective("ln_dpo")(batch, HPARAMS)
    assert torch.allclose(loss, ln_dpo_loss(pw, pl, rw, rl, nw, nl, 0.5))
    assert m["rewards/chosen"] == pytest.approx((0.5 * (pw - rw) / nw).mean().item(), abs=1e-6)
    # precomputed per-sequence sums give the same loss as logits
    pre = {"logp": logp, "n_tokens": n, "ref_logp": batch["ref_logp"]}
    assert torch.allclose(get_objective("ln_dpo")(pre, HPARAMS)[0], loss)

    quad = _batch_for("quadruple")
    lq, _ = sequence_logps(quad["logits"], quad["labels"])
    p_ws, p_wt, p_l = lq.chunk(3)
    r_ws, r_wt, r_l = quad["ref_logp"].chunk(3)
    loss, m = get_objective("wrpo")(quad, HPARAMS, step=5, total_steps=10)
    assert m["cur_alpha"] == pytest.approx(0.05)
    assert torch.allclose(loss, wrpo_loss(p_ws, p_wt, p_l, r_ws, r_wt, r_l, 0.5, 0.05))
    static = get_objective("wrpo")(quad, {**HPARAMS, "alpha_schedule": "constant"}, 0, 10)
    assert static[1]["cur_alpha"] == pytest.approx(0.1)

    topk = _batch_for("topk")
    got, _ = get_objective("profuser_eq4")(topk, HPARAMS)
    want = TRAINING_OBJECTIVES["profuser_eq4"](
        topk["logits"], topk["labels"], topk["topk_ids"], topk["topk_logprobs"], 0.5, 0.0
    )
    assert torch.equal(got, want)
    got, _ = get_objective("fusellm_lambda")(topk, HPARAMS)
    want = TRAINING_OBJECTIVES["fusellm_lambda"](
        topk["logits"], topk["labels"], topk["topk_ids"], topk["topk_logprobs"], 0.0, 0.7
    )
    assert torch.equal(got, want)


def test_registry_group_layout_is_prompt_source_role():
    batch = _batch_for("group")
    logp, n = sequence_logps(batch["logits"], batch["labels"])
    rows = logp.view(2, 3, 2)
    ref = batch["ref_logp"].view(2, 3, 2)
    w = source_weights(batch["rewards"][..., 0], 0.05)
    want = fusepo_loss(
        "dpo", rows[..., 0], rows[..., 1], ref[..., 0], ref[..., 1], None, None, w, 0.5
    )
    got, _ = get_objective("fusepo_dpo")(batch, HPARAMS)
    assert torch.allclose(got, want)
    # temperature 0 ("SFT+PO"): only the best source's pair counts
    hard, _ = get_objective("fusepo_dpo")(batch, {**HPARAMS, "temperature": 0.0})
    best = batch["rewards"][..., 0].argmax(-1)
    i = torch.arange(2)
    pw, pl = rows[i, best, 0], rows[i, best, 1]
    assert torch.allclose(hard, dpo_loss(pw, pl, ref[i, best, 0], ref[i, best, 1], 0.5))


def test_registry_rejects_bad_input():
    batch = _batch_for("pair")
    with pytest.raises(ValueError, match="do not match the batch"):
        get_objective("dpo")({**batch, "ref_logp": batch["ref_logp"][:-1]}, HPARAMS)
    with pytest.raises(ValueError, match="lacks"):
        get_objective("dpo")({k: v for k, v in batch.items() if k != "ref_logp"}, HPARAMS)
    with pytest.raises(ValueError, match="must be a number"):
        get_objective("dpo")(batch, {"beta": "3e-7"})
    with pytest.raises(ValueError, match="multiple of 3"):
        get_objective("wrpo")(batch, HPARAMS)
    with pytest.raises(ValueError, match="alpha_schedule"):
        get_objective("wrpo")(_batch_for("quadruple"), {**HPARAMS, "alpha_schedule": "cosine"})


# ---- equality with TRL 1.16 -------------------------------------------------------------

TRL_VERSION = "1.16.0"
PROMPTS = ["the cat", "a dog ran", "one two"]
CHOSEN = [" sat on the mat", " in the park", " three four five six"]
REJECTED = [" ran", " sat on one two three", " hello"]


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """TRL's trainers configure accelerate's process-wide state (mixed precision, device);
    reset it after each test so that later tests (fusekit's own loop) start clean."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def _trl():
    try:
        import trl
    except ImportError:
        pytest.skip(f"trl=={TRL_VERSION} is not installed (dev extra): TRL-equality skipped")
    if trl.__version__ != TRL_VERSION:
        pytest.skip(f"TRL-equality is pinned to trl {TRL_VERSION}, found {trl.__version__}")
    return trl


@pytest.fixture(scope="module")
def tiny_pieces():
    """A tiny tokenizer and two different tiny float32 Llamas (policy, reference)."""
    _trl()
    import transformers

    from fusekit.tiny.tokenizers import train_tokenizer

    texts = ["the cat sat on the mat", "a dog ran in the park", "one two three four five six"]
    tok = train_tokenizer(texts * 5 + ["hello there friend"], "byte_bpe", 300, "chatml")
    tok.padding_side = "right"

    def model(seed: int):
        torch.manual_seed(seed)
        cfg = transformers.LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=64,
            pad_token_id=tok.pad_token_id,
        )
        return transformers.LlamaForCausalLM(cfg).float().eval()

    return tok, model


def _dataset():
    from datasets import Dataset

    return Dataset.from_dict({"prompt": PROMPTS, "chosen": CHOSEN, "rejected": REJECTED})


@pytest.mark.parametrize(
    ("loss_type", "name", "hp"),
    [
        ("sigmoid", "dpo", {"beta": 2.0}),
        ("sigmoid_norm", "ln_dpo", {"beta": 10.0}),
        ("ipo", "ipo", {"tau": 0.5}),
    ],
)
def test_equals_trl_dpo_trainer(tiny_pieces, tmp_path, loss_type, name, hp):
    trl = _trl()
    tok, model = tiny_pieces
    policy, ref = model(0), model(1)
    beta = hp.get("beta", hp.get("tau"))
    args = trl.DPOConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        beta=beta,
        loss_type=[loss_type],
        per_device_train_batch_size=3,
        disable_dropout=True,
    )
    trainer = trl.DPOTrainer(
        model=policy, ref_model=ref, args=args, train_dataset=_dataset(), processing_class=tok
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_loss.backward()
    trl_grads = [p.grad.clone() for p in policy.parameters()]
    policy.zero_grad()

    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        ref_logp, _ = sequence_logps(ref(**kw).logits, labels)
    ours, _ = get_objective(name)(
        {"logits": policy(**kw).logits, "labels": labels, "ref_logp": ref_logp}, hp
    )
    ours.backward()
    assert abs(ours.item() - trl_loss.item()) < 1e-5
    assert abs(trl_loss.item() - math.log(2)) > 1e-3  # the models differ: not a trivial value
    for mine, theirs in zip((p.grad for p in policy.parameters()), trl_grads, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-5)


def test_equals_trl_cpo_simpo(tiny_pieces, tmp_path):
    _trl()
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    tok, model = tiny_pieces
    policy = model(2)
    args = CPOConfig(
        output_dir=str(tmp_path),
        report_to="none",
        use_cpu=True,
        beta=2.0,
        loss_type="simpo",
        cpo_alpha=0.0,
        simpo_gamma=0.7,
        per_device_train_batch_size=3,
        max_length=64,
    )
    trainer = CPOTrainer(model=policy, args=args, train_dataset=_dataset(), processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch)
        cat = trainer.concatenated_inputs(batch, padding_value=tok.pad_token_id)
        logits = policy(
            input_ids=cat["concatenated_input_ids"],
            attention_mask=cat["concatenated_attention_mask"],
        ).logits
        ours, _ = get_objective("simpo")(
            {"logits": logits, "labels": cat["concatenated_labels"]}, {"beta": 2.0, "gamma": 0.7}
        )
    assert abs(ours.item() - trl_loss.item()) < 1e-5

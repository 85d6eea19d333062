"""Each loss against a value computed by hand on a tiny tensor, plus masking and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fusekit.losses import (
    avg_ce_fusion,
    fuse_loss,
    fusellm_loss,
    min_ce_fusion,
    min_ce_index,
    profuser_loss,
    sft_and_kl,
    sft_loss,
    sparse_kl,
)

LN = math.log


def lse(*xs):
    return LN(sum(math.exp(x) for x in xs))


def example():
    """B=1, L=3, V=3. Position 0 is the prompt; positions 1 and 2 are response tokens."""
    logits = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [9.0, 9.0, 9.0]]], requires_grad=True)
    labels = torch.tensor([[-100, 2, 0]])
    # teacher rows sit at the position of the token they predict
    ids = torch.tensor([[[-1, -1], [2, 1], [0, 2]]])
    lps = torch.tensor([[[-math.inf, -math.inf], [LN(0.6), LN(0.2)], [LN(0.5), -math.inf]]])
    ids[0, 2, 1] = -1
    return logits, labels, ids, lps


def test_sft_by_hand():
    logits, labels, _, _ = example()
    # logits[0] predicts label 2, logits[1] predicts label 0
    want = ((lse(0, 1, 2) - 2) + (lse(1, 0, 0) - 1)) / 2
    assert sft_loss(logits, labels).item() == pytest.approx(want, rel=1e-6)


def test_sparse_kl_by_hand():
    logits, labels, ids, lps = example()
    # position 1 row (predicting token 2 from logits[0] = [0, 1, 2]): teacher on {2, 1}
    # renormalised to (.75, .25); the student's full-vocabulary log-softmax at those ids
    s2, s1 = 2 - lse(0, 1, 2), 1 - lse(0, 1, 2)
    kl1 = 0.75 * (LN(0.75) - s2) + 0.25 * (LN(0.25) - s1)
    # position 2 row (from logits[1] = [1, 0, 0]): teacher one entry {0}: q = 1, KL = -log p(0)
    kl2 = lse(1, 0, 0) - 1
    want = (kl1 + kl2) / 2
    assert sparse_kl(logits, labels, ids, lps).item() == pytest.approx(want, abs=1e-6)


def test_kl_is_zero_only_when_student_matches_teacher():
    labels = torch.tensor([[-100, 5]])
    ids = torch.tensor([[[-1, -1], [0, 1]]])
    lps = torch.tensor([[[-math.inf, -math.inf], [LN(0.3), LN(0.1)]]])
    # the student puts .75 / .25 on ids 0 and 1 and nothing elsewhere: KL = 0
    logits = torch.tensor([[[LN(3.0), 0.0, -60.0, -60.0, -60.0, -60.0], [0.0] * 6]])
    assert sparse_kl(logits, labels, ids, lps).item() == pytest.approx(0.0, abs=1e-6)
    # the same 3:1 ratio with mass elsewhere is NOT a match: KL(P_S || P_T) > 0
    logits = torch.tensor([[[LN(3.0), 0.0, 7.0, -2.0, 1.0, 4.0], [0.0] * 6]])
    assert sparse_kl(logits, labels, ids, lps).item() > 1.0


def dense_kl(logits, labels, ids, lps):
    """Independent reference: a dense [B, L, V] teacher, torch's log_softmax and kl_div."""
    logits, labels, ids, lps = logits[:, :-1], labels[:, 1:], ids[:, 1:], lps[:, 1:]
    valid = ids >= 0
    q = torch.zeros(logits.shape, dtype=torch.float64)
    probs = torch.where(valid, lps.double().exp(), torch.zeros((), dtype=torch.float64))
    q.scatter_add_(-1, ids.clamp(min=0).long(), probs)
    q = q / q.sum(-1, keepdim=True).clamp(min=1e-300)
    logp = torch.log_softmax(logits.double(), -1)
    per = torch.nn.functional.kl_div(logp, q, reduction="none").sum(-1)
    mask = (labels != -100) & valid.any(-1)
    return (per * mask).sum() / mask.sum()


@pytest.mark.parametrize("seed", range(4))
def test_sparse_kl_equals_a_dense_reference(seed):
    g = torch.Generator().manual_seed(seed)
    B, L, V, k = 3, 7, 50, 5
    logits = torch.randn(B, L, V, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, V, (B, L), generator=g)
    labels[:, :2] = -100
    labels[0, 5:] = -100
    ids = torch.stack([torch.randperm(V, generator=g)[:k] for _ in range(B * L)]).view(B, L, k)
    lps = torch.log_softmax(torch.randn(B, L, k, generator=g), -1) - 0.2  # top-k, not all mass
    ids[1, 3, 2:] = -1  # a short row
    lps[1, 3, 2:] = -math.inf
    ids[2, 4, 1:] = -1  # a one-hot row
    lps[2, 4, 1:] = -math.inf
    ids[2, 5, :] = -1  # no teacher row
    lps[2, 5, :] = -math.inf
    lg = logits.clone().requires_grad_(True)
    got = sparse_kl(lg, labels, ids, lps)
    ref_lg = logits.clone().requires_grad_(True)
    want = dense_kl(ref_lg, labels, ids, lps)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got.backward()
    want.backward()
    assert torch.allclose(lg.grad, ref_lg.grad, atol=1e-6)
    # the shared-logsumexp pair gives the same two numbers
    sft, kl = sft_and_kl(logits, labels, ids, lps)
    assert kl.item() == pytest.approx(got.item(), rel=1e-6)
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    assert sft.item() == pytest.approx(ce.item(), rel=1e-6)


def test_prompt_and_padding_contribute_nothing():
    logits, labels, ids, lps = example()
    base = (sft_loss(logits, labels).item(), sparse_kl(logits, labels, ids, lps).item())
    # the last position predicts nothing (no next token); the prompt label is -100
    changed = logits.detach().clone()
    changed[0, 2] = torch.tensor([-5.0, 3.0, 1.0])
    assert (
        sft_loss(changed, labels).item(),
        sparse_kl(changed, labels, ids, lps).item(),
    ) == pytest.approx(base)
    padded = torch.cat([logits.detach(), torch.randn(1, 2, 3)], dim=1)
    plabels = torch.cat([labels, torch.tensor([[-100, -100]])], dim=1)
    pids = torch.cat([ids, torch.tensor([[[4, 1], [0, 2]]])], dim=1)
    plps = torch.cat([lps, torch.tensor([[[LN(0.9), LN(0.1)], [LN(0.5), LN(0.5)]]])], dim=1)
    pids[0, 3:, :] = torch.tensor([[0, 1], [0, 2]])
    got = (sft_loss(padded, plabels).item(), sparse_kl(padded, plabels, pids, plps).item())
    assert got == pytest.approx(base)


def test_gradients_flow_only_where_they_should():
    logits, labels, ids, lps = example()
    sparse_kl(logits, labels, ids, lps).backward()
    g = logits.grad[0]
    assert torch.all(g[2] == 0)  # predicts nothing
    # the full-vocabulary softmax: every logit of a labelled row gets a gradient, also
    # outside the teacher's support (its mass there is pushed down)
    assert torch.all(g[0] != 0)
    assert g[0, 0] > 0  # id 0 is outside the support: its logit goes down
    assert torch.all(g[1] != 0)  # a one-entry teacher row teaches too (cross-entropy)
    assert g[1, 0] < 0
    logits.grad = None
    sft_loss(logits, labels).backward()
    assert torch.all(logits.grad[0, 2] == 0) and torch.all(logits.grad[0, :2] != 0)


def test_combined_objectives():
    logits, labels, ids, lps = example()
    sft, kl = sft_loss(logits, labels).item(), sparse_kl(logits, labels, ids, lps).item()
    assert fuse_loss(logits, labels, ids, lps, beta=0.1).item() == pytest.approx(sft + 0.1 * kl)
    assert fusellm_loss(logits, labels, ids, lps, lam=0.5).item() == pytest.approx(
        0.5 * sft + 0.5 * kl
    )
    assert fusellm_loss(logits, labels, ids, lps, lam=1.0).item() == pytest.approx(sft)
    batch = (logits, labels, ids, lps)
    # ProFuser Eq. 4 in both modes (the default): L_SFT + beta KL
    got = profuser_loss(batch, batch, beta=0.5, lam=0.9, w_inference=0.1, w_training=1.0).item()
    assert got == pytest.approx(0.1 * (sft + 0.5 * kl) + 1.0 * (sft + 0.5 * kl))
    # FuseLLM's lambda mix in the training mode, by name
    got = profuser_loss(batch, batch, 0.5, 0.9, 0.1, 1.0, "fusellm_lambda").item()
    assert got == pytest.approx(0.1 * (sft + 0.5 * kl) + 1.0 * (0.9 * sft + 0.1 * kl))
    assert profuser_loss(batch, None, 0.1, 0.5, 1.0, 1.0).item() == pytest.approx(sft + 0.1 * kl)
    assert fuse_loss(logits, labels, ids, lps, beta=0.0).item() == pytest.approx(sft)
    with pytest.raises(ValueError, match="at least one mode"):
        profuser_loss(None, None, 0.1, 0.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown training objective"):
        profuser_loss(batch, batch, 0.1, 0.5, 1.0, 1.0, "fusellm")


def test_no_dense_teacher_tensor_is_built():
    # a 32k vocabulary with k = 10: the loss allocates [B, L, k] for the teacher, and the
    # gradient wrt the logits is the only [B, L, V] tensor besides the log-softmax
    B, L, V, k = 2, 5, 32000, 10
    logits = torch.randn(B, L, V, requires_grad=True)
    labels = torch.randint(0, V, (B, L))
    ids = torch.randint(0, V, (B, L, k))
    lps = torch.log_softmax(torch.randn(B, L, k), -1)
    loss = fuse_loss(logits, labels, ids, lps, beta=0.5)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.shape == (B, L, V)


def test_min_and_avg_ce_fusion():
    a = (np.array([[1, 2]], dtype=np.int32), np.log(np.array([[0.6, 0.4]], dtype=np.float32)))
    b = (np.array([[2, 3]], dtype=np.int32), np.log(np.array([[0.5, 0.5]], dtype=np.float32)))
    assert min_ce_fusion([a, b], [2.0, 1.0]) is b
    assert min_ce_fusion([a, b], [1.0, 1.0]) is a
    # one tie rule everywhere: the source whose name sorts first
    assert min_ce_fusion([a, b], [1.0, 1.0], ["zeta", "alpha"]) is b
    assert min_ce_index([0.5, 0.2, 0.2], ["c", "b", "a"]) == 2
    with pytest.raises(ValueError, match="non-finite"):
        min_ce_index([float("nan"), 1.0], ["a", "b"])
    ids, lps = avg_ce_fusion([a, b], [1.0, 1.0])  # equal weights: id 2 gets .2 + .25
    assert ids.tolist() == [[2, 1]]
    assert np.exp(lps).tolist()[0] == pytest.approx([0.45, 0.3])
    with pytest.raises(ValueError, match="no sources"):
        min_ce_fusion([], [])

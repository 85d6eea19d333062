"""Short from-scratch training of the tiny world's models on CPU.

Two loops: next-token training of a causal LM on (prompt, response) pairs
with the loss on response tokens only, and Bradley-Terry training of a reward
model on (prompt, chosen, rejected) triples. Both are deterministic given the
seed when torch runs single-threaded. (Fusion training of the target model is
a different trainer, in :mod:`fusekit.train`.)
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fusekit.batching import pad_right
from fusekit.chat import encode_example
from fusekit.losses import sft_loss


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def train_causal_lm(
    model,
    tokenizer,
    pairs: list[tuple[str, str]],
    weights: list[float],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    warmup: int = 20,
    desc: str = "train",
) -> list[dict]:
    """Train on (prompt, response) pairs drawn with probability ``weights``.

    Returns the loss log, one record per step.
    """
    enc = [encode_example(tokenizer, p, r) for p, r in pairs]
    gen = torch.Generator().manual_seed(seed)
    w = torch.tensor(weights, dtype=torch.double)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(warmup, steps))
    model.train()
    log = []
    for step in (bar := tqdm(range(steps), desc=desc, mininterval=2)):
        idx = torch.multinomial(w, batch_size, replacement=True, generator=gen).tolist()
        ids, mask, labels = pad_right(
            [enc[i].input_ids for i in idx],
            tokenizer.pad_token_id,
            True,
            [enc[i].n_prompt for i in idx],
        )
        loss = sft_loss(model(input_ids=ids, attention_mask=mask).logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        log.append({"step": step + 1, "loss": loss.item(), "lr": sched.get_last_lr()[0]})
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return log


def train_reward_model(
    model,
    tokenizer,
    triples: list[tuple[str, str, str]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    label_noise: float = 0.0,
    warmup: int = 20,
    desc: str = "train-rm",
) -> list[dict]:
    """Bradley-Terry training: -log sigmoid(r(chosen) - r(rejected)).

    A fraction ``label_noise`` of the pairs is swapped once, up front, which
    is how the tiny world makes reward models of different strength.
    """
    rng = random.Random(f"noise-{seed}")
    data = []
    for p, c, r in triples:
        if rng.random() < label_noise:
            c, r = r, c
        data.append(
            (encode_example(tokenizer, p, c).input_ids, encode_example(tokenizer, p, r).input_ids)
        )
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(warmup, steps))
    model.train()
    log = []
    for step in (bar := tqdm(range(steps), desc=desc, mininterval=2)):
        idx = torch.randint(len(data), (batch_size,), generator=gen).tolist()
        seqs = [data[i][0] for i in idx] + [data[i][1] for i in idx]
        ids, mask, _ = pad_right(seqs, tokenizer.pad_token_id, False)
        scores = model(input_ids=ids, attention_mask=mask).logits[:, 0].float()
        chosen, rejected = scores[:batch_size], scores[batch_size:]
        loss = -F.logsigmoid(chosen - rejected).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        acc = (chosen > rejected).float().mean().item()
        log.append({"step": step + 1, "loss": loss.item(), "accuracy": acc})
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return log

"""Cost of one fusion training step against a plain SFT step on the same batch
(target: at most 1.25x at vocabulary size 32,000), measured in one run.

A LlamaForCausalLM with a 32,000-token vocabulary; a batch of sequences with a
sparse top-10 teacher row on every response token. Each step is forward,
loss, backward and an AdamW update; the median of several steps is compared.

    python benchmarks/fusion_step.py [--batch 8] [--length 256] [--steps 6]
    python benchmarks/fusion_step.py --device cuda --precision bf16 --hidden 2048 --layers 8 \
        --batch 4 --length 2048          # closer to the paper's shapes, on one GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import transformers

from fusekit.losses import fuse_loss, fusellm_loss, sft_loss

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="autocast dtype")
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/fusion_step.json"))
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=a.vocab,
        hidden_size=a.hidden,
        intermediate_size=int(a.hidden * 2.6875),
        num_hidden_layers=a.layers,
        num_attention_heads=max(4, a.hidden // 128),
        num_key_value_heads=max(4, a.hidden // 128),
        max_position_embeddings=a.length,
    )
    dev = torch.device(a.device)
    model = transformers.LlamaForCausalLM(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, a.vocab, (a.batch, a.length), device=dev)
    labels = ids.clone()
    labels[:, : a.length // 4] = -100  # a prompt
    topk = torch.randint(0, a.vocab, (a.batch, a.length, a.k), device=dev)
    lps = torch.log_softmax(torch.randn(a.batch, a.length, a.k, device=dev), -1)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step(kind: str) -> float:
        sync()
        t = time.perf_counter()
        with autocast:
            logits = model(input_ids=ids).logits
        if kind == "sft":
            loss = sft_loss(logits, labels)
        elif kind == "fuse":
            loss = fuse_loss(logits, labels, topk, lps, beta=0.5)
        else:
            loss = fusellm_loss(logits, labels, topk, lps, lam=0.5)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t

    times = {"sft": [], "fuse": [], "fusellm": []}
    for kind in times:  # warm-up
        step(kind)
    for _ in range(a.steps):  # interleaved, so drift hits all three alike
        for kind in times:
            times[kind].append(step(kind))
    med = {k: statistics.median(v) for k, v in times.items()}
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {n_params / 1e6:.1f}M parameters, vocabulary {a.vocab}, "
        f"batch {a.batch} x {a.length}, k={a.k}, {a.device} {a.precision}"
    )
    for k, v in med.items():
        print(
            f"{k:8s} step: {v * 1000:.0f} ms (median of {a.steps}), "
            f"ratio to SFT {v / med['sft']:.3f}"
        )
    print(f"fusion step / SFT step = {med['fuse'] / med['sft']:.3f} (target <= 1.25)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps({"median_s": med, "ratio": med["fuse"] / med["sft"], "args": vars(a)}, indent=2)
    )


if __name__ == "__main__":
    main()

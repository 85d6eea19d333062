"""Cost of one preference (LN-DPO) training step against a plain SFT step over the same
tokens (target: at most 2.2x, issue 15 item 10), measured in one run.

A LlamaForCausalLM with a 32,000-token vocabulary; B pairs (prompt + chosen, prompt +
rejected), each row a quarter prompt. The preference step is what fusekit's loop does:
one policy forward over chosen and rejected concatenated in one [2B, L] batch, reference
log-probability sums read from precomputed tensors (as from the reference file, computed
once before timing), the ``ln_dpo`` objective of the registry, backward, AdamW step. The
SFT step runs the same 2B rows through ``sft_loss``. A third step, the preference step with
a reference *forward* instead of the file (what a trainer holding a second model pays), is
timed for comparison. Steps are interleaved; the median of ``--steps`` is compared.

    python benchmarks/preference_step.py [--pairs 4] [--length 256] [--steps 6]
    python benchmarks/preference_step.py --device cuda --precision bf16 --hidden 2048 \\
        --layers 8 --pairs 2 --length 2048     # closer to the paper's shapes, on one GPU
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import transformers

from fusekit.losses import get_objective, sequence_logps, sft_loss

ROOT = Path(__file__).resolve().parents[1]
TARGET = 2.2


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--pairs", type=int, default=4, help="B: the batch has 2B rows")
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--beta", type=float, default=10.0, help="LN-DPO beta (FuseChat-3.0: 10)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="autocast dtype")
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/preference_step.json"))
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
    reference = copy.deepcopy(model).eval().requires_grad_(False)  # only for the comparison
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    rows = 2 * a.pairs  # chosen block, then rejected block (the registry's "pair" layout)
    ids = torch.randint(0, a.vocab, (rows, a.length), device=dev)
    ids[a.pairs :, : a.length // 4] = ids[: a.pairs, : a.length // 4]  # shared prompts
    labels = ids.clone()
    labels[:, : a.length // 4] = -100  # the prompt
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16")
    ln_dpo = get_objective("ln_dpo")
    hparams = {"beta": a.beta}

    def ref_logps() -> torch.Tensor:
        with torch.no_grad(), autocast:
            return sequence_logps(reference(input_ids=ids).logits, labels)[0]

    precomputed = ref_logps()  # what the reference file holds, computed once

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step(kind: str) -> float:
        sync()
        t = time.perf_counter()
        ref = ref_logps() if kind == "pref_ref_forward" else precomputed
        with autocast:
            logits = model(input_ids=ids).logits
        if kind == "sft":
            loss = sft_loss(logits, labels)
        else:
            loss, _ = ln_dpo({"logits": logits, "labels": labels, "ref_logp": ref}, hparams)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t

    times = {"sft": [], "pref": [], "pref_ref_forward": []}
    for kind in times:  # warm-up
        step(kind)
    for _ in range(a.steps):  # interleaved, so drift hits all three alike
        for kind in times:
            times[kind].append(step(kind))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["pref"] / med["sft"]
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {n_params / 1e6:.1f}M parameters, vocabulary {a.vocab}, {a.pairs} pairs = "
        f"{rows} rows x {a.length} tokens, {a.device} {a.precision}"
    )
    for k, v in med.items():
        print(
            f"{k:17s} step: {v * 1000:.0f} ms (median of {a.steps}), "
            f"ratio to SFT {v / med['sft']:.3f}"
        )
    verdict = "within" if ratio <= TARGET else "OVER"
    print(f"preference step / SFT step = {ratio:.3f} (target <= {TARGET}: {verdict})")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps(
            {
                "median_s": med,
                "step_s": times,
                "ratio": ratio,
                "ratio_with_reference_forward": med["pref_ref_forward"] / med["sft"],
                "target": TARGET,
                "args": vars(a),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

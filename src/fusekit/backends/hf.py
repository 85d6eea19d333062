"""The transformers backend: batched greedy/sampled generation with left padding and KV cache."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from fusekit.chat import encode_prompt


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    desc: str = "generate",
) -> list[dict]:
    """Generate one response per prompt; returns dicts with response, n_tokens, finish_reason."""
    out: list[dict] = []
    pad = tokenizer.pad_token_id
    for start in tqdm(range(0, len(prompts), batch_size), desc=desc, mininterval=2):
        chunk = [encode_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(chunk):  # left padding
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        kwargs = {"do_sample": do_sample}
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        seqs = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
            **kwargs,
        )[:, width:]
        for row in seqs.tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
                reason = "stop"
            else:
                reason = "length"
            out.append(
                {
                    "response": tokenizer.decode(row, skip_special_tokens=True).strip(),
                    "n_tokens": len(row),
                    "finish_reason": reason,
                }
            )
    return out

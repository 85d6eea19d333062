"""Tiny causal LMs and reward models of several transformers architectures.

Models are built from a config (never downloaded), so the tiny world exercises
the same ``save_pretrained``/``from_pretrained`` path as hub models.
"""

from __future__ import annotations

import transformers

CAUSAL_LM = ("LlamaForCausalLM", "GPTNeoXForCausalLM", "Qwen2ForCausalLM", "MptForCausalLM")
SEQ_CLS = (
    "LlamaForSequenceClassification",
    "GPTNeoXForSequenceClassification",
    "Qwen2ForSequenceClassification",
    "MptForSequenceClassification",
)


def _family(architecture: str) -> str:
    for fam in ("Llama", "GPTNeoX", "Qwen2", "Mpt"):
        if architecture.startswith(fam):
            return fam
    raise ValueError(
        f"unsupported architecture {architecture!r}; known: {list(CAUSAL_LM + SEQ_CLS)}"
    )


def model_config(architecture: str, tokenizer, size: dict, num_labels: int | None = None):
    """A transformers config of ``architecture`` sized by ``size``
    (hidden_size, num_layers, num_heads, intermediate_size, max_position)."""
    fam = _family(architecture)
    h, n_layers, n_heads = size["hidden_size"], size["num_layers"], size["num_heads"]
    inter, max_pos = size["intermediate_size"], size["max_position"]
    common = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    if num_labels is not None:
        common["num_labels"] = num_labels
    if fam in ("Llama", "Qwen2"):
        # Qwen2 gets grouped-query attention (half as many KV heads), Llama full heads
        cls = transformers.LlamaConfig if fam == "Llama" else transformers.Qwen2Config
        return cls(
            hidden_size=h,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_heads if fam == "Llama" else max(1, n_heads // 2),
            intermediate_size=inter,
            max_position_embeddings=max_pos,
            **common,
        )
    if fam == "GPTNeoX":
        return transformers.GPTNeoXConfig(
            hidden_size=h,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            intermediate_size=inter,
            max_position_embeddings=max_pos,
            rotary_pct=0.25,
            use_parallel_residual=True,
            **common,
        )
    return transformers.MptConfig(
        d_model=h,
        n_layers=n_layers,
        n_heads=n_heads,
        expansion_ratio=inter // h,
        max_seq_len=max_pos,
        **common,
    )


def build_model(architecture: str, tokenizer, size: dict, seed: int, num_labels=None):
    """A freshly initialised model of ``architecture`` (deterministic in ``seed``)."""
    import torch

    cfg = model_config(architecture, tokenizer, size, num_labels)
    torch.manual_seed(seed)
    cls = getattr(transformers, architecture)
    return cls(cfg)

"""Generation backends behind one narrow interface.

A backend is chosen by name (``backends.generation`` in the config):

``transformers``
    :class:`fusekit.backends.hf.HFGenerator`, batched with left padding and a
    KV cache; runs on CPU (the tiny world) or one GPU.
``vllm``
    :class:`fusekit.backends.vllm_backend.VLLMGenerator`, one engine per model
    for all its prompts, tensor-parallel across GPUs (paper scale; imported
    only when chosen).

Both implement :class:`Generator`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

_REGISTRY = {
    "transformers": ("fusekit.backends.hf", "HFGenerator"),
    "vllm": ("fusekit.backends.vllm_backend", "VLLMGenerator"),
}


@dataclass(frozen=True)
class SamplingParams:
    """How one model samples (``models.<name>.generation`` in the config)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    samples_per_prompt: int = 1
    seed: int = 0
    batch_size: int = 32
    repetition_penalty: float = 1.0  # > 1 discourages repeats (FuseChat-3.0's Qwen: 1.05)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def __post_init__(self):
        if self.greedy and self.samples_per_prompt > 1:
            raise ValueError(
                "samples_per_prompt > 1 needs temperature > 0 (greedy decoding repeats itself)"
            )


@dataclass(frozen=True)
class Completion:
    response: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS) or "length" (max_new_tokens)


class Generator(Protocol):
    """A loaded model that turns chat prompts into responses."""

    context_length: int

    def prompt_lengths(self, prompts: list[str], systems: list[str | None]) -> list[int]:
        """Tokens of each rendered prompt (to check them against the context)."""

    def generate(
        self, prompts: list[str], systems: list[str | None], params: SamplingParams
    ) -> list[list[Completion]]:
        """``params.samples_per_prompt`` completions for each prompt, in order."""


def load_generator(backend: str, path: str, model_spec: dict, threads: int = 1) -> Generator:
    """Load the model at ``path`` with the named backend."""
    if backend not in _REGISTRY:
        raise ValueError(f"unknown generation backend {backend!r}; known: {sorted(_REGISTRY)}")
    module, cls = _REGISTRY[backend]
    return getattr(importlib.import_module(module), cls)(path, model_spec, threads)

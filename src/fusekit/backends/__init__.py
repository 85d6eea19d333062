"""Generation and scoring backends (transformers on CPU/GPU; vLLM at paper scale)."""

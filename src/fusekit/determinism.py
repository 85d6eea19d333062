"""Seeding and thread settings that make CPU runs repeatable."""

from __future__ import annotations

import random


def make_deterministic(seed: int, threads: int = 1) -> None:
    """Seed python, numpy and torch and fix torch's thread count.

    Same seed, same machine, same thread count: identical weights and outputs.
    """
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def derive_seed(seed: int, *names: str) -> int:
    """A per-job seed: stable across runs and machines, different per name."""
    import hashlib

    digest = hashlib.sha256("/".join([str(seed), *names]).encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)

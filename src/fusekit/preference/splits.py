"""Seeded prompt splits (FuseChat-3.0 SFT:DPO = 4:6; WRPO Target-SFT:WRPO = 1:2).

The order is a seeded permutation that depends only on the *set* of prompt ids and the
seed: each id gets the key ``sha256(f"{seed}:{prompt_id}")`` and ids are taken in key
order (ties, which need a SHA-256 collision, by id). The row order of the input, repeated
ids and the numpy version do not matter. [A] PREFERENCE_FUSION.md §4.2 says only "a
seeded random permutation of prompt ids"; a hash order is one that stays the same on
every platform and library version.

Sizes (:func:`split_sizes`): with parts p_1..p_k (sum P) and n prompts, the first j
splits together hold ``floor(n * (p_1 + ... + p_j) / P)`` prompts; the last split takes the
rest. For two splits the first gets ``floor(n * p_1 / P)``. This reproduces the
FuseChat-3.0 card exactly (PREFERENCE_FUSION.md §4.2, papers/fusechat3_data_composition.csv):
UltraFeedback 51,098 -> 20,439 SFT (20,439.2 floored), Magpie-Pro-DPO 20,374 -> 8,149
(8,149.6 floored: rounding to nearest would give 8,150), HelpSteer2 9,435 -> 3,774. WRPO's
"random 1/3" (§3.3) is parts 1:2, i.e. ``floor(n / 3)`` prompts for Target-SFT [A: the
rounding of the third is not stated].
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import pandas as pd

FUSECHAT3_PARTS = {"sft": 4, "dpo": 6}
WRPO_PARTS = {"target_sft": 1, "wrpo": 2}
FUSERL_PARTS = {"sft": 4, "po": 6}  # [A] FuseChat-3.0's split (PREFERENCE_FUSION.md §2.4)
SPLIT_COLUMNS = ("prompt_id", "split")


def split_sizes(n: int, parts: Mapping[str, int]) -> dict[str, int]:
    """Number of prompts per split for ``n`` prompts (rounding rule in the module doc).

    Raises ``ValueError`` for no parts, a negative or non-integer part, or parts summing
    to zero.
    """
    if not parts:
        raise ValueError("split parts are empty")
    for name, p in parts.items():
        if not isinstance(p, int) or isinstance(p, bool) or p < 0:
            raise ValueError(f"split part {name!r} must be a non-negative integer, got {p!r}")
    total = sum(parts.values())
    if total == 0:
        raise ValueError(f"split parts {dict(parts)} sum to zero")
    sizes, cum, taken = {}, 0, 0
    names = list(parts)
    for name in names[:-1]:
        cum += parts[name]
        upto = n * cum // total
        sizes[name] = upto - taken
        taken = upto
    sizes[names[-1]] = n - taken
    return sizes


def _key(seed: int, prompt_id) -> str:
    return hashlib.sha256(f"{seed}:{prompt_id}".encode()).hexdigest()


def split_prompts(prompt_ids: Iterable, parts: Mapping[str, int], seed: int) -> pd.DataFrame:
    """Assign each distinct prompt id to one split.

    ``parts`` maps split names to integer parts in order (e.g. :data:`FUSECHAT3_PARTS`).
    Returns columns prompt_id, split, sorted by prompt_id; sizes per :func:`split_sizes`.
    Deterministic for a seed and independent of input order (module doc). Source:
    PREFERENCE_FUSION.md §4.2 (4:6), §3.3 (1/3 Target-SFT).
    """
    ids = pd.Series(list(prompt_ids)).drop_duplicates()
    if ids.isna().any():
        raise ValueError("split_prompts: a prompt id is missing (NaN/None)")
    ids = ids.sort_values(kind="stable").tolist()
    sizes = split_sizes(len(ids), parts)
    order = sorted(ids, key=lambda pid: (_key(seed, pid), str(pid)))
    labels, start = {}, 0
    for name, size in sizes.items():
        for pid in order[start : start + size]:
            labels[pid] = name
        start += size
    return pd.DataFrame({"prompt_id": ids, "split": [labels[pid] for pid in ids]})

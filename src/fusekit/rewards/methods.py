"""Advantage-evaluation methods side by side (ProFuser Figure 3).

Each single reward model, the multi-RM vote and the reference-based score is a
way to pick the best source response per prompt. These functions say how often
each method picks each source, and how often two methods pick the same one.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from fusekit.rewards.vote import rm_picks


def method_choices(
    scores: pd.DataFrame, reference: pd.DataFrame, votes: pd.DataFrame
) -> pd.DataFrame:
    """The source each method picks per prompt: columns prompt_id, method, model.

    Methods: ``rm:<name>`` for each reward model in ``scores``, ``vote`` and
    ``reference`` (highest combined reference score; ties: first in (model, sample)).
    """
    single = rm_picks(scores).rename(columns={"reward_model": "method"})
    single["method"] = "rm:" + single.method
    ref = reference.sort_values(["prompt_id", "model", "sample"], kind="stable")
    ref = ref.loc[ref.groupby("prompt_id", sort=False).combined.idxmax(), ["prompt_id", "model"]]
    parts = [
        single[["prompt_id", "method", "model"]],
        votes[["prompt_id", "model"]].assign(method="vote"),
        ref.assign(method="reference"),
    ]
    return pd.concat(parts, ignore_index=True)[["prompt_id", "method", "model"]]


def method_shares(choices: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    """Share of prompts on which each method picks each source (rows sum to 1 per method)."""
    counts = choices.groupby(["method", "model"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=sources, fill_value=0)
    n = counts.sum(axis=1)
    shares = counts.div(n, axis=0).stack().rename("share").reset_index()
    shares = shares.rename(columns={"model": "source"})
    return shares.merge(n.rename("n_prompts").reset_index(), on="method")


def method_agreement(choices: pd.DataFrame) -> pd.DataFrame:
    """For each pair of methods, the share of prompts on which they pick the same source."""
    wide = choices.pivot(index="prompt_id", columns="method", values="model")
    rows = [
        {
            "method_a": a,
            "method_b": b,
            "agreement": float((wide[a] == wide[b]).mean()),
            "n_prompts": len(wide),
        }
        for a, b in combinations(sorted(wide.columns), 2)
    ]
    return pd.DataFrame(rows)

"""Synthetic preference pairs for the tiny world's reward models.

The chosen response is always the reference answer; the rejected one is a
corruption of it:

``off_topic``
    the reference of another example of a different skill;
``truncated``
    the reference cut before its final answer;
``wrong_answer``
    the reference with its gold answer replaced by the gold answer of another
    example of the same skill (same format, wrong content: the hard case).

Reward models see different subsets of corruption kinds (and optional label
noise), which makes their held-out accuracies differ measurably.
"""

from __future__ import annotations

import random

import pandas as pd

CORRUPTIONS = ("off_topic", "truncated", "wrong_answer")


def _corrupt(kind: str, row, pool: pd.DataFrame, rng: random.Random) -> str:
    ref, gold = row.reference, row.answer
    if kind == "off_topic":
        other = pool[pool.skill != row.skill]
        return other.reference.iloc[rng.randrange(len(other))]
    if kind == "truncated":
        words = ref.split()
        return " ".join(words[: max(1, len(words) // 2)])
    same = pool[(pool.skill == row.skill) & (pool.answer != gold)]
    wrong = same.answer.iloc[rng.randrange(len(same))]
    return ref.replace(gold, wrong)


def build_preference_pairs(
    corpus: pd.DataFrame, seed: int, kinds: list[str] | tuple[str, ...] = CORRUPTIONS
) -> pd.DataFrame:
    """One pair per corpus row, the corruption kind drawn uniformly from ``kinds``.

    Columns: prompt_id, skill, prompt, chosen, rejected, corruption.
    """
    unknown = sorted(set(kinds) - set(CORRUPTIONS))
    if unknown:
        raise ValueError(f"unknown corruption kinds {unknown}; known: {list(CORRUPTIONS)}")
    rng = random.Random(f"pairs-{seed}")
    rows = []
    for row in corpus.itertuples(index=False):
        kind = rng.choice(list(kinds))
        rows.append(
            (
                row.prompt_id,
                row.skill,
                row.prompt,
                row.reference,
                _corrupt(kind, row, corpus, rng),
                kind,
            )
        )
    return pd.DataFrame(
        rows, columns=["prompt_id", "skill", "prompt", "chosen", "rejected", "corruption"]
    )

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

Corruptions alone teach a reward model the *form* of a good answer (on topic, complete),
not its correctness: on pairs of the sources' own outputs, one right and one wrong, such
models preferred the right one 51-59% of the time (issue 17). :func:`build_output_pairs`
makes the pairs a real reward model is trained on (RLHF's comparisons of the policy's
own samples): two outputs of different world models for the same prompt, one correct
(:func:`fusekit.tiny.corpus.is_correct`) and one not.
"""

from __future__ import annotations

import random

import pandas as pd

CORRUPTIONS = ("off_topic", "truncated", "wrong_answer")
PAIR_COLUMNS = ("prompt_id", "skill", "prompt", "chosen", "rejected", "corruption")
OUTPUT_COLUMNS = ("prompt_id", "skill", "prompt", "answer", "model", "response")


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
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def build_output_pairs(
    outputs: pd.DataFrame, seed: int, max_pairs_per_prompt: int | None = None
) -> pd.DataFrame:
    """(correct, wrong) pairs of world models' outputs for the same prompt.

    ``outputs``: one row per (prompt, model), columns :data:`OUTPUT_COLUMNS` (``answer``
    the gold answer). For each prompt, every distinct correct response is paired with
    every distinct wrong one (texts compared after collapsing whitespace; identical texts
    from two models count once); ``max_pairs_per_prompt`` keeps a seeded random subset,
    so that prompts with many outputs do not dominate. Prompts whose outputs are all
    right or all wrong give no pair.

    Returns columns :data:`PAIR_COLUMNS`, ``corruption`` = ``"source_output"``, rows in
    prompt order. Raises ValueError when a column is missing, a (prompt, model) has two
    rows, or the rows of a prompt disagree on its text or answer.
    """
    from fusekit.tiny.corpus import is_correct

    missing = [c for c in OUTPUT_COLUMNS if c not in outputs.columns]
    if missing:
        raise ValueError(f"outputs lack columns {missing}; need {list(OUTPUT_COLUMNS)}")
    twice = outputs[outputs.duplicated(["prompt_id", "model"])]
    if len(twice):
        r = twice.iloc[0]
        raise ValueError(
            f"outputs hold prompt {r.prompt_id!r} of model {r.model!r} more than once: "
            "one output per (prompt, model)"
        )
    mixed = outputs.groupby("prompt_id")[["prompt", "answer"]].nunique().max(axis=1) > 1
    if mixed.any():
        raise ValueError(
            f"outputs disagree on the prompt or answer of prompt {mixed[mixed].index[0]!r}"
        )
    rng = random.Random(f"output-pairs-{seed}")
    rows = []
    for pid, group in outputs.groupby("prompt_id", sort=True):
        first = group.iloc[0]
        right: dict[str, str] = {}
        wrong: dict[str, str] = {}
        for r in group.itertuples(index=False):
            key = " ".join(str(r.response).split())
            (right if is_correct(str(r.response), str(r.answer)) else wrong).setdefault(
                key, str(r.response)
            )
        pairs = [(c, w) for c in right.values() for w in wrong.values()]
        if max_pairs_per_prompt is not None and len(pairs) > max_pairs_per_prompt:
            pairs = rng.sample(pairs, max_pairs_per_prompt)
        rows += [(pid, first.skill, first.prompt, c, w, "source_output") for c, w in pairs]
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))

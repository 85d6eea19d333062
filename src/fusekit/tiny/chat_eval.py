"""The tiny world's AlpacaEval and Arena-Hard sets, in the paper-scale formats.

From the ``eval`` split of the tiny corpus (prompts deduplicated, first kept):

* AlpacaEval records ``{dataset, instruction, output, generator}``: the corpus
  references are the reference outputs (generator :data:`REFERENCE`, dataset
  ``tiny_<skill>``);
* Arena-Hard v0.1 questions ``{question_id, category, cluster, turns: [{content}]}``
  (``question_id`` = 32 hex digits derived from the corpus ``prompt_id``, category
  ``arena-hard-v0.1``, cluster = the skill) and the references as the baseline model's
  ``model_answer`` records (``token_len`` counts whitespace-separated words: the baseline
  has no tokenizer);
* two *gamed* versions of the reference outputs for the length-controlled win rate's
  regularisation (:mod:`fusekit.alpaca`): ``concise`` keeps only ``the answer is X``,
  ``verbose`` states the reference twice.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from fusekit.tiny.corpus import extract_answer

REFERENCE = "tiny_reference"
GAMED = ("concise", "verbose")


def eval_items(corpus: pd.DataFrame, per_skill: int | None = None) -> pd.DataFrame:
    """The distinct prompts of the eval split, in corpus order; with ``per_skill``, the
    first ``per_skill`` of each skill. Raises ValueError when the split is empty."""
    df = corpus[corpus.split == "eval"].drop_duplicates("prompt")
    if df.empty:
        raise ValueError("the tiny corpus has no eval split")
    if per_skill is not None:
        df = df.groupby("skill", sort=False).head(per_skill)
    return df.reset_index(drop=True)


def alpaca_reference(items: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": "tiny_" + items.skill,
            "instruction": items.prompt,
            "output": items.reference,
            "generator": REFERENCE,
        }
    )


def gamed_outputs(reference: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Concise and verbose variants of the reference outputs (generator
    ``tiny_reference_concise`` / ``_verbose``)."""
    concise = reference.assign(
        output=[f"the answer is {extract_answer(o)}" for o in reference.output],
        generator=f"{REFERENCE}_concise",
    )
    verbose = reference.assign(
        output=[f"{o} . in other words , {o}" for o in reference.output],
        generator=f"{REFERENCE}_verbose",
    )
    return {"concise": concise, "verbose": verbose}


def question_id(prompt_id: str) -> str:
    return hashlib.md5(prompt_id.encode()).hexdigest()


def arena_questions(items: pd.DataFrame) -> list[dict]:
    return [
        {
            "question_id": question_id(pid),
            "category": "arena-hard-v0.1",
            "cluster": skill,
            "turns": [{"content": prompt}],
        }
        for pid, skill, prompt in zip(items.prompt_id, items.skill, items.prompt, strict=True)
    ]


def arena_baseline(items: pd.DataFrame) -> list[dict]:
    from fusekit.arena import answer_record

    return [
        answer_record(question_id(pid), REFERENCE, ref, len(ref.split()))
        for pid, ref in zip(items.prompt_id, items.reference, strict=True)
    ]

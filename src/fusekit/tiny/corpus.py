"""Synthetic instruction corpus of the tiny world.

Every example has a prompt, a short gold answer that can be checked exactly,
and a longer *reference* answer that plays the role of ProFuser's GPT-4
responses (the ground truth used in training mode). References always end
with ``the answer is <gold>``, so :func:`extract_answer` recovers the gold
answer from a reference or from a model response written in the same style.

Skills (each learnable by a sub-million-parameter model in seconds):

``arith``
    one-digit addition;
``reverse``
    reverse a short sequence of space-separated letters;
``upper``
    change a short sequence of letters to capitals;
``lookup``
    the colour of an entity in a fact table generated from the seed.

Everything is a pure function of the seed and the sizes, so the same seed
gives the same corpus on every machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

SKILLS: tuple[str, ...] = ("arith", "reverse", "upper", "lookup")
SPLITS: tuple[str, ...] = ("pretrain", "fusion", "eval")
COLUMNS: tuple[str, ...] = ("prompt_id", "split", "skill", "prompt", "answer", "reference")

LETTERS = "abcdefghij"
COLOURS = ("red", "blue", "green", "black", "white", "pink", "brown", "grey")
_SYLLABLES = ("zo", "ba", "ki", "mu", "te", "ra", "no", "fi", "lu", "dex", "vor", "pim")


@dataclass(frozen=True)
class Example:
    skill: str
    prompt: str
    answer: str
    reference: str


def fact_table(seed: int, n_entities: int) -> dict[str, str]:
    """Entity -> colour map; entity names are distinct two-syllable pseudo-words."""
    rng = random.Random(f"facts-{seed}")
    names = sorted({a + b for a in _SYLLABLES for b in _SYLLABLES if a != b})
    if n_entities > len(names):
        raise ValueError(f"n_entities={n_entities} exceeds the {len(names)} available names")
    chosen = rng.sample(names, n_entities)
    return {name: rng.choice(COLOURS) for name in chosen}


def _letters(rng: random.Random) -> list[str]:
    return [rng.choice(LETTERS) for _ in range(rng.randint(3, 4))]


def _arith(rng: random.Random, facts: dict[str, str]) -> Example:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    prompt = rng.choice(("what is {a} + {b} ?", "add {a} and {b} .", "compute {a} + {b} ."))
    gold = str(a + b)
    ref = f"{a} plus {b} makes {gold} . the answer is {gold}"
    return Example("arith", prompt.format(a=a, b=b), gold, ref)


def _reverse(rng: random.Random, facts: dict[str, str]) -> Example:
    xs = " ".join(_letters(rng))
    gold = " ".join(reversed(xs.split()))
    prompt = rng.choice(("reverse the letters : {x}", "write {x} backwards ."))
    ref = f"reading {xs} backwards gives {gold} . the answer is {gold}"
    return Example("reverse", prompt.format(x=xs), gold, ref)


def _upper(rng: random.Random, facts: dict[str, str]) -> Example:
    xs = " ".join(_letters(rng))
    gold = xs.upper()
    prompt = rng.choice(("uppercase the letters : {x}", "write {x} in capitals ."))
    ref = f"in capitals {xs} is {gold} . the answer is {gold}"
    return Example("upper", prompt.format(x=xs), gold, ref)


def _lookup(rng: random.Random, facts: dict[str, str]) -> Example:
    name = rng.choice(sorted(facts))
    gold = facts[name]
    prompt = rng.choice(("what colour is the {n} ?", "tell me the colour of the {n} ."))
    ref = f"the {name} is {gold} . the answer is {gold}"
    return Example("lookup", prompt.format(n=name), gold, ref)


GENERATORS: dict[str, Callable[[random.Random, dict[str, str]], Example]] = {
    "arith": _arith,
    "reverse": _reverse,
    "upper": _upper,
    "lookup": _lookup,
}


def build_corpus(
    seed: int,
    sizes: dict[str, int],
    skills: list[str] | tuple[str, ...] = SKILLS,
    n_entities: int = 40,
) -> pd.DataFrame:
    """Generate the corpus: ``sizes[split]`` examples per skill for each split.

    Returns a frame with :data:`COLUMNS`; ``prompt_id`` is ``<split>-<skill>-<n>``.
    """
    unknown = sorted(set(skills) - set(GENERATORS))
    if unknown:
        raise ValueError(f"unknown skills {unknown}; known: {sorted(GENERATORS)}")
    bad_splits = sorted(set(sizes) - set(SPLITS))
    if bad_splits:
        raise ValueError(f"unknown splits {bad_splits}; known: {list(SPLITS)}")
    facts = fact_table(seed, n_entities)
    rows = []
    for split in SPLITS:
        for skill in skills:
            rng = random.Random(f"{seed}-{split}-{skill}")
            for i in range(sizes.get(split, 0)):
                ex = GENERATORS[skill](rng, facts)
                rows.append(
                    (f"{split}-{skill}-{i:05d}", split, skill, ex.prompt, ex.answer, ex.reference)
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def filler_text(seed: int, n_lines: int) -> list[str]:
    """Lines of pseudo-words, mixed into tokenizer training so that vocabularies
    of different sizes really differ (the corpus alone has ~100 word types)."""
    rng = random.Random(f"filler-{seed}")
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words = [
        "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
        for _ in range(3000)
    ]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(n_lines)]


_ANSWER_RE = re.compile(r"answer is\s*(.*)$", re.DOTALL)


def extract_answer(text: str) -> str:
    """The final answer in a response: what follows the last ``answer is``.

    Falls back to the whole response; whitespace is collapsed and a trailing
    full stop dropped. Case is kept (``upper`` depends on it).
    """
    idx = text.rfind("answer is")
    tail = _ANSWER_RE.match(text[idx:]).group(1) if idx >= 0 else text
    tail = " ".join(tail.split())
    return tail.rstrip(" .")


def is_correct(response: str, gold: str) -> bool:
    return extract_answer(response) == " ".join(gold.split())

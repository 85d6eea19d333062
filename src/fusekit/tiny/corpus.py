"""Synthetic instruction corpus of the tiny world.

Every example has a prompt, a short gold answer that can be checked exactly,
and a longer *reference* answer that plays the role of ProFuser's GPT-4
responses (the ground truth used in training mode). References end with
``the answer is <gold>`` (the ``greek`` skill: its Greek form, ``η απάντηση είναι
<gold>``), so :func:`extract_answer` recovers the gold answer from a reference or
from a model response written in the same style. The ``code`` skill is the
exception: its reference *is* its answer, a one-line Python program, so that the
whole response runs (:func:`fusekit.preference.coding.extract_code` takes a bare
response whole) and :func:`extract_answer` (no marker: the whole text) still
recovers it.

Each row also has ``tests``: Python source (``assert`` lines calling ``f``) that the
code skill's answer passes and typical wrong programs fail (swapped or off-by-one
constants, the wrong operation, a bare number instead of a function); ``""`` for every
other skill. It is not in :data:`COLUMNS` (the columns a reader may require), so corpora
written before it existed still read.

Skills (each learnable by a sub-million-parameter model in seconds); :data:`SKILLS` is
the default set, ProFuser's world; ``code`` and ``greek`` are opt-in
(``tiny_world.corpus.skills``), for FuseChat-3.0's coding and single-source language
domains:

``arith``
    one-digit addition;
``reverse``
    reverse a short sequence of space-separated letters;
``upper``
    change a short sequence of letters to capitals;
``lookup``
    the colour of an entity in a fact table generated from the seed;
``code``
    write a one-line Python function ``f(x)`` that applies one or two operations with
    one-digit constants, e.g. "write a python function f ( x ) that multiplies x by 3
    and adds 1 ." -> ``def f(x): return x * 3 + 1``; ``tests`` asserts ``f`` at five
    points;
``greek``
    the ``upper`` task in Greek script (prompt, letters, answer and reference): "γράψε
    με κεφαλαία : α β γ" -> ``Α Β Γ``; no Latin letter anywhere, so non-Latin text
    really flows through the byte-level and Metaspace tokenizers.

Everything is a pure function of the seed and the sizes, so the same seed
gives the same corpus on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

SKILLS: tuple[str, ...] = ("arith", "reverse", "upper", "lookup")
SPLITS: tuple[str, ...] = ("pretrain", "fusion", "eval")
COLUMNS: tuple[str, ...] = ("prompt_id", "split", "skill", "prompt", "answer", "reference")
TESTS_COLUMN = "tests"

LETTERS = "abcdefghij"
GREEK_LETTERS = "αβγδεζηθικ"
GREEK_ANSWER_MARKER = "η απάντηση είναι"
# x values every code item's tests assert f at: 0 tells the added constant, 1 and 2 the
# factor, -3 and 5 catch a wrong operation that agrees at one point
CODE_TEST_POINTS = (0, 1, 2, 5, -3)
COLOURS = ("red", "blue", "green", "black", "white", "pink", "brown", "grey")
_SYLLABLES = ("zo", "ba", "ki", "mu", "te", "ra", "no", "fi", "lu", "dex", "vor", "pim")


@dataclass(frozen=True)
class Example:
    skill: str
    prompt: str
    answer: str
    reference: str
    tests: str = ""


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


# (description in the prompt, expression in the answer, the function itself)
_CODE_OPS: tuple[tuple[str, str, Callable[[int, int, int], int]], ...] = (
    ("multiplies x by {a} and adds {b}", "x * {a} + {b}", lambda x, a, b: x * a + b),
    ("multiplies x by {a} and subtracts {b}", "x * {a} - {b}", lambda x, a, b: x * a - b),
    ("adds {a} to x", "x + {a}", lambda x, a, b: x + a),
    ("multiplies x by {a}", "x * {a}", lambda x, a, b: x * a),
)


def code_tests(fn: Callable[[int], int], points: tuple[int, ...] = CODE_TEST_POINTS) -> str:
    """``assert f(x) == <fn(x)>`` lines, one per point (the code skill's tests)."""
    return "\n".join(f"assert f({x}) == {fn(x)}" for x in points) + "\n"


def _code(rng: random.Random, facts: dict[str, str]) -> Example:
    desc, expr, fn = rng.choice(_CODE_OPS)
    a, b = rng.randint(2, 9), rng.randint(1, 9)
    prompt = rng.choice(
        (
            "write a python function f ( x ) that {d} .",
            "in python , define f ( x ) so that it {d} .",
        )
    )
    gold = f"def f(x): return {expr.format(a=a, b=b)}"
    tests = code_tests(lambda x: fn(x, a, b))
    return Example("code", prompt.format(d=desc.format(a=a, b=b)), gold, gold, tests)


def _greek(rng: random.Random, facts: dict[str, str]) -> Example:
    xs = " ".join(rng.choice(GREEK_LETTERS) for _ in range(rng.randint(3, 4)))
    gold = xs.upper()
    prompt = rng.choice(("γράψε με κεφαλαία : {x}", "κεφαλαία γράμματα για {x} ."))
    ref = f"με κεφαλαία {xs} γίνεται {gold} . {GREEK_ANSWER_MARKER} {gold}"
    return Example("greek", prompt.format(x=xs), gold, ref)


GENERATORS: dict[str, Callable[[random.Random, dict[str, str]], Example]] = {
    "arith": _arith,
    "reverse": _reverse,
    "upper": _upper,
    "lookup": _lookup,
    "code": _code,
    "greek": _greek,
}


def build_corpus(
    seed: int,
    sizes: dict[str, int],
    skills: list[str] | tuple[str, ...] = SKILLS,
    n_entities: int = 40,
) -> pd.DataFrame:
    """Generate the corpus: ``sizes[split]`` examples per skill for each split.

    ``skills``: names in :data:`GENERATORS` (default :data:`SKILLS`). Returns a frame
    with :data:`COLUMNS` then ``tests`` (``""`` but for code items); ``prompt_id`` is
    ``<split>-<skill>-<n>``. Raises ValueError for an unknown skill or split.
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
                pid = f"{split}-{skill}-{i:05d}"
                rows.append((pid, split, skill, ex.prompt, ex.answer, ex.reference, ex.tests))
    return pd.DataFrame(rows, columns=[*COLUMNS, TESTS_COLUMN])


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


ANSWER_MARKERS: tuple[str, ...] = ("answer is", "απάντηση είναι")


def extract_answer(text: str) -> str:
    """The final answer in a response: what follows the last answer marker
    (``answer is``, or the Greek ``απάντηση είναι``, :data:`ANSWER_MARKERS`).

    Falls back to the whole response; whitespace is collapsed and a trailing
    full stop dropped. Case is kept (``upper`` depends on it).
    """
    idx, marker = max((text.rfind(m), m) for m in ANSWER_MARKERS)
    tail = text[idx + len(marker) :] if idx >= 0 else text
    tail = " ".join(tail.split())
    return tail.rstrip(" .")


def is_correct(response: str, gold: str) -> bool:
    return extract_answer(response) == " ".join(gold.split())

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
    addition of a in 0..29 and b in 0..19 (600 pairs, sums up to 48);
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

Evaluation items (issue 17: sets whose standard error is what it claims). An item is
what makes two examples the same question (:attr:`Example.key`): the operands (arith),
the letter sequence (reverse, upper, greek), the operation and its constants (code), the
entity (lookup). The ``eval`` split is drawn first, from its own random stream, and
never repeats an item; the other splits then never draw an eval item where that would
leak it (:data:`EVAL_AVOIDED_BY`):

* ``fusion`` holds no eval item of any skill (fusion training would otherwise teach the
  evaluation's answers: before this, 83-94% of the arith and lookup eval answers were in
  the fusion references);
* ``pretrain`` holds no eval item of the algorithmic skills (reverse, upper, greek,
  code), so their evaluation measures the algorithm on unseen inputs. It keeps every
  arith pair and every entity *by design*: arith (600 facts) and lookup are knowledge
  the models learn in pretraining, so a lookup's answer is seen there; what the eval
  split holds out is the fusion data.

So the eval split depends only on the seed and its own size, and the other splits on
the seed, their size and the eval size. ``sizes["eval"] = n`` items per skill (or a
mapping skill -> n, :func:`eval_request`), except
that two skills with few items hold out at most half of them (:data:`EVAL_SHARE`):
lookup ``min(n, n_entities // 2)`` entities (the rest are the fusion split's lookups),
code ``min(n, 80)`` of its 160 programs (the rest are pretraining's and fusion's).
:func:`eval_size` says how many; a request beyond the distinct items of any other
skill, or one that takes every item a split that avoids them needs, is a ValueError.

Everything is a pure function of the seed and the sizes, so the same seed
gives the same corpus on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import pandas as pd

SKILLS: tuple[str, ...] = ("arith", "reverse", "upper", "lookup")
SPLITS: tuple[str, ...] = ("pretrain", "fusion", "eval")
COLUMNS: tuple[str, ...] = ("prompt_id", "split", "skill", "prompt", "answer", "reference")
TESTS_COLUMN = "tests"

LETTERS = "abcdefghij"
GREEK_LETTERS = "αβγδεζηθικ"
LETTER_LENGTHS = (3, 4)
ARITH_A = range(30)
ARITH_B = range(20)
CODE_A = range(2, 10)
CODE_B = range(1, 10)
GREEK_ANSWER_MARKER = "η απάντηση είναι"
# x values every code item's tests assert f at: 0 tells the added constant, 1 and 2 the
# factor, -3 and 5 catch a wrong operation that agrees at one point
CODE_TEST_POINTS = (0, 1, 2, 5, -3)
COLOURS = ("red", "blue", "green", "black", "white", "pink", "brown", "grey")
_SYLLABLES = ("zo", "ba", "ki", "mu", "te", "ra", "no", "fi", "lu", "dex", "vor", "pim")


@dataclass(frozen=True)
class Example:
    """One corpus item; ``key`` identifies the question (equal keys: the same item)."""

    skill: str
    prompt: str
    answer: str
    reference: str
    tests: str = ""
    key: Hashable = ()
    # the worked reference: longer and harder than what the sources learn in pretraining
    # (the fusion split's ground truth with ``fusion_references="worked"``); "" = reference
    worked: str = ""


def fact_table(seed: int, n_entities: int) -> dict[str, str]:
    """Entity -> colour map; entity names are distinct two-syllable pseudo-words."""
    rng = random.Random(f"facts-{seed}")
    names = sorted({a + b for a in _SYLLABLES for b in _SYLLABLES if a != b})
    if n_entities > len(names):
        raise ValueError(f"n_entities={n_entities} exceeds the {len(names)} available names")
    chosen = rng.sample(names, n_entities)
    return {name: rng.choice(COLOURS) for name in chosen}


def _letters(rng: random.Random, alphabet: str = LETTERS) -> list[str]:
    lo, hi = LETTER_LENGTHS[0], LETTER_LENGTHS[-1]
    return [rng.choice(alphabet) for _ in range(rng.randint(lo, hi))]


def _arith_references(key: tuple[int, int], answer: str) -> dict[str, str]:
    a, b = key
    return {
        "short": f"{a} plus {b} makes {answer} . the answer is {answer}",
        "worked": (
            f"we add {a} and {b} . {a} plus {b} makes {answer} . check : {answer} minus {b} "
            f"makes {a} . the answer is {answer}"
        ),
    }


def _reverse_references(key: tuple[str, ...], answer: str) -> dict[str, str]:
    xs = " ".join(key)
    return {
        "short": f"reading {xs} backwards gives {answer} . the answer is {answer}",
        "worked": (
            f"the letters are {xs} . from the last one : {' , '.join(answer.split())} . "
            f"the answer is {answer}"
        ),
    }


def _upper_references(key: tuple[str, ...], answer: str) -> dict[str, str]:
    xs = " ".join(key)
    steps = " , ".join(f"{x} becomes {y}" for x, y in zip(key, answer.split(), strict=False))
    return {
        "short": f"in capitals {xs} is {answer} . the answer is {answer}",
        "worked": f"the letters are {xs} . {steps} . the answer is {answer}",
    }


def _lookup_references(key: str, answer: str) -> dict[str, str]:
    return {
        "short": f"the {key} is {answer} . the answer is {answer}",
        "worked": (
            f"the {key} is in the fact table . its colour there is {answer} . the {key} is "
            f"{answer} . the answer is {answer}"
        ),
    }


# skill -> (item key, answer stated) -> the reference in each style (REFERENCE_STYLES):
# "short", what every split holds and the sources learn in pretraining, and "worked", the
# input restated and the steps before the same ending (ProFuser's harder ground truth,
# issue 17 item 2). A function of the answer *stated*, so a fluent wrong response of
# either style is the same text with a wrong answer (the OpenLLM analogues' distractors).
# code (its reference is its program) and greek (a worked Greek reference would not fit
# 128 tokens of the Metaspace tokenizers, a token a byte) have the short form only.
REFERENCE_RENDERERS: dict[str, Callable[[Hashable, str], dict[str, str]]] = {
    "arith": _arith_references,
    "reverse": _reverse_references,
    "upper": _upper_references,
    "lookup": _lookup_references,
}
REFERENCE_STYLES: tuple[str, ...] = ("short", "worked")


def item_key(skill: str, prompt: str) -> Hashable:
    """The item (:attr:`Example.key`) a prompt of :data:`REFERENCE_RENDERERS`' skills
    asks about, read back from the prompt: arith ``(a, b)``, reverse and upper the tuple
    of letters, lookup the entity. ValueError naming the skill and prompt when it holds
    no such item (two numbers, 3-4 letters of :data:`LETTERS`, an entity name)."""
    words = prompt.split()
    if skill == "arith":
        numbers = [int(w) for w in words if w.isdigit()]
        if len(numbers) == 2:
            return tuple(numbers)
    elif skill in ("reverse", "upper"):
        letters = tuple(w for w in words if len(w) == 1 and w in LETTERS)
        if LETTER_LENGTHS[0] <= len(letters) <= LETTER_LENGTHS[-1]:
            return letters
    elif skill == "lookup":
        if len(words) >= 2 and words[-2].isalpha():
            return words[-2]
    else:
        raise ValueError(f"{skill}: no reference styles (known: {sorted(REFERENCE_RENDERERS)})")
    raise ValueError(f"{skill}: cannot read the item from the prompt {prompt!r}")


def render_reference(skill: str, prompt: str, answer: str, style: str = "short") -> str:
    """The reference a ``skill`` item's ``prompt`` gets in ``style`` (``"short"`` or
    ``"worked"``, :data:`REFERENCE_STYLES`) when it states ``answer``: with the gold
    answer the corpus's own reference (tested on every generated item), with a wrong one
    a fluent wrong response that states it everywhere the reference states the answer.
    ValueError for an unknown style, a skill without styles, or a prompt
    :func:`item_key` cannot read."""
    if style not in REFERENCE_STYLES:
        raise ValueError(f"reference style {style!r}; known: {list(REFERENCE_STYLES)}")
    key = item_key(skill, prompt)  # ValueError for a skill without styles
    return REFERENCE_RENDERERS[skill](key, answer)[style]


def _arith(rng: random.Random, facts: dict[str, str]) -> Example:
    a, b = rng.choice(ARITH_A), rng.choice(ARITH_B)
    prompt = rng.choice(("what is {a} + {b} ?", "add {a} and {b} .", "compute {a} + {b} ."))
    gold = str(a + b)
    refs = _arith_references((a, b), gold)
    return Example(
        "arith", prompt.format(a=a, b=b), gold, refs["short"], key=(a, b), worked=refs["worked"]
    )


def _letter_example(skill: str, letters: list[str], gold: str, prompt: str) -> Example:
    refs = REFERENCE_RENDERERS[skill](tuple(letters), gold)
    return Example(skill, prompt, gold, refs["short"], key=tuple(letters), worked=refs["worked"])


def _reverse(rng: random.Random, facts: dict[str, str]) -> Example:
    letters = _letters(rng)
    xs = " ".join(letters)
    prompt = rng.choice(("reverse the letters : {x}", "write {x} backwards ."))
    return _letter_example("reverse", letters, " ".join(reversed(letters)), prompt.format(x=xs))


def _upper(rng: random.Random, facts: dict[str, str]) -> Example:
    letters = _letters(rng)
    xs = " ".join(letters)
    prompt = rng.choice(("uppercase the letters : {x}", "write {x} in capitals ."))
    return _letter_example("upper", letters, xs.upper(), prompt.format(x=xs))


def _lookup(rng: random.Random, facts: dict[str, str]) -> Example:
    name = rng.choice(sorted(facts))
    gold = facts[name]
    prompt = rng.choice(("what colour is the {n} ?", "tell me the colour of the {n} ."))
    refs = _lookup_references(name, gold)
    return Example(
        "lookup", prompt.format(n=name), gold, refs["short"], key=name, worked=refs["worked"]
    )


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
    a, b = rng.choice(CODE_A), rng.choice(CODE_B)
    prompt = rng.choice(
        (
            "write a python function f ( x ) that {d} .",
            "in python , define f ( x ) so that it {d} .",
        )
    )
    gold = f"def f(x): return {expr.format(a=a, b=b)}"
    tests = code_tests(lambda x: fn(x, a, b))
    # the program: its operation and the constants it uses (b only where it appears)
    key = (expr, a, b) if "{b}" in expr else (expr, a)
    return Example("code", prompt.format(d=desc.format(a=a, b=b)), gold, gold, tests, key)


def _greek(rng: random.Random, facts: dict[str, str]) -> Example:
    letters = _letters(rng, GREEK_LETTERS)
    xs = " ".join(letters)
    gold = xs.upper()
    prompt = rng.choice(("γράψε με κεφαλαία : {x}", "κεφαλαία γράμματα για {x} ."))
    ref = f"με κεφαλαία {xs} γίνεται {gold} . {GREEK_ANSWER_MARKER} {gold}"
    # no worked form: Greek script costs the Metaspace tokenizers a token a byte, and a
    # worked Greek reference would not fit the tiny world's 128 tokens
    return Example("greek", prompt.format(x=xs), gold, ref, key=tuple(letters))


GENERATORS: dict[str, Callable[[random.Random, dict[str, str]], Example]] = {
    "arith": _arith,
    "reverse": _reverse,
    "upper": _upper,
    "lookup": _lookup,
    "code": _code,
    "greek": _greek,
}


# the splits that never hold an eval item of the skill (the module doc says why)
EVAL_AVOIDED_BY: dict[str, tuple[str, ...]] = {
    "arith": ("fusion",),
    "lookup": ("fusion",),
    "reverse": ("pretrain", "fusion"),
    "upper": ("pretrain", "fusion"),
    "greek": ("pretrain", "fusion"),
    "code": ("pretrain", "fusion"),
}
# skills with few items: the eval split holds out at most this share of them, so that the
# splits avoiding its items keep the rest (lookup: the fusion split's entities; code: the
# programs pretraining teaches)
EVAL_SHARE: dict[str, float] = {"lookup": 0.5, "code": 0.5}
# draws per wanted item before giving up (only a generator that cannot reach the items
# it is asked for gets there)
_MAX_DRAWS_PER_ITEM = 100_000


def n_items(skill: str, n_entities: int = 40) -> int:
    """The number of distinct items (:attr:`Example.key`) ``skill`` can generate: arith
    600 (a, b) pairs, reverse / upper / greek 11000 letter sequences (10 letters, length
    3 or 4), code 160 programs, lookup ``n_entities`` entities. KeyError for an unknown
    skill."""
    if skill == "arith":
        return len(ARITH_A) * len(ARITH_B)
    if skill in ("reverse", "upper", "greek"):
        alphabet = GREEK_LETTERS if skill == "greek" else LETTERS
        return sum(len(alphabet) ** k for k in range(LETTER_LENGTHS[0], LETTER_LENGTHS[-1] + 1))
    if skill == "code":
        return sum(len(CODE_A) * (len(CODE_B) if "{b}" in e else 1) for _, e, _ in _CODE_OPS)
    if skill == "lookup":
        return n_entities
    raise KeyError(f"unknown skill {skill!r}; known: {sorted(GENERATORS)}")


def eval_size(skill: str, n: int, n_entities: int = 40) -> int:
    """The number of eval items :func:`build_corpus` writes for ``skill`` when
    ``sizes["eval"]`` is ``n``: ``n``, or for a skill of :data:`EVAL_SHARE` at most that
    share of its items (lookup ``n_entities // 2``, code 80). ValueError naming the skill
    when ``n`` exceeds the distinct items of any other skill."""
    total = n_items(skill, n_entities)
    if skill in EVAL_SHARE:
        return min(n, max(1, int(total * EVAL_SHARE[skill])))
    if n > total:
        raise ValueError(
            f"sizes.eval: {n} distinct {skill} items requested, but {skill} has only "
            f"{total}; evaluation items never repeat (issue 17), so ask for at most {total}"
        )
    return n


def eval_request(sizes: Mapping, skill: str) -> int:
    """The eval size ``sizes`` asks of ``skill`` (before :func:`eval_size` caps it):
    ``sizes["eval"]`` itself when it is a number (every skill the same), or its entry
    for ``skill`` when it is a mapping skill -> number (the OpenLLM analogues give each
    skill's items to different benchmarks, :mod:`fusekit.tiny.openllm_tasks`, so some
    skills need more than others). 0 when there is no eval size. ValueError naming the
    skill when a mapping has no entry for it."""
    n = sizes.get("eval", 0)
    if not isinstance(n, Mapping):
        return n
    if skill not in n:
        raise ValueError(
            f"sizes.eval gives sizes for {sorted(n)} but none for skill {skill!r}; "
            "name every skill of tiny_world.corpus.skills, or give one number for all"
        )
    return n[skill]


def eval_sizes(
    sizes: Mapping[str, int | Mapping[str, int]],
    skills: list[str] | tuple[str, ...],
    n_entities: int = 40,
) -> dict[str, int]:
    """The eval items :func:`build_corpus` writes per skill (skill -> count), after every
    check of ``sizes["eval"]`` it makes (the workflow's plan-time check calls it too).
    ValueError, its message starting ``sizes.eval:``, for an unknown skill in a mapping,
    a skill the mapping leaves out (:func:`eval_request`), a size beyond a skill's
    distinct items (:func:`eval_size`), or one that takes every item of a skill while a
    split that never holds its eval items (:data:`EVAL_AVOIDED_BY`) has a size."""
    if isinstance(sizes.get("eval"), Mapping):
        unknown = sorted(set(sizes["eval"]) - set(GENERATORS))
        if unknown:
            raise ValueError(f"sizes.eval: unknown skills {unknown}; known: {sorted(GENERATORS)}")
    try:
        n_eval = {s: eval_size(s, eval_request(sizes, s), n_entities) for s in skills}
    except ValueError as err:
        msg = str(err)
        raise ValueError(msg if msg.startswith("sizes.eval") else f"sizes.eval: {msg}") from None
    for skill in skills:
        left = n_items(skill, n_entities) - n_eval[skill]
        for split in EVAL_AVOIDED_BY[skill]:
            if left < 1 and sizes.get(split, 0) > 0:
                raise ValueError(
                    f"sizes.eval: {n_eval[skill]} eval {skill} items take all "
                    f"{n_items(skill, n_entities)} there are, which leaves no {skill} item "
                    f"for the {split} split (it never holds an eval item)"
                )
    return n_eval


def _draw(
    generate: Callable[[random.Random, dict[str, str]], Example],
    rng: random.Random,
    facts: dict[str, str],
    avoid: set,
    where: str,
) -> Example:
    """The next example of ``generate`` whose key is not in ``avoid``."""
    for _ in range(_MAX_DRAWS_PER_ITEM):
        ex = generate(rng, facts)
        if ex.key not in avoid:
            return ex
    raise RuntimeError(f"{where}: {_MAX_DRAWS_PER_ITEM} draws found no item outside {len(avoid)}")


def build_corpus(
    seed: int,
    sizes: Mapping[str, int | Mapping[str, int]],
    skills: list[str] | tuple[str, ...] = SKILLS,
    n_entities: int = 40,
    fusion_references: str = "short",
    pretrain_worked_share: float = 0.0,
) -> pd.DataFrame:
    """Generate the corpus: ``sizes[split]`` examples per skill for each split.

    ``fusion_references``: ``"short"`` (the fusion split's references in the style of
    every other split) or ``"worked"`` (:attr:`Example.worked`: restated input, the
    steps, then the answer; code and greek keep their short form). Worked
    references are the ground truth ProFuser's premise needs: longer and harder than
    what the sources produce, who learned mostly the short style in pretraining (issue 17:
    with short references the voted outputs were as long as the references and 36% were
    identical to them). ValueError for another value.

    ``pretrain_worked_share``: the share of pretraining examples (of the skills with a
    worked form) whose reference is worked, each drawn with this probability from a
    stream of its own (the items do not change). The sources then know the worked style,
    as real sources have read long answers, but write the short one they mostly saw
    (greedy decoding picks the majority style). With 0 the worked form is unseen before
    fusion: the sources' distributions on it are noise, and training-mode fusion pulled
    the target towards them (measured: issue 17 item 2). ValueError outside [0, 1].

    ``sizes``: split -> examples per skill; ``sizes["eval"]`` may instead map each skill
    to its size (:func:`eval_request`; skills of the mapping that are not generated are
    ignored, unknown ones are an error).

    ``skills``: names in :data:`GENERATORS` (default :data:`SKILLS`). Returns a frame
    with :data:`COLUMNS` then ``tests`` (``""`` but for code items); ``prompt_id`` is
    ``<split>-<skill>-<n>``, rows in split then skill order. The eval split has distinct
    items (:func:`eval_size` of them per skill) that the splits of
    :data:`EVAL_AVOIDED_BY` never hold (see the module doc). Raises ValueError for an
    unknown skill or split, an unknown ``fusion_references``, or what
    :func:`eval_sizes` raises for the eval sizes.
    """
    unknown = sorted(set(skills) - set(GENERATORS))
    if unknown:
        raise ValueError(f"unknown skills {unknown}; known: {sorted(GENERATORS)}")
    bad_splits = sorted(set(sizes) - set(SPLITS))
    if bad_splits:
        raise ValueError(f"unknown splits {bad_splits}; known: {list(SPLITS)}")
    if fusion_references not in ("short", "worked"):
        raise ValueError(
            f"fusion_references must be 'short' or 'worked', not {fusion_references!r}"
        )
    if not 0.0 <= pretrain_worked_share <= 1.0:
        raise ValueError(f"pretrain_worked_share must be in [0, 1], not {pretrain_worked_share}")
    n_eval = eval_sizes(sizes, skills, n_entities)
    facts = fact_table(seed, n_entities)
    made: dict[tuple[str, str], list[Example]] = {}
    held: dict[str, set] = {}
    # eval first, from its own stream: distinct items
    for skill in skills:
        rng = random.Random(f"{seed}-eval-{skill}")
        items: list[Example] = []
        seen: set = set()
        while len(items) < n_eval[skill]:
            ex = _draw(GENERATORS[skill], rng, facts, seen, f"eval {skill}")
            seen.add(ex.key)
            items.append(ex)
        made[("eval", skill)], held[skill] = items, seen
    # then the others, skipping the eval items where they would leak them
    for split in SPLITS:
        if split == "eval":
            continue
        for skill in skills:
            rng = random.Random(f"{seed}-{split}-{skill}")
            avoid = held[skill] if split in EVAL_AVOIDED_BY[skill] else set()
            made[(split, skill)] = [
                _draw(GENERATORS[skill], rng, facts, avoid, f"{split} {skill}")
                for _ in range(sizes.get(split, 0))
            ]

    worked_in_pretrain = {
        skill: [
            rng.random() < pretrain_worked_share
            for rng in [random.Random(f"{seed}-pretrain-style-{skill}")]
            for _ in made[("pretrain", skill)]
        ]
        for skill in skills
    }

    def reference(split: str, skill: str, i: int, ex: Example) -> str:
        if split == "fusion":
            worked = fusion_references == "worked"
        else:
            worked = split == "pretrain" and worked_in_pretrain[skill][i]
        return (ex.worked or ex.reference) if worked else ex.reference

    rows = [
        (
            f"{split}-{skill}-{i:05d}",
            split,
            skill,
            ex.prompt,
            ex.answer,
            reference(split, skill, i, ex),
            ex.tests,
        )
        for split in SPLITS
        for skill in skills
        for i, ex in enumerate(made[(split, skill)])
    ]
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

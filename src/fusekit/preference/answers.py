"""Mathematics correctness: the final answer of a response against the gold answer.

FuseChat-3.0 checks math responses "against the gold answer" before ranking them by
reward (PREFERENCE_FUSION.md §4.2); its extraction rule is not published (§8, item 11).
[A] The rule here, in order, first match wins:

1. the content of the **last** ``\\boxed{...}`` (braces balanced; OpenMathInstruct-2 and
   Qwen-2.5-Math answers end with one);
2. what follows the **last** ``answer is`` (the "The answer is X." convention of
   chain-of-thought prompts and of the tiny world's corpus), up to the end of that line;
3. the **last number** in the response (Open-Instruct's GSM8K rule: thousands commas
   dropped first).

A response with none of these has no answer and is incorrect. Comparison
(:func:`answers_match`): both sides are normalised (``$``, ``\\left``/``\\right``,
``\\!``, ``\\text{...}`` wrappers and ``dfrac``/``tfrac`` spelling removed, whitespace
collapsed, a trailing full stop dropped); if both then read as numbers (``12``, ``-3.5``,
``1,080``, ``3/4``, ``\\frac{3}{4}``, ``50%`` read as 50) they match when equal within
1e-6 relative (1e-9 absolute); otherwise the normalised strings must be equal. This is
not a symbolic checker (``math_verify``): ``x=2`` vs ``2`` or ``\\sqrt{8}`` vs
``2\\sqrt{2}`` do not match.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from fusekit.preference.tables import KEY, _require

CORRECTNESS_COLUMNS = ("prompt_id", "model", "sample", "answer", "gold", "correct")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)")
_ANSWER_IS = re.compile(r"answer is[:\s]*(.*)", re.IGNORECASE)


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed")
    while start >= 0:
        i = start + len("\\boxed")
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[i + 1 : j]
                j += 1
        start = text.rfind("\\boxed", 0, start)
    return None


def extract_answer(text: str) -> str | None:
    """The final answer of a response (rule in the module doc), or None."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    idx = text.lower().rfind("answer is")
    if idx >= 0:
        match = _ANSWER_IS.match(text[idx:])
        tail = match.group(1).split("\n")[0].strip() if match else ""
        if tail:
            return tail
    numbers = _NUMBER.findall(_THOUSANDS.sub("", text))
    return numbers[-1] if numbers else None


def _normalise(answer: str) -> str:
    s = answer.strip()
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    s = " ".join(s.split())
    return s.rstrip(".").strip()


def _as_number(answer: str) -> float | None:
    s = answer.replace(" ", "")
    s = _THOUSANDS.sub("", s)
    s = s.removesuffix("\\%").removesuffix("%")
    frac = re.fullmatch(r"([-+]?)\\frac\{([^{}]+)\}\{([^{}]+)\}", s)
    if frac:
        s = f"{frac.group(1)}{frac.group(2)}/{frac.group(3)}"
    parts = s.split("/")
    if len(parts) == 2:
        num, den = _as_number(parts[0]), _as_number(parts[1])
        if num is None or den is None or den == 0:
            return None
        return num / den
    if _NUMBER.fullmatch(s):
        return float(s)
    return None


def answers_match(predicted: str | None, gold: str) -> bool:
    """Whether an extracted answer equals the gold one (rule in the module doc)."""
    if predicted is None:
        return False
    p, g = _normalise(predicted), _normalise(str(gold))
    pn, gn = _as_number(p), _as_number(g)
    if pn is not None and gn is not None:
        return math.isclose(pn, gn, rel_tol=1e-6, abs_tol=1e-9)
    return p == g


def math_correctness(generations: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """Correctness of every response against its prompt's gold answer.

    ``generations``: prompt_id, model, sample, response. ``gold``: prompt_id, answer (one
    row per prompt). Returns :data:`CORRECTNESS_COLUMNS` (``answer`` = extracted, None
    when there is none; an empty response is incorrect). Raises ``ValueError`` for a
    prompt without a gold answer, a prompt with two, or a missing gold answer (naming the
    prompt ids).
    """
    _require(generations, [*KEY, "response"], "generations")
    _require(gold, ["prompt_id", "answer"], "gold answers")
    dup = gold["prompt_id"].duplicated()
    if dup.any():
        raise ValueError(f"gold answers: prompt {gold['prompt_id'][dup].iloc[0]!r} appears twice")
    if gold["answer"].isna().any():
        pid = gold.loc[gold["answer"].isna(), "prompt_id"].iloc[0]
        raise ValueError(f"gold answers: prompt {pid!r} has no answer")
    missing = sorted(set(generations["prompt_id"]) - set(gold["prompt_id"]), key=str)
    if missing:
        raise ValueError(
            f"gold answers: no answer for prompts {missing[:5]}"
            + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
        )
    answers = dict(zip(gold["prompt_id"], gold["answer"].astype(str), strict=True))
    out = generations[KEY].copy()
    extracted = [extract_answer(str(r)) for r in generations["response"]]
    out["answer"] = extracted
    out["gold"] = [answers[p] for p in generations["prompt_id"]]
    out["correct"] = [answers_match(a, g) for a, g in zip(extracted, out["gold"], strict=True)]
    return out.reset_index(drop=True)[list(CORRECTNESS_COLUMNS)]

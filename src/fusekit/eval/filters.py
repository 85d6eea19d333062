"""Answer-extraction filters that lm-eval does not ship, as lm-eval ``Filter`` classes.

``final-number``: GSM8K scored as Open-Instruct scores it (``eval/gsm/run_eval.py`` of
allenai/open-instruct, the evaluation ProFuser used): drop the commas between digits
(``re.sub(r"(\\d),(\\d)", r"\\1\\2", output)``), take the *last* number
(``re.findall(r"[-+]?\\d*\\.\\d+|\\d+", ...)[-1]``), or the whole output when there is
none, then exact match against the gold answer. lm-eval's own ``gsm8k_cot`` filters
differ: ``strict-match`` credits only the literal, case-sensitive ``The answer is N.``
("So the answer is 10." scores 0), and ``flexible-extract`` takes the last match of
``(-?[$0-9.,]{2,})|(-?[0-9]+)``, which also matches runs such as ``...``.

:func:`filter_ensemble` builds the lm-eval pipeline (this filter, then ``take_first``)
that :func:`fusekit.eval.openllm.evaluate_model` adds to a task whose benchmark names
it (``evaluation.openllm.benchmarks.<key>.filter``); results then carry
``exact_match,final-number``.
"""

from __future__ import annotations

import re

FINAL_NUMBER = "final-number"
_THOUSANDS = re.compile(r"(\d),(\d)")
_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")


def final_number(text: str) -> str:
    """Open-Instruct's GSM8K prediction: the last number in ``text`` after removing
    commas between digits (``"1,080 dollars. The answer is 1,080."`` -> ``"1080"``); the
    text itself when it holds no number. A minus sign is kept only on decimals, as in
    Open-Instruct's regular expression."""
    numbers = _NUMBER.findall(_THOUSANDS.sub(r"\1\2", text))
    return numbers[-1] if numbers else text


def _filter_class():
    from lm_eval.api.filter import Filter

    class FinalNumberFilter(Filter):
        """lm-eval filter: :func:`final_number` of every response."""

        def apply(self, resps, docs):
            return [[final_number(r if isinstance(r, str) else "") for r in rs] for rs in resps]

    return FinalNumberFilter


FILTERS = {FINAL_NUMBER: _filter_class}


def filter_ensemble(name: str):
    """The lm-eval ``FilterEnsemble`` named ``name`` (one of :data:`FILTERS`): the
    extraction, then lm-eval's ``take_first``. ``ValueError`` for an unknown name."""
    if name not in FILTERS:
        raise ValueError(f"fusekit has no answer filter {name!r}; known: {sorted(FILTERS)}")
    from lm_eval.filters import build_filter_ensemble

    return build_filter_ensemble(name, [(FILTERS[name](), None), ("take_first", None)])

"""How precise an evaluation's average is: the standard error of the mean of k benchmarks.

Both functions work in percent points, as the evaluation JSON does
(:func:`fusekit.eval.openllm.evaluate_model`), and treat the benchmarks as independent
(different items), so the variance of their unweighted mean is the sum of their variances
over k squared:

* :func:`average_standard_error` from the standard errors lm-eval measured (one model's
  evaluation);
* :func:`worst_case_average_se` before anything is evaluated, from the number of items
  alone: the bound a set size guarantees whatever the model scores (issue 17: evaluation
  sets sized for at most 1 point on a model's average).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# the largest variance of one item's score: a Bernoulli at p = 0.5 (acc, acc_norm,
# exact_match), and by Popoviciu's inequality any score in [0, 1] (TruthfulQA's mc2)
MAX_ITEM_VARIANCE = 0.25


def average_standard_error(result: Mapping) -> float:
    """The standard error of the unweighted mean of an evaluation's benchmarks, in points.

    ``result``: an evaluation JSON (``{"benchmarks": {key: {"value", "stderr", ...}}}``,
    ``stderr`` in points). Returns ``sqrt(sum_b stderr_b^2) / k`` over its k benchmarks
    (the papers' Average column is their mean). Raises ValueError when there are no
    benchmarks, or naming the first benchmark whose ``stderr`` is missing or None (lm-eval
    gives none with ``limit``), or not a finite non-negative number.
    """
    benchmarks = result.get("benchmarks") if isinstance(result, Mapping) else None
    if not benchmarks:
        raise ValueError("the evaluation has no benchmarks: no average, no standard error")
    total = 0.0
    for key, entry in benchmarks.items():
        se = entry.get("stderr") if isinstance(entry, Mapping) else None
        if se is None:
            raise ValueError(
                f"benchmark {key!r} has no standard error (lm-eval reports none with a "
                "limit): the average's standard error is unknown"
            )
        raw = se
        try:
            se = float(se)
        except (TypeError, ValueError):
            se = math.nan
        if not math.isfinite(se) or se < 0:
            raise ValueError(
                f"benchmark {key!r}: standard error {raw!r} is not a finite number >= 0"
            )
        total += se * se
    return math.sqrt(total) / len(benchmarks)


def worst_case_average_se(task_sizes: Mapping[str, int | Sequence[int]]) -> float:
    """The largest standard error the unweighted mean of these benchmarks can have, in
    points, whatever the model answers.

    ``task_sizes``: benchmark -> its number of items, or for a macro-averaged group (MMLU)
    the list of its subtasks' sizes. Every item is scored in [0, 1], so its variance is at
    most :data:`MAX_ITEM_VARIANCE` (a Bernoulli at p = 0.5; mc2 too): a benchmark of n
    items has variance at most 0.25 / n, a macro average of m subtasks
    ``sum_i 0.25 / n_i / m^2``, and the mean of k benchmarks ``sqrt(sum_b var_b) / k``.
    (lm-eval estimates with n - 1, so at p = 0.5 it reports sqrt(n / (n - 1)) times this:
    0.1% more at 400 items.) Raises ValueError when there are no benchmarks, or naming a
    benchmark with no subtask or a size below 1.
    """
    if not task_sizes:
        raise ValueError("no benchmarks: the average's standard error is undefined")
    total = 0.0
    for name, size in task_sizes.items():
        parts = [size] if isinstance(size, int) else list(size)
        if not parts or any(not isinstance(n, int) or n < 1 for n in parts):
            raise ValueError(f"benchmark {name!r}: sizes {size!r}; each needs at least 1 item")
        total += sum(MAX_ITEM_VARIANCE / n for n in parts) / len(parts) ** 2
    return 100 * math.sqrt(total) / len(task_sizes)

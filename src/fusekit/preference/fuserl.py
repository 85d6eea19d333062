"""FuseRL data: per prompt, each source's best and worst response, and the score matrix
that the source weights are computed from (PREFERENCE_FUSION.md §2.2-2.3).

- FuseSFT trains on y_i* = argmax over source i's responses, for every source i, weighted
  by ``w_{x,i} = softmax_i(r(x, y_i*) / alpha)`` [S]. FusePO trains on the pair
  (y_w^i, y_l^i) = (argmax, argmin) of each source [Rev R4], weighted from the same
  r(x, y_w^i) (Eq. 8 [Rev R1]; reuse for FusePO [A]). The weights themselves are the loss
  side's ``source_weights``; this module provides their inputs: a [prompts x sources]
  score matrix and a mask (:func:`score_matrix`).
- Ties: the lowest sample wins both the argmax and the argmin (§2.2 [A]). Empty responses
  are never chosen (counted); a source whose responses are all empty for a prompt is left
  out of that prompt (mask False, §2.2 [A]).
- A source has a FusePO pair when its best and worst are different responses and
  ``best - worst > min_gap`` (default 0: only identical scores are dropped, §2.3 [A]).
- Prompts split FuseSFT:FusePO = 4:6 [A: FuseChat-3.0's rule, §2.4] with
  :func:`fusekit.preference.splits.split_prompts` and :data:`~.splits.FUSERL_PARTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fusekit.preference.tables import CANDIDATE_COLUMNS, Counts, _require, pick

GROUP_COLUMNS = (
    "prompt_id",
    "prompt",
    "model",
    "n_usable",
    "best_sample",
    "best_response",
    "best_score",
    "worst_sample",
    "worst_response",
    "worst_score",
    "gap",
    "has_pair",
)
MATRIX_COLUMNS = ("prompt_id", "model", "score", "mask")


@dataclass
class FuseRLData:
    """``groups``: one row per (prompt, source with a usable response),
    :data:`GROUP_COLUMNS`; ``counts``: ``domain, dataset, what, n``."""

    groups: pd.DataFrame
    counts: pd.DataFrame


@dataclass
class ScoreMatrix:
    """Scores [P, K] (float64) and mask [P, K] (bool) over ``prompt_ids`` (P, sorted) and
    ``sources`` (K, in the given order). A masked-out cell holds 0.0 and must be ignored
    (the loss side's ``source_weights(scores, temperature, mask)``); every row has at
    least one True. ``dropped``: prompts left out because no source qualified."""

    prompt_ids: list
    sources: list[str]
    scores: np.ndarray
    mask: np.ndarray
    dropped: list

    def to_frame(self) -> pd.DataFrame:
        """Long form, :data:`MATRIX_COLUMNS` (masked cells included, score 0.0)."""
        p, k = self.scores.shape
        return pd.DataFrame(
            {
                "prompt_id": np.repeat(np.array(self.prompt_ids, dtype=object), k),
                "model": np.tile(np.array(self.sources, dtype=object), p),
                "score": self.scores.reshape(-1),
                "mask": self.mask.reshape(-1),
            }
        )


def fuserl_groups(
    cands: pd.DataFrame,
    min_gap: float = 0.0,
    sources: Sequence[str] | None = None,
    dataset: str = "fuserl",
) -> FuseRLData:
    """Each source's best and worst usable response per prompt (module doc).

    ``cands``: a candidate table (:func:`fusekit.preference.tables.candidates`).
    ``sources``: the sources to use (default all in ``cands``; a name without responses
    is a ``ValueError``). Counts: ``prompts``, ``empty_responses``,
    ``dropped_no_usable_response`` (prompts), ``cells_without_usable_response``
    ((prompt, source) cells), ``cells_without_pair``, ``prompts_without_pair``.
    """
    _require(cands, CANDIDATE_COLUMNS, "candidates")
    if sources is not None:
        unknown = sorted(set(sources) - set(cands["model"]))
        if unknown:
            raise ValueError(f"sources {unknown} have no responses in the candidates")
        cands = cands[cands["model"].isin(sources)]
    counts = Counts("fuserl", dataset)
    prompts = set(cands["prompt_id"])
    n_sources = cands["model"].nunique()
    counts.add("prompts", len(prompts))
    counts.add("empty_responses", int((~cands["usable"]).sum()), warn=True)
    usable = cands[cands["usable"]]
    counts.add("dropped_no_usable_response", len(prompts - set(usable["prompt_id"])), warn=True)
    by = ["prompt_id", "model"]
    best = pick(usable, by, "max")
    worst = pick(usable, by, "min")
    n = usable.groupby(by).size().rename("n_usable").reset_index()
    cols = ["prompt_id", "model", "sample", "response", "score"]
    groups = (
        best[[*cols, "prompt"]]
        .merge(worst[cols], on=by, suffixes=("_b", "_w"))
        .merge(n, on=by)
        .rename(
            columns={
                "sample_b": "best_sample",
                "response_b": "best_response",
                "score_b": "best_score",
                "sample_w": "worst_sample",
                "response_w": "worst_response",
                "score_w": "worst_score",
            }
        )
    )
    groups["gap"] = groups["best_score"] - groups["worst_score"]
    groups["has_pair"] = (groups["best_sample"] != groups["worst_sample"]) & (
        groups["gap"] > min_gap
    )
    counts.add("cells_without_usable_response", len(prompts) * n_sources - len(groups), warn=True)
    counts.add("cells_without_pair", int((~groups["has_pair"]).sum()))
    with_pair = set(groups.loc[groups["has_pair"], "prompt_id"])
    counts.add("prompts_without_pair", len(set(groups["prompt_id"]) - with_pair), warn=True)
    groups = groups.sort_values(by, kind="stable").reset_index(drop=True)
    return FuseRLData(groups=groups[list(GROUP_COLUMNS)], counts=counts.frame())


def score_matrix(
    groups: pd.DataFrame,
    stage: str = "sft",
    sources: Sequence[str] | None = None,
    column: str = "best_score",
) -> ScoreMatrix:
    """The [prompts x sources] scores and mask for the source weights.

    ``stage="sft"`` (FuseSFT): a cell is valid when the source has a usable response;
    ``"po"`` (FusePO): when it has a pair (``has_pair``). ``column``: the score used
    (default ``best_score``, r(x, y_i*) of Eq. 8; ``worst_score`` for the rejected side).
    ``sources``: column order (default sorted names in ``groups``). Prompts with no valid
    cell are left out and listed in ``dropped``.
    """
    if stage not in ("sft", "po"):
        raise ValueError(f"stage must be 'sft' or 'po', got {stage!r}")
    _require(groups, ["prompt_id", "model", "has_pair", column], "groups")
    names = list(sources) if sources is not None else sorted(groups["model"].unique())
    unknown = sorted(set(groups["model"]) - set(names))
    if unknown:
        raise ValueError(f"groups hold sources {unknown} that are not in {names}")
    rows = groups if stage == "sft" else groups[groups["has_pair"]]
    all_ids = sorted(set(groups["prompt_id"]), key=str)
    ids = sorted(set(rows["prompt_id"]), key=str)
    dropped = sorted(set(all_ids) - set(ids), key=str)
    pi = {p: i for i, p in enumerate(ids)}
    ki = {m: j for j, m in enumerate(names)}
    scores = np.zeros((len(ids), len(names)), dtype=np.float64)
    mask = np.zeros((len(ids), len(names)), dtype=bool)
    r = rows["prompt_id"].map(pi).to_numpy(dtype=np.int64)
    c = rows["model"].map(ki).to_numpy(dtype=np.int64)
    scores[r, c] = rows[column].to_numpy(dtype=np.float64)
    mask[r, c] = True
    return ScoreMatrix(prompt_ids=ids, sources=names, scores=scores, mask=mask, dropped=dropped)

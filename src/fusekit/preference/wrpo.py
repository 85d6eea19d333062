"""WRPO data: the Target-SFT set and (x, y_ws, y_wt, y_l) quadruples (PREFERENCE_FUSION.md §3.3).

- The prompts are split by :func:`wrpo_split`: a seeded random third for Target-SFT
  (``floor(n / 3)`` prompts, rounding [A]), the rest for WRPO.
- y_ws = the highest-score response over **all** source responses of a prompt (every
  source's samples; ties: ``source_order``, then the lowest sample) [V README].
- Target-SFT set = the Target-SFT share of the prompts with their y_ws [V README].
- Target-SFT then samples the WRPO prompts; y_wt / y_l = the highest / lowest-score
  target sample (ties: lowest sample) [V README]. A prompt whose target samples are all
  identical is dropped and counted (SimPO's post-processing [V], [A] for WRPO), as is
  one whose target samples all score the same (then y_wt and y_l would be one response
  [A]), one with fewer than two non-empty target samples, one without target samples,
  and one without a usable source response.
- Empty responses are never chosen or rejected (counted).

Outputs: :data:`SFT_COLUMNS` and :data:`QUADRUPLE_COLUMNS`; counts as in
:mod:`fusekit.preference.fusechat3` (``domain, dataset, what, n``) with ``what`` in
``prompts``, ``empty_source_responses``, ``empty_target_responses``,
``dropped_no_usable_source_response``, ``dropped_no_target_samples``,
``dropped_too_few_target_samples``, ``dropped_identical_target_samples``,
``dropped_tied_target_scores``, ``target_sft``, ``wrpo``. A prompt is dropped for the
first of these reasons only, so the WRPO prompts with a y_ws split exactly into ``wrpo``
and the ``dropped_*_target_*`` counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from fusekit.preference.splits import WRPO_PARTS, split_prompts
from fusekit.preference.tables import CANDIDATE_COLUMNS, Counts, _require, pick, source_rank

SFT_COLUMNS = ("prompt_id", "split", "prompt", "model", "sample", "response", "score")
QUADRUPLE_COLUMNS = (
    "prompt_id",
    "prompt",
    "ws_model",
    "ws_sample",
    "ws_response",
    "ws_score",
    "wt_model",
    "wt_sample",
    "wt_response",
    "wt_score",
    "l_model",
    "l_sample",
    "l_response",
    "l_score",
)
SHARE_COLUMNS = ("model", "prompts", "percentage")


@dataclass
class WrpoData:
    """The Target-SFT rows, the quadruples and the counts (module doc)."""

    target_sft: pd.DataFrame
    quadruples: pd.DataFrame
    counts: pd.DataFrame


def wrpo_split(prompt_ids, seed: int, parts: Mapping[str, int] = WRPO_PARTS) -> pd.DataFrame:
    """prompt_id, split (``target_sft`` / ``wrpo``): a seeded third for Target-SFT
    (:func:`fusekit.preference.splits.split_prompts`; §3.3 step 4)."""
    return split_prompts(prompt_ids, parts, seed)


def best_source_responses(
    source: pd.DataFrame,
    source_order: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> pd.DataFrame:
    """y_ws per prompt: the highest-score usable response over all sources (candidate
    columns, one row per prompt that has one). ``sources`` restricts the sources (WRPO
    Table 4's subsets, whose membership is not published: §8 item 9)."""
    _require(source, CANDIDATE_COLUMNS, "source candidates")
    if sources is not None:
        unknown = sorted(set(sources) - set(source["model"]))
        if unknown:
            raise ValueError(f"sources {unknown} have no responses in the source candidates")
        source = source[source["model"].isin(sources)]
    rank = source_rank(source["model"], source_order)
    return pick(source[source["usable"]], ["prompt_id"], "max", rank)


def best_source_share(best: pd.DataFrame) -> pd.DataFrame:
    """Share of prompts whose y_ws comes from each source (WRPO Table 1 [P]):
    :data:`SHARE_COLUMNS`, percentage of the prompts with a y_ws, largest first."""
    n = best.groupby("model").size().rename("prompts").reset_index()
    n["percentage"] = 100.0 * n["prompts"] / max(len(best), 1)
    return n.sort_values(["prompts", "model"], ascending=[False, True]).reset_index(drop=True)[
        list(SHARE_COLUMNS)
    ]


def wrpo_data(
    source: pd.DataFrame,
    target: pd.DataFrame | None,
    seed: int,
    split: pd.DataFrame | None = None,
    source_order: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    dataset: str = "wrpo",
) -> WrpoData:
    """The Target-SFT set and the WRPO quadruples.

    ``source``: candidate table of the source samples (all sources, one reward model).
    ``target``: candidate table of the Target-SFT samples of the WRPO prompts (one
    model), or None before Target-SFT has sampled (then only the Target-SFT set is built).
    ``split``: prompt_id, split (default :func:`wrpo_split` of the source prompts with
    ``seed``). Raises ``ValueError`` for target samples of prompts that are not WRPO
    prompts (naming them), a target table with several models, or malformed tables.
    """
    _require(source, CANDIDATE_COLUMNS, "source candidates")
    counts = Counts("wrpo", dataset)
    prompts = sorted(set(source["prompt_id"]), key=str)
    if split is None:
        split = wrpo_split(prompts, seed)
    _require(split, ["prompt_id", "split"], "split")
    unknown = sorted(set(split["prompt_id"]) ^ set(prompts), key=str)
    if unknown:
        raise ValueError(f"split and source candidates cover different prompts: {unknown[:5]}")
    labels = dict(zip(split["prompt_id"], split["split"], strict=True))
    counts.add("prompts", len(prompts))
    counts.add("empty_source_responses", int((~source["usable"]).sum()), warn=True)
    best = best_source_responses(source, source_order, sources)
    counts.add("dropped_no_usable_source_response", len(prompts) - len(best), warn=True)
    best = best.assign(split=best["prompt_id"].map(labels))
    sft = best[best["split"] == "target_sft"]
    counts.add("target_sft", len(sft))
    wrpo_best = best[best["split"] == "wrpo"]
    quads = pd.DataFrame(columns=list(QUADRUPLE_COLUMNS))
    if target is not None:
        quads = _quadruples(wrpo_best, target, labels, counts)
    counts.add("wrpo", len(quads))
    return WrpoData(
        target_sft=sft[list(SFT_COLUMNS)].reset_index(drop=True),
        quadruples=quads,
        counts=counts.frame(),
    )


def _quadruples(
    best: pd.DataFrame, target: pd.DataFrame, labels: dict, counts: Counts
) -> pd.DataFrame:
    _require(target, CANDIDATE_COLUMNS, "target candidates")
    models = sorted(target["model"].unique())
    if len(models) > 1:
        raise ValueError(f"target candidates hold several models {models}; expected one")
    outside = sorted({p for p in target["prompt_id"] if labels.get(p) != "wrpo"}, key=str)
    if outside:
        raise ValueError(
            f"target candidates: samples for prompts that are not WRPO prompts: {outside[:5]}"
            + (f" ... ({len(outside)} in all)" if len(outside) > 5 else "")
        )
    counts.add("empty_target_responses", int((~target["usable"]).sum()), warn=True)
    # each WRPO prompt is dropped for the first reason only (no y_ws was counted before)
    wrpo_prompts = set(best["prompt_id"])
    target = target[target["prompt_id"].isin(wrpo_prompts)]
    counts.add("dropped_no_target_samples", len(wrpo_prompts - set(target["prompt_id"])), warn=True)
    usable = target[target["usable"]]
    n_usable = usable.groupby("prompt_id").size()
    few = set(target["prompt_id"]) - set(n_usable[n_usable >= 2].index)
    counts.add("dropped_too_few_target_samples", len(few), warn=True)
    usable = usable[~usable["prompt_id"].isin(few)]
    distinct = usable.groupby("prompt_id")["response"].nunique()
    identical = set(distinct[distinct < 2].index)
    counts.add("dropped_identical_target_samples", len(identical), warn=True)
    usable = usable[~usable["prompt_id"].isin(identical)]
    spread = usable.groupby("prompt_id")["score"].agg(lambda s: s.max() - s.min())
    tied = set(spread[spread <= 0].index)
    counts.add("dropped_tied_target_scores", len(tied), warn=True)
    usable = usable[~usable["prompt_id"].isin(tied)]
    wt = pick(usable, ["prompt_id"], "max")
    lose = pick(usable, ["prompt_id"], "min")
    ws = best.rename(columns={c: f"ws_{c}" for c in ("model", "sample", "response", "score")})
    wt = wt.rename(columns={c: f"wt_{c}" for c in ("model", "sample", "response", "score")})
    lose = lose.rename(columns={c: f"l_{c}" for c in ("model", "sample", "response", "score")})
    quads = ws.merge(wt.drop(columns=["prompt", "usable"]), on="prompt_id").merge(
        lose.drop(columns=["prompt", "usable"]), on="prompt_id"
    )
    return quads.sort_values("prompt_id", kind="stable").reset_index(drop=True)[
        list(QUADRUPLE_COLUMNS)
    ]

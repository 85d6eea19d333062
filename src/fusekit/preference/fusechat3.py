"""FuseChat-3.0 data construction per domain (PREFERENCE_FUSION.md §4.2, the model card).

Inputs are candidate tables (:func:`fusekit.preference.tables.candidates`: prompt_id,
model, sample, prompt, response, score, usable), one per domain and dataset; math adds
a correctness table (:func:`fusekit.preference.answers.math_correctness`), code a test
result table (:func:`fusekit.preference.coding.code_test_results`).

Rules (card [V] unless marked):

- **Instruction following**: SFT response = the highest-score response over all sources.
  DPO pair = from **one** source: its highest-score response (chosen) against its
  lowest-score one (rejected), kept only when ``0.01 <= gap <= 0.1`` (edges inclusive,
  compared with an absolute tolerance of 1e-9 so that float noise such as
  0.29 - 0.28 = 0.00999999999999995 does not exclude an exact 0.01 [A]). When several
  sources qualify, the one whose chosen response scores highest; ties: ``source_order``
  (§4.2 [A]). Prompts without a qualifying pair are dropped **before** the 4:6 split
  (``policy="filter_then_split"``, §4.2 [A]: the card's counts split exactly 4:6 after
  filtering).
- **Mathematics**: correctness against the gold answer first, then the score. SFT = the
  highest-score correct response; pair (one source) = its highest-score correct response
  against its lowest-score incorrect one, gap in [0.01, 0.1] (§4.2). Prompts without a
  correct response are dropped. [A] The card's split is not 4:6 (40,188 SFT / 11,615
  DPO) and its rule is not stated: default ``policy="split_then_fallback"``: a seeded 4:6
  split of the prompts with a correct response, and a DPO-share prompt without a
  qualifying pair is used for SFT instead (consistent with the card: DPO below 60 %,
  every prompt used).
- **Coding**: correctness = the response passes its tests in the sandbox. SFT = the
  highest-score passing response; pair (one source, card Fig. 2 caption [P]) = its
  highest-score passing response against its lowest-score failing one; no gap rule
  (none is stated, §4.2: ``gap=None``); prompts where every response fails are dropped.
  Split as for mathematics [A] (card: 1,877/1,236 and 10,160/2,732, not 4:6).
- **Single-source language domain** (Chinese on the card): SFT only, the one source's
  response; no reward model (scores are NaN).

Every builder returns :class:`PreferenceData`: ``sft`` (:data:`SFT_COLUMNS`), ``pairs``
(:data:`PAIR_COLUMNS`) and ``counts`` (``domain, dataset, what, n``). Count names:
``prompts``, ``empty_responses``, ``dropped_no_usable_response``,
``dropped_no_correct_response`` (math) / ``dropped_all_fail`` (code),
``dropped_no_qualifying_pair``, ``dpo_without_pair_to_sft``, ``tests_<status>`` (code),
``sft``, ``dpo``. A drop is counted and logged, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fusekit.preference.splits import FUSECHAT3_PARTS, split_prompts
from fusekit.preference.tables import (
    CANDIDATE_COLUMNS,
    KEY,
    Counts,
    _list_keys,
    _require,
    check_unique,
    pick,
    source_rank,
)

log = logging.getLogger("fusekit")

SFT_COLUMNS = (
    "prompt_id",
    "domain",
    "dataset",
    "split",
    "prompt",
    "model",
    "sample",
    "response",
    "score",
)
PAIR_COLUMNS = (
    "prompt_id",
    "domain",
    "dataset",
    "split",
    "prompt",
    "chosen_model",
    "chosen_sample",
    "chosen_response",
    "chosen_score",
    "rejected_model",
    "rejected_sample",
    "rejected_response",
    "rejected_score",
    "gap",
)
COMPOSITION_COLUMNS = (
    "category",
    "dataset",
    "total",
    "sft",
    "dpo",
    "reported_total",
    "reported_sft",
    "reported_dpo",
)
GAP = (0.01, 0.1)
GAP_TOLERANCE = 1e-9
POLICIES = ("filter_then_split", "split_then_drop", "split_then_fallback")


@dataclass
class PreferenceData:
    """One domain's SFT rows, DPO pairs and counts (columns in the module doc)."""

    sft: pd.DataFrame
    pairs: pd.DataFrame
    counts: pd.DataFrame


def same_source_pairs(
    chosen_pool: pd.DataFrame,
    rejected_pool: pd.DataFrame,
    gap: tuple[float, float] | None = GAP,
    rank: Mapping[str, int] | None = None,
    tolerance: float = GAP_TOLERANCE,
) -> pd.DataFrame:
    """At most one same-source pair per prompt.

    Per (prompt, source): chosen = the highest score in ``chosen_pool``, rejected = the
    lowest in ``rejected_pool`` (ties: lowest sample); a source needs both, and they must
    be different responses. With ``gap = (lo, hi)`` a source qualifies when
    ``lo - tolerance <= chosen - rejected <= hi + tolerance``; ``None`` keeps every
    source. Among qualifying sources the one with the highest chosen score wins (ties:
    ``rank``). Both pools are candidate rows (:data:`CANDIDATE_COLUMNS`). Returns
    prompt_id, prompt, chosen_/rejected_ model, sample, response, score, and gap.
    """
    cols = ["prompt_id", "model", "sample", "prompt", "response", "score"]
    best = pick(chosen_pool[cols], ["prompt_id", "model"], "max")
    worst = pick(rejected_pool[cols], ["prompt_id", "model"], "min")
    empty = pd.DataFrame(columns=["prompt_id", "prompt", *PAIR_COLUMNS[5:]])
    if best.empty or worst.empty:
        return empty
    both = best.merge(
        worst.drop(columns="prompt"), on=["prompt_id", "model"], suffixes=("_c", "_r")
    )
    both = both[both["sample_c"] != both["sample_r"]]
    both = both.assign(gap=both["score_c"] - both["score_r"])
    if gap is not None:
        lo, hi = gap
        both = both[(both["gap"] >= lo - tolerance) & (both["gap"] <= hi + tolerance)]
    if both.empty:
        return empty
    # choose the source: highest chosen score, ties by rank (pick's order), via "score"
    chosen = pick(
        both.assign(score=both["score_c"], sample=both["sample_c"]),
        ["prompt_id"],
        "max",
        dict(rank) if rank else None,
    )
    return pd.DataFrame(
        {
            "prompt_id": chosen["prompt_id"],
            "prompt": chosen["prompt"],
            "chosen_model": chosen["model"],
            "chosen_sample": chosen["sample_c"],
            "chosen_response": chosen["response_c"],
            "chosen_score": chosen["score_c"],
            "rejected_model": chosen["model"],
            "rejected_sample": chosen["sample_r"],
            "rejected_response": chosen["response_r"],
            "rejected_score": chosen["score_r"],
            "gap": chosen["gap"],
        }
    ).reset_index(drop=True)


def _attach(cands: pd.DataFrame, table: pd.DataFrame, column: str, what: str) -> pd.DataFrame:
    """``cands`` with ``table[column]`` joined on (prompt_id, model, sample); both sides
    must hold the same responses (``ValueError`` naming the first extra ones)."""
    _require(table, [*KEY, column], what)
    check_unique(table, what)
    merged = cands.merge(table[[*KEY, column]], on=KEY, how="outer", indicator=True)
    extra = merged[merged["_merge"] == "right_only"]
    if len(extra):
        raise ValueError(f"{what}: rows for responses not in the candidates: {_list_keys(extra)}")
    absent = merged[merged["_merge"] == "left_only"]
    if len(absent):
        raise ValueError(f"{what}: no row for responses {_list_keys(absent)}")
    out = merged.drop(columns="_merge")
    if out[column].isna().any():
        raise ValueError(f"{what}: no {column} value for {_list_keys(out[out[column].isna()])}")
    out[column] = out[column].astype(bool)
    return out.sort_values(KEY, kind="stable").reset_index(drop=True)


def _build(
    cands: pd.DataFrame,
    ok: pd.Series,
    *,
    domain: str,
    dataset: str,
    seed: int,
    parts: Mapping[str, int],
    policy: str,
    gap: tuple[float, float] | None,
    source_order: Sequence[str] | None,
    no_chosen: str | None,
    counts: Counts,
) -> PreferenceData:
    """Shared body: ``ok`` marks the responses that may be chosen (correct/passing; all
    for instruction following); rejected ones come from ``~ok`` when ``no_chosen`` is
    set (math, code), else from every usable response."""
    if policy not in POLICIES:
        raise ValueError(f"unknown split policy {policy!r}; one of {POLICIES}")
    names = list(parts)
    if len(names) != 2:
        raise ValueError(f"FuseChat-3.0 splits need two parts (sft, dpo), got {dict(parts)}")
    sft_name, dpo_name = names
    _require(cands, CANDIDATE_COLUMNS, "candidates")
    rank = source_rank(cands["model"], source_order)
    prompts = set(cands["prompt_id"])
    counts.add("prompts", len(prompts))
    counts.add("empty_responses", int((~cands["usable"]).sum()), warn=True)
    usable = cands[cands["usable"]]
    counts.add("dropped_no_usable_response", len(prompts - set(usable["prompt_id"])), warn=True)
    ok = ok.reindex(cands.index).fillna(False).astype(bool)
    chosen_pool = cands[cands["usable"] & ok]
    rejected_pool = cands[cands["usable"] & ~ok] if no_chosen else usable
    if no_chosen:
        counts.add(no_chosen, len(set(usable["prompt_id"]) - set(chosen_pool["prompt_id"])), True)
    sft_best = pick(chosen_pool, ["prompt_id"], "max", rank)
    pairs = same_source_pairs(chosen_pool, rejected_pool, gap, rank)
    with_pair = set(pairs["prompt_id"])
    with_sft = set(sft_best["prompt_id"])
    if policy == "filter_then_split":
        eligible = with_pair
        counts.add("dropped_no_qualifying_pair", len(with_sft - with_pair), warn=True)
    else:
        eligible = with_sft
    split = split_prompts(sorted(eligible, key=str), parts, seed) if eligible else None
    labels = dict(zip(split["prompt_id"], split["split"], strict=True)) if split is not None else {}
    dpo_ids = {p for p, s in labels.items() if s == dpo_name and p in with_pair}
    unpaired = {p for p, s in labels.items() if s == dpo_name and p not in with_pair}
    sft_ids = {p for p, s in labels.items() if s == sft_name}
    if policy == "split_then_drop":
        counts.add("dropped_no_qualifying_pair", len(unpaired), warn=True)
    elif policy == "split_then_fallback":
        counts.add("dpo_without_pair_to_sft", len(unpaired))
        sft_ids |= unpaired
    sft = sft_best[sft_best["prompt_id"].isin(sft_ids)].assign(
        domain=domain, dataset=dataset, split=sft_name
    )
    out_pairs = pairs[pairs["prompt_id"].isin(dpo_ids)].assign(
        domain=domain, dataset=dataset, split=dpo_name
    )
    counts.add(sft_name, len(sft))
    counts.add(dpo_name, len(out_pairs))
    return PreferenceData(
        sft=sft[list(SFT_COLUMNS)].reset_index(drop=True),
        pairs=out_pairs[list(PAIR_COLUMNS)].reset_index(drop=True),
        counts=counts.frame(),
    )


def fusechat3_instruction(
    cands: pd.DataFrame,
    seed: int,
    dataset: str,
    gap: tuple[float, float] = GAP,
    parts: Mapping[str, int] = FUSECHAT3_PARTS,
    policy: str = "filter_then_split",
    source_order: Sequence[str] | None = None,
    domain: str = "instruction_following",
) -> PreferenceData:
    """Instruction-following SFT rows and DPO pairs (rules in the module doc).

    ``cands``: a candidate table of one dataset (every source's samples, one reward
    model). ``seed``: the split seed; ``parts``: the split (default SFT:DPO = 4:6);
    ``policy``: one of :data:`POLICIES`; ``source_order``: tie-break order of sources
    (default sorted names). Raises ``ValueError`` only for malformed inputs (missing
    columns, an unknown policy, a source missing from ``source_order``).
    """
    counts = Counts(domain, dataset)
    return _build(
        cands,
        pd.Series(True, index=cands.index),
        domain=domain,
        dataset=dataset,
        seed=seed,
        parts=parts,
        policy=policy,
        gap=gap,
        source_order=source_order,
        no_chosen=None,
        counts=counts,
    )


def fusechat3_math(
    cands: pd.DataFrame,
    correctness: pd.DataFrame,
    seed: int,
    dataset: str,
    gap: tuple[float, float] | None = GAP,
    parts: Mapping[str, int] = FUSECHAT3_PARTS,
    policy: str = "split_then_fallback",
    source_order: Sequence[str] | None = None,
    domain: str = "mathematics",
) -> PreferenceData:
    """Mathematics SFT rows and pairs: correct before score (module doc).

    ``correctness``: prompt_id, model, sample, correct (e.g. from
    :func:`fusekit.preference.answers.math_correctness`), one row per candidate; a
    mismatch with ``cands`` is a ``ValueError`` naming the responses. Other arguments as
    :func:`fusechat3_instruction`.
    """
    table = _attach(cands, correctness, "correct", "correctness")
    counts = Counts(domain, dataset)
    return _build(
        table,
        table["correct"],
        domain=domain,
        dataset=dataset,
        seed=seed,
        parts=parts,
        policy=policy,
        gap=gap,
        source_order=source_order,
        no_chosen="dropped_no_correct_response",
        counts=counts,
    )


def fusechat3_code(
    cands: pd.DataFrame,
    results: pd.DataFrame,
    seed: int,
    dataset: str,
    gap: tuple[float, float] | None = None,
    parts: Mapping[str, int] = FUSECHAT3_PARTS,
    policy: str = "split_then_fallback",
    source_order: Sequence[str] | None = None,
    domain: str = "coding",
) -> PreferenceData:
    """Coding SFT rows and pairs: passing before score; all-fail prompts dropped.

    ``results``: prompt_id, model, sample, passed (and optionally status), e.g. from
    :func:`fusekit.preference.coding.code_test_results`, one row per candidate; the
    number of usable responses per status is counted as ``tests_<status>``. A mismatch
    with ``cands`` is a ``ValueError`` naming the responses.
    """
    table = _attach(cands, results, "passed", "test results")
    counts = Counts(domain, dataset)
    if "status" in results.columns:
        status = table[["prompt_id", "model", "sample"]].merge(
            results[[*KEY, "status"]], on=KEY, how="left"
        )["status"]
        ran = status[table["usable"].to_numpy()]
        for name, n in ran.value_counts().sort_index().items():
            counts.add(f"tests_{name}", int(n), warn=name in ("timeout", "memory", "error"))
    return _build(
        table,
        table["passed"],
        domain=domain,
        dataset=dataset,
        seed=seed,
        parts=parts,
        policy=policy,
        gap=gap,
        source_order=source_order,
        no_chosen="dropped_all_fail",
        counts=counts,
    )


def fusechat3_single_source(
    generations: pd.DataFrame, source: str, dataset: str, domain: str = "chinese"
) -> PreferenceData:
    """SFT rows of a single-source domain (card: Chinese, Qwen-2.5-72B-Instruct only).

    ``generations``: prompt_id, model, sample, prompt, response. Per prompt the source's
    lowest-numbered non-empty sample (the card samples one); other models' rows are
    ignored. Prompts whose response is empty, or that the source did not answer, are
    dropped and counted (``dropped_no_usable_response``). ``score`` is NaN: no reward
    model is used ([P] Table 1 caption: "no suitable reward models were available").
    """
    _require(generations, [*KEY, "prompt", "response"], "generations")
    counts = Counts(domain, dataset)
    prompts = set(generations["prompt_id"])
    rows = generations[generations["model"] == source]
    check_unique(rows, "generations")
    counts.add("prompts", len(prompts))
    blank = rows["response"].fillna("").astype(str).str.strip() == ""
    counts.add("empty_responses", int(blank.sum()), warn=True)
    rows = rows[~blank].sort_values(KEY, kind="stable").drop_duplicates("prompt_id")
    counts.add("dropped_no_usable_response", len(prompts - set(rows["prompt_id"])), warn=True)
    sft = rows.assign(domain=domain, dataset=dataset, split="sft", score=np.nan)
    counts.add("sft", len(sft))
    counts.add("dpo", 0)
    return PreferenceData(
        sft=sft[list(SFT_COLUMNS)].reset_index(drop=True),
        pairs=pd.DataFrame(columns=list(PAIR_COLUMNS)),
        counts=counts.frame(),
    )


def read_reported_composition(path: str) -> pd.DataFrame:
    """The card's composition table (``category, dataset, total, sft, dpo``; ``#`` lines
    are comments), e.g. ``papers/fusechat3_data_composition.csv``."""
    df = pd.read_csv(path, comment="#")
    _require(df, ["category", "dataset", "total", "sft", "dpo"], str(path))
    return df


def composition(counts: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """Our SFT/DPO counts per (domain, dataset) beside the card's (:data:`COMPOSITION_COLUMNS`).

    ``counts``: the concatenated ``counts`` of the builders (their ``sft``/``dpo`` rows
    are used; ``domain`` is the card's ``category``). ``reported``: as
    :func:`read_reported_composition`. Rows are the card's, in its order, then ours that
    the card lacks; a missing side is blank (NA). The ``total`` row is recomputed for our
    side (over all our rows) and kept as reported for the card's.
    """
    _require(counts, ["domain", "dataset", "what", "n"], "counts")
    ours = counts[counts["what"].isin(["sft", "dpo"])].pivot_table(
        index=["domain", "dataset"], columns="what", values="n", aggfunc="sum", fill_value=0
    )
    ours = ours.reindex(columns=["sft", "dpo"], fill_value=0).reset_index()
    ours = ours.rename(columns={"domain": "category"})
    ours["total"] = ours["sft"] + ours["dpo"]
    rep = reported.copy()
    is_total = rep["category"] == "total"
    rep_total = rep[is_total]
    rep = rep[~is_total].rename(
        columns={"total": "reported_total", "sft": "reported_sft", "dpo": "reported_dpo"}
    )
    table = rep[["category", "dataset", "reported_total", "reported_sft", "reported_dpo"]].merge(
        ours[["category", "dataset", "total", "sft", "dpo"]],
        on=["category", "dataset"],
        how="outer",
        sort=False,
    )
    order = {key: i for i, key in enumerate(zip(rep["category"], rep["dataset"], strict=True))}
    keys = zip(table["category"], table["dataset"], strict=True)
    table["_order"] = [order.get(key, len(order)) for key in keys]
    table = table.sort_values(["_order", "category", "dataset"], kind="stable").drop(
        columns="_order"
    )
    total = {
        "category": "total",
        "dataset": pd.NA,
        "total": int(ours["total"].sum()),
        "sft": int(ours["sft"].sum()),
        "dpo": int(ours["dpo"].sum()),
        "reported_total": rep_total["total"].iloc[0] if len(rep_total) else pd.NA,
        "reported_sft": rep_total["sft"].iloc[0] if len(rep_total) else pd.NA,
        "reported_dpo": rep_total["dpo"].iloc[0] if len(rep_total) else pd.NA,
    }
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    for col in COMPOSITION_COLUMNS[2:]:
        table[col] = pd.to_numeric(table[col]).astype("Int64")
    return table[list(COMPOSITION_COLUMNS)].reset_index(drop=True)

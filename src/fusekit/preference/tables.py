"""Candidate tables: generations joined with their reward scores, checked once.

Every builder in :mod:`fusekit.preference` starts from a *candidate table*, one row per
sampled response (PREFERENCE_FUSION.md §1: x, source M_i, sample y_ij, reward r(x, y)):

``prompt_id, model, sample, prompt, response, score, usable``

built by :func:`candidates` from a generations table (``fusekit.generation``:
prompt_id, model, sample, prompt, response, ...) and a score table
(``fusekit.rewards.scoring``: prompt_id, model, sample, reward_model, score, ...).

Rules shared by every builder:

- ``usable`` is False for an empty response (only whitespace). An empty response is
  never chosen (and never rejected): it is counted (``empty_responses``) and skipped.
- NaN and ``+inf`` scores are errors naming the prompt, model and sample. ``-inf`` is what
  ``score_responses`` writes for an empty response (``rewards.empty_response: lowest``)
  and is accepted there only; ``-inf`` on a non-empty response is an error.
- Scores for responses that are not in the generations, and responses without a score,
  are errors naming them.
- Ties: the lowest ``sample`` wins within a source (PREFERENCE_FUSION.md §2.2 [A]);
  across sources, the earlier source in ``source_order`` (default: sorted model names;
  §4.2 [A] "ties: source order in the config").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger("fusekit")

KEY = ["prompt_id", "model", "sample"]
CANDIDATE_COLUMNS = ("prompt_id", "model", "sample", "prompt", "response", "score", "usable")
COUNT_COLUMNS = ("domain", "dataset", "what", "n")


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; has {list(df.columns)}")


def _name(row) -> str:
    return f"prompt {row['prompt_id']!r} model {row['model']!r} sample {row['sample']}"


def _list_keys(df: pd.DataFrame, limit: int = 5) -> str:
    keys = [f"({r.prompt_id!r}, {r.model!r}, {r.sample})" for r in df.head(limit).itertuples()]
    more = f" ... ({len(df)} in all)" if len(df) > limit else f" ({len(df)} in all)"
    return ", ".join(keys) + more


def check_unique(df: pd.DataFrame, what: str, key: Sequence[str] = tuple(KEY)) -> None:
    """Raise ``ValueError`` naming the first repeated key of ``df``."""
    dup = df.duplicated(list(key))
    if dup.any():
        row = df[dup].iloc[0]
        raise ValueError(f"{what}: {_name(row)} appears more than once")


def check_scores(cands: pd.DataFrame, what: str = "scores") -> None:
    """NaN / ``+inf`` anywhere, or ``-inf`` on a non-empty response: ``ValueError`` naming
    the prompt, model and sample (and how many such scores there are)."""
    values = pd.to_numeric(cands["score"], errors="coerce").to_numpy(dtype=float)
    empty = ~cands["usable"].to_numpy(dtype=bool)
    bad = np.isnan(values) | (values == math.inf) | ((values == -math.inf) & ~empty)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = cands.iloc[i]
    raise ValueError(
        f"{what}: non-finite score {values[i]} for {_name(row)} ({int(bad.sum())} in all); "
        "only an empty response may score -inf"
    )


def candidates(
    generations: pd.DataFrame,
    scores: pd.DataFrame,
    reward_model: str | None = None,
    what: str = "scores",
) -> pd.DataFrame:
    """Join generations with their scores into a candidate table (:data:`CANDIDATE_COLUMNS`).

    ``generations``: prompt_id, model, sample, prompt, response (other columns ignored).
    ``scores``: prompt_id, model, sample, score, and optionally reward_model; a table with
    several reward models needs ``reward_model`` to pick one. ``what`` names the inputs in
    errors (e.g. the score file's path).

    Raises ``ValueError``: missing columns; a repeated (prompt_id, model, sample) in either
    table; a missing prompt or response; scores for responses that are not in the
    generations, or responses without a score (both name the first few keys); NaN,
    ``+inf``, or ``-inf`` on a non-empty response (:func:`check_scores`). The number of
    empty responses is in ``attrs["empty_responses"]`` of the result.
    """
    _require(generations, [*KEY, "prompt", "response"], "generations")
    _require(scores, [*KEY, "score"], what)
    if "reward_model" in scores.columns:
        rms = sorted(scores["reward_model"].dropna().unique())
        if reward_model is not None:
            if reward_model not in rms:
                raise ValueError(f"{what}: no scores from reward model {reward_model!r}; has {rms}")
            scores = scores[scores["reward_model"] == reward_model]
        elif len(rms) > 1:
            raise ValueError(f"{what}: scores from several reward models {rms}; choose one")
    gens = generations[[*KEY, "prompt", "response"]]
    check_unique(gens, "generations")
    check_unique(scores, what)
    nulls = gens[["prompt", "response"]].isna().any(axis=1)
    if nulls.any():
        raise ValueError(f"generations: {_name(gens[nulls].iloc[0])} has no prompt or response")
    merged = gens.merge(scores[[*KEY, "score"]], on=KEY, how="outer", indicator=True)
    extra = merged[merged["_merge"] == "right_only"]
    if len(extra):
        raise ValueError(
            f"{what}: scores for responses not in the generations: {_list_keys(extra)}"
        )
    unscored = merged[merged["_merge"] == "left_only"]
    if len(unscored):
        raise ValueError(f"{what}: responses without a score: {_list_keys(unscored)}")
    out = merged.drop(columns="_merge")
    out["score"] = pd.to_numeric(out["score"], errors="coerce").astype(float)
    out["usable"] = out["response"].astype(str).str.strip() != ""
    check_scores(out, what)
    out = out.sort_values(KEY, kind="stable").reset_index(drop=True)[list(CANDIDATE_COLUMNS)]
    out.attrs["empty_responses"] = int((~out["usable"]).sum())
    return out


def source_rank(models: Sequence[str], source_order: Sequence[str] | None) -> dict[str, int]:
    """Rank of each model for tie-breaks across sources: its index in ``source_order``
    (default: sorted names). A model missing from ``source_order`` is a ``ValueError``."""
    present = sorted(set(models))
    order = list(source_order) if source_order is not None else present
    missing = [m for m in present if m not in order]
    if missing:
        raise ValueError(f"models {missing} are not in source_order {order}")
    return {m: i for i, m in enumerate(order)}


def pick(
    df: pd.DataFrame, by: Sequence[str], how: str, rank: dict[str, int] | None = None
) -> pd.DataFrame:
    """One row per group of ``by``: the highest (``how="max"``) or lowest (``"min"``)
    score; ties go to the earlier source in ``rank`` (when given), then the lowest sample."""
    if df.empty:
        return df.copy()
    order = df.assign(_rank=df["model"].map(rank) if rank else 0)
    order = order.sort_values(["prompt_id", "_rank", "model", "sample"], kind="stable")
    grouped = order.groupby(list(by), sort=True)["score"]
    idx = grouped.idxmax() if how == "max" else grouped.idxmin()
    return order.loc[idx.to_numpy()].drop(columns="_rank").reset_index(drop=True)


@dataclass
class Counts:
    """Drop and size counts of one builder run, as rows of :data:`COUNT_COLUMNS`."""

    domain: str
    dataset: str
    rows: list[dict] = field(default_factory=list)

    def add(self, what: str, n: int, warn: bool = False) -> None:
        self.rows.append(
            {"domain": self.domain, "dataset": self.dataset, "what": what, "n": int(n)}
        )
        if n and warn:
            log.warning("%s/%s: %s: %d", self.domain, self.dataset, what, n)
        else:
            log.info("%s/%s: %s: %d", self.domain, self.dataset, what, n)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(COUNT_COLUMNS))


def count(counts: pd.DataFrame, what: str) -> int:
    """The summed count ``what`` of a counts table (0 when absent)."""
    return int(counts.loc[counts["what"] == what, "n"].sum())

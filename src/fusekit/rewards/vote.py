"""ProFuser's multi-reward-model vote, as pure functions over score tables.

Each reward model picks its best response per prompt; the response with the
most picks wins; a tie between the most-picked responses is broken by the
strongest reward model's score. Candidates are (model, sample) pairs; when one
reward model gives several candidates the same top score it picks the first in
(model, sample) order, so every result is deterministic.

Unusable candidates. A score of ``-inf`` marks a response that must not win (an empty
response scored with ``rewards.empty_response: lowest``); a reward model never picks
one. A prompt on which no reward model has a usable candidate has no winner: it is left
out of the vote, counted and logged (``attrs["dropped_prompts"]`` of the result), never
credited to some source by a tie. NaN and ``+inf`` are errors (a reward model that
overflowed in half precision, say): :func:`check_finite` stops with the file, prompt,
response and reward model.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

log = logging.getLogger("fusekit")

KEY = ["prompt_id", "model", "sample"]
VOTE_COLUMNS = ("prompt_id", "model", "sample", "votes", "n_reward_models", "tie_broken", "picks")


def check_complete(scores: pd.DataFrame, reward_models: list[str]) -> None:
    """Every candidate must be scored by every reward model, exactly once."""
    missing = set(reward_models) - set(scores.reward_model)
    if missing:
        raise ValueError(f"no scores from reward models {sorted(missing)}")
    dup = scores.duplicated(KEY + ["reward_model"])
    if dup.any():
        row = scores[dup].iloc[0]
        raise ValueError(
            f"{row.reward_model} scored prompt {row.prompt_id!r} {row.model}/{row['sample']} twice"
        )
    counts = scores.groupby(KEY).reward_model.nunique()
    if (counts != len(reward_models)).any():
        pid, model, sample = counts[counts != len(reward_models)].index[0]
        raise ValueError(
            f"prompt {pid!r} response {model}/{sample} is not scored by every reward model"
        )


def check_finite(scores: pd.DataFrame, file: str | None = None) -> None:
    """Raise ``ValueError`` at the first NaN or ``+inf`` score, naming the file (``file``,
    else the row's ``file`` column when the table has one), prompt, response
    (model/sample) and reward model; ``-inf`` (unusable, see the module doc) passes."""
    values = pd.to_numeric(scores["score"], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) | (values == np.inf)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = scores.iloc[i]
    where = file or (str(row["file"]) if "file" in scores.columns else "scores")
    raise ValueError(
        f"{where}: reward model {row['reward_model']!r} gave a non-finite score "
        f"({values[i]}) to prompt {row['prompt_id']!r}, response of model "
        f"{row['model']!r} sample {row['sample']} ({int(bad.sum())} non-finite scores in all); "
        "only -inf (an unusable response) is allowed"
    )


def rm_picks(scores: pd.DataFrame) -> pd.DataFrame:
    """Each reward model's best usable candidate per prompt (``-inf`` scores are never
    picked; a reward model with no usable candidate for a prompt picks nothing there).

    Columns: prompt_id, reward_model, model, sample.
    """
    check_finite(scores)
    scores = scores[scores["score"].astype(float) > -math.inf]
    ordered = scores.sort_values(["prompt_id", "reward_model", "model", "sample"], kind="stable")
    best = ordered.loc[ordered.groupby(["prompt_id", "reward_model"], sort=False).score.idxmax()]
    return best[["prompt_id", "reward_model", "model", "sample"]].reset_index(drop=True)


def majority_vote(scores: pd.DataFrame, reward_models: list[str], strongest: str) -> pd.DataFrame:
    """The voted response per prompt (:data:`VOTE_COLUMNS`).

    ``scores`` has columns prompt_id, model, sample, reward_model, score (and optionally
    ``file``, named in errors); only the rows of ``reward_models`` are used. Prompts
    without a usable candidate get no row; their ids are in ``attrs["dropped_prompts"]``
    of the result and a warning gives their number. Raises ``ValueError`` on NaN or
    ``+inf`` scores (:func:`check_finite`) and on incomplete tables (:func:`check_complete`).
    """
    if strongest not in reward_models:
        raise ValueError(f"strongest reward model {strongest!r} is not one of {reward_models}")
    scores = scores[scores.reward_model.isin(reward_models)]
    check_complete(scores, reward_models)
    check_finite(scores)
    picks = rm_picks(scores)
    dropped = sorted(set(scores.prompt_id) - set(picks.prompt_id))
    if dropped:
        log.warning(
            "vote: %d of %d prompts have no usable candidate (every response scored -inf, "
            "e.g. empty) and get no winner: %s%s",
            len(dropped),
            scores.prompt_id.nunique(),
            ", ".join(map(str, dropped[:5])),
            " ..." if len(dropped) > 5 else "",
        )
    votes = picks.groupby(KEY).size().rename("votes").reset_index()
    top = votes.groupby("prompt_id").votes.transform("max")
    leaders = votes[votes.votes == top]
    strong = scores[scores.reward_model == strongest][KEY + ["score"]]
    leaders = leaders.merge(strong, on=KEY).sort_values(
        ["prompt_id", "model", "sample"], kind="stable"
    )
    n_leaders = leaders.groupby("prompt_id").model.transform("size")
    winners = leaders.loc[leaders.groupby("prompt_id", sort=True).score.idxmax()].copy()
    winners["tie_broken"] = (n_leaders.loc[winners.index] > 1).to_numpy()
    labels = picks.assign(
        label=picks.reward_model + ":" + picks.model + "/" + picks["sample"].astype(str)
    )
    winners = winners.merge(
        labels.groupby("prompt_id")
        .label.agg(lambda s: ",".join(sorted(s)))
        .rename("picks")
        .reset_index(),
        on="prompt_id",
    )
    winners["n_reward_models"] = len(reward_models)
    out = winners[list(VOTE_COLUMNS)].reset_index(drop=True)
    out.attrs["dropped_prompts"] = dropped
    return out


STRONGEST_METRICS = ("source_pair_accuracy", "preference_accuracy")
"""Held-out accuracies that rank reward models, in order of preference: on pairs of the
sources' own outputs (one right, one wrong: the choice a vote makes), else on corrupted
references."""


def strongest_from_table(table: pd.DataFrame, reward_models: list[str]) -> str:
    """The reward model with the highest overall held-out accuracy in the tiny world's
    accuracy table (ties: the first name in sorted order): the first metric of
    :data:`STRONGEST_METRICS` that every one of ``reward_models`` has.

    Raises ValueError naming the reward models without any held-out accuracy."""
    overall = table[(table.skill == "all") & table.model.isin(reward_models)]
    for metric in STRONGEST_METRICS:
        rows = overall[overall.metric == metric]
        if set(reward_models) <= set(rows.model):
            break
    else:
        rows = overall[overall.metric == STRONGEST_METRICS[-1]]
    rows = rows.sort_values("model")
    missing = set(reward_models) - set(rows.model)
    if missing:
        raise ValueError(f"the accuracy table has no held-out accuracy for {sorted(missing)}")
    return str(rows.loc[rows.accuracy.idxmax(), "model"])

"""ProFuser's multi-reward-model vote, as pure functions over score tables.

Each reward model picks its best response per prompt; the response with the
most picks wins; a tie between the most-picked responses is broken by the
strongest reward model's score. Candidates are (model, sample) pairs; when one
reward model gives several candidates the same top score it picks the first in
(model, sample) order, so every result is deterministic.
"""

from __future__ import annotations

import pandas as pd

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


def rm_picks(scores: pd.DataFrame) -> pd.DataFrame:
    """Each reward model's best candidate per prompt.

    Columns: prompt_id, reward_model, model, sample.
    """
    ordered = scores.sort_values(["prompt_id", "reward_model", "model", "sample"], kind="stable")
    best = ordered.loc[ordered.groupby(["prompt_id", "reward_model"], sort=False).score.idxmax()]
    return best[["prompt_id", "reward_model", "model", "sample"]].reset_index(drop=True)


def majority_vote(scores: pd.DataFrame, reward_models: list[str], strongest: str) -> pd.DataFrame:
    """The voted response per prompt (:data:`VOTE_COLUMNS`).

    ``scores`` has columns prompt_id, model, sample, reward_model, score;
    only the rows of ``reward_models`` are used.
    """
    if strongest not in reward_models:
        raise ValueError(f"strongest reward model {strongest!r} is not one of {reward_models}")
    scores = scores[scores.reward_model.isin(reward_models)]
    check_complete(scores, reward_models)
    picks = rm_picks(scores)
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
    return winners[list(VOTE_COLUMNS)].reset_index(drop=True)


def strongest_from_table(table: pd.DataFrame, reward_models: list[str]) -> str:
    """The reward model with the highest overall held-out preference accuracy in the
    tiny world's accuracy table (ties: the first name in sorted order)."""
    rows = table[(table.metric == "preference_accuracy") & (table.skill == "all")]
    rows = rows[rows.model.isin(reward_models)].sort_values("model")
    missing = set(reward_models) - set(rows.model)
    if missing:
        raise ValueError(f"the accuracy table has no held-out accuracy for {sorted(missing)}")
    return str(rows.loc[rows.accuracy.idxmax(), "model"])

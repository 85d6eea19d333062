"""ProFuser's inference-mode advantage, file to file.

generations + reward scores -> voted response per prompt;
generations + references -> reference-based scores;
all of it -> how often each advantage method picks each source.
"""

from __future__ import annotations

import logging

import pandas as pd

from fusekit.checks import (
    DataError,
    check_finite,
    check_not_empty,
    check_prompt_ids,
    check_same_prompts,
    read_checked_table,
)
from fusekit.data import read_prompts
from fusekit.generation import read_generations
from fusekit.io import read_table, write_table
from fusekit.rewards.methods import method_agreement, method_choices, method_shares
from fusekit.rewards.reference import REFERENCE_COLUMNS, reference_scores
from fusekit.rewards.scoring import read_scores
from fusekit.rewards.vote import KEY, majority_vote, strongest_from_table

log = logging.getLogger("fusekit")


def read_reference_scores(path: str) -> pd.DataFrame:
    """A reference-score file (:data:`~fusekit.rewards.reference.REFERENCE_COLUMNS`),
    checked: rows, prompt ids, finite ``combined`` scores (DataError naming file and row)."""
    df = read_checked_table(path, REFERENCE_COLUMNS)
    check_not_empty(df, path, "reference scores")
    check_prompt_ids(df, path, unique=False)
    check_finite(df, "combined", path, context=("model", "sample"))
    return df


def read_votes(path: str, columns=("prompt_id", "model")) -> pd.DataFrame:
    """A votes file (:func:`vote`'s output), checked: ``columns``, one row per prompt id,
    ids present (DataError naming the file and row). It may hold no rows."""
    df = read_checked_table(path, columns)
    check_prompt_ids(df, path)
    return df


def check_scored_responses(scores: pd.DataFrame, gens: pd.DataFrame, where: str) -> None:
    """Every scored (prompt_id, model, sample) is a response of the generations
    (``scores`` may carry a ``file`` column naming its file)."""
    have = gens[KEY].drop_duplicates()
    merged = scores[KEY + (["file"] if "file" in scores.columns else [])].merge(
        have, on=KEY, how="left", indicator=True
    )
    absent = (merged["_merge"] == "left_only").to_numpy()
    if absent.any():
        i = int(absent.argmax())
        r = merged.iloc[i]
        file = r["file"] if "file" in merged.columns else "scores"
        raise DataError(
            f"{file}: row {i} (prompt_id {r.prompt_id!r}) scores response "
            f"{r.model}/{r['sample']}, which is in none of the generations {where} "
            f"({int(absent.sum())} such rows)"
        )


def vote(
    score_paths: list[str],
    generation_paths: list[str],
    reward_models: list[str],
    strongest: str | None,
    out: str,
    world_table: str | None = None,
) -> pd.DataFrame:
    """Write the voted response per prompt with its source, votes and every RM's pick.

    ``strongest`` None: take the reward model with the best held-out accuracy from
    ``world_table`` (the tiny world measures it).
    """
    if strongest is None:
        if world_table is None:
            raise ValueError(
                "no strongest reward model configured and no accuracy table to measure it"
            )
        strongest = strongest_from_table(read_table(world_table), reward_models)
        log.info("strongest reward model (measured): %s", strongest)
    # NaN / +inf scores, bad ids or text: stop, naming the file, row, model and RM
    scores = pd.concat([read_scores(p).assign(file=p) for p in score_paths], ignore_index=True)
    gens = pd.concat([read_generations(p, "lowest") for p in generation_paths], ignore_index=True)
    check_scored_responses(scores, gens, generation_paths)
    voted = majority_vote(scores, reward_models, strongest)
    dropped = voted.attrs.get("dropped_prompts", [])
    voted = voted.merge(gens[KEY + ["prompt", "response"]], on=KEY, how="left")
    voted["strongest_reward_model"] = strongest
    log.info(
        "voted %d prompts (%d without a usable candidate dropped); wins per source: %s; "
        "ties broken by %s: %d",
        len(voted),
        len(dropped),
        voted.model.value_counts().to_dict(),
        strongest,
        int(voted.tie_broken.sum()),
    )
    write_table(voted, out)
    return voted


def score_against_reference(
    generations_path: str, prompts_path: str, weights: dict, model: str, out: str
) -> pd.DataFrame:
    """BLEU / ROUGE-L / BERTScore of every response against the prompt's reference answer."""
    gens = read_generations(generations_path, "lowest")
    refs = read_prompts(prompts_path)[["prompt_id", "reference"]]
    check_same_prompts(gens.prompt_id, refs.prompt_id, generations_path, prompts_path)
    df = gens.merge(refs, on="prompt_id", how="left")
    scores = reference_scores(list(df.response), list(df.reference), weights, model)
    result = pd.concat([df[KEY].reset_index(drop=True), scores], axis=1)[list(REFERENCE_COLUMNS)]
    write_table(result, out)
    return result


def compare_methods(
    score_paths: list[str],
    reference_paths: list[str],
    votes_path: str,
    sources: list[str],
    shares_out: str,
    agreement_out: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How often each advantage method picks each source, and how often methods agree."""
    choices = method_choices(
        pd.concat([read_scores(p).assign(file=p) for p in score_paths], ignore_index=True),
        pd.concat([read_reference_scores(p) for p in reference_paths], ignore_index=True),
        read_votes(votes_path),
    )
    shares = method_shares(choices, sources)
    agreement = method_agreement(choices)
    write_table(shares, shares_out)
    write_table(agreement, agreement_out)
    log.info(
        "share of prompts won per method:\n%s",
        shares.pivot(index="method", columns="source", values="share").round(3).to_string(),
    )
    return shares, agreement

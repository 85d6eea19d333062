"""ProFuser's inference-mode advantage, file to file.

generations + reward scores -> voted response per prompt;
generations + references -> reference-based scores;
all of it -> how often each advantage method picks each source.
"""

from __future__ import annotations

import logging

import pandas as pd

from fusekit.data import PROMPT_COLUMNS
from fusekit.generation import read_generations
from fusekit.io import read_table, write_table
from fusekit.rewards.methods import method_agreement, method_choices, method_shares
from fusekit.rewards.reference import REFERENCE_COLUMNS, reference_scores
from fusekit.rewards.scoring import SCORE_COLUMNS
from fusekit.rewards.vote import KEY, check_finite, majority_vote, strongest_from_table

log = logging.getLogger("fusekit")


def _read_all(paths: list[str], columns) -> pd.DataFrame:
    return pd.concat([read_table(p, columns) for p in paths], ignore_index=True)


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
    tables = [read_table(p, SCORE_COLUMNS) for p in score_paths]
    for path, table in zip(score_paths, tables, strict=True):
        check_finite(table, file=path)  # NaN / +inf: stop, naming file, prompt, model and RM
    scores = pd.concat(tables, ignore_index=True)
    gens = pd.concat([read_generations(p, "lowest") for p in generation_paths], ignore_index=True)
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
    refs = read_table(prompts_path, PROMPT_COLUMNS)[["prompt_id", "reference"]]
    df = gens.merge(refs, on="prompt_id", how="left")
    if df.reference.isna().any():
        pid = df.prompt_id[df.reference.isna()].iloc[0]
        raise ValueError(f"{generations_path}: prompt_id {pid!r} is not in {prompts_path}")
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
        _read_all(score_paths, SCORE_COLUMNS),
        _read_all(reference_paths, REFERENCE_COLUMNS),
        read_table(votes_path, ["prompt_id", "model"]),
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

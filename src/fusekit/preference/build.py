"""File to file: a preference study's training data from generations and scores.

:func:`build_fusechat3_data` reads every source's sampled generations on one prompt set
and one reward model's scores of them, splits the prompts by domain (the prompt set's
``source`` column, mapped by ``studies.<study>.domains``), and writes FuseChat-3.0's SFT
rows and same-source DPO pairs (:mod:`fusekit.preference.fusechat3`), the counts of every
rule, and the composition beside the model card's (PREFERENCE_FUSION.md §4.2). The
mathematics domain judges correctness against the final answer of the prompt's reference
(:func:`fusekit.preference.answers.extract_answer`: the tiny world's references end with
"the answer is X"; a hub set needs gold answers in its reference).
"""

from __future__ import annotations

import logging

import pandas as pd

from fusekit.data import PROMPT_COLUMNS
from fusekit.io import read_table, write_table
from fusekit.preference.answers import extract_answer, math_correctness
from fusekit.preference.fusechat3 import (
    composition,
    fusechat3_instruction,
    fusechat3_math,
    read_reported_composition,
)
from fusekit.preference.tables import candidates

log = logging.getLogger("fusekit")
DOMAINS = ("instruction_following", "mathematics")


def build_fusechat3_data(
    prompts_path: str,
    generation_paths: list[str],
    score_paths: list[str],
    reward_model: str,
    domains: dict[str, str],
    seed: int,
    gap: tuple[float, float],
    parts: dict[str, int],
    reported_composition: str | None,
    sft_out: str,
    dpo_out: str,
    counts_out: str,
    composition_out: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build and write the SFT rows and DPO pairs of FuseChat-3.0 (module docstring).

    ``domains``: prompt ``source`` -> domain (:data:`DOMAINS`); other sources are
    instruction following. ``gap``: the pairs' allowed reward gap (inclusive);
    ``parts``: the SFT:DPO prompt split, e.g. ``{"sft": 4, "dpo": 6}``. Raises
    ValueError for an unknown domain, or bad generations/scores (naming the file).
    """
    bad = sorted(set(domains.values()) - set(DOMAINS))
    if bad:
        raise ValueError(f"studies.<study>.domains: unknown domains {bad}; known: {DOMAINS}")
    split = dict(parts)
    prompts = read_table(prompts_path, PROMPT_COLUMNS)
    cands = _candidates(generation_paths, score_paths, reward_model)
    domain_of = prompts.set_index("prompt_id").source.map(
        lambda s: domains.get(str(s), "instruction_following")
    )
    cands["domain"] = cands.prompt_id.map(domain_of)
    dataset = str(prompts_path).rsplit("/", 1)[-1].removesuffix(".parquet")
    parts = []
    inst = cands[cands.domain == "instruction_following"].drop(columns="domain")
    if len(inst):
        parts.append(fusechat3_instruction(inst, seed, dataset, gap, split))
    math = cands[cands.domain == "mathematics"].drop(columns="domain")
    if len(math):
        gold = prompts[prompts.prompt_id.isin(math.prompt_id)]
        gold = pd.DataFrame(
            {"prompt_id": gold.prompt_id, "answer": gold.reference.map(extract_answer)}
        )
        missing = gold[gold.answer.isna()]
        if len(missing):
            raise ValueError(
                f"{prompts_path}: no final answer in the reference of mathematics prompt "
                f"{missing.prompt_id.iloc[0]!r} ({len(missing)} in all)"
            )
        correct = math_correctness(math, gold)
        parts.append(fusechat3_math(math, correct, seed, dataset, gap, split))
    sft = pd.concat([p.sft for p in parts], ignore_index=True)
    pairs = pd.concat([p.pairs for p in parts], ignore_index=True)
    counts = pd.concat([p.counts for p in parts], ignore_index=True)
    reported = (
        read_reported_composition(reported_composition)
        if reported_composition
        else pd.DataFrame(columns=["category", "dataset", "total", "sft", "dpo"])
    )
    write_table(sft, sft_out)
    write_table(pairs, dpo_out)
    write_table(counts, counts_out)
    write_table(composition(counts, reported), composition_out)
    log.info(
        "FuseChat-3.0 data from %s: %d SFT rows, %d DPO pairs; counts:\n%s",
        prompts_path,
        len(sft),
        len(pairs),
        counts.to_string(index=False),
    )
    return sft, pairs


def _candidates(generation_paths: list[str], score_paths: list[str], reward_model: str):
    from fusekit.generation import read_generations

    gens = pd.concat([read_generations(p, "lowest") for p in generation_paths], ignore_index=True)
    scores = pd.concat([read_table(p) for p in score_paths], ignore_index=True)
    return candidates(gens, scores, reward_model, what=", ".join(score_paths))


def build_wrpo_sft_data(
    prompts_path: str,
    generation_paths: list[str],
    score_paths: list[str],
    reward_model: str,
    seed: int,
    sft_out: str,
    wrpo_prompts_out: str,
    share_out: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WRPO's first half (PREFERENCE_FUSION.md §3.3 steps 3-4): a seeded third of the
    prompts for Target-SFT on their best source response y_ws (``sft_out``); the other
    prompts, as a prompt set the Target-SFT model samples on (``wrpo_prompts_out``,
    the columns of :data:`fusekit.data.PROMPT_COLUMNS`); and the share of prompts whose
    y_ws each source wrote (WRPO Table 1, ``share_out``)."""
    from fusekit.preference.wrpo import best_source_responses, best_source_share, wrpo_data

    prompts = read_table(prompts_path, PROMPT_COLUMNS)
    cands = _candidates(generation_paths, score_paths, reward_model)
    data = wrpo_data(cands, None, seed)
    best = best_source_responses(cands)
    wrpo_ids = set(best.prompt_id) - set(data.target_sft.prompt_id)
    wrpo_prompts = prompts[prompts.prompt_id.isin(wrpo_ids)].reset_index(drop=True)
    write_table(data.target_sft, sft_out)
    write_table(wrpo_prompts, wrpo_prompts_out)
    write_table(best_source_share(best), share_out)
    log.info(
        "WRPO: %d Target-SFT rows, %d prompts for the target to sample; counts:\n%s",
        len(data.target_sft),
        len(wrpo_prompts),
        data.counts.to_string(index=False),
    )
    return data.target_sft, wrpo_prompts


def build_wrpo_quadruples(
    prompts_path: str,
    generation_paths: list[str],
    score_paths: list[str],
    target_generations: str,
    target_scores: str,
    reward_model: str,
    seed: int,
    quadruples_out: str,
    counts_out: str,
) -> pd.DataFrame:
    """WRPO's quadruples (§3.3 step 5): y_ws the best source response, y_wt / y_l the
    best / worst of the Target-SFT model's samples; every drop counted (``counts_out``).
    The split is the one :func:`build_wrpo_sft_data` made (same prompts, same seed)."""
    from fusekit.preference.wrpo import wrpo_data

    read_table(prompts_path, PROMPT_COLUMNS)
    source = _candidates(generation_paths, score_paths, reward_model)
    target = _candidates([target_generations], [target_scores], reward_model)
    data = wrpo_data(source, target, seed)
    write_table(data.quadruples, quadruples_out)
    write_table(data.counts, counts_out)
    log.info(
        "WRPO: %d quadruples; counts:\n%s", len(data.quadruples), data.counts.to_string(index=False)
    )
    return data.quadruples

"""File to file: a preference study's training data from generations and scores.

:func:`build_fusechat3_data` reads every source's sampled generations on one prompt set
and one reward model's scores of them, splits the prompts by domain (the prompt set's
``source`` column, mapped by ``studies.<study>.domains``), and writes FuseChat-3.0's SFT
rows and same-source DPO pairs (:mod:`fusekit.preference.fusechat3`), the counts of every
rule, and the composition beside the model card's (PREFERENCE_FUSION.md §4.2). The
mathematics domain judges correctness against the final answer of the prompt's reference
(:func:`fusekit.preference.answers.extract_answer`: the tiny world's references end with
"the answer is X"; a hub set needs gold answers in its reference). The coding domain runs
every response against its prompt's ``tests`` (the prompt set's optional column,
:data:`fusekit.data.OPTIONAL_PROMPT_COLUMNS`) in the sandbox
(:func:`fusekit.preference.coding.code_test_results`; a crash, a hang or a memory blow-up
is a counted ``tests_<status>``, never an exception) and keeps passing responses first,
with no reward-gap rule (none is stated for code); prompts where every response fails are
dropped and counted (``dropped_all_fail``). The single-source domain (the card's Chinese)
takes the one named source's response as its SFT row, with no reward model and no pair.

Domains by config (``studies.<study>``)::

    domains: {"tiny:arith": mathematics, "tiny:code": coding, "tiny:greek": single_source}
    single_source: {model: src_qwen2, domain_name: greek}   # domain_name default: chinese
    coding: {timeout: 5, memory_mb: 512}                     # sandbox limits per response
"""

from __future__ import annotations

import logging

import pandas as pd

from fusekit.checks import check_same_prompts
from fusekit.data import prompt_tests, read_prompts
from fusekit.io import write_table
from fusekit.preference.answers import extract_answer, math_correctness
from fusekit.preference.coding import check_limits, code_test_results
from fusekit.preference.fusechat3 import (
    composition,
    fusechat3_code,
    fusechat3_instruction,
    fusechat3_math,
    fusechat3_single_source,
    read_reported_composition,
)
from fusekit.preference.tables import KEY, candidates

log = logging.getLogger("fusekit")
DOMAINS = ("instruction_following", "mathematics", "coding", "single_source")
SINGLE_SOURCE_KEYS = ("model", "domain_name")


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
    single_source: dict | None = None,
    code_limits: dict | None = None,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build and write the SFT rows and DPO pairs of FuseChat-3.0 (module docstring).

    ``domains``: prompt ``source`` -> domain (:data:`DOMAINS`); other sources are
    instruction following. ``gap``: the instruction and mathematics pairs' allowed
    reward gap (inclusive; coding has none); ``parts``: the SFT:DPO prompt split, e.g.
    ``{"sft": 4, "dpo": 6}``. ``single_source``: ``{"model": <source>, "domain_name":
    <label, default "chinese">}``, needed when a source maps to ``single_source``.
    ``code_limits``: sandbox limits per response (:data:`fusekit.preference.coding.LIMIT_KEYS`:
    ``timeout`` wall seconds, ``memory_mb``, ...); ``workers``: sandbox processes at a
    time. Writes ``sft_out``/``dpo_out`` (Parquet, SFT_COLUMNS / PAIR_COLUMNS),
    ``counts_out`` (domain, dataset, what, n) and ``composition_out``.

    Raises ValueError for an unknown domain, a ``single_source`` domain without its
    model (or a model with no generations), a coding prompt without tests (naming it),
    bad sandbox limits, no generations at all, or bad generations/scores (naming the
    file).
    """
    bad = sorted(set(domains.values()) - set(DOMAINS))
    if bad:
        raise ValueError(f"studies.<study>.domains: unknown domains {bad}; known: {DOMAINS}")
    single = dict(single_source or {})
    bad = sorted(set(single) - set(SINGLE_SOURCE_KEYS))
    if bad:
        raise ValueError(
            f"studies.<study>.single_source: unknown keys {bad}; known: {SINGLE_SOURCE_KEYS}"
        )
    if "single_source" in domains.values() and not single.get("model"):
        raise ValueError(
            "studies.<study>.single_source.model: the single_source domain needs the source "
            "whose response is its SFT target (the card: Qwen-2.5-72B-Instruct)"
        )
    limits = check_limits(dict(code_limits or {}))
    split = dict(parts)
    prompts = read_prompts(prompts_path)
    cands = _candidates(generation_paths, score_paths, reward_model, prompts, prompts_path)
    domain_of = prompts.set_index("prompt_id").source.map(
        lambda s: domains.get(str(s), "instruction_following")
    )
    cands["domain"] = cands.prompt_id.map(domain_of)
    dataset = str(prompts_path).rsplit("/", 1)[-1].removesuffix(".parquet")
    by = {d: cands[cands.domain == d].drop(columns="domain") for d in DOMAINS}
    # every input check before the sandbox runs anything
    gold = _math_gold(prompts, by["mathematics"], prompts_path)
    tests = _code_tests(prompts, by["coding"], prompts_path)
    if len(by["single_source"]) and single["model"] not in set(cands.model):
        raise ValueError(
            f"studies.<study>.single_source.model: {single['model']!r} has no generations "
            f"(models: {sorted(set(cands.model))})"
        )
    parts = []
    if len(by["instruction_following"]):
        parts.append(fusechat3_instruction(by["instruction_following"], seed, dataset, gap, split))
    if len(by["mathematics"]):
        correct = math_correctness(by["mathematics"], gold)
        parts.append(fusechat3_math(by["mathematics"], correct, seed, dataset, gap, split))
    if len(by["coding"]):
        code = by["coding"]
        results = code_test_results(code[[*KEY, "response"]], tests, workers=workers, **limits)
        parts.append(fusechat3_code(code, results, seed, dataset, None, split))
    if len(by["single_source"]):
        name = single.get("domain_name") or "chinese"
        lang = by["single_source"]
        parts.append(fusechat3_single_source(lang, single["model"], dataset, name))
    if not parts:
        raise ValueError(f"no generations for the prompts of {prompts_path}")
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


def _math_gold(prompts: pd.DataFrame, math: pd.DataFrame, prompts_path: str) -> pd.DataFrame:
    """prompt_id, answer (the reference's final answer) of the mathematics prompts."""
    gold = prompts[prompts.prompt_id.isin(math.prompt_id)]
    gold = pd.DataFrame({"prompt_id": gold.prompt_id, "answer": gold.reference.map(extract_answer)})
    missing = gold[gold.answer.isna()]
    if len(missing):
        raise ValueError(
            f"{prompts_path}: no final answer in the reference of mathematics prompt "
            f"{missing.prompt_id.iloc[0]!r} ({len(missing)} in all)"
        )
    return gold


def _code_tests(prompts: pd.DataFrame, code: pd.DataFrame, prompts_path: str) -> pd.DataFrame:
    """prompt_id, tests of the coding prompts; a coding prompt without tests is an error."""
    tests = prompt_tests(prompts)
    missing = sorted(set(code.prompt_id) - set(tests.prompt_id), key=str)
    if missing:
        raise ValueError(
            f"{prompts_path}: coding prompt {missing[0]!r} has no tests ({len(missing)} in "
            "all); a coding prompt needs its Python tests in the prompt set's 'tests' column"
        )
    return tests[tests.prompt_id.isin(code.prompt_id)].reset_index(drop=True)


def _candidates(
    generation_paths: list[str],
    score_paths: list[str],
    reward_model: str,
    prompts: pd.DataFrame,
    prompts_path: str,
):
    """Each file checked where it enters (:func:`fusekit.generation.read_generations`,
    :func:`fusekit.rewards.scoring.read_scores`: DataError naming the file, row and
    column), every generation's prompt in the prompt set, then joined
    (:func:`fusekit.preference.tables.candidates`)."""
    from fusekit.generation import read_generations
    from fusekit.rewards.scoring import read_scores

    gens = []
    for p in generation_paths:
        g = read_generations(p, "lowest")
        check_same_prompts(g.prompt_id, prompts.prompt_id, p, prompts_path)
        gens.append(g)
    scores = [read_scores(p, ("prompt_id", "model", "sample", "score")) for p in score_paths]
    return candidates(
        pd.concat(gens, ignore_index=True),
        pd.concat(scores, ignore_index=True),
        reward_model,
        what=", ".join(score_paths),
    )


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

    prompts = read_prompts(prompts_path)
    cands = _candidates(generation_paths, score_paths, reward_model, prompts, prompts_path)
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

    prompts = read_prompts(prompts_path)
    source = _candidates(generation_paths, score_paths, reward_model, prompts, prompts_path)
    target = _candidates([target_generations], [target_scores], reward_model, prompts, prompts_path)
    data = wrpo_data(source, target, seed)
    write_table(data.quadruples, quadruples_out)
    write_table(data.counts, counts_out)
    log.info(
        "WRPO: %d quadruples; counts:\n%s", len(data.quadruples), data.counts.to_string(index=False)
    )
    return data.quadruples


def build_fuserl_data(
    prompts_path: str,
    generation_paths: list[str],
    score_paths: list[str],
    reward_model: str,
    seed: int,
    parts: dict[str, int],
    min_gap: float,
    fusesft_out: str,
    fusepo_out: str,
    counts_out: str,
    heldout_out: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FuseRL's data (PREFERENCE_FUSION.md §2.2-2.4): every source's best and worst
    response per prompt (:func:`fusekit.preference.fuserl.fuserl_groups`), the prompts
    split FuseSFT:FusePO by ``parts`` (e.g. ``{"sft": 4, "po": 6}``, a seeded
    permutation). ``fusesft_out``: the groups of the FuseSFT prompts (one line per
    (prompt, source) with a usable response, :data:`~fusekit.preference.fuserl.
    GROUP_COLUMNS`); ``fusepo_out``: those of the FusePO prompts where at least one source
    has a pair (best != worst and gap > ``min_gap``); prompts without one are dropped and
    counted (``po_dropped_no_pair``). Raises ValueError for bad generations or scores
    (naming the file) or a split without its two parts.

    Held-out prompts (FuseRL Figures 1 and 5 analyse trained models on prompts they never
    saw; the size of that set is not recovered [A]): an optional third part ``heldout``
    (e.g. ``{"sft": 4, "po": 6, "heldout": 2}``) puts its prompts in neither training
    file; ``heldout_out`` then gets their groups (every source's best and worst, with
    ``has_pair``, unfiltered: the ``group`` shape of :mod:`fusekit.train.sequences`).
    Without a ``heldout`` part ``heldout_out`` gets an empty table of the same columns.
    Counts ``heldout_prompts`` and ``heldout_pairs``. A ``heldout`` part without
    ``heldout_out`` is a ValueError."""
    from fusekit.preference.fuserl import fuserl_groups
    from fusekit.preference.splits import split_prompts
    from fusekit.preference.tables import Counts

    if set(parts) - {"heldout"} != {"sft", "po"}:
        raise ValueError(
            f"studies.<study>.fuserl.split: needs parts sft and po (and optionally heldout), "
            f"got {parts}"
        )
    if "heldout" in parts and heldout_out is None:
        raise ValueError("studies.<study>.fuserl.split has a heldout part: give heldout_out")
    prompts = read_prompts(prompts_path)
    cands = _candidates(generation_paths, score_paths, reward_model, prompts, prompts_path)
    dataset = str(prompts_path).rsplit("/", 1)[-1].removesuffix(".parquet")
    data = fuserl_groups(cands, min_gap=min_gap, dataset=dataset)
    groups = data.groups
    split = split_prompts(sorted(set(cands["prompt_id"]), key=str), parts, seed)
    which = dict(zip(split["prompt_id"], split["split"], strict=True))
    side = groups["prompt_id"].map(which)
    sft = groups[side == "sft"].reset_index(drop=True)
    po = groups[side == "po"]
    with_pair = set(po.loc[po["has_pair"], "prompt_id"])
    extra = Counts("fuserl", dataset)
    extra.add("fusesft_prompts", sft["prompt_id"].nunique())
    extra.add("po_dropped_no_pair", po["prompt_id"].nunique() - len(with_pair), warn=True)
    po = po[po["prompt_id"].isin(with_pair)].reset_index(drop=True)
    extra.add("fusepo_prompts", po["prompt_id"].nunique())
    extra.add("fusepo_pairs", int(po["has_pair"].sum()))
    heldout = groups[side == "heldout"].reset_index(drop=True)
    if "heldout" in parts:
        extra.add("heldout_prompts", heldout["prompt_id"].nunique())
        extra.add("heldout_pairs", int(heldout["has_pair"].sum()))
    counts = pd.concat([data.counts, extra.frame()], ignore_index=True)
    write_table(sft, fusesft_out)
    write_table(po, fusepo_out)
    if heldout_out is not None:
        write_table(heldout, heldout_out)
    write_table(counts, counts_out)
    log.info(
        "FuseRL data from %s: %d FuseSFT, %d FusePO, %d held-out prompts; counts:\n%s",
        prompts_path,
        sft["prompt_id"].nunique(),
        po["prompt_id"].nunique(),
        heldout["prompt_id"].nunique(),
        counts.to_string(index=False),
    )
    return sft, po

"""Preference-optimisation data: pure functions over generation and score tables.

FuseChat-3.0 (:mod:`.fusechat3`), WRPO (:mod:`.wrpo`) and FuseRL (:mod:`.fuserl`) all
start from a candidate table (:mod:`.tables`: generations joined with one reward model's
scores) and build SFT rows, preference pairs, quadruples or per-source groups; prompts
are split by a seeded permutation (:mod:`.splits`); per-domain correctness comes from
math answers (:mod:`.answers`) and code run in a limited subprocess (:mod:`.sandbox`,
:mod:`.coding`). Rules, sources and assumptions: ../shared/PREFERENCE_FUSION.md §2-4, 8,
restated in each module. No torch, no snakemake.
"""

from fusekit.preference.answers import answers_match, extract_answer, math_correctness
from fusekit.preference.coding import code_test_results, extract_code
from fusekit.preference.fusechat3 import (
    PreferenceData,
    composition,
    fusechat3_code,
    fusechat3_instruction,
    fusechat3_math,
    fusechat3_single_source,
    read_reported_composition,
    same_source_pairs,
)
from fusekit.preference.fuserl import FuseRLData, ScoreMatrix, fuserl_groups, score_matrix
from fusekit.preference.sandbox import SandboxResult, run_code, run_many
from fusekit.preference.splits import (
    FUSECHAT3_PARTS,
    FUSERL_PARTS,
    WRPO_PARTS,
    split_prompts,
    split_sizes,
)
from fusekit.preference.tables import candidates
from fusekit.preference.wrpo import (
    WrpoData,
    best_source_responses,
    best_source_share,
    wrpo_data,
    wrpo_split,
)

__all__ = [
    "FUSECHAT3_PARTS",
    "FUSERL_PARTS",
    "WRPO_PARTS",
    "FuseRLData",
    "PreferenceData",
    "SandboxResult",
    "ScoreMatrix",
    "WrpoData",
    "answers_match",
    "best_source_responses",
    "best_source_share",
    "candidates",
    "code_test_results",
    "composition",
    "extract_answer",
    "extract_code",
    "fusechat3_code",
    "fusechat3_instruction",
    "fusechat3_math",
    "fusechat3_single_source",
    "fuserl_groups",
    "math_correctness",
    "read_reported_composition",
    "run_code",
    "run_many",
    "same_source_pairs",
    "score_matrix",
    "split_prompts",
    "split_sizes",
    "wrpo_data",
    "wrpo_split",
]

# fusekit: heterogeneous LLM fusion papers as one DAG of file targets.
#   paper scale (default):  snakemake --profile profiles/slurm results/table1.csv
#   tiny world (CPU):       snakemake --profile profiles/tiny
import os

from snakemake.utils import min_version

min_version("9.0")

# One hash seed for every job (issue 19). Python salts str hashes per process unless
# PYTHONHASHSEED is set, so the iteration order of a set of strings changes from run to
# run; a library that lets it reach a result (bert-score orders BERTScore's batches by it)
# makes results differ in their last bits. fusekit's own code no longer depends on it
# (tests/test_determinism.py); this fixes it for whatever else does. Setting it here, in
# the Snakemake process, reaches every job: a local job's shell inherits this environment,
# and a Slurm job runs Snakemake again, which reads this file before the job's command.
# The seed of the Snakemake process itself is drawn before this line and stays as it was.
os.environ["PYTHONHASHSEED"] = "0"


envvars:
    "PYTHONHASHSEED",


if not config:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/world.smk"
include: "rules/generation.smk"
include: "rules/rewards.smk"
include: "rules/logits.smk"
include: "rules/training.smk"
include: "rules/preference.smk"
include: "rules/fuserl.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"
include: "rules/chat_evaluation.smk"
include: "rules/claims.smk"


# light bookkeeping runs where Snakemake runs, never as a cluster job
localrules:
    all,
    tabulate_skill_accuracy,
    vote_responses,
    tabulate_vote_accuracy,
    compare_advantage_methods,
    select_mince,
    tabulate_advantage_by_mode,
    build_openllm_tasks,
    tabulate_paper_table,
    verify_tables,
    publish_headline_table,
    plot_advantage_by_mode,
    plot_advantage_methods,
    plot_loss_curves,
    plot_table_vs_reported,
    build_chat_eval_sets,
    score_arena,
    tabulate_chat_eval,
    build_preference_data,
    build_wrpo_sft_data,
    build_wrpo_quadruples,
    build_fuserl_data,
    tabulate_preference_accuracy,
    tabulate_judge_bias_variance,
    tabulate_fuserl_ablation,
    plot_wrpo_figures,
    tabulate_claims_results,
    tabulate_claims,
    claims,


rule all:
    default_target: True
    input:
        get_final_targets(),


# the claims run (rules/claims.smk), not in the default target: every study's claims.md
rule claims:
    input:
        layout.claims_targets(config),

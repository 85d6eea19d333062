# The claims run (issue 17): every variant a study's claims name, trained and evaluated
# once per training seed (studies.<study>.claims_seeds) under <root>/<study>/seeds/<seed>/,
# then each claim's paired difference over seeds, its 95% interval and a verdict. A
# preference study also trains, per seed, the variants the named ones start from, and
# WRPO samples its own quadruples per seed (data built from the sources are shared).
# Not in the default target: snakemake --profile profiles/tiny claims
# builds every study's claims.md (the target is in the Snakefile).

FUSION_CLAIMS = [
    s
    for s in layout.claims_studies(config)
    if s in layout.inference_mode_studies(config)
]
PREFERENCE_CLAIMS = [
    s for s in layout.claims_studies(config) if s in PREFERENCE_STUDIES
]
WRPO_CLAIMS = [s for s in PREFERENCE_CLAIMS if s in layout.wrpo_studies(config)]


use rule train_fusion as train_fusion_seeded with:
    output:
        directory(f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}"),
    log:
        f"{LOGS}training/train_fusion_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/training/train_fusion_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(FUSION_CLAIMS),
        seed=r"\d+",
    params:
        seed=lambda w: job_seed("fusion", w.study, w.variant, "claims", w.seed),
        checkpoints=f"{R}{{study}}/seeds/{{seed}}/checkpoints/{{variant}}",


use rule train_preference as train_preference_seeded with:
    input:
        unpack(lambda w: layout.preference_inputs(config, w.study, w.variant, w.seed)),
    output:
        directory(f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}"),
    log:
        f"{LOGS}preference/train_preference_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/train_preference_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_CLAIMS),
        seed=r"\d+",
    params:
        init=lambda w: layout.seeded_model_dir(
            config, w.study, get_preference_variant(w)["init"], w.seed
        ),
        seed=lambda w: job_seed("preference", w.study, w.variant, "claims", w.seed),
        checkpoints=f"{R}{{study}}/seeds/{{seed}}/checkpoints/{{variant}}",


use rule score_reference_logps as score_reference_logps_seeded with:
    input:
        data=lambda w: layout.preference_data_file(config, w.study, w.data, w.seed),
        model=lambda w: layout.preference_init_inputs(config, w.study, w.init, w.seed),
    output:
        f"{R}{{study}}/seeds/{{seed}}/ref_logps/{{init}}/{{data}}.parquet",
    log:
        f"{LOGS}preference/score_reference_logps_seeded/{{study}}/{{seed}}/{{init}}/{{data}}.log",
    benchmark:
        f"{R}benchmarks/preference/score_reference_logps_seeded/{{study}}/{{seed}}/{{init}}/{{data}}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_CLAIMS),
        seed=r"\d+",
        data=r"(%s)(\.[A-Za-z0-9_-]+)?" % "|".join(layout.DATA_SHAPES),
    params:
        path=lambda w: layout.seeded_model_dir(config, w.study, w.init, w.seed),


# WRPO: each seed's Target-SFT samples the WRPO prompts and builds its own quadruples, so
# that its preference stage learns from its own samples, as in the default DAG


use rule generate_target_samples as generate_target_samples_seeded with:
    input:
        prompts=f"{R}{{study}}/data/wrpo_prompts.parquet",
        model=f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}",
    output:
        generations=f"{R}{{study}}/seeds/{{seed}}/target_samples/{{variant}}.parquet",
        throughput=f"{R}{{study}}/seeds/{{seed}}/target_samples/{{variant}}.throughput.json",
    log:
        f"{LOGS}preference/generate_target_samples_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/generate_target_samples_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(WRPO_CLAIMS),
        seed=r"\d+",
    params:
        seed=lambda w: job_seed("target_samples", w.study, w.variant, "claims", w.seed),


use rule score_target_samples as score_target_samples_seeded with:
    input:
        generations=f"{R}{{study}}/seeds/{{seed}}/target_samples/{{variant}}.parquet",
        rm=get_study_reward_model_dir,
    output:
        f"{R}{{study}}/seeds/{{seed}}/target_samples/{{variant}}.scores.parquet",
    log:
        f"{LOGS}preference/score_target_samples_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/score_target_samples_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(WRPO_CLAIMS),
        seed=r"\d+",


use rule build_wrpo_quadruples as build_wrpo_quadruples_seeded with:
    output:
        quadruples=f"{R}{{study}}/seeds/{{seed}}/data/quadruples{{subset}}.parquet",
        counts=f"{R}{{study}}/seeds/{{seed}}/data/quadruple_counts{{subset}}.csv",
    log:
        f"{LOGS}preference/build_wrpo_quadruples_seeded/{{study}}/{{seed}}{{subset}}.log",
    benchmark:
        f"{R}benchmarks/preference/build_wrpo_quadruples_seeded/{{study}}/{{seed}}{{subset}}.tsv"
    wildcard_constraints:
        study=one_of(WRPO_CLAIMS),
        seed=r"\d+",
        subset=r"(\.[A-Za-z0-9_-]+)?",
    params:
        data_dir=lambda w: f"{layout.seeded_dir(config, w.study, w.seed)}/data",


use rule evaluate_openllm_variant as evaluate_openllm_seeded with:
    input:
        model=f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}",
        tasks=get_openllm_tasks,
    output:
        f"{R}{{study}}/seeds/{{seed}}/evaluation/openllm/{{variant}}.json",
    log:
        f"{LOGS}evaluation/evaluate_openllm_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_openllm_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
        seed=r"\d+",


# the chat evaluation of a seeded variant: its answers, then both judges (as for the tables)


use rule generate_variant_responses as generate_variant_responses_seeded with:
    input:
        prompts=get_prompts_file,
        model=f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}",
    output:
        generations=f"{R}{{study}}/seeds/{{seed}}/generations/{{dataset}}/{{variant}}.parquet",
        throughput=f"{R}benchmarks/generation/generate_variant_responses_seeded/{{study}}/{{seed}}/{{dataset}}/{{variant}}.throughput.json",
    log:
        f"{LOGS}generation/generate_variant_responses_seeded/{{study}}/{{seed}}/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/generation/generate_variant_responses_seeded/{{study}}/{{seed}}/{{dataset}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
        seed=r"\d+",
    params:
        seed=lambda w: job_seed(
            "generate", w.dataset, w.study, w.variant, "claims", w.seed
        ),


use rule evaluate_alpaca as evaluate_alpaca_seeded with:
    input:
        reference=CHAT_FILES.get("reference", []),
        generations=lambda w: layout.seeded_chat_generations(
            config, w.study, "alpaca_eval", w.entry, w.seed
        ),
        lc_reference=layout.lc_reference(config) if CHAT_FILES else [],
        judge=layout.judge_inputs(config, "alpaca_eval") if CHAT_FILES else [],
    output:
        judgments=f"{R}{{study}}/seeds/{{seed}}/chat_eval/alpaca_eval/{{entry}}.parquet",
        metrics=f"{R}{{study}}/seeds/{{seed}}/chat_eval/alpaca_eval/{{entry}}.json",
    log:
        f"{LOGS}chat_eval/evaluate_alpaca_seeded/{{study}}/{{seed}}/{{entry}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_alpaca_seeded/{{study}}/{{seed}}/{{entry}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
        seed=r"\d+",
    params:
        # one cache folder per seed: two seeds of a variant are judged at the same time
        cache=lambda w: f"{config['evaluation']['cache_dir']}/{w.study}/seeds/{w.seed}",


use rule evaluate_arena as evaluate_arena_seeded with:
    input:
        questions=CHAT_FILES.get("questions", []),
        baseline=CHAT_FILES.get("baseline", []),
        generations=lambda w: layout.seeded_chat_generations(
            config, w.study, "arena_hard", w.entry, w.seed
        ),
        judge=layout.judge_inputs(config, "arena_hard") if CHAT_FILES else [],
    output:
        judgments=f"{R}{{study}}/seeds/{{seed}}/chat_eval/arena_hard/{{entry}}.parquet",
        answers=f"{R}{{study}}/seeds/{{seed}}/chat_eval/arena_hard/model_answer/{{entry}}.jsonl",
    log:
        f"{LOGS}chat_eval/evaluate_arena_seeded/{{study}}/{{seed}}/{{entry}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_arena_seeded/{{study}}/{{seed}}/{{entry}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
        seed=r"\d+",
    params:
        # one cache folder per seed: two seeds of a variant are judged at the same time
        cache=lambda w: f"{config['evaluation']['cache_dir']}/{w.study}/seeds/{w.seed}",


rule tabulate_claims_results:
    input:
        lambda w: [e["path"] for e in layout.claims_evaluations(config, w.study)],
    output:
        f"{R}{{study}}/claims_results.csv",
    log:
        f"{LOGS}report/tabulate_claims_results/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/tabulate_claims_results/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        evaluations=lambda w: as_json(layout.claims_evaluations(config, w.study)),
        world_seed=config["seed"],
        weight=config["evaluation"].get("arena_hard", {}).get("strong_weight", 3),
    shell:
        "fusekit-python scripts/tabulate_claims_results.py --study {wildcards.study} "
        "--evaluations {params.evaluations:q} --world-seed {params.world_seed} "
        "--arena-strong-weight {params.weight} --out {output} > {log} 2>&1"


rule tabulate_claims:
    input:
        f"{R}{{study}}/claims_results.csv",
    output:
        table=f"{R}{{study}}/claims.csv",
        markdown=f"{R}{{study}}/claims.md",
        figure=report(
            f"{R}{{study}}/figures/claims.png",
            caption="../report/captions/claims.rst",
            category="Claims",
        ),
    log:
        f"{LOGS}report/tabulate_claims/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/tabulate_claims/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        claims=lambda w: as_json(config["studies"][w.study]["claims"]),
        seed_independent=lambda w: as_json(layout.claims_names(config, w.study)[1]),
    shell:
        "fusekit-python scripts/tabulate_claims.py --results {input} --claims {params.claims:q} "
        "--study {wildcards.study} --seed-independent {params.seed_independent:q} "
        "--out {output.table} --markdown {output.markdown} --figure {output.figure} "
        "> {log} 2>&1"


# The budget check (fusekit.report.budget_check): every variant the claims compare on an
# OpenLLM metric trained once more at budget_check.factor times its epochs with the first
# claims seed's training seed, set against its claims seeds; each other variant of
# budget_check.variants with its default-DAG run's seed, set against the seeded
# variants' pooled spread


use rule train_fusion as train_fusion_budget with:
    output:
        directory(f"{R}{{study}}/budget_check/models/{{variant}}"),
    log:
        f"{LOGS}training/train_fusion_budget/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/training/train_fusion_budget/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(BUDGET_CHECKS),
    params:
        variant=lambda w: as_json(budget_variant(w)),
        seed=budget_seed,
        checkpoints=f"{R}{{study}}/budget_check/checkpoints/{{variant}}",


use rule evaluate_openllm_variant as evaluate_openllm_budget with:
    input:
        model=f"{R}{{study}}/budget_check/models/{{variant}}",
        tasks=get_openllm_tasks,
    output:
        f"{R}{{study}}/budget_check/evaluation/openllm/{{variant}}.json",
    log:
        f"{LOGS}evaluation/evaluate_openllm_budget/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_openllm_budget/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(BUDGET_CHECKS),


rule tabulate_budget_check:
    input:
        unpack(budget_check_inputs),
    output:
        table=f"{R}{{study}}/budget_check.csv",
        markdown=f"{R}{{study}}/budget_check.md",
        figure=report(
            f"{R}{{study}}/figures/budget_check.png",
            caption="../report/captions/budget_check.rst",
            category="Claims",
        ),
    log:
        f"{LOGS}report/tabulate_budget_check/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/tabulate_budget_check/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(BUDGET_CHECKS),
    conda:
        "../envs/evaluation.yaml"
    params:
        variants=lambda w: as_json(budget_spec(w)["variants"]),
        single=lambda w: as_json(budget_spec(w)["single"]),
        epochs=lambda w: as_json(budget_epochs(w)),
        factor=lambda w: budget_spec(w)["factor"],
        seed=lambda w: budget_spec(w)["seed"],
        seeds=lambda w: as_json(budget_spec(w)["seeds"]),
    shell:
        "fusekit-python scripts/tabulate_budget_check.py --study {wildcards.study} "
        "--results {input.results} --variants {params.variants:q} "
        "--evaluations {input.evaluations} --base-models {input.base_models} "
        "--budget-models {input.budget_models} --epochs {params.epochs:q} "
        "--single {params.single:q} --single-evaluations {input.single_evaluations} "
        "--factor {params.factor} --seed {params.seed} --seeds {params.seeds:q} "
        "--out {output.table} "
        "--markdown {output.markdown} --figure {output.figure} > {log} 2>&1"

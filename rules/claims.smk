# The claims run (issue 17): every variant a study's claims name, trained and evaluated
# once per training seed (studies.<study>.claims_seeds) under <root>/<study>/seeds/<seed>/,
# then each claim's paired difference over seeds, its 95% interval and a verdict. Not in
# the default target: snakemake --profile profiles/tiny results/tiny/profuser/claims.md


use rule train_fusion as train_fusion_seeded with:
    output:
        directory(f"{R}{{study}}/seeds/{{seed}}/models/{{variant}}"),
    log:
        f"{LOGS}training/train_fusion_seeded/{{study}}/{{seed}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/training/train_fusion_seeded/{{study}}/{{seed}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.claims_studies(config)),
        seed=r"\d+",
    params:
        seed=lambda w: job_seed("fusion", w.study, w.variant, "claims", w.seed),
        checkpoints=f"{R}{{study}}/seeds/{{seed}}/checkpoints/{{variant}}",


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
    shell:
        "fusekit-python scripts/tabulate_claims_results.py --study {wildcards.study} "
        "--evaluations {params.evaluations:q} --world-seed {params.world_seed} "
        "--out {output} > {log} 2>&1"


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

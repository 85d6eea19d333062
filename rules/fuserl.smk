# FuseRL's analyses of the trained models (fusekit.report.fuserl_analysis): every model's
# per-row log-probs on the held-out prompts (score_reference_logps, init = the model,
# data = heldout) -> preference accuracy (Figure 1) and bias / variance against a judge
# (Figure 5); chat_eval.csv -> the ablation per PO objective (Figure 4).


rule tabulate_preference_accuracy:
    input:
        heldout=f"{R}{{study}}/data/heldout.parquet",
        logps=lambda w: list(layout.fuserl_heldout_logps(config, w.study).values()),
    output:
        table=f"{R}{{study}}/analysis/preference_accuracy.csv",
        figure=report(
            f"{R}{{study}}/figures/preference_accuracy.png",
            caption="../report/captions/fuserl_preference_accuracy.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}fuserl/tabulate_preference_accuracy/{{study}}.log",
    benchmark:
        f"{R}benchmarks/fuserl/tabulate_preference_accuracy/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.fuserl_analysis_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        logps=lambda w: as_json(layout.fuserl_heldout_logps(config, w.study)),
    shell:
        "fusekit-python scripts/fuserl_analysis.py accuracy --heldout {input.heldout} "
        "--logps {params.logps:q} --title {wildcards.study:q} --out {output.table} "
        "--figure {output.figure} > {log} 2>&1"


rule tabulate_judge_bias_variance:
    input:
        heldout=f"{R}{{study}}/data/heldout.parquet",
        logps=lambda w: list(layout.fuserl_heldout_logps(config, w.study).values()),
        judge=lambda w: layout.fuserl_judge_scores(config, w.study),
    output:
        table=f"{R}{{study}}/analysis/bias_variance.csv",
        figure=report(
            f"{R}{{study}}/figures/bias_variance.png",
            caption="../report/captions/fuserl_bias_variance.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}fuserl/tabulate_judge_bias_variance/{{study}}.log",
    benchmark:
        f"{R}benchmarks/fuserl/tabulate_judge_bias_variance/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.fuserl_analysis_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        logps=lambda w: as_json(layout.fuserl_heldout_logps(config, w.study)),
        beta=lambda w: layout.fuserl_bias_settings(config, w.study)["beta"],
        tau=lambda w: layout.fuserl_bias_settings(config, w.study)["judge_temperature"],
        judge=lambda w: layout.fuserl_judge(config, w.study),
        scores=lambda w, input: (
            f"--judge-scores {' '.join(input.judge)}" if input.judge else ""
        ),
    shell:
        "fusekit-python scripts/fuserl_analysis.py bias --heldout {input.heldout} "
        "--logps {params.logps:q} --beta {params.beta} --judge-temperature {params.tau} "
        "--judge {params.judge:q} {params.scores} --title {wildcards.study:q} "
        "--out {output.table} --figure {output.figure} > {log} 2>&1"


rule tabulate_fuserl_ablation:
    input:
        chat=f"{R}{{study}}/chat_eval.csv",
    output:
        table=f"{R}{{study}}/analysis/ablation.csv",
        figure=report(
            f"{R}{{study}}/figures/ablation.png",
            caption="../report/captions/fuserl_ablation.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}fuserl/tabulate_fuserl_ablation/{{study}}.log",
    benchmark:
        f"{R}benchmarks/fuserl/tabulate_fuserl_ablation/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.fuserl_analysis_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        variants=lambda w: as_json(config["studies"][w.study]["variants"]),
    shell:
        "fusekit-python scripts/fuserl_analysis.py ablation --chat-eval {input.chat} "
        "--variants {params.variants:q} --title {wildcards.study:q} --out {output.table} "
        "--figure {output.figure} > {log} 2>&1"

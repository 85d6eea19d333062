# Paper tables beside the reported numbers, the verification note a reviewer reads,
# figures, and the headline table (results/table1.csv). Reports only read files, except
# the evaluations on benchmark suites other than OpenLLM (evaluation.suites), which run
# only for the rows of tables that name a suite.
from fusekit.train.heldout import study_heldout


rule evaluate_suite:
    input:
        model=get_model_dir,
        tasks=get_openllm_tasks,
    output:
        f"{R}evaluation/suites/{{suite}}/{{model}}.json",
    log:
        f"{LOGS}evaluation/evaluate_suite/{{suite}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_suite/{{suite}}/{{model}}.tsv"
    wildcard_constraints:
        suite=one_of(layout.benchmark_suites(config)),
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("evaluate", "gpu", "model"),
        cpus_per_gpu=get_resources("evaluate", "cpus_per_gpu", "model"),
        gpu_model=get_resources("evaluate", "gpu_model", "model"),
        mem_mb=get_resources("evaluate", "mem_mb", "model"),
        runtime=get_resources("evaluate", "runtime", "model"),
        slurm_partition=get_resources("evaluate", "slurm_partition", "model"),
    params:
        path=lambda w: config["models"][w.model]["path"],
        benchmarks=lambda w: as_json(layout.suite_benchmarks(config, w.suite)),
        settings=lambda w: as_json(layout.suite_job_settings(config, w.suite, w.model)),
        # lm-eval runs generated code only with HF_ALLOW_CODE_EVAL=1 (a suite's opt-in)
        env=lambda w: layout.suite_code_env(config, w.suite),
    shell:
        "{params.env}fusekit-python scripts/evaluate_openllm.py --model-path {params.path:q} "
        "--benchmarks {params.benchmarks:q} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule evaluate_suite_variant:
    input:
        model=f"{R}{{study}}/models/{{variant}}",
        tasks=get_openllm_tasks,
    output:
        f"{R}{{study}}/evaluation/suites/{{suite}}/{{variant}}.json",
    log:
        f"{LOGS}evaluation/evaluate_suite_variant/{{study}}/{{suite}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_suite_variant/{{study}}/{{suite}}/{{variant}}.tsv"
    wildcard_constraints:
        suite=one_of(layout.benchmark_suites(config)),
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("evaluate", "gpu", "study_target"),
        cpus_per_gpu=get_resources("evaluate", "cpus_per_gpu", "study_target"),
        gpu_model=get_resources("evaluate", "gpu_model", "study_target"),
        mem_mb=get_resources("evaluate", "mem_mb", "study_target"),
        runtime=get_resources("evaluate", "runtime", "study_target"),
        slurm_partition=get_resources("evaluate", "slurm_partition", "study_target"),
    params:
        benchmarks=lambda w: as_json(layout.suite_benchmarks(config, w.suite)),
        settings=lambda w: as_json(
            layout.suite_job_settings(
                config, w.suite, config["studies"][w.study]["target"]
            )
        ),
        env=lambda w: layout.suite_code_env(config, w.suite),
    shell:
        "{params.env}fusekit-python scripts/evaluate_openllm.py --model-path {input.model} "
        "--benchmarks {params.benchmarks:q} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule tabulate_paper_table:
    input:
        # the rows' OpenLLM / suite evaluations and, for chat columns, chat_eval.csv
        evaluations=lambda w: layout.table_inputs(config, w.study, w.table),
        reported=lambda w: get_table_spec(w)["reported"],
    output:
        report(
            f"{R}{{study}}/{{table}}.csv",
            caption="../report/captions/table.rst",
            category="{study}",
            subcategory="Tables",
        ),
    log:
        f"{LOGS}report/tabulate_paper_table/{{study}}/{{table}}.log",
    benchmark:
        f"{R}benchmarks/report/tabulate_paper_table/{{study}}/{{table}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        spec=lambda w: as_json(get_table_spec(w)),
        benchmarks=BENCHMARK_LIST,
        evaluations=lambda w: as_json(get_table_evaluations(w)),
        suites=as_json(layout.benchmark_suites(config)),
        suite_evaluations=lambda w: as_json(
            layout.table_suite_evaluations(config, w.study, w.table)
        ),
        chat_eval=lambda w: (
            f"--chat-eval {R}/{w.study}/chat_eval.csv"
            if layout.table_has_chat(config, w.study, w.table)
            else ""
        ),
    shell:
        "fusekit-python scripts/tabulate_paper_table.py --name {wildcards.table} --spec {params.spec:q} "
        "--benchmarks {params.benchmarks:q} --evaluations {params.evaluations:q} "
        "--suites {params.suites:q} --suite-evaluations {params.suite_evaluations:q} "
        "{params.chat_eval} --out {output} > {log} 2>&1"


rule verify_tables:
    input:
        tables=lambda w: list(get_study_tables(w).values()),
        # the study's chat_eval.csv and the reported CSV it is verified against, if any
        chat=lambda w: layout.chat_table_inputs(config, w.study),
    output:
        report(
            f"{R}{{study}}/verification.md",
            caption="../report/captions/verification.rst",
            category="{study}",
            subcategory="Verification",
        ),
    log:
        f"{LOGS}report/verify_tables/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/verify_tables/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        tables=lambda w: as_json(get_study_tables(w)),
        titles=lambda w: as_json(
            {
                t: s.get("title", "")
                for t, s in config["studies"][w.study].get("tables", {}).items()
            }
        ),
        benchmarks=lambda w: json.dumps(
            layout.study_benchmark_list(config, w.study), sort_keys=True
        ),
        suites=lambda w: as_json(layout.study_benchmarks(config, w.study)[1]),
        not_run=lambda w: as_json(layout.study_not_run(config, w.study)),
        tolerance=config["evaluation"]["tolerance"],
        scale=SCALE,
        chat_eval=lambda w, input: f"--chat-eval {input.chat[0]}" if input.chat else "",
        chat_spec=lambda w: as_json(config["studies"][w.study].get("chat_table")),
        # assumptions listed and the verdict of unreported cells (studies.<study>.verification)
        verification=lambda w: as_json(layout.verification_spec(config, w.study)),
    shell:
        "fusekit-python scripts/verify_tables.py --study {wildcards.study} --tables {params.tables:q} "
        "--titles {params.titles:q} --benchmarks {params.benchmarks:q} "
        "--suites {params.suites:q} --not-run {params.not_run:q} "
        "--tolerance {params.tolerance} --scale {params.scale} {params.chat_eval} "
        "--chat-spec {params.chat_spec:q} --verification {params.verification:q} "
        "--out {output} > {log} 2>&1"


rule publish_headline_table:
    input:
        f"{R}{{study}}/{{table}}.csv".format(
            study=config["evaluation"]["headline"][0],
            table=config["evaluation"]["headline"][1],
        ),
    output:
        wide=f"{R}{{table}}.csv",
        long=f"{R}{{table}}_long.csv",
    log:
        f"{LOGS}report/publish_headline_table/{{table}}.log",
    benchmark:
        f"{R}benchmarks/report/publish_headline_table/{{table}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/publish_table.py {input} --out {output.wide} "
        "--long-out {output.long} > {log} 2>&1"


rule plot_advantage_by_mode:
    input:
        f"{R}{{study}}/advantage_by_mode.csv",
    output:
        report(
            f"{R}{{study}}/figures/advantage_by_mode.png",
            caption="../report/captions/advantage_by_mode.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}report/plot_advantage_by_mode/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/plot_advantage_by_mode/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/plot_figure.py --kind advantage_by_mode {input} --out {output} "
        "> {log} 2>&1"


rule plot_advantage_methods:
    input:
        shares=f"{R}{{study}}/inference_mode/advantage_methods.csv",
        agreement=f"{R}{{study}}/inference_mode/method_agreement.csv",
    output:
        report(
            f"{R}{{study}}/figures/advantage_methods.png",
            caption="../report/captions/advantage_methods.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}report/plot_advantage_methods/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/plot_advantage_methods/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/plot_figure.py --kind advantage_methods {input.shares} "
        "{input.agreement} --out {output} > {log} 2>&1"


rule plot_loss_curves:
    input:
        get_variant_models,
    output:
        report(
            f"{R}{{study}}/figures/loss_curves.png",
            caption="../report/captions/loss_curves.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}report/plot_loss_curves/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/plot_loss_curves/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/plot_figure.py --kind loss_curves {input} --out {output} > {log} 2>&1"


rule tabulate_convergence:
    input:
        get_variant_models,
    output:
        f"{R}{{study}}/convergence.csv",
    log:
        f"{LOGS}report/tabulate_convergence/{{study}}.log",
    benchmark:
        f"{R}benchmarks/report/tabulate_convergence/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        # a study with a held-out set (studies.<study>.heldout): every variant's
        # heldout_log.csv is required, and its verdict is the held-out curve's
        heldout=lambda w: "--require-heldout" if study_heldout(config, w.study) else "",
    shell:
        "fusekit-python scripts/tabulate_convergence.py {input} {params.heldout} "
        "--out {output} > {log} 2>&1"


rule plot_table_vs_reported:
    input:
        f"{R}{{study}}/{{table}}.csv",
    output:
        report(
            f"{R}{{study}}/figures/{{table}}_vs_reported.png",
            caption="../report/captions/table_vs_reported.rst",
            category="{study}",
            subcategory="Figures",
        ),
    log:
        f"{LOGS}report/plot_table_vs_reported/{{study}}/{{table}}.log",
    benchmark:
        f"{R}benchmarks/report/plot_table_vs_reported/{{study}}/{{table}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        title=lambda w: config["studies"][w.study]["tables"][w.table].get("title", ""),
        # the study's own method: its variant named like the study (ProFuser)
        highlight=lambda w: next(
            (
                v
                for v in config["studies"][w.study].get("variants", {})
                if v.lower() == w.study.lower()
            ),
            "",
        ),
        tolerance=config["evaluation"]["tolerance"],
    shell:
        "fusekit-python scripts/plot_figure.py --kind table {input} --title {params.title:q} "
        "--highlight {params.highlight:q} --tolerance {params.tolerance} "
        "--out {output} > {log} 2>&1"

# OpenLLM benchmarks with lm-eval: every source and base target once (shared by studies),
# every trained variant per study. The tiny world evaluates on local lm-eval tasks that
# the workflow builds from its corpus.


rule build_openllm_tasks:
    input:
        f"{WORLD}/corpus.parquet",
    output:
        directory(f"{WORLD}/lm_eval_tasks"),
    log:
        f"{LOGS}evaluation/build_openllm_tasks.log",
    benchmark:
        f"{R}benchmarks/evaluation/build_openllm_tasks.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        seed=job_seed("openllm_tasks"),
    shell:
        "fusekit-python scripts/build_openllm_tasks.py --corpus {input} --seed {params.seed} "
        "--out {output} > {log} 2>&1"


rule evaluate_openllm:
    input:
        model=get_model_dir,
        tasks=get_openllm_tasks,
    output:
        f"{R}evaluation/openllm/{{model}}.json",
    log:
        f"{LOGS}evaluation/evaluate_openllm/{{model}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_openllm/{{model}}.tsv"
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
        benchmarks=as_json(OPENLLM.get("benchmarks", {})),
        settings=get_openllm_settings,
    shell:
        "fusekit-python scripts/evaluate_openllm.py --model-path {params.path:q} "
        "--benchmarks {params.benchmarks:q} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"


rule evaluate_openllm_variant:
    input:
        model=f"{R}{{study}}/models/{{variant}}",
        tasks=get_openllm_tasks,
    output:
        f"{R}{{study}}/evaluation/openllm/{{variant}}.json",
    log:
        f"{LOGS}evaluation/evaluate_openllm_variant/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/evaluation/evaluate_openllm_variant/{{study}}/{{variant}}.tsv"
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
        benchmarks=as_json(OPENLLM.get("benchmarks", {})),
        settings=get_openllm_settings,
    shell:
        "fusekit-python scripts/evaluate_openllm.py --model-path {input.model} "
        "--benchmarks {params.benchmarks:q} --settings {params.settings:q} "
        "--out {output} > {log} 2>&1"

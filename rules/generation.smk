# Source-model generations: one file per (prompt set, model), shared by every study.


rule generate_responses:
    input:
        prompts=get_prompts_file,
        model=get_model_dir,
    output:
        generations=f"{R}generations/{{dataset}}/{{model}}.parquet",
        throughput=f"{R}benchmarks/generation/generate_responses/{{dataset}}/{{model}}.throughput.json",
    log:
        f"{LOGS}generation/generate_responses/{{dataset}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/generation/generate_responses/{{dataset}}/{{model}}.tsv"
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("generate", "gpu", "model"),
        cpus_per_gpu=get_resources("generate", "cpus_per_gpu", "model"),
        gpu_model=get_resources("generate", "gpu_model", "model"),
        mem_mb=get_resources("generate", "mem_mb", "model"),
        runtime=get_resources("generate", "runtime", "model"),
        slurm_partition=get_resources("generate", "slurm_partition", "model"),
    params:
        spec=lambda w: as_json(layout.generation_spec(config, w.dataset, w.model)),
        path=lambda w: config["models"][w.model]["path"],
        backend=config["backends"]["generation"],
        seed=lambda w: job_seed("generate", w.dataset, w.model),
    shell:
        "fusekit-python scripts/generate_responses.py --prompts {input.prompts} --model {wildcards.model} "
        "--model-path {params.path:q} --spec {params.spec:q} --backend {params.backend} "
        "--seed {params.seed} --threads {threads} --throughput-out {output.throughput} "
        "--out {output.generations} > {log} 2>&1"

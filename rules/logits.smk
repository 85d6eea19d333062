# Training-mode advantage: teacher-forced top-k dumps, vocabulary maps, alignment
# onto the target's tokens, MinCE, and win shares by mode.


rule dump_reference_logits:
    input:
        prompts=f"{R}data/{{dataset}}.parquet",
        model=get_model_dir,
    output:
        f"{R}logits/{{dataset}}/{{model}}.parquet",
    log:
        f"{LOGS}logits/dump_reference_logits/{{dataset}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/logits/dump_reference_logits/{{dataset}}/{{model}}.tsv"
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("dump", "gpu", "model"),
        cpus_per_gpu=get_resources("dump", "cpus_per_gpu", "model"),
        gpu_model=get_resources("dump", "gpu_model", "model"),
        mem_mb=get_resources("dump", "mem_mb", "model"),
        runtime=get_resources("dump", "runtime", "model"),
        slurm_partition=get_resources("dump", "slurm_partition", "model"),
    params:
        # tracked: what can change a dump; untracked: the whole configs the script reads
        # (generation settings, batch size); see fusekit.workflow.untracked
        model_result=lambda w: as_json(
            layout.result_settings(config["models"][w.model], drop=("generation",))
        ),
        logits_result=as_json(layout.result_settings(config["logits"])),
        spec=layout.untracked(lambda w: as_json(config["models"][w.model])),
        path=lambda w: config["models"][w.model]["path"],
        logits=layout.untracked(lambda w: as_json(config["logits"])),
        backend=config["backends"]["logits"],
    shell:
        "fusekit-python scripts/dump_logits.py --mode reference --input {input.prompts} "
        "--model {wildcards.model} --model-path {params.path:q} --spec {params.spec:q} "
        "--logits {params.logits:q} --backend {params.backend} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule dump_voted_logits:
    input:
        votes=f"{R}{{study}}/inference_mode/votes.parquet",
        model=get_model_dir,
    output:
        f"{R}{{study}}/inference_mode/logits/{{model}}.parquet",
    log:
        f"{LOGS}logits/dump_voted_logits/{{study}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/logits/dump_voted_logits/{{study}}/{{model}}.tsv"
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("dump", "gpu", "model"),
        cpus_per_gpu=get_resources("dump", "cpus_per_gpu", "model"),
        gpu_model=get_resources("dump", "gpu_model", "model"),
        mem_mb=get_resources("dump", "mem_mb", "model"),
        runtime=get_resources("dump", "runtime", "model"),
        slurm_partition=get_resources("dump", "slurm_partition", "model"),
    params:
        # tracked: what can change a dump; untracked: the whole configs the script reads
        # (generation settings, batch size); see fusekit.workflow.untracked
        model_result=lambda w: as_json(
            layout.result_settings(config["models"][w.model], drop=("generation",))
        ),
        logits_result=as_json(layout.result_settings(config["logits"])),
        spec=layout.untracked(lambda w: as_json(config["models"][w.model])),
        path=lambda w: config["models"][w.model]["path"],
        logits=layout.untracked(lambda w: as_json(config["logits"])),
        backend=config["backends"]["logits"],
    shell:
        "fusekit-python scripts/dump_logits.py --mode voted --input {input.votes} "
        "--model {wildcards.model} --model-path {params.path:q} --spec {params.spec:q} "
        "--logits {params.logits:q} --backend {params.backend} --threads {threads} "
        "--out {output} > {log} 2>&1"


rule map_vocabulary:
    input:
        get_vocab_map_models,
    output:
        vocab_map=f"{R}vocab_maps/{{source}}__to__{{target}}.parquet",
        report=f"{R}vocab_maps/{{source}}__to__{{target}}.report.json",
    log:
        f"{LOGS}logits/map_vocabulary/{{source}}__to__{{target}}.log",
    benchmark:
        f"{R}benchmarks/logits/map_vocabulary/{{source}}__to__{{target}}.tsv"
    conda:
        "../envs/training.yaml"
    params:
        source=lambda w: config["models"][w.source]["path"],
        target=lambda w: config["models"][w.target]["path"],
        schemes=lambda w: as_json(
            [config["models"][m].get("token_scheme") for m in (w.source, w.target)]
        ),
    shell:
        "fusekit-python scripts/map_vocabulary.py --source {params.source:q} "
        "--target {params.target:q} --schemes {params.schemes:q} "
        "--out {output.vocab_map} --report {output.report} > {log} 2>&1"


rule align_logits:
    input:
        unpack(get_align_inputs),
    output:
        f"{R}{{study}}/{{mode}}/aligned/{{model}}.parquet",
    log:
        f"{LOGS}logits/align_logits/{{study}}/{{mode}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/logits/align_logits/{{study}}/{{mode}}/{{model}}.tsv"
    conda:
        "../envs/training.yaml"
    params:
        source=lambda w: config["models"][w.model]["path"],
        target=lambda w: config["models"][config["studies"][w.study]["target"]]["path"],
        schemes=lambda w: as_json(
            [
                config["models"][m].get("token_scheme")
                for m in (w.model, config["studies"][w.study]["target"])
            ]
        ),
        max_mismatch=config["logits"]["max_text_mismatch_share"],
    shell:
        "fusekit-python scripts/align_logits.py --dump {input.dump} --source {params.source:q} "
        "--target {params.target:q} --vocab-map {input.vocab_map} "
        "--schemes {params.schemes:q} --max-text-mismatch-share {params.max_mismatch} "
        "--out {output} > {log} 2>&1"


rule select_mince:
    input:
        get_mince_inputs,
    output:
        f"{R}{{study}}/training_mode/mince.parquet",
    log:
        f"{LOGS}logits/select_mince/{{study}}.log",
    benchmark:
        f"{R}benchmarks/logits/select_mince/{{study}}.tsv"
    conda:
        "../envs/training.yaml"
    shell:
        "fusekit-python scripts/select_mince.py --out {output} {input} > {log} 2>&1"


rule tabulate_advantage_by_mode:
    input:
        mince=f"{R}{{study}}/training_mode/mince.parquet",
        votes=f"{R}{{study}}/inference_mode/votes.parquet",
    output:
        f"{R}{{study}}/advantage_by_mode.csv",
    log:
        f"{LOGS}logits/tabulate_advantage_by_mode/{{study}}.log",
    benchmark:
        f"{R}benchmarks/logits/tabulate_advantage_by_mode/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        sources=lambda w: as_json(config["studies"][w.study]["sources"]),
    shell:
        "fusekit-python scripts/tabulate_advantage_by_mode.py --mince {input.mince} "
        "--votes {input.votes} --sources {params.sources:q} --out {output} > {log} 2>&1"

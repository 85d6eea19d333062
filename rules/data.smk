# Prompt sets with reference answers, shared by every study that trains on them. Inputs
# (fusekit.workflow.dataset_inputs): the tiny corpus, or a local_file set's own file.


rule prepare_prompts:
    input:
        get_dataset_input,
    output:
        f"{R}data/{{dataset}}.parquet",
    log:
        f"{LOGS}data/prepare_prompts/{{dataset}}.log",
    benchmark:
        f"{R}benchmarks/data/prepare_prompts/{{dataset}}.tsv"
    conda:
        "../envs/generation.yaml"
    params:
        # tracked: what can change the prompt set; untracked: the whole entry the script
        # reads (a set's generation settings); see fusekit.workflow.untracked
        dataset_result=lambda w: as_json(
            layout.result_settings(config["datasets"][w.dataset], drop=("generation",))
        ),
        spec=layout.untracked(lambda w: as_json(config["datasets"][w.dataset])),
        seed=lambda w: job_seed("dataset", w.dataset),
        corpus=lambda w, input: (
            f"--corpus {input[0]}"
            if config["datasets"][w.dataset]["kind"] == "tiny_corpus"
            else ""
        ),
    shell:
        "fusekit-python scripts/prepare_prompts.py --spec {params.spec:q} --seed {params.seed} "
        "{params.corpus} --out {output} > {log} 2>&1"

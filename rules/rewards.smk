# Reward-model scores, the multi-RM vote, reference-based scores and the
# comparison of advantage methods (ProFuser inference mode, Figure 3).


rule score_responses:
    input:
        generations=f"{R}generations/{{dataset}}/{{model}}.parquet",
        reward_model=get_reward_model_dir,
    output:
        f"{R}scores/{{dataset}}/{{reward_model}}/{{model}}.parquet",
    log:
        f"{LOGS}rewards/score_responses/{{dataset}}/{{reward_model}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/rewards/score_responses/{{dataset}}/{{reward_model}}/{{model}}.tsv"
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("score", "gpu", "reward_model"),
        cpus_per_gpu=get_resources("score", "cpus_per_gpu", "reward_model"),
        gpu_model=get_resources("score", "gpu_model", "reward_model"),
        mem_mb=get_resources("score", "mem_mb", "reward_model"),
        runtime=get_resources("score", "runtime", "reward_model"),
        slurm_partition=get_resources("score", "slurm_partition", "reward_model"),
    params:
        # tracked: what can change a score; untracked: the whole spec the script reads
        # (batch size); see fusekit.workflow.untracked
        rm_result=lambda w: as_json(
            layout.result_settings(config["reward_models"][w.reward_model])
        ),
        spec=layout.untracked(
            lambda w: as_json(config["reward_models"][w.reward_model])
        ),
        path=lambda w: config["reward_models"][w.reward_model]["path"],
        empty=config["rewards"]["empty_response"],
    shell:
        "fusekit-python scripts/score_responses.py --reward-model {wildcards.reward_model} "
        "--rm-path {params.path:q} --spec {params.spec:q} --generations {input.generations} "
        "--empty {params.empty} --threads {threads} --out {output} > {log} 2>&1"


rule vote_responses:
    input:
        unpack(get_vote_inputs),
    output:
        f"{R}{{study}}/inference_mode/votes.parquet",
    log:
        f"{LOGS}rewards/vote_responses/{{study}}.log",
    benchmark:
        f"{R}benchmarks/rewards/vote_responses/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        rms=lambda w: as_json(
            config["studies"][w.study]["inference_mode"]["reward_models"]
        ),
        strongest=get_strongest_arg,
        world=lambda w, input: f"--world-table {input.world}" if input.world else "",
    shell:
        "fusekit-python scripts/vote_responses.py --scores {input.scores} "
        "--generations {input.generations} --reward-models {params.rms:q} "
        "{params.strongest} {params.world} --out {output} > {log} 2>&1"


rule tabulate_vote_accuracy:
    input:
        votes=f"{R}{{study}}/inference_mode/votes.parquet",
        corpus=f"{WORLD}/corpus.parquet",
        world=f"{WORLD}/skill_accuracy.csv",
    output:
        f"{R}{{study}}/inference_mode/vote_accuracy.csv",
    log:
        f"{LOGS}rewards/tabulate_vote_accuracy/{{study}}.log",
    benchmark:
        f"{R}benchmarks/rewards/tabulate_vote_accuracy/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        sources=lambda w: " ".join(config["studies"][w.study]["sources"]),
    shell:
        "fusekit-python scripts/tabulate_vote_accuracy.py --votes {input.votes} "
        "--corpus {input.corpus} --world-table {input.world} --sources {params.sources} "
        "--study {wildcards.study} --out {output} > {log} 2>&1"


rule score_against_reference:
    input:
        generations=f"{R}generations/{{dataset}}/{{model}}.parquet",
        prompts=f"{R}data/{{dataset}}.parquet",
    output:
        f"{R}reference_scores/{{dataset}}/{{model}}.parquet",
    log:
        f"{LOGS}rewards/score_against_reference/{{dataset}}/{{model}}.log",
    benchmark:
        f"{R}benchmarks/rewards/score_against_reference/{{dataset}}/{{model}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        weights=as_json(config["reference_score"]["weights"]),
        encoder=config["reference_score"]["bertscore_model"],
    shell:
        "fusekit-python scripts/score_against_reference.py --generations {input.generations} "
        "--prompts {input.prompts} --weights {params.weights:q} "
        "--encoder {params.encoder:q} --out {output} > {log} 2>&1"


rule compare_advantage_methods:
    input:
        unpack(get_method_inputs),
    output:
        shares=f"{R}{{study}}/inference_mode/advantage_methods.csv",
        agreement=f"{R}{{study}}/inference_mode/method_agreement.csv",
    log:
        f"{LOGS}rewards/compare_advantage_methods/{{study}}.log",
    benchmark:
        f"{R}benchmarks/rewards/compare_advantage_methods/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        sources=lambda w: as_json(config["studies"][w.study]["sources"]),
    shell:
        "fusekit-python scripts/compare_advantage_methods.py --scores {input.scores} "
        "--reference {input.reference} --votes {input.votes} --sources {params.sources:q} "
        "--agreement-out {output.agreement} --out {output.shares} > {log} 2>&1"

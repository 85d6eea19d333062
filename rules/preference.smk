# Preference studies (FuseChat-3.0): sampled source responses scored by one reward model
# -> SFT rows and same-source DPO pairs -> SFT of the target -> reference log-probs of
# the SFT model, once -> length-normalised DPO. Variants are config: each names the model
# it starts from, its data and its objectives (fusekit.losses.registry).


rule build_preference_data:
    input:
        unpack(get_preference_data_inputs),
    output:
        sft="results/{study}/data/sft.parquet",
        dpo="results/{study}/data/dpo.parquet",
        counts="results/{study}/data/counts.csv",
        composition="results/{study}/{study}_data_composition.csv",
    log:
        "logs/preference/build_preference_data/{study}.log",
    benchmark:
        "results/benchmarks/preference/build_preference_data/{study}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_STUDIES),
    conda:
        "../envs/training.yaml"
    params:
        rm=lambda w: config["studies"][w.study]["reward_model"],
        domains=lambda w: as_json(config["studies"][w.study]["domains"]),
        seed=lambda w: config["studies"][w.study]["seed"],
        gap=lambda w: as_json(config["studies"][w.study]["dpo"]["rm_gap"]),
        split=lambda w: as_json(config["studies"][w.study]["sft_dpo_split"]),
        reported=lambda w: config["studies"][w.study].get("reported_composition") or "",
    shell:
        "python scripts/build_preference_data.py --prompts {input.prompts} "
        "--generations {input.generations} --scores {input.scores} --reward-model {params.rm} "
        "--domains {params.domains:q} --seed {params.seed} --gap {params.gap:q} "
        "--split {params.split:q} "
        "--reported {params.reported:q} --sft {output.sft} --dpo {output.dpo} "
        "--counts {output.counts} --composition {output.composition} > {log} 2>&1"


rule score_reference_logps:
    input:
        data="results/{study}/data/{data}.parquet",
        model=get_init_model,
    output:
        "results/{study}/ref_logps/{init}/{data}.parquet",
    log:
        "logs/preference/score_reference_logps/{study}/{init}/{data}.log",
    benchmark:
        "results/benchmarks/preference/score_reference_logps/{study}/{init}/{data}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_STUDIES),
        data="sft|dpo",
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("dump", "gpu", "study_target"),
        cpus_per_gpu=get_resources("dump", "cpus_per_gpu", "study_target"),
        gpu_model=get_resources("dump", "gpu_model", "study_target"),
        mem_mb=get_resources("dump", "mem_mb", "study_target"),
        runtime=get_resources("dump", "runtime", "study_target"),
        slurm_partition=get_resources("dump", "slurm_partition", "study_target"),
    params:
        path=lambda w: layout.preference_model_dir(config, w.study, w.init),
        spec=lambda w: as_json(config["models"][config["studies"][w.study]["target"]]),
        shape=lambda w: "sft" if w.data == "sft" else "pair",
        max_length=lambda w: config["studies"][w.study]["optimizer"]["max_length"],
    shell:
        "python scripts/score_reference_logps.py --data {input.data} --shape {params.shape} "
        "--model-path {params.path:q} --spec {params.spec:q} "
        "--max-length {params.max_length} --threads {threads} --out {output} > {log} 2>&1"


rule train_preference:
    input:
        unpack(get_preference_inputs),
    output:
        directory("results/{study}/models/{variant}"),
    log:
        "logs/preference/train_preference/{study}/{variant}.log",
    benchmark:
        "results/benchmarks/preference/train_preference/{study}/{variant}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_STUDIES),
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("train", "gpu", "study"),
        cpus_per_gpu=get_resources("train", "cpus_per_gpu", "study"),
        gpu_model=get_resources("train", "gpu_model", "study"),
        mem_mb=get_resources("train", "mem_mb", "study"),
        runtime=get_resources("train", "runtime", "study"),
        slurm_partition=get_resources("train", "slurm_partition", "study"),
    params:
        variant=lambda w: as_json(get_preference_variant(w)),
        init=lambda w: layout.preference_model_dir(
            config, w.study, get_preference_variant(w)["init"]
        ),
        reference=lambda w, input: (
            f"--reference {input.reference}" if "reference" in input.keys() else ""
        ),
        spec=lambda w: as_json(config["models"][config["studies"][w.study]["target"]]),
        optim=lambda w: as_json(get_preference_optim(w)),
        training_cfg=lambda w: as_json(config["studies"][w.study]["training"]),
        seed=lambda w: job_seed("preference", w.study, w.variant),
        checkpoints="results/{study}/checkpoints/{variant}",
        launcher=get_training_launcher,
    shell:
        "{params.launcher} scripts/train_preference.py --variant {params.variant:q} "
        "--data {input.data} {params.reference} --init {params.init:q} "
        "--spec {params.spec:q} --optim {params.optim:q} --training {params.training_cfg:q} "
        "--seed {params.seed} --checkpoint-dir {params.checkpoints} --threads {threads} "
        "--out {output} > {log} 2>&1"

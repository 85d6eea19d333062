# Preference studies (FuseChat-3.0): sampled source responses scored by one reward model
# -> SFT rows and same-source DPO pairs -> SFT of the target -> reference log-probs of
# the SFT model, once -> length-normalised DPO. Variants are config: each names the model
# it starts from, its data and its objectives (fusekit.losses.registry).


rule build_preference_data:
    input:
        unpack(get_preference_data_inputs),
    output:
        sft=f"{R}{{study}}/data/sft.parquet",
        dpo=f"{R}{{study}}/data/dpo.parquet",
        counts=f"{R}{{study}}/data/counts.csv",
        composition=f"{R}{{study}}/{{study}}_data_composition.csv",
    log:
        f"{LOGS}preference/build_preference_data/{{study}}.log",
    benchmark:
        f"{R}benchmarks/preference/build_preference_data/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.fusechat_studies(config)),
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    params:
        data_dir=lambda w: f"{R}{w.study}/data",
        rm=lambda w: config["studies"][w.study]["reward_model"],
        domains=lambda w: as_json(config["studies"][w.study]["domains"]),
        seed=lambda w: config["studies"][w.study]["seed"],
        gap=lambda w: as_json(config["studies"][w.study]["dpo"]["rm_gap"]),
        split=lambda w: as_json(config["studies"][w.study]["sft_dpo_split"]),
        reported=lambda w: config["studies"][w.study].get("reported_composition") or "",
        single_source=lambda w: as_json(
            config["studies"][w.study].get("single_source", {})
        ),
        coding=lambda w: as_json(config["studies"][w.study].get("coding", {})),
    shell:
        "fusekit-python scripts/build_preference_data.py --prompts {input.prompts} "
        "--generations {input.generations} --scores {input.scores} --reward-model {params.rm} "
        "--domains {params.domains:q} --seed {params.seed} --gap {params.gap:q} "
        "--split {params.split:q} --single-source {params.single_source:q} "
        "--coding {params.coding:q} --workers {threads} "
        "--reported {params.reported:q} --out {params.data_dir} "
        "--composition {output.composition} > {log} 2>&1"


# FuseRL: every source's (best, worst) response per prompt, split FuseSFT:FusePO and
# optionally a held-out part that no variant trains on (its analyses: rules/fuserl.smk).


rule build_fuserl_data:
    input:
        unpack(get_preference_data_inputs),
    output:
        fusesft=f"{R}{{study}}/data/fusesft.parquet",
        fusepo=f"{R}{{study}}/data/fusepo.parquet",
        # empty without a heldout part in studies.<study>.fuserl.split
        heldout=f"{R}{{study}}/data/heldout.parquet",
        counts=f"{R}{{study}}/data/fuserl_counts.csv",
    log:
        f"{LOGS}preference/build_fuserl_data/{{study}}.log",
    benchmark:
        f"{R}benchmarks/preference/build_fuserl_data/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.fuserl_studies(config)),
    conda:
        "../envs/training.yaml"
    params:
        data_dir=lambda w: f"{R}{w.study}/data",
        rm=lambda w: config["studies"][w.study]["reward_model"],
        seed=lambda w: config["studies"][w.study]["seed"],
        split=lambda w: as_json(config["studies"][w.study]["fuserl"]["split"]),
        min_gap=lambda w: config["studies"][w.study]["fuserl"]["min_gap"],
    shell:
        "fusekit-python scripts/build_fuserl_data.py --prompts {input.prompts} "
        "--generations {input.generations} --scores {input.scores} --reward-model {params.rm} "
        "--seed {params.seed} --split {params.split:q} --min-gap {params.min_gap} "
        "--out {params.data_dir} > {log} 2>&1"


rule score_reference_logps:
    input:
        data=f"{R}{{study}}/data/{{data}}.parquet",
        model=get_init_model,
    output:
        f"{R}{{study}}/ref_logps/{{init}}/{{data}}.parquet",
    log:
        f"{LOGS}preference/score_reference_logps/{{study}}/{{init}}/{{data}}.log",
    benchmark:
        f"{R}benchmarks/preference/score_reference_logps/{{study}}/{{init}}/{{data}}.tsv"
    wildcard_constraints:
        study=one_of(PREFERENCE_STUDIES),
        data=r"(%s)(\.[A-Za-z0-9_-]+)?" % "|".join(layout.DATA_SHAPES),
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
        # tracked: what can change the log-probs; untracked: the whole spec the script
        # reads (generation settings); see fusekit.workflow.untracked
        target_result=lambda w: as_json(
            layout.result_settings(
                config["models"][config["studies"][w.study]["target"]],
                drop=("generation",),
            )
        ),
        spec=layout.untracked(
            lambda w: as_json(config["models"][config["studies"][w.study]["target"]])
        ),
        shape=lambda w: layout.data_shape(w.data),
        max_length=lambda w: config["studies"][w.study]["optimizer"]["max_length"],
    shell:
        "fusekit-python scripts/score_reference_logps.py --data {input.data} --shape {params.shape} "
        "--model-path {params.path:q} --spec {params.spec:q} "
        "--max-length {params.max_length} --threads {threads} --out {output} > {log} 2>&1"


rule train_preference:
    input:
        unpack(get_preference_inputs),
    output:
        directory(f"{R}{{study}}/models/{{variant}}"),
    log:
        f"{LOGS}preference/train_preference/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/train_preference/{{study}}/{{variant}}.tsv"
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
        # tracked: what can change the model; untracked: the whole configs the script
        # reads (generation settings, save_every); see fusekit.workflow.untracked
        target_result=lambda w: as_json(
            layout.result_settings(
                config["models"][config["studies"][w.study]["target"]],
                drop=("generation",),
            )
        ),
        spec=layout.untracked(
            lambda w: as_json(config["models"][config["studies"][w.study]["target"]])
        ),
        optim=lambda w: as_json(get_preference_optim(w)),
        training_result=lambda w: as_json(
            layout.result_settings(config["studies"][w.study]["training"])
        ),
        training_cfg=layout.untracked(
            lambda w: as_json(config["studies"][w.study]["training"])
        ),
        seed=lambda w: job_seed("preference", w.study, w.variant),
        checkpoints=f"{R}{{study}}/checkpoints/{{variant}}",
        launcher=get_training_launcher,
    shell:
        "{params.launcher} scripts/train_preference.py --variant {params.variant:q} "
        "--data {input.data} {params.reference} --init {params.init:q} "
        "--spec {params.spec:q} --optim {params.optim:q} --training {params.training_cfg:q} "
        "--seed {params.seed} --checkpoint-dir {params.checkpoints} --threads {threads} "
        "--out {output} > {log} 2>&1"


# WRPO: Target-SFT on a third of the prompts, its own samples on the rest, quadruples.


rule build_wrpo_sft_data:
    input:
        unpack(get_preference_data_inputs),
    output:
        sft=f"{R}{{study}}/data/target_sft.parquet",
        prompts=f"{R}{{study}}/data/wrpo_prompts.parquet",
        share=f"{R}{{study}}/best_source_share.csv",
    log:
        f"{LOGS}preference/build_wrpo_sft_data/{{study}}.log",
    benchmark:
        f"{R}benchmarks/preference/build_wrpo_sft_data/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.wrpo_studies(config)),
    conda:
        "../envs/training.yaml"
    params:
        data_dir=lambda w: f"{R}{w.study}/data",
        rm=lambda w: config["studies"][w.study]["reward_model"],
        seed=lambda w: config["studies"][w.study]["seed"],
    shell:
        "fusekit-python scripts/build_wrpo_data.py sft --prompts {input.prompts} "
        "--generations {input.generations} --scores {input.scores} --reward-model {params.rm} "
        "--seed {params.seed} --out {params.data_dir} "
        "--share {output.share} > {log} 2>&1"


rule generate_target_samples:
    input:
        prompts=f"{R}{{study}}/data/wrpo_prompts.parquet",
        model=f"{R}{{study}}/models/{{variant}}",
    output:
        generations=f"{R}{{study}}/target_samples/{{variant}}.parquet",
        throughput=f"{R}{{study}}/target_samples/{{variant}}.throughput.json",
    log:
        f"{LOGS}preference/generate_target_samples/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/generate_target_samples/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.wrpo_studies(config)),
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    resources:
        gpu=get_resources("generate", "gpu", "study_target"),
        cpus_per_gpu=get_resources("generate", "cpus_per_gpu", "study_target"),
        gpu_model=get_resources("generate", "gpu_model", "study_target"),
        mem_mb=get_resources("generate", "mem_mb", "study_target"),
        runtime=get_resources("generate", "runtime", "study_target"),
        slurm_partition=get_resources("generate", "slurm_partition", "study_target"),
    params:
        spec=lambda w: as_json(get_target_sample_spec(w)),
        backend=config["backends"]["generation"],
        seed=lambda w: job_seed("target_samples", w.study, w.variant),
    shell:
        "fusekit-python scripts/generate_responses.py --prompts {input.prompts} --model {wildcards.variant} "
        "--model-path {input.model} --spec {params.spec:q} --backend {params.backend} "
        "--seed {params.seed} --threads {threads} --throughput-out {output.throughput} "
        "--out {output.generations} > {log} 2>&1"


rule score_target_samples:
    input:
        generations=f"{R}{{study}}/target_samples/{{variant}}.parquet",
        rm=get_study_reward_model_dir,
    output:
        f"{R}{{study}}/target_samples/{{variant}}.scores.parquet",
    log:
        f"{LOGS}preference/score_target_samples/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/preference/score_target_samples/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.wrpo_studies(config)),
    conda:
        "../envs/generation.yaml"
    threads: config["threads"]
    params:
        name=lambda w: config["studies"][w.study]["reward_model"],
        rm_result=lambda w: as_json(
            layout.result_settings(
                config["reward_models"][config["studies"][w.study]["reward_model"]]
            )
        ),
        spec=layout.untracked(
            lambda w: as_json(
                config["reward_models"][config["studies"][w.study]["reward_model"]]
            )
        ),
        path=lambda w: config["reward_models"][
            config["studies"][w.study]["reward_model"]
        ]["path"],
        empty=config["rewards"]["empty_response"],
    shell:
        "fusekit-python scripts/score_responses.py --reward-model {params.name} "
        "--rm-path {params.path:q} --spec {params.spec:q} --generations {input.generations} "
        "--empty {params.empty} --threads {threads} --out {output} > {log} 2>&1"


rule build_wrpo_quadruples:
    input:
        unpack(get_wrpo_quadruple_inputs),
    output:
        # {subset}: empty (every source) or ".<name>" of studies.<study>.source_subsets
        quadruples=f"{R}{{study}}/data/quadruples{{subset}}.parquet",
        counts=f"{R}{{study}}/data/quadruple_counts{{subset}}.csv",
    log:
        f"{LOGS}preference/build_wrpo_quadruples/{{study}}{{subset}}.log",
    benchmark:
        f"{R}benchmarks/preference/build_wrpo_quadruples/{{study}}{{subset}}.tsv"
    wildcard_constraints:
        study=one_of(layout.wrpo_studies(config)),
        subset=r"(\.[A-Za-z0-9_-]+)?",
    conda:
        "../envs/training.yaml"
    params:
        data_dir=lambda w: f"{R}{w.study}/data",
        rm=lambda w: config["studies"][w.study]["reward_model"],
        seed=lambda w: config["studies"][w.study]["seed"],
    shell:
        "fusekit-python scripts/build_wrpo_data.py quadruples --prompts {input.prompts} "
        "--generations {input.generations} --scores {input.scores} --reward-model {params.rm} "
        "--seed {params.seed} --target-generations {input.target_generations} "
        "--target-scores {input.target_scores} --suffix={wildcards.subset} "
        "--out {params.data_dir} > {log} 2>&1"


rule plot_wrpo_figures:
    input:
        models=lambda w: expand(
            f"{R}{{study}}/models/{{variant}}",
            study=w.study,
            variant=layout.alpha_sweep(config, w.study),
        ),
        chat=lambda w: (
            f"{R}{w.study}/chat_eval.csv" if layout.chat_eval_enabled(config) else []
        ),
    output:
        dynamics=report(
            f"{R}{{study}}/figures/reward_dynamics.png",
            caption="../report/captions/reward_dynamics.rst",
            category="{study}",
            subcategory="Figures",
        ),
        sweep=report(
            f"{R}{{study}}/figures/alpha_sweep.png",
            caption="../report/captions/alpha_sweep.rst",
            category="{study}",
            subcategory="Figures",
        ),
        csv=f"{R}{{study}}/alpha_sweep.csv",
    log:
        f"{LOGS}preference/plot_wrpo_figures/{{study}}.log",
    benchmark:
        f"{R}benchmarks/preference/plot_wrpo_figures/{{study}}.tsv"
    wildcard_constraints:
        study=one_of(layout.wrpo_studies(config)),
    conda:
        "../envs/evaluation.yaml"
    params:
        alphas=lambda w: as_json(layout.alpha_sweep(config, w.study)),
        chat=lambda w, input: f"--chat-eval {input.chat}" if input.chat else "",
    shell:
        "fusekit-python scripts/plot_wrpo_figures.py --study {wildcards.study} "
        "--alphas {params.alphas:q} --models {input.models} {params.chat} "
        "--dynamics-out {output.dynamics} --sweep-out {output.sweep} --out {output.csv} "
        "> {log} 2>&1"

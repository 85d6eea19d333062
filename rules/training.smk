# Fusion training: every configured variant becomes results/{study}/models/{variant}/.
# Resumable checkpoints live in results/{study}/checkpoints/{variant}/, outside the
# declared output (Snakemake deletes declared outputs before a job runs). A study with
# studies.<study>.heldout also gets each variant's held-out loss (heldout_log.csv).
from fusekit.train.heldout import heldout_inputs, study_heldout


rule train_fusion:
    input:
        unpack(get_fusion_inputs),
        heldout=lambda w: heldout_inputs(config, w.study),
    output:
        directory(f"{R}{{study}}/models/{{variant}}"),
    log:
        f"{LOGS}training/train_fusion/{{study}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/training/train_fusion/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=one_of(layout.inference_mode_studies(config)),
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
        variant=lambda w: as_json(get_variant(w)),
        inference=get_dump_map("inference_mode"),
        training=get_dump_map("training_mode"),
        target=lambda w: config["models"][config["studies"][w.study]["target"]]["path"],
        # what can change the model (tracked), and the whole configs the script reads
        # (untracked: generation settings, save_every); see fusekit.workflow.untracked
        target_result=lambda w: as_json(
            layout.result_settings(
                config["models"][config["studies"][w.study]["target"]],
                drop=("generation",),
            )
        ),
        target_spec=layout.untracked(
            lambda w: as_json(config["models"][config["studies"][w.study]["target"]])
        ),
        optim=lambda w: as_json(config["studies"][w.study]["optimizer"]),
        training_result=lambda w: as_json(
            layout.result_settings(config["studies"][w.study]["training"])
        ),
        training_cfg=layout.untracked(
            lambda w: as_json(config["studies"][w.study]["training"])
        ),
        votes=lambda w, input: input.votes or "none",
        # the held-out loss (heldout_log.csv in the output): tracked settings, and the
        # arguments (derived from the input, so untracked: the setting is tracked above)
        heldout_result=lambda w: as_json(study_heldout(config, w.study)),
        heldout=lambda w, input: (
            f"--heldout {input.heldout} "
            f"--heldout-max-examples {study_heldout(config, w.study)['max_examples']}"
            if input.heldout
            else ""
        ),
        seed=lambda w: job_seed("fusion", w.study, w.variant),
        checkpoints=f"{R}{{study}}/checkpoints/{{variant}}",
        launcher=get_training_launcher,
    shell:
        "{params.launcher} scripts/train_fusion.py --variant {params.variant:q} "
        "--prompts {input.prompts} --votes {params.votes} "
        "--inference-dumps {params.inference:q} --training-dumps {params.training:q} "
        "--target-path {params.target:q} --target-spec {params.target_spec:q} "
        "--optim {params.optim:q} --training {params.training_cfg:q} --seed {params.seed} "
        "--checkpoint-dir {params.checkpoints} {params.heldout} --threads {threads} "
        "--out {output} > {log} 2>&1"

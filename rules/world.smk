# The tiny world: corpus, tokenizers, source/target models and reward models,
# all built from the seed, and the table that shows the world is heterogeneous.


wildcard_constraints:
    name=r"[A-Za-z0-9_.-]+",


rule build_corpus:
    output:
        f"{WORLD}/corpus.parquet",
    log:
        f"{LOGS}world/build_corpus.log",
    benchmark:
        f"{R}benchmarks/world/build_corpus.tsv"
    conda:
        "../envs/training.yaml"
    params:
        spec=as_json(TINY.get("corpus")),
        seed=job_seed("corpus"),
    shell:
        "fusekit-python scripts/build_corpus.py --spec {params.spec:q} --seed {params.seed} "
        "--out {output} > {log} 2>&1"


rule train_tokenizer:
    input:
        f"{WORLD}/corpus.parquet",
    output:
        directory(f"{WORLD}/tokenizers/{{name}}"),
    log:
        f"{LOGS}world/train_tokenizer/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/train_tokenizer/{{name}}.tsv"
    conda:
        "../envs/training.yaml"
    params:
        spec=lambda w: as_json(TINY["tokenizers"][w.name]),
        seed=lambda w: job_seed("tokenizer", w.name),
        filler=TINY.get("corpus", {}).get("filler_lines"),
    shell:
        "fusekit-python scripts/train_tokenizer.py --corpus {input} --spec {params.spec:q} "
        "--seed {params.seed} --filler-lines {params.filler} --out {output} > {log} 2>&1"


rule train_world_model:
    input:
        corpus=f"{WORLD}/corpus.parquet",
        tokenizer=get_tokenizer_dir("models"),
    output:
        directory(f"{WORLD}/models/{{name}}"),
    log:
        f"{LOGS}world/train_world_model/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/train_world_model/{{name}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    params:
        spec=lambda w: as_json(TINY["models"][w.name]),
        seed=lambda w: job_seed("model", w.name),
    shell:
        "fusekit-python scripts/train_tiny_model.py --kind causal_lm --name {wildcards.name} "
        "--corpus {input.corpus} --tokenizer {input.tokenizer} --spec {params.spec:q} "
        "--seed {params.seed} --out {output} > {log} 2>&1"


rule generate_world_outputs:
    input:
        model=f"{WORLD}/models/{{name}}",
        corpus=f"{WORLD}/corpus.parquet",
    output:
        f"{WORLD}/outputs/{{name}}.parquet",
    log:
        f"{LOGS}world/generate_world_outputs/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/generate_world_outputs/{{name}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    params:
        split=TINY.get("reward_pairs", {}).get("split", "pretrain"),
        per_skill=TINY.get("reward_pairs", {}).get("prompts_per_skill"),
        max_new_tokens=TINY.get("evaluation", {}).get("max_new_tokens"),
        batch_size=TINY.get("evaluation", {}).get("batch_size"),
    shell:
        "fusekit-python scripts/generate_world_outputs.py --model-dir {input.model} "
        "--name {wildcards.name} --corpus {input.corpus} --split {params.split} "
        "--per-skill {params.per_skill} --max-new-tokens {params.max_new_tokens} "
        "--batch-size {params.batch_size} --out {output} > {log} 2>&1"


rule train_world_reward_model:
    input:
        corpus=f"{WORLD}/corpus.parquet",
        tokenizer=get_tokenizer_dir("reward_models"),
        outputs=lambda w: layout.reward_training_outputs(config, w.name),
    output:
        directory(f"{WORLD}/reward_models/{{name}}"),
    log:
        f"{LOGS}world/train_world_reward_model/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/train_world_reward_model/{{name}}.tsv"
    conda:
        "../envs/training.yaml"
    threads: config["threads"]
    params:
        spec=lambda w: as_json(TINY["reward_models"][w.name]),
        seed=lambda w: job_seed("reward_model", w.name),
    shell:
        "fusekit-python scripts/train_tiny_model.py --kind reward_model --name {wildcards.name} "
        "--corpus {input.corpus} --tokenizer {input.tokenizer} --spec {params.spec:q} "
        "--seed {params.seed} --outputs {input.outputs} --out {output} > {log} 2>&1"


rule evaluate_world_model:
    input:
        model=f"{WORLD}/models/{{name}}",
        corpus=f"{WORLD}/corpus.parquet",
    output:
        table=f"{WORLD}/eval/models/{{name}}.csv",
        responses=f"{WORLD}/eval/responses/{{name}}.parquet",
    log:
        f"{LOGS}world/evaluate_world_model/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/evaluate_world_model/{{name}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        meta=get_world_meta("models"),
        max_new_tokens=TINY.get("evaluation", {}).get("max_new_tokens"),
        batch_size=TINY.get("evaluation", {}).get("batch_size"),
    shell:
        "fusekit-python scripts/evaluate_tiny_model.py --kind causal_lm --model-dir {input.model} "
        "--corpus {input.corpus} --meta {params.meta:q} --max-new-tokens {params.max_new_tokens} "
        "--batch-size {params.batch_size} --responses-out {output.responses} "
        "--out {output.table} > {log} 2>&1"


rule evaluate_world_reward_model:
    input:
        model=f"{WORLD}/reward_models/{{name}}",
        corpus=f"{WORLD}/corpus.parquet",
        responses=lambda w: layout.world_eval_responses(config),
    output:
        f"{WORLD}/eval/reward_models/{{name}}.csv",
    log:
        f"{LOGS}world/evaluate_world_reward_model/{{name}}.log",
    benchmark:
        f"{R}benchmarks/world/evaluate_world_reward_model/{{name}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        meta=get_world_meta("reward_models"),
        seed=job_seed("heldout_pairs"),
        batch_size=TINY.get("evaluation", {}).get("batch_size"),
    shell:
        "fusekit-python scripts/evaluate_tiny_model.py --kind reward_model --model-dir {input.model} "
        "--corpus {input.corpus} --meta {params.meta:q} --seed {params.seed} "
        "--batch-size {params.batch_size} --outputs {input.responses} --out {output} "
        "> {log} 2>&1"


rule tabulate_skill_accuracy:
    input:
        get_world_tables,
    output:
        f"{WORLD}/skill_accuracy.csv",
    log:
        f"{LOGS}world/tabulate_skill_accuracy.log",
    benchmark:
        f"{R}benchmarks/world/tabulate_skill_accuracy.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/tabulate_skill_accuracy.py --out {output} {input} > {log} 2>&1"

# AlpacaEval-2 and Arena-Hard v0.1 for every model a study names (sources, target,
# trained variants). Models answer the sets with the ordinary generation step; a judge
# (an OpenAI-compatible API, or in the tiny world a reward model) compares answers.
# Judge calls are cached under evaluation.cache_dir, outside every output: a source's or
# target's in it, a study variant's in <cache_dir>/<study> (variants of two studies can
# share a name, and two jobs must never write one cache file at once).
rule build_chat_eval_sets:
    input:
        f"{WORLD}/corpus.parquet" if SCALE == "tiny" else [],
    output:
        **CHAT_FILES,
    log:
        f"{LOGS}chat_eval/build_chat_eval_sets.log",
    benchmark:
        f"{R}benchmarks/chat_eval/build_chat_eval_sets.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        sources=(
            f"--corpus {WORLD}/corpus.parquet"
            + (
                f" --per-skill {TINY['evaluation']['chat_items_per_skill']}"
                if TINY.get("evaluation", {}).get("chat_items_per_skill")
                else ""
            )
            if SCALE == "tiny"
            else "--alpaca-reference {reference} --arena-questions {questions} "
            "--arena-baseline {baseline_answers}".format(
                reference=config["evaluation"]["alpaca_eval"].get("reference", "hub"),
                questions=config["evaluation"]["arena_hard"].get("questions"),
                baseline_answers=config["evaluation"]["arena_hard"].get(
                    "baseline_answers"
                ),
            )
        ),
        out=lambda w, output: os.path.dirname(os.path.dirname(output.reference)),
    shell:
        "fusekit-python scripts/build_chat_eval_sets.py {params.sources} --out {params.out} > {log} 2>&1"


rule build_lc_reference:
    input:
        reference=CHAT_FILES.get("reference", []),
        gamed=[CHAT_FILES[k] for k in ("concise", "verbose") if k in CHAT_FILES],
        judge=layout.judge_inputs(config, "alpaca_eval") if CHAT_FILES else [],
    output:
        f"{layout.chat_root(config)}/alpaca_eval/df_gamed.csv",
    log:
        f"{LOGS}chat_eval/build_lc_reference.log",
    benchmark:
        f"{R}benchmarks/chat_eval/build_lc_reference.tsv"
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        judge=lambda w: get_judge("alpaca_eval"),
        annotator=config["evaluation"].get("alpaca_eval", {}).get("annotator"),
        cache=config["evaluation"]["cache_dir"],
    shell:
        "fusekit-python scripts/build_lc_reference.py --reference {input.reference} "
        "--gamed {input.gamed} --judge {params.judge:q} --cache-dir {params.cache} "
        "--annotator {params.annotator} --threads {threads} --out {output} > {log} 2>&1"


rule generate_variant_responses:
    input:
        prompts=get_prompts_file,
        model=f"{R}{{study}}/models/{{variant}}",
    output:
        generations=f"{R}{{study}}/generations/{{dataset}}/{{variant}}.parquet",
        throughput=f"{R}benchmarks/generation/generate_variant_responses/{{study}}/{{dataset}}/{{variant}}.throughput.json",
    log:
        f"{LOGS}generation/generate_variant_responses/{{study}}/{{dataset}}/{{variant}}.log",
    benchmark:
        f"{R}benchmarks/generation/generate_variant_responses/{{study}}/{{dataset}}/{{variant}}.tsv"
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
        # a variant generates with its study target's settings and chat template
        spec=lambda w: as_json(config["models"][config["studies"][w.study]["target"]]),
        backend=config["backends"]["generation"],
        seed=lambda w: job_seed("generate", w.dataset, w.study, w.variant),
    shell:
        "fusekit-python scripts/generate_responses.py --prompts {input.prompts} "
        "--model {wildcards.variant} --model-path {input.model} --spec {params.spec:q} "
        "--backend {params.backend} --seed {params.seed} --threads {threads} "
        "--throughput-out {output.throughput} --out {output.generations} > {log} 2>&1"


rule evaluate_alpaca:
    input:
        reference=CHAT_FILES.get("reference", []),
        generations=get_chat_generations("alpaca_eval"),
        lc_reference=layout.lc_reference(config) if CHAT_FILES else [],
        judge=layout.judge_inputs(config, "alpaca_eval") if CHAT_FILES else [],
    output:
        judgments=f"{R}{{study}}/chat_eval/alpaca_eval/{{entry}}.parquet",
        metrics=f"{R}{{study}}/chat_eval/alpaca_eval/{{entry}}.json",
    log:
        f"{LOGS}chat_eval/evaluate_alpaca/{{study}}/{{entry}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_alpaca/{{study}}/{{entry}}.tsv"
    wildcard_constraints:
        # a study's trained variants; sources and targets: the *_model rules below
        entry=one_of(
            {v for st in config["studies"].values() for v in st.get("variants", {})}
        ),
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        judge=lambda w: get_judge("alpaca_eval"),
        annotator=config["evaluation"].get("alpaca_eval", {}).get("annotator"),
        lc=lambda w, input: (
            f"--lc-reference {input.lc_reference}" if input.lc_reference else ""
        ),
        rounds=config["evaluation"]["alpaca_eval"].get("lc_bootstrap_rounds", 50),
        seed=config["evaluation"]["alpaca_eval"].get("seed", 0),
        cache=lambda w: f"{config['evaluation']['cache_dir']}/{w.study}",
    shell:
        "fusekit-python scripts/judge_alpaca.py --reference {input.reference} "
        "--generations {input.generations} --judge {params.judge:q} "
        "--cache-dir {params.cache} {params.lc} --annotator {params.annotator} "
        "--lc-bootstrap-rounds {params.rounds} --seed {params.seed} "
        "--threads {threads} --metrics-out {output.metrics} --out {output.judgments} "
        "> {log} 2>&1"


rule evaluate_arena:
    input:
        questions=CHAT_FILES.get("questions", []),
        baseline=CHAT_FILES.get("baseline", []),
        generations=get_chat_generations("arena_hard"),
        judge=layout.judge_inputs(config, "arena_hard") if CHAT_FILES else [],
    output:
        judgments=f"{R}{{study}}/chat_eval/arena_hard/{{entry}}.parquet",
        answers=f"{R}{{study}}/chat_eval/arena_hard/model_answer/{{entry}}.jsonl",
    log:
        f"{LOGS}chat_eval/evaluate_arena/{{study}}/{{entry}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_arena/{{study}}/{{entry}}.tsv"
    wildcard_constraints:
        # a study's trained variants; sources and targets: the *_model rules below
        entry=one_of(
            {v for st in config["studies"].values() for v in st.get("variants", {})}
        ),
    conda:
        "../envs/evaluation.yaml"
    threads: config["threads"]
    params:
        judge=lambda w: get_judge("arena_hard"),
        attempts=config["evaluation"].get("arena_hard", {}).get("attempts"),
        settings=as_json(config["evaluation"].get("arena_hard", {}).get("settings")),
        cache=lambda w: f"{config['evaluation']['cache_dir']}/{w.study}",
        match=(
            "--match-prompts"
            if config["evaluation"].get("arena_hard", {}).get("answers_from")
            else ""
        ),
    shell:
        "fusekit-python scripts/judge_arena.py --questions {input.questions} {params.match} "
        "--baseline-answers {input.baseline} --generations {input.generations} "
        "--judge {params.judge:q} --cache-dir {params.cache} --attempts {params.attempts} "
        "--settings {params.settings:q} --threads {threads} --answers-out {output.answers} "
        "--out {output.judgments} > {log} 2>&1"


# a source's or target's answers are judged once, whichever studies name it
use rule evaluate_alpaca as evaluate_alpaca_model with:
    input:
        reference=CHAT_FILES.get("reference", []),
        generations=f"{R}generations/alpaca_eval/{{model}}.parquet",
        lc_reference=layout.lc_reference(config) if CHAT_FILES else [],
        judge=layout.judge_inputs(config, "alpaca_eval") if CHAT_FILES else [],
    output:
        judgments=f"{layout.chat_root(config)}/alpaca_eval/judged/{{model}}.parquet",
        metrics=f"{layout.chat_root(config)}/alpaca_eval/judged/{{model}}.json",
    log:
        f"{LOGS}chat_eval/evaluate_alpaca_model/{{model}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_alpaca_model/{{model}}.tsv"
    params:
        cache=config["evaluation"]["cache_dir"],


use rule evaluate_arena as evaluate_arena_model with:
    input:
        questions=CHAT_FILES.get("questions", []),
        baseline=CHAT_FILES.get("baseline", []),
        generations=lambda w: layout.generations_file(
            config, layout.chat_answer_set(config, "arena_hard"), w.model
        ),
        judge=layout.judge_inputs(config, "arena_hard") if CHAT_FILES else [],
    output:
        judgments=f"{layout.chat_root(config)}/arena_hard/judged/{{model}}.parquet",
        answers=f"{layout.chat_root(config)}/arena_hard/judged/model_answer/{{model}}.jsonl",
    log:
        f"{LOGS}chat_eval/evaluate_arena_model/{{model}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/evaluate_arena_model/{{model}}.tsv"
    params:
        cache=config["evaluation"]["cache_dir"],


rule score_arena:
    input:
        lambda w: layout.chat_results(config, w.study, "arena_hard", "parquet"),
    output:
        scores=f"{R}{{study}}/chat_eval/arena_hard_scores.json",
        battles=f"{R}{{study}}/chat_eval/arena_hard_battles.parquet",
    log:
        f"{LOGS}chat_eval/score_arena/{{study}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/score_arena/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    params:
        rounds=config["evaluation"].get("arena_hard", {}).get("bootstrap_rounds"),
        seed=config["evaluation"].get("arena_hard", {}).get("seed"),
        weight=config["evaluation"].get("arena_hard", {}).get("strong_weight"),
    shell:
        "fusekit-python scripts/score_arena.py --judgments {input} --rounds {params.rounds} "
        "--seed {params.seed} --weight {params.weight} --battles-out {output.battles} "
        "--out {output.scores} > {log} 2>&1"


rule tabulate_chat_eval:
    input:
        alpaca=lambda w: layout.chat_results(config, w.study, "alpaca_eval", "json"),
        arena=f"{R}{{study}}/chat_eval/arena_hard_scores.json",
    output:
        report(
            f"{R}{{study}}/chat_eval.csv",
            caption="../report/captions/chat_eval.rst",
            category="{study}",
            subcategory="Tables",
        ),
    log:
        f"{LOGS}chat_eval/tabulate_chat_eval/{{study}}.log",
    benchmark:
        f"{R}benchmarks/chat_eval/tabulate_chat_eval/{{study}}.tsv"
    conda:
        "../envs/evaluation.yaml"
    shell:
        "fusekit-python scripts/tabulate_chat_eval.py --alpaca {input.alpaca} --arena {input.arena} "
        "--out {output} > {log} 2>&1"

"""GPU hours each stage takes at paper scale, estimated from the config.

FLOPs rules of thumb: a forward pass costs ``2 N`` FLOPs per token (N parameters),
training ``6 N`` (forward and backward). GPU seconds = FLOPs / (peak x MFU), with a
model FLOPs utilisation (MFU) per kind of work (:data:`MFU`): decoding is memory-bound
(about 10 % of peak with vLLM's continuous batching), teacher-forced passes (prefill,
reward scoring, logit dumps, lm-eval log-likelihoods) and training are compute-bound.

What the config gives: model sizes (``params_b``), prompt-set sizes
(``datasets.<name>.n_examples``), samples per prompt, ``max_new_tokens``, ``max_length``,
the studies' sources, reward models, variants and epochs. What it does not (mean prompt
and response lengths, sizes of data sets without ``n_examples``, the lm-eval sets, the
epochs of FuseChat-3.0's SFT and DPO) is in :class:`Assumptions`, each one stated.
Jobs shared between studies (one source's generations on one prompt set, one reward
model's scores of them) are counted once, as the workflow runs them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# dense bf16 peak TFLOP/s per GPU
PEAK_TFLOPS = {"a100": 312.0, "h100": 989.0, "h200": 989.0, "l40s": 362.0}

MFU = {
    "decode": 0.10,  # autoregressive generation of response tokens
    "prefill": 0.40,  # prompt tokens of generation
    "forward": 0.30,  # teacher-forced passes: reward scoring, top-k dumps, lm-eval
    "train": 0.35,  # DeepSpeed ZeRO-3, bf16, gradient checkpointing
}

STAGES = ("generate", "score", "dump", "train", "evaluate")


@dataclass(frozen=True)
class Benchmark:
    docs: int  # evaluated documents
    requests: float  # forward passes per document (answer choices)
    context: int  # tokens per forward pass, few-shot examples included
    generated: int = 0  # tokens generated per document (generative tasks)


@dataclass(frozen=True)
class Assumptions:
    """Everything the estimate needs that the config does not say."""

    # mean tokens of a prompt (system prompt and chat template included) per dataset kind
    prompt_tokens: dict = field(
        default_factory=lambda: {"orca_best": 250, "hub_prompts": 180, "default": 200}
    )
    # mean tokens of a response when max_new_tokens does not cut it first
    response_tokens: dict = field(
        default_factory=lambda: {"orca_best": 350, "hub_prompts": 450, "default": 400}
    )
    # prompt-set sizes where the config gives no n_examples
    dataset_size: dict = field(
        default_factory=lambda: {"princeton-nlp/llama3-ultrafeedback-armorm": 60000}
    )
    default_dataset_size: int = 60000
    # FuseChat-3.0 / FuseRL target training (the config gives the split, not the epochs)
    sft_epochs: float = 3.0
    preference_epochs: float = 1.0
    # lm-eval, Open LLM Leaderboard v1 tasks (test/validation sizes; context incl. shots)
    openllm: dict = field(
        default_factory=lambda: {
            "mmlu": Benchmark(docs=14042, requests=4, context=650),
            "hellaswag": Benchmark(docs=10042, requests=4, context=1100),
            "arc_challenge": Benchmark(docs=1172, requests=4, context=1800),
            "winogrande": Benchmark(docs=1267, requests=2, context=250),
            "truthfulqa_mc2": Benchmark(docs=817, requests=7, context=350),
            "gsm8k_cot": Benchmark(docs=1319, requests=1, context=1000, generated=200),
        }
    )


def _params(config: dict, name: str, reward: bool = False) -> float:
    spec = config["reward_models" if reward else "models"][name]
    return float(spec.get("params_b", 7)) * 1e9


def _n_prompts(config: dict, dataset: str, a: Assumptions) -> int:
    spec = config["datasets"][dataset]
    if spec.get("n_examples"):
        return int(spec["n_examples"])
    return int(a.dataset_size.get(spec.get("path", dataset), a.default_dataset_size))


def _lengths(config: dict, dataset: str, a: Assumptions) -> tuple[int, int]:
    kind = config["datasets"][dataset].get("kind", "default")
    prompt = a.prompt_tokens.get(kind, a.prompt_tokens["default"])
    response = a.response_tokens.get(kind, a.response_tokens["default"])
    return prompt, response


def _gen(config: dict, model: str) -> dict:
    return config["models"][model].get("generation", {})


def _response(config: dict, dataset: str, model: str, a: Assumptions) -> int:
    """Mean generated tokens: the assumed mean, cut at the model's max_new_tokens."""
    _, response = _lengths(config, dataset, a)
    return min(response, int(_gen(config, model).get("max_new_tokens", response)))


def _seq(config: dict, study: str, tokens: float) -> float:
    cap = config["studies"][study].get("optimizer", {}).get("max_length")
    return min(tokens, cap) if cap else tokens


def estimate(config: dict, gpu: str = "a100", a: Assumptions | None = None) -> list[dict]:
    """One row per (stage, study, what): jobs, tokens, FLOPs and GPU hours on ``gpu``."""
    a = a or Assumptions()
    peak = PEAK_TFLOPS[gpu] * 1e12
    rows: list[dict] = []
    seen: set = set()

    def add(stage, study, what, jobs, work):  # work: [(flops, mfu kind)]
        flops = sum(f for f, _ in work)
        seconds = sum(f / (peak * MFU[k]) for f, k in work)
        rows.append(
            {
                "stage": stage,
                "study": study,
                "what": what,
                "jobs": jobs,
                "pflops": flops / 1e15,
                "gpu_hours": seconds / 3600,
            }
        )

    for study, spec in config["studies"].items():
        dataset = spec["train_dataset"]
        n = _n_prompts(config, dataset, a)
        prompt, reference = _lengths(config, dataset, a)
        sources = spec["sources"]
        rms = spec.get("inference_mode", {}).get("reward_models") or (
            [spec["reward_model"]] if spec.get("reward_model") else []
        )
        # generation: every source, every prompt, samples_per_prompt each (shared)
        for m in sources:
            if ("gen", dataset, m) in seen:
                continue
            seen.add(("gen", dataset, m))
            k = int(_gen(config, m).get("samples_per_prompt", 1))
            resp = _response(config, dataset, m, a)
            N = _params(config, m)
            add(
                "generate",
                study,
                f"{m} on {dataset} ({n} x {k} samples)",
                1,
                [(2 * N * n * prompt, "prefill"), (2 * N * n * k * resp, "decode")],
            )
        # reward scoring: every reward model on every response (shared)
        for rm in rms:
            for m in sources:
                if ("score", dataset, rm, m) in seen:
                    continue
                seen.add(("score", dataset, rm, m))
                k = int(_gen(config, m).get("samples_per_prompt", 1))
                tokens = n * k * (prompt + _response(config, dataset, m, a))
                N = _params(config, rm, reward=True)
                add("score", study, f"{rm} on {m}", 1, [(2 * N * tokens, "forward")])
        variants = spec.get("variants")
        target = spec["target"]
        Nt = _params(config, target)
        if variants and "inference_mode" in spec:  # ProFuser: dumps, then fusion variants
            for m in sources:
                N = _params(config, m)
                # training mode: teacher-forced on (prompt, reference)
                work = [(2 * N * n * (prompt + reference), "forward")]
                add("dump", study, f"{m} reference logits", 1, work)
            # inference mode: each prompt's voted output, dumped by the source that wrote it
            # (each source assumed to win an equal share of the prompts)
            share = n / len(sources)
            voted = []
            for m in sources:
                tokens = share * (prompt + _response(config, dataset, m, a))
                voted.append((2 * _params(config, m) * tokens, "forward"))
            add("dump", study, "voted-output logits (all sources)", len(sources), voted)
            mean_resp = sum(_response(config, dataset, m, a) for m in sources) / len(sources)
            from fusekit.train.fusion import resolve_variant

            for name in variants:
                v = resolve_variant(spec, name)
                seqs = 0.0  # sequences seen in training, over all stages and epochs
                for st in v["stages"]:
                    seqs += st.get("epochs", 1) * len(st["modes"]) * n
                tokens = seqs * _seq(config, study, prompt + (reference + mean_resp) / 2)
                add("train", study, f"variant {name}", 1, [(6 * Nt * tokens, "train")])
            evaluated = [*dict.fromkeys([*sources, target]), *(f"variant {v}" for v in variants)]
        elif spec.get("sft_dpo_split") or spec.get("fusepo_losses"):
            resp = sum(_response(config, dataset, m, a) for m in sources) / len(sources)
            seq = _seq(config, study, prompt + resp)
            split = spec.get("sft_dpo_split", [1, 1])
            sft_share = split[0] / sum(split) if spec.get("sft_dpo_split") else 1.0
            pref_share = 1 - sft_share if spec.get("sft_dpo_split") else 1.0
            sft = 6 * Nt * a.sft_epochs * sft_share * n * seq
            # a preference pair: policy forward+backward on chosen and rejected (2 x 6N),
            # the frozen reference model forward on both (2 x 2N)
            pref = 16 * Nt * a.preference_epochs * pref_share * n * seq
            if spec.get("sft_dpo_split"):
                add("train", study, "SFT then DPO on the target", 1, [(sft + pref, "train")])
            else:
                add("train", study, "FuseSFT", 1, [(sft, "train")])
                for loss in spec["fusepo_losses"]:
                    add("train", study, f"FusePO ({loss})", 1, [(pref, "train")])
            evaluated = []
        else:
            evaluated = []
        # lm-eval (OpenLLM v1 tasks) of every model the study's tables compare
        if evaluated and config.get("evaluation", {}).get("openllm"):
            for model in evaluated:
                N = _params(config, model) if model in config["models"] else Nt
                work = []
                for b in a.openllm.values():
                    work.append((2 * N * b.docs * b.requests * b.context, "forward"))
                    work.append((2 * N * b.docs * b.generated, "decode"))
                add("evaluate", study, f"OpenLLM tasks of {model}", 1, work)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """GPU hours per (study, stage), in STAGES order, and a total per study."""
    out: list[dict] = []
    for study in dict.fromkeys(r["study"] for r in rows):
        total = 0.0
        for stage in STAGES:
            hours = sum(r["gpu_hours"] for r in rows if r["study"] == study and r["stage"] == stage)
            jobs = sum(r["jobs"] for r in rows if r["study"] == study and r["stage"] == stage)
            if jobs:
                out.append({"study": study, "stage": stage, "jobs": jobs, "gpu_hours": hours})
                total += hours
        out.append({"study": study, "stage": "total", "jobs": None, "gpu_hours": total})
    return out

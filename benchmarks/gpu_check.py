"""GPU check: the paper-scale GPU code paths measured on a built tiny world, one figure a
stage (target: the whole check under 8 minutes on one H200).

Four stages, each printed as it finishes, through the same fusekit functions the rules call:

1. generate  - the transformers backend (``fusekit.backends.hf.HFGenerator``, the
   configured dtype, bf16, on CUDA): greedy answers to the world's eval prompts; tokens/s.
2. dump      - a teacher-forced top-k logit dump (``fusekit.training_mode.dump_logits``)
   of the target on the fusion split's reference answers; tokens/s and bytes per token.
3. train     - fusion training steps (``fusekit.train.loop.train_fusion``, accelerate with
   bf16 mixed precision on CUDA) of the target on those references, Eq. 4 (SFT + 0.5 KL)
   against the dump's top-k rows; optimizer steps/s, tokens/s, first and last loss.
4. lm_eval   - ``fusekit.eval.openllm.evaluate_model`` of a source on the tiny OpenLLM
   tasks on CUDA; the benchmark values (and, with --reference-eval, their difference from
   an earlier CPU float32 evaluation of the same model) and the wall time.

A stage that fails is reported with its error and the others still run; the exit status
is 1 when any failed. Nothing is written into the world; the figures go to --out.

    python benchmarks/gpu_check.py --world results/tiny/world            # one GPU
    python benchmarks/gpu_check.py --world results/tiny/world --device cpu --quick
        # CPU smoke test of the same code (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 8 * 60


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--world",
        default=str(ROOT / "results/tiny/world"),
        help="a built tiny world (its models/, corpus.parquet, lm_eval_tasks/); read only",
    )
    p.add_argument(
        "--config",
        default=str(ROOT / "config/tiny.yaml"),
        help="the config the world was built with: model specs, logits and lm-eval settings",
    )
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test of each stage")
    p.add_argument(
        "--source", default="src_llama", help="the model that generates and is evaluated"
    )
    p.add_argument("--target", default="tgt_llama", help="the model that is dumped and trained")
    p.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    p.add_argument(
        "--reference-eval",
        default=None,
        help="an earlier evaluation JSON of --source (results/evaluation/openllm/<source>.json "
        "of the world's build) to print each benchmark's difference from",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/gpu_check.json"))
    return p.parse_args()


def _sizes(quick: bool) -> dict:
    """Prompts and tokens of generation, dump rows, training epochs and batch sizes, and
    lm-eval's per-task limit (None: every item) and batch size."""
    if quick:
        gen, dump, epochs, batch, micro, limit, eval_batch = 16, 32, 1, 16, 8, 8, 16
        tokens = 16
    else:
        gen, dump, epochs, batch, micro, limit, eval_batch = 384, 1200, 2, 64, 64, None, 64
        tokens = 64
    return {
        "gen_prompts": gen,
        "gen_tokens": tokens,
        "dump_rows": dump,
        "train_epochs": epochs,
        "global_batch": batch,
        "micro_batch": micro,
        "eval_limit": limit,
        "eval_batch": eval_batch,
    }


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _stage_generate(ctx: dict) -> dict:
    from fusekit.backends import SamplingParams
    from fusekit.backends.hf import HFGenerator

    torch, n = ctx["torch"], ctx["sizes"]
    t0 = time.perf_counter()
    gen = HFGenerator(str(ctx["world"] / "models" / ctx["source"]), ctx["spec"](ctx["source"]))
    load_s = time.perf_counter() - t0
    prompts = ctx["corpus"].query("split == 'eval'").prompt.tolist()[: n["gen_prompts"]]
    params = SamplingParams(max_new_tokens=n["gen_tokens"], batch_size=64)
    gen.generate(prompts[:8], [None] * 8, params)  # warm-up: kernels, cache allocator
    _sync(torch)
    t0 = time.perf_counter()
    out = gen.generate(prompts, [None] * len(prompts), params)
    _sync(torch)
    s = time.perf_counter() - t0
    tokens = sum(c[0].n_tokens for c in out)
    return {
        "model": ctx["source"],
        "dtype": str(gen.model.dtype).removeprefix("torch."),
        "device": str(gen.model.device),
        "prompts": len(prompts),
        "tokens": tokens,
        "seconds": s,
        "tokens_per_s": tokens / s,
        "load_s": load_s,
        "summary": f"{tokens} tokens for {len(prompts)} prompts in {s:.2f} s: "
        f"{tokens / s:,.0f} tokens/s ({gen.model.dtype}, {gen.model.device})",
    }


def _stage_dump(ctx: dict) -> dict:
    from fusekit.training_mode import dump_logits

    torch, n = ctx["torch"], ctx["sizes"]
    pairs = ctx["corpus"].query("split == 'fusion'").head(n["dump_rows"])
    pairs = pairs.rename(columns={"reference": "response"})[["prompt_id", "prompt", "response"]]
    out = ctx["tmp"] / "dump.parquet"
    _sync(torch)
    t0 = time.perf_counter()
    rows = dump_logits(
        pairs.reset_index(drop=True),
        ctx["target"],
        str(ctx["world"] / "models" / ctx["target"]),
        ctx["spec"](ctx["target"]),
        ctx["config"]["logits"],
        str(out),
        backend="transformers",
        threads=ctx["threads"],
        where="corpus.parquet (fusion split)",
    )
    _sync(torch)
    s = time.perf_counter() - t0
    tokens = sum(r["n_tokens"] for r in rows)
    ctx["dump_rows"] = rows
    ctx["pairs"] = pairs
    size = out.stat().st_size
    return {
        "model": ctx["target"],
        "rows": len(rows),
        "tokens": tokens,
        "seconds": s,
        "tokens_per_s": tokens / s,
        "bytes_per_token": size / max(tokens, 1),
        "summary": f"{len(rows)} rows, {tokens} tokens in {s:.2f} s (model load included): "
        f"{tokens / s:,.0f} tokens/s, {size / max(tokens, 1):.1f} bytes a token",
    }


def _examples(ctx: dict) -> tuple[list, int]:
    """Fusion examples in the target's tokenization: each reference answer with the
    dump's top-k rows at the positions of the tokens they predict."""
    import numpy as np

    from fusekit.backends.hf import load_tokenizer
    from fusekit.chat import encode_example
    from fusekit.train.examples import IGNORE, Example, Part

    tok = load_tokenizer(str(ctx["world"] / "models" / ctx["target"]), ctx["spec"](ctx["target"]))
    k = ctx["config"]["logits"]["top_k"]
    prompts = dict(zip(ctx["pairs"].prompt_id, ctx["pairs"].prompt, strict=True))
    examples, tokens = [], 0
    for row in ctx["dump_rows"]:
        enc = encode_example(tok, prompts[row["prompt_id"]], row["response"])
        resp = enc.input_ids[enc.n_prompt :]
        if list(resp) != list(row["token_ids"]):
            raise ValueError(
                f"prompt {row['prompt_id']}: the dump's response ids differ from the target "
                "tokenizer's encoding of the same text"
            )
        n_all, n_p = len(enc.input_ids), enc.n_prompt
        topk = np.full((n_all, k), -1, dtype=np.int32)
        lps = np.full((n_all, k), -np.inf, dtype=np.float32)
        topk[n_p:] = np.asarray(row["topk_ids"], dtype=np.int32).reshape(-1, k)
        lps[n_p:] = np.asarray(row["topk_logprobs"], dtype=np.float32).reshape(-1, k)
        labels = [IGNORE] * n_p + list(resp)
        part = Part(list(enc.input_ids), labels, topk, lps)
        examples.append(Example(row["prompt_id"], inference=None, training=part))
        tokens += n_all
    return examples, tokens


def _stage_train(ctx: dict) -> dict:
    from fusekit.train.loop import Stage, train_fusion

    torch, n = ctx["torch"], ctx["sizes"]
    if "dump_rows" not in ctx:
        raise RuntimeError("needs the dump stage's rows (it failed)")
    examples, tokens = _examples(ctx)
    optim = {
        "name": "adamw",
        "lr": 1e-4,
        "schedule": "constant",
        "global_batch_size": n["global_batch"],
        "max_length": ctx["config"]["logits"]["max_length"],
    }
    train_cfg = {"micro_batch_size": n["micro_batch"], "save_every": 10**6, "precision": "bf16"}
    stages = [Stage(modes=("training",), epochs=n["train_epochs"], beta=0.5)]
    _sync(torch)
    t0 = time.perf_counter()
    frame = train_fusion(
        str(ctx["world"] / "models" / ctx["target"]),
        ctx["spec"](ctx["target"]),
        examples,
        stages,
        optim,
        train_cfg,
        out=str(ctx["tmp"] / "trained"),
        checkpoint_dir=str(ctx["tmp"] / "checkpoints"),
        seed=0,
        threads=ctx["threads"],
    )
    _sync(torch)
    s = time.perf_counter() - t0
    losses = frame["loss"].astype(float).tolist()
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"a training loss is not finite: {losses}")
    steps = len(frame)
    seen = tokens * n["train_epochs"]
    precision = "bf16" if torch.cuda.is_available() else "no (CPU: fp32)"
    return {
        "model": ctx["target"],
        "examples": len(examples),
        "steps": steps,
        "global_batch": n["global_batch"],
        "precision": precision,
        "seconds": s,
        "steps_per_s": steps / s,
        "tokens_per_s": seen / s,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "summary": f"{steps} steps of {n['global_batch']} examples in {s:.2f} s (model load "
        f"and save included): {steps / s:.2f} steps/s, {seen / s:,.0f} tokens/s, "
        f"mixed precision {precision}; loss {losses[0]:.3f} -> {losses[-1]:.3f}",
    }


def _task_root(tasks_dir: Path) -> Path:
    """The folder lm-eval must run in: the tiny tasks name their JSONL files relative to
    the checkout that built the world."""
    import yaml

    for spec_file in sorted(tasks_dir.glob("*.yaml")):
        spec = yaml.safe_load(spec_file.read_text())
        files = (spec or {}).get("dataset_kwargs", {}).get("data_files", {})
        for rel in files.values():
            if Path(rel).is_absolute():
                return Path.cwd()
            for root in (tasks_dir, *tasks_dir.parents):
                if (root / rel).exists():
                    return root
            raise FileNotFoundError(f"{spec_file}: data file {rel} found under no parent")
    raise FileNotFoundError(f"{tasks_dir}: no task with a data file")


def _stage_lm_eval(ctx: dict) -> dict:
    from fusekit.eval.openllm import evaluate_model

    n = ctx["sizes"]
    settings = ctx["config"]["evaluation"]["openllm"]
    tasks_dir = ctx["world"] / "lm_eval_tasks"
    cuda = ctx["torch"].cuda.is_available()
    here = Path.cwd()
    os.chdir(_task_root(tasks_dir))
    try:
        t0 = time.perf_counter()
        result = evaluate_model(
            str(ctx["world"] / "models" / ctx["source"]),
            settings["benchmarks"],
            include_path=str(tasks_dir),
            include_defaults=False,
            apply_chat_template=settings.get("apply_chat_template", False),
            batch_size=n["eval_batch"],
            device="cuda" if cuda else "cpu",
            dtype="bfloat16" if cuda else "float32",
            limit=n["eval_limit"],
        )
        s = time.perf_counter() - t0
    finally:
        os.chdir(here)
    values = {k: v["value"] for k, v in result["benchmarks"].items()}
    out = {"model": ctx["source"], "seconds": s, "values": values, "limit": n["eval_limit"]}
    text = ", ".join(f"{k} {v:.1f}" for k, v in values.items())
    if ctx["reference_eval"]:
        ref = json.loads(Path(ctx["reference_eval"]).read_text())["benchmarks"]
        diff = {k: values[k] - ref[k]["value"] for k in values if k in ref}
        out["difference_from_reference"] = diff
        text += "; minus the reference: " + ", ".join(f"{k} {v:+.1f}" for k, v in diff.items())
    out["summary"] = f"{len(values)} benchmarks in {s:.1f} s: {text}"
    return out


STAGES = {
    "generate": _stage_generate,
    "dump": _stage_dump,
    "train": _stage_train,
    "lm_eval": _stage_lm_eval,
}


def main() -> int:
    a = _args()
    if a.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch loads: every path takes the CPU
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    start = time.perf_counter()
    import pandas as pd
    import torch
    import transformers
    import yaml

    if a.device == "cuda" and not torch.cuda.is_available():
        print(
            f"--device cuda: no CUDA device is visible (torch {torch.__version__}, built for "
            f"CUDA {torch.version.cuda}); use --device cpu for the CPU smoke test",
            file=sys.stderr,
        )
        return 2
    world = Path(a.world).resolve()
    for need in ("corpus.parquet", "models", "lm_eval_tasks"):
        if not (world / need).exists():
            print(f"--world {world}: no {need} (build the tiny world first)", file=sys.stderr)
            return 2
    torch.set_num_threads(a.threads)
    config = yaml.safe_load(Path(a.config).read_text())
    for name in (a.source, a.target):
        if name not in config.get("models", {}):
            print(f"--config {a.config}: no models.{name}", file=sys.stderr)
            return 2
    device_name = torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu"
    print(
        f"gpu_check: {device_name}; torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"transformers {transformers.__version__}; world {world}"
        + ("; quick sizes" if a.quick else "")
    )
    report: dict = {
        "device": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "stages": {},
        "errors": {},
    }
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        ctx = {
            "torch": torch,
            "world": world,
            "config": config,
            "spec": lambda name: {
                k: v for k, v in config["models"][name].items() if k not in ("path", "generation")
            },
            "corpus": pd.read_parquet(world / "corpus.parquet"),
            "source": a.source,
            "target": a.target,
            "threads": a.threads,
            "sizes": _sizes(a.quick),
            "tmp": Path(tmp),
            "reference_eval": a.reference_eval,
        }
        for name, stage in STAGES.items():
            try:
                figures = stage(ctx)
            except Exception as err:  # one failed stage must not hide the others' figures
                report["errors"][name] = f"{type(err).__name__}: {err}"
                print(f"{name:8s} FAILED: {type(err).__name__}: {err}", flush=True)
                traceback.print_exc()
                continue
            report["stages"][name] = figures
            print(f"{name:8s} {figures['summary']}", flush=True)
    wall = time.perf_counter() - start
    report.update(wall_s=wall, target_s=TARGET_S, args=vars(a))
    verdict = "within" if wall <= TARGET_S else "OVER"
    print(f"total    {wall:.1f} s ({verdict} the {TARGET_S // 60}-minute target)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"figures written to {a.out}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

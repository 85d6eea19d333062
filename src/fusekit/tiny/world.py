"""Building the tiny world, one function per workflow step.

Each function reads files, writes files (atomically) and is what one script
calls. Models and tokenizers are saved with ``save_pretrained`` and read back
with ``from_pretrained``, the same path as hub models.
"""

from __future__ import annotations

import json

import pandas as pd

from fusekit.io import PROVENANCE_FILE, atomic_path, provenance, read_table, write_table
from fusekit.tiny.corpus import COLUMNS, build_corpus, filler_text, is_correct

SKILL_ACCURACY_COLUMNS = (
    "model",
    "role",
    "architecture",
    "tokenizer",
    "skill",
    "metric",
    "accuracy",
    "n",
)


def _save_trained(out: str, model, tok, log: list[dict], spec: dict, seed: int) -> None:
    """Model, tokenizer, loss log and provenance, renamed into ``out`` when complete."""
    with atomic_path(out, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        pd.DataFrame(log).to_csv(tmp / "train_log.csv", index=False, float_format="%.6g")
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance(spec, seed), indent=2) + "\n")


def make_corpus(spec: dict, seed: int, out: str) -> pd.DataFrame:
    """Write the instruction corpus (all splits) to ``out`` (Parquet)."""
    df = build_corpus(seed, spec["sizes"], spec["skills"], spec["n_entities"])
    write_table(df, out)
    return df


def load_corpus(path: str, split: str | None = None) -> pd.DataFrame:
    df = read_table(path, COLUMNS)
    return df if split is None else df[df.split == split].reset_index(drop=True)


def make_tokenizer(corpus_path: str, spec: dict, seed: int, filler_lines: int, out: str) -> None:
    """Train one tokenizer on the pretraining split plus filler text; save it to ``out``."""
    from fusekit.tiny.tokenizers import train_tokenizer

    df = load_corpus(corpus_path, "pretrain")
    texts = [f"{p} {r}" for p, r in zip(df.prompt, df.reference, strict=True)]
    texts += filler_text(seed, filler_lines)
    tok = train_tokenizer(texts, spec["kind"], spec["vocab_size"], spec["chat_template"])
    with atomic_path(out, is_dir=True) as tmp:
        tok.save_pretrained(tmp)


def _mix_weights(skills: pd.Series, mix: dict[str, float], where: str) -> list[float]:
    missing = sorted(set(skills) - set(mix))
    if missing:
        raise ValueError(f"{where}: skill_mix has no weight for skills {missing}")
    counts = skills.value_counts()
    # each skill's total probability is its mix weight, whatever its row count
    return [mix[s] / counts[s] for s in skills]


def make_causal_lm(
    corpus_path: str, tokenizer_dir: str, spec: dict, seed: int, out: str, name: str = "model"
) -> None:
    """Train a tiny causal LM on the pretraining split with the spec's skill mix."""
    from transformers import AutoTokenizer

    from fusekit.determinism import make_deterministic
    from fusekit.tiny.models import build_model
    from fusekit.tiny.train import train_causal_lm

    make_deterministic(seed)
    df = load_corpus(corpus_path, "pretrain")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = build_model(spec["architecture"], tok, spec["size"], seed)
    train = spec["train"]
    log = train_causal_lm(
        model,
        tok,
        list(zip(df.prompt, df.reference, strict=True)),
        _mix_weights(df.skill, spec["skill_mix"], f"tiny_world.models.{name}"),
        steps=train["steps"],
        batch_size=train["batch_size"],
        lr=train["lr"],
        seed=seed,
        warmup=train["warmup"],
        desc=f"train {name}",
    )
    _save_trained(out, model, tok, log, spec, seed)


def make_reward_model(
    corpus_path: str, tokenizer_dir: str, spec: dict, seed: int, out: str, name: str = "rm"
) -> None:
    """Train a tiny reward model (sequence classification, one label) on preference pairs."""
    from transformers import AutoTokenizer

    from fusekit.determinism import make_deterministic
    from fusekit.tiny.models import build_model
    from fusekit.tiny.preferences import build_preference_pairs
    from fusekit.tiny.train import train_reward_model

    make_deterministic(seed)
    df = load_corpus(corpus_path, "pretrain")
    pairs = build_preference_pairs(df, seed, spec["corruptions"])
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model = build_model(spec["architecture"], tok, spec["size"], seed, num_labels=1)
    train = spec["train"]
    log = train_reward_model(
        model,
        tok,
        list(zip(pairs.prompt, pairs.chosen, pairs.rejected, strict=True)),
        steps=train["steps"],
        batch_size=train["batch_size"],
        lr=train["lr"],
        seed=seed,
        label_noise=spec["label_noise"],
        warmup=train["warmup"],
        desc=f"train {name}",
    )
    _save_trained(out, model, tok, log, spec, seed)


def _with_overall(per_item: pd.DataFrame) -> pd.DataFrame:
    by_skill = per_item.groupby("skill", sort=True).ok.agg(["mean", "size"]).reset_index()
    overall = pd.DataFrame(
        {"skill": ["all"], "mean": [per_item.ok.mean()], "size": [len(per_item)]}
    )
    out = pd.concat([by_skill, overall], ignore_index=True)
    return out.rename(columns={"mean": "accuracy", "size": "n"})


def evaluate_causal_lm(
    model_dir: str,
    corpus_path: str,
    max_new_tokens: int,
    batch_size: int,
    out: str,
    meta: dict,
) -> pd.DataFrame:
    """Greedy generation on the eval split; exact-match accuracy per skill."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fusekit.backends.hf import generate
    from fusekit.determinism import make_deterministic

    make_deterministic(0)
    df = load_corpus(corpus_path, "eval")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    res = generate(
        model, tok, list(df.prompt), max_new_tokens, batch_size, desc=f"eval {meta['model']}"
    )
    df = df.assign(ok=[is_correct(r["response"], a) for r, a in zip(res, df.answer, strict=True)])
    table = _with_overall(df).assign(metric="exact_match", **meta)
    table = table[list(SKILL_ACCURACY_COLUMNS)]
    write_table(table, out)
    return table


def evaluate_reward_model(
    model_dir: str, corpus_path: str, seed: int, batch_size: int, out: str, meta: dict
) -> pd.DataFrame:
    """Held-out preference accuracy: the share of eval pairs (all corruption
    kinds) where the chosen response scores higher than the rejected one."""
    import numpy as np

    from fusekit.determinism import make_deterministic
    from fusekit.rewards.scoring import RewardScorer
    from fusekit.tiny.preferences import build_preference_pairs

    make_deterministic(0)
    pairs = build_preference_pairs(load_corpus(corpus_path, "eval"), seed + 1)
    scorer = RewardScorer(model_dir, {"batch_size": batch_size})
    chosen, _, _ = scorer.score(list(pairs.prompt), list(pairs.chosen), f"eval {meta['model']}")
    rejected, _, _ = scorer.score(list(pairs.prompt), list(pairs.rejected), f"eval {meta['model']}")
    pairs = pairs.assign(ok=np.array(chosen) > np.array(rejected))
    table = _with_overall(pairs).assign(metric="preference_accuracy", **meta)
    table = table[list(SKILL_ACCURACY_COLUMNS)]
    write_table(table, out)
    return table


def tabulate_skill_accuracy(parts: list[str], out: str) -> pd.DataFrame:
    """Concatenate per-model evaluation tables into the world's accuracy table."""
    table = pd.concat([read_table(p, SKILL_ACCURACY_COLUMNS) for p in parts], ignore_index=True)
    write_table(table, out)
    return table

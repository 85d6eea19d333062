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
    df = build_corpus(
        seed,
        spec["sizes"],
        spec["skills"],
        spec["n_entities"],
        spec.get("fusion_references", "short"),
        spec.get("pretrain_worked_share", 0.0),
    )
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


def read_outputs(paths: list[str]) -> pd.DataFrame:
    """World models' outputs (:func:`generate_world_outputs`, or the responses
    :func:`evaluate_causal_lm` writes), concatenated."""
    from fusekit.tiny.preferences import OUTPUT_COLUMNS

    return pd.concat([read_table(p, OUTPUT_COLUMNS) for p in paths], ignore_index=True)


def reward_training_pairs(
    corpus_path: str, spec: dict, seed: int, outputs: list[str] | None = None
) -> pd.DataFrame:
    """A tiny reward model's training pairs: corruptions of the pretraining split's
    references (``spec["corruptions"]``, one per row) plus, with
    ``spec["source_outputs"]``, (correct, wrong) pairs of the world models' own outputs
    (``outputs``: :func:`generate_world_outputs` files; at most
    ``spec["max_pairs_per_prompt"]`` a prompt).

    Raises ValueError when ``source_outputs`` is set and no outputs are given, or when
    neither kind yields a pair.
    """
    from fusekit.tiny.preferences import build_output_pairs, build_preference_pairs

    parts = []
    if spec.get("corruptions"):
        pretrain = load_corpus(corpus_path, "pretrain")
        if spec.get("corruption_pairs") is not None:
            n = min(spec["corruption_pairs"], len(pretrain))
            pretrain = pretrain.sample(n=n, random_state=seed).sort_index()
        parts.append(build_preference_pairs(pretrain, seed, spec["corruptions"]))
    if spec.get("source_outputs"):
        if not outputs:
            raise ValueError("source_outputs is set but no world model outputs were given")
        parts.append(
            build_output_pairs(read_outputs(outputs), seed, spec.get("max_pairs_per_prompt"))
        )
    pairs = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if pairs.empty:
        raise ValueError(
            "no training pairs: set corruptions, or source_outputs with outputs that "
            "have both right and wrong answers for some prompt"
        )
    return pairs


def make_reward_model(
    corpus_path: str,
    tokenizer_dir: str,
    spec: dict,
    seed: int,
    out: str,
    name: str = "rm",
    outputs: list[str] | None = None,
) -> None:
    """Train a tiny reward model (sequence classification, one label) on preference
    pairs (:func:`reward_training_pairs`)."""
    from transformers import AutoTokenizer

    from fusekit.determinism import make_deterministic
    from fusekit.tiny.models import build_model
    from fusekit.tiny.train import train_reward_model

    make_deterministic(seed)
    pairs = reward_training_pairs(corpus_path, spec, seed, outputs)
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


def generate_world_outputs(
    model_dir: str,
    corpus_path: str,
    split: str,
    per_skill: int,
    max_new_tokens: int,
    batch_size: int,
    out: str,
    name: str,
) -> pd.DataFrame:
    """Greedy outputs of one world model on the first ``per_skill`` prompts of each
    skill of ``split``: the reward models' training material.

    Writes columns :data:`fusekit.tiny.preferences.OUTPUT_COLUMNS` plus ``correct``
    (exact match on the gold answer). Raises ValueError for an empty selection.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fusekit.backends.hf import generate
    from fusekit.determinism import make_deterministic

    make_deterministic(0)
    df = load_corpus(corpus_path, split)
    df = df.groupby("skill", sort=True).head(per_skill).reset_index(drop=True)
    if df.empty:
        raise ValueError(f"{corpus_path}: split {split!r} has no prompts")
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    res = generate(model, tok, list(df.prompt), max_new_tokens, batch_size, desc=f"outputs {name}")
    table = _outputs_table(df, [r["response"] for r in res], name)
    write_table(table, out)
    return table


def _outputs_table(df: pd.DataFrame, responses: list[str], name: str) -> pd.DataFrame:
    from fusekit.tiny.preferences import OUTPUT_COLUMNS

    table = df.assign(model=name, response=responses)[list(OUTPUT_COLUMNS)]
    ok = [is_correct(r, a) for r, a in zip(table.response, table.answer, strict=True)]
    return table.assign(correct=ok)


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
    responses_out: str | None = None,
) -> pd.DataFrame:
    """Greedy generation on the eval split; exact-match accuracy per skill.

    ``responses_out``: also write the responses (:func:`generate_world_outputs`'s
    columns), the held-out pairs the reward models are measured on."""
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
    answers = _outputs_table(df, [r["response"] for r in res], meta["model"])
    if responses_out:
        write_table(answers, responses_out)
    df = df.assign(ok=answers.correct.to_numpy())
    table = _with_overall(df).assign(metric="exact_match", **meta)
    table = table[list(SKILL_ACCURACY_COLUMNS)]
    write_table(table, out)
    return table


def evaluate_reward_model(
    model_dir: str,
    corpus_path: str,
    seed: int,
    batch_size: int,
    out: str,
    meta: dict,
    outputs: list[str] | None = None,
) -> pd.DataFrame:
    """A reward model's held-out accuracies, per skill and overall (``all``):

    * ``preference_accuracy``: the share of eval-split corruption pairs (all kinds)
      where the chosen response scores higher than the rejected one;
    * ``source_pair_accuracy`` (with ``outputs``, the world models' eval responses that
      :func:`evaluate_causal_lm` writes): the same on pairs of those outputs for one
      prompt, one right and one wrong (:func:`fusekit.tiny.preferences.build_output_pairs`)
      — what a vote over sources needs. A tie counts as an error.
    """
    import numpy as np

    from fusekit.determinism import make_deterministic
    from fusekit.rewards.scoring import RewardScorer
    from fusekit.tiny.preferences import build_output_pairs, build_preference_pairs

    make_deterministic(0)
    scorer = RewardScorer(model_dir, {"batch_size": batch_size})

    def accuracy(pairs: pd.DataFrame, metric: str) -> pd.DataFrame:
        chosen, _, _ = scorer.score(list(pairs.prompt), list(pairs.chosen), f"eval {meta['model']}")
        rejected, _, _ = scorer.score(
            list(pairs.prompt), list(pairs.rejected), f"eval {meta['model']}"
        )
        pairs = pairs.assign(ok=np.array(chosen) > np.array(rejected))
        return _with_overall(pairs).assign(metric=metric)

    parts = [
        accuracy(
            build_preference_pairs(load_corpus(corpus_path, "eval"), seed + 1),
            "preference_accuracy",
        )
    ]
    if outputs:
        pairs = build_output_pairs(read_outputs(outputs), seed + 2)
        if not pairs.empty:
            parts.append(accuracy(pairs, "source_pair_accuracy"))
    table = pd.concat(parts, ignore_index=True).assign(**meta)
    table = table[list(SKILL_ACCURACY_COLUMNS)]
    write_table(table, out)
    return table


VOTE_ACCURACY_COLUMNS = ("study", "skill", "metric", "value", "n")


def vote_accuracy(
    votes_path: str,
    corpus_path: str,
    world_table_path: str,
    sources: list[str],
    study: str,
    out: str,
) -> pd.DataFrame:
    """How good the inference-mode vote is, per skill of the voted prompts and overall:

    * ``voted_correct``: share of voted outputs with the right answer (exact match);
    * ``best_source_chosen``: share of prompts whose vote picked the skill's best source
      (highest exact match on the eval split in the world table; any of the tied best);
    * ``best_source_chance``: what a random pick would give (1 / number of sources);
    * ``reference_correct``: the same for the references (1 by construction);
    * ``voted_words`` and ``reference_words``: mean length in words (ProFuser's premise:
      the ground truth is longer and harder than the sources' outputs);
    * ``voted_is_reference``: share of voted outputs identical to the reference
      (whitespace collapsed).

    ``value`` is a share in [0, 1] (``*_words``: words); ``n`` prompts. Raises
    ValueError naming the file: one that lacks columns (from the readers), a prompt voted
    twice or absent from the corpus, a source without rows in the world table.
    """
    votes = read_table(votes_path, ("prompt_id", "model", "response"))
    twice = votes.prompt_id[votes.prompt_id.duplicated()]
    if len(twice):
        raise ValueError(f"{votes_path}: prompt {twice.iloc[0]!r} has more than one vote")
    corpus = load_corpus(corpus_path).set_index("prompt_id")
    unknown = sorted(set(votes.prompt_id) - set(corpus.index))
    if unknown:
        raise ValueError(f"{votes_path}: prompts not in {corpus_path}: {unknown[:5]}")
    world = read_table(world_table_path, SKILL_ACCURACY_COLUMNS)
    acc = world[(world.metric == "exact_match") & world.model.isin(sources)]
    absent = sorted(set(sources) - set(acc.model))
    if absent:
        raise ValueError(f"{world_table_path}: no exact-match rows for sources {absent}")
    # every source tied at the skill's highest accuracy counts as its best
    top = acc.groupby("skill").accuracy.transform("max")
    best = acc[acc.accuracy == top].groupby("skill").model.apply(set)
    rows = corpus.loc[votes.prompt_id]
    frame = pd.DataFrame(
        {
            "skill": rows.skill.to_numpy(),
            "voted_correct": [
                is_correct(r, a) for r, a in zip(votes.response, rows.answer, strict=True)
            ],
            "best_source_chosen": [
                m in best.get(k, set()) for k, m in zip(rows.skill, votes.model, strict=True)
            ],
            "reference_correct": [
                is_correct(r, a) for r, a in zip(rows.reference, rows.answer, strict=True)
            ],
        }
    )
    frame["best_source_chance"] = 1.0 / len(sources)
    frame["voted_words"] = [len(str(r).split()) for r in votes.response]
    frame["reference_words"] = [len(str(r).split()) for r in rows.reference]
    frame["voted_is_reference"] = [
        str(v).split() == str(r).split()
        for v, r in zip(votes.response, rows.reference, strict=True)
    ]
    metrics = [
        "voted_correct",
        "best_source_chosen",
        "best_source_chance",
        "reference_correct",
        "voted_words",
        "reference_words",
        "voted_is_reference",
    ]
    parts = []
    for skill, g in [*frame.groupby("skill", sort=True), ("all", frame)]:
        for m in metrics:
            parts.append((study, skill, m, float(g[m].mean()), len(g)))
    table = pd.DataFrame(parts, columns=list(VOTE_ACCURACY_COLUMNS))
    write_table(table, out)
    return table


def tabulate_skill_accuracy(parts: list[str], out: str) -> pd.DataFrame:
    """Concatenate per-model evaluation tables into the world's accuracy table."""
    table = pd.concat([read_table(p, SKILL_ACCURACY_COLUMNS) for p in parts], ignore_index=True)
    write_table(table, out)
    return table

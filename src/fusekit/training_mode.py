"""ProFuser's training-mode advantage and the logit dumps both modes train on, file to file.

- teacher-forced top-k dumps of each source on (prompt, reference), and of each
  voted inference output under the source that produced it;
- vocabulary maps and the alignment of every dump onto the target's tokens;
- MinCE: per prompt, the source with the lowest cross-entropy on the reference;
- win shares per source in training mode beside inference mode.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fusekit.align import align_topk, map_vocab
from fusekit.align.tokens import tokenizer_scheme
from fusekit.align.vocab import VocabMap
from fusekit.chat import encode_example
from fusekit.data import PROMPT_COLUMNS
from fusekit.io import read_table, write_table
from fusekit.logits import read_dump, write_dump

log = logging.getLogger("fusekit")
VOCAB_MAP_COLUMNS = ("source_id", "target_id", "exact", "distance")


def dump_logits(
    pairs: pd.DataFrame,
    model: str,
    model_path: str,
    model_spec: dict,
    logits_cfg: dict,
    out: str,
    backend: str = "transformers",
    threads: int = 1,
) -> list[dict]:
    """Teacher-forced top-k dump of ``model`` on ``pairs``.

    ``pairs`` has columns prompt_id, prompt, response and optionally system.
    """
    from fusekit.backends.hf import load_causal_lm, load_tokenizer

    tok = load_tokenizer(model_path, model_spec)
    system = model_spec.get("system_prompt")
    examples = [
        encode_example(tok, p, r, (s if isinstance(s, str) and s else None) or system)
        for p, r, s in zip(
            pairs.prompt, pairs.response, pairs.get("system", [None] * len(pairs)), strict=True
        )
    ]
    rows = []
    k, top_p, temp = logits_cfg["top_k"], logits_cfg["top_p"], logits_cfg["temperature"]
    max_length = logits_cfg.get("max_length")
    if backend == "vllm":  # paper scale, GPU only
        from fusekit.backends.vllm_backend import teacher_forced_topk_vllm

        stream = teacher_forced_topk_vllm(
            model_path, model_spec, tok, examples, k, top_p, temp, max_length
        )
    elif backend == "transformers":
        from fusekit.backends.hf import teacher_forced_topk

        batch = logits_cfg.get("batch_size", 8)
        lm = load_causal_lm(model_path, model_spec, threads)
        stream = teacher_forced_topk(
            lm, tok, examples, k, top_p, temp, batch, max_length, f"dump {model}"
        )
    else:
        raise ValueError(f"unknown logits backend {backend!r}; known: transformers, vllm")
    for (pid, resp), (token_ids, ids, lps, ce) in zip(
        zip(pairs.prompt_id, pairs.response, strict=True), stream, strict=True
    ):
        rows.append(
            {
                "prompt_id": pid,
                "model": model,
                "response": resp,
                "n_tokens": len(token_ids),
                "ce": ce,
                "token_ids": token_ids,
                "topk_ids": ids.ravel().tolist(),
                "topk_logprobs": lps.ravel().tolist(),
            }
        )
    meta = {"k": k, "top_p": top_p, "temperature": temp, "tokenizer": model_path, "vocab": "source"}
    write_dump(rows, out, meta)
    n = sum(r["n_tokens"] for r in rows)
    log.info("dumped %d sequences, %d tokens of %s", len(rows), n, model)
    return rows


def dump_reference_logits(
    prompts_path: str,
    model: str,
    model_path: str,
    model_spec: dict,
    logits_cfg: dict,
    out: str,
    backend: str = "transformers",
    threads: int = 1,
) -> list[dict]:
    """Training mode: each source teacher-forced on (prompt, reference answer)."""
    prompts = read_table(prompts_path, PROMPT_COLUMNS).rename(columns={"reference": "response"})
    return dump_logits(prompts, model, model_path, model_spec, logits_cfg, out, backend, threads)


def dump_voted_logits(
    votes_path: str,
    model: str,
    model_path: str,
    model_spec: dict,
    logits_cfg: dict,
    out: str,
    backend: str = "transformers",
    threads: int = 1,
) -> list[dict]:
    """Inference mode: the source's own distribution on the voted outputs it produced."""
    votes = read_table(votes_path, ["prompt_id", "model", "prompt", "response"])
    mine = votes[votes.model == model].reset_index(drop=True)
    if mine.empty:
        log.warning("%s won no prompt in %s; writing an empty dump", model, votes_path)
        write_dump([], out, {"k": logits_cfg["top_k"], "vocab": "source"})
        return []
    return dump_logits(mine, model, model_path, model_spec, logits_cfg, out, backend, threads)


def _special_pairs(src_tok, tgt_tok) -> dict[int, int]:
    pairs = {}
    for role in ("eos_token_id", "bos_token_id", "pad_token_id", "unk_token_id"):
        s, t = getattr(src_tok, role), getattr(tgt_tok, role)
        if s is not None and t is not None:
            pairs[s] = t
    return pairs


def build_vocab_map(source_tok_path: str, target_tok_path: str, out: str) -> VocabMap:
    """Map every source token id to a target id; special tokens map by role."""
    from transformers import AutoTokenizer

    src, tgt = (
        AutoTokenizer.from_pretrained(source_tok_path),
        AutoTokenizer.from_pretrained(target_tok_path),
    )
    vmap = map_vocab(
        src.get_vocab(),
        tgt.get_vocab(),
        tokenizer_scheme(src),
        tokenizer_scheme(tgt),
        fixed=_special_pairs(src, tgt),
    )
    df = pd.DataFrame(
        {
            "source_id": np.arange(len(vmap)),
            "target_id": vmap.target_id,
            "exact": vmap.exact,
            "distance": vmap.distance,
        }
    )
    write_table(df, out)
    log.info(
        "vocabulary map %s -> %s: %d ids, %.1f%% exact",
        source_tok_path,
        target_tok_path,
        len(df),
        100 * df.exact.mean(),
    )
    return vmap


def read_vocab_map(path: str) -> VocabMap:
    df = read_table(path, VOCAB_MAP_COLUMNS).sort_values("source_id")
    if not (df.source_id.to_numpy() == np.arange(len(df))).all():
        raise ValueError(f"{path}: source ids must be 0..n-1")
    return VocabMap(df.target_id.to_numpy(), df.exact.to_numpy(), df.distance.to_numpy())


def align_dump(
    dump_path: str, source_tok_path: str, target_tok_path: str, vocab_map_path: str, out: str
) -> list[dict]:
    """Carry every row of a source dump onto the target tokenization of the same response."""
    from transformers import AutoTokenizer

    src, tgt = (
        AutoTokenizer.from_pretrained(source_tok_path),
        AutoTokenizer.from_pretrained(target_tok_path),
    )
    s_scheme, t_scheme = tokenizer_scheme(src), tokenizer_scheme(tgt)
    vmap = read_vocab_map(vocab_map_path)
    rows, meta = read_dump(dump_path)
    out_rows = []
    for i, r in enumerate(rows):
        src_ids = r["token_ids"]
        body = src_ids[:-1] if src_ids[-1] == src.eos_token_id else src_ids
        tgt_ids = tgt(r["response"], add_special_tokens=False)["input_ids"]
        try:
            aligned = align_topk(
                src.convert_ids_to_tokens(body),
                r["topk_ids"][: len(body)],
                r["topk_logprobs"][: len(body)],
                tgt.convert_ids_to_tokens(tgt_ids),
                tgt_ids,
                vmap,
                s_scheme,
                t_scheme,
            )
        except ValueError as err:
            raise ValueError(f"{dump_path}: row {i} (prompt_id {r['prompt_id']!r}): {err}") from err
        ids, lps = aligned.ids, aligned.logprobs
        if len(body) < len(src_ids):  # the EOS row maps id by id, like any single-token match
            eos_ids = np.where(
                r["topk_ids"][-1] >= 0, vmap.target_id[np.maximum(r["topk_ids"][-1], 0)], -1
            )
            ids = np.vstack([ids, eos_ids.astype(np.int32)])
            lps = np.vstack([lps, r["topk_logprobs"][-1]])
            tgt_ids = tgt_ids + [tgt.eos_token_id]
        out_rows.append(
            {
                "prompt_id": r["prompt_id"],
                "model": r["model"],
                "response": r["response"],
                "n_tokens": len(tgt_ids),
                "ce": r["ce"],
                "token_ids": tgt_ids,
                "topk_ids": ids.ravel().tolist(),
                "topk_logprobs": lps.ravel().tolist(),
            }
        )
    write_dump(out_rows, out, {**meta, "vocab": "target", "tokenizer": target_tok_path})
    log.info("aligned %d sequences of %s onto %s", len(out_rows), dump_path, target_tok_path)
    return out_rows


def select_mince(dump_paths: list[str], out: str) -> pd.DataFrame:
    """Per prompt, the source with the minimum cross-entropy on the reference (ties: first
    source in sorted order). Columns: prompt_id, winner, ce_<source> for each source."""
    frames = []
    for p in dump_paths:
        rows, _ = read_dump(p)
        frames.append(
            pd.DataFrame(
                {
                    "prompt_id": [r["prompt_id"] for r in rows],
                    "model": [r["model"] for r in rows],
                    "ce": [r["ce"] for r in rows],
                }
            )
        )
    long = pd.concat(frames, ignore_index=True)
    if long.ce.isna().any() or np.isinf(long.ce).any():
        bad = long[long.ce.isna() | np.isinf(long.ce)].iloc[0]
        raise ValueError(f"non-finite cross-entropy for prompt {bad.prompt_id!r} of {bad.model}")
    wide = long.pivot(index="prompt_id", columns="model", values="ce").sort_index(axis=1)
    if wide.isna().any().any():
        pid = wide.index[wide.isna().any(axis=1)][0]
        raise ValueError(f"prompt {pid!r} lacks a cross-entropy from some source")
    result = pd.DataFrame({"prompt_id": wide.index, "winner": wide.idxmin(axis=1).to_numpy()})
    for m in wide.columns:
        result[f"ce_{m}"] = wide[m].to_numpy()
    write_table(result, out)
    log.info("MinCE wins: %s", result.winner.value_counts().to_dict())
    return result


def advantage_by_mode(
    mince_path: str, votes_path: str, sources: list[str], out: str
) -> pd.DataFrame:
    """Win share of each source in training mode (MinCE) beside inference mode (vote)."""
    train = read_table(mince_path, ["prompt_id", "winner"]).winner.value_counts(normalize=True)
    infer = read_table(votes_path, ["prompt_id", "model"]).model.value_counts(normalize=True)
    table = pd.DataFrame(
        {
            "source": sources,
            "training_mode": [float(train.get(s, 0.0)) for s in sources],
            "inference_mode": [float(infer.get(s, 0.0)) for s in sources],
        }
    )
    write_table(table, out)
    log.info("advantage by mode:\n%s", table.round(3).to_string(index=False))
    return table

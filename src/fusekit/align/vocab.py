"""Vocabulary map from a source tokenizer to a target tokenizer (FuseLLM), by bytes.

Each source token maps to a target token:

1. special tokens by role (:func:`special_pairs`: EOS to EOS, BOS to BOS, pad,
   unk; one token with several roles takes the first of EOS > BOS > pad > unk
   that the target has), else to the target special token of the same string;
2. otherwise the target token that spells the same bytes (``exact``: markers and
   byte encodings aside, across schemes: byte-level ``é`` is the single byte
   0xE9 and is *not* the letter é): the token of the same string when it spells
   the same bytes (so a vocabulary maps onto itself as the identity), else a
   real token before a byte-fallback one;
3. otherwise the target token at minimum edit distance between canonical
   spellings; ties go to a real token before a byte-fallback token before a
   special token, then to the lowest id.

FuseLLM brute-forces step 3 in Python over a 64-process pool. Here the exact
matches are a dictionary lookup, and the nearest search (:func:`_nearest`) finds
the neighbours at distance 1 by symmetric deletion and the rest with rapidfuzz
``cdist`` in C over rings of candidate length; both are exact.
Source: FuseLLM ``src/utils/vocab_mapping.py`` (fanqiwan/FuseAI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusekit.align.tokens import BYTE_FALLBACK, canonical_tokens

ROLE_PRECEDENCE = ("eos", "bos", "pad", "unk")


@dataclass(frozen=True)
class VocabMap:
    target_id: np.ndarray  # int64 [n_source]: the target id of each source id
    exact: np.ndarray  # bool [n_source]: same bytes (or a special token mapped by role/name)
    distance: np.ndarray  # int64 [n_source]: edit distance to the chosen target token

    def __len__(self) -> int:
        return len(self.target_id)


def vocab_list(vocab) -> list[str]:
    """Token strings indexed by id from a ``{token: id}`` dict or a list.

    Raises ValueError when the ids are not 0..n-1 without gaps.
    """
    if isinstance(vocab, dict):
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError("vocabulary ids must be 0..n-1 without gaps")
        out = [""] * len(ids)
        for tok, i in vocab.items():
            out[i] = tok
        return out
    return list(vocab)


def special_pairs(
    source_roles: dict[str, int | None], target_roles: dict[str, int | None]
) -> tuple[dict[int, int], dict[int, str]]:
    """Special tokens mapped by role.

    ``*_roles``: role (``eos``, ``bos``, ``pad``, ``unk``) -> token id or None.
    A source id holding several roles (GPT-NeoX / MPT: ``<|endoftext|>`` is BOS,
    EOS and UNK) takes the first role of :data:`ROLE_PRECEDENCE` that the target
    has. Returns ``{source_id: target_id}`` and ``{source_id: role used}``.
    """
    pairs: dict[int, int] = {}
    used: dict[int, str] = {}
    for role in ROLE_PRECEDENCE:
        s, t = source_roles.get(role), target_roles.get(role)
        if s is None or t is None or s in pairs:
            continue
        pairs[s], used[s] = t, role
    return pairs, used


def _deletions(strings: list[str], ids: np.ndarray):
    """Every string under itself and its one-character deletions: (id, key) columns
    (duplicate keys of one string are harmless: the join is de-duplicated)."""
    keys = [v for x in strings for v in (x, *(x[:i] + x[i + 1 :] for i in range(len(x))))]
    return np.repeat(ids, [len(x) + 1 for x in strings]), keys


def _within_one(queries: list[str], todo: np.ndarray, cands: list[str]):
    """Queries with a candidate at edit distance 1, found exactly by symmetric deletion:
    ``lev(a, b) <= 1`` implies that ``a`` and ``b`` become equal after deleting at most
    one character from each, so joining both sides on themselves and their one-character
    deletions finds every candidate within distance 1 (SymSpell's lemma); rapidfuzz
    ``cpdist`` then checks each joined pair in C. Returns the settled query indices, for
    each the first candidate (in order) at its minimum distance (0 or 1), and that
    distance."""
    import pandas as pd
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cpdist

    qi, qk = _deletions([queries[i] for i in todo], todo)
    ci, ck = _deletions(cands, np.arange(len(cands)))
    pairs = (
        pd.DataFrame({"q": qi, "key": qk})
        .merge(pd.DataFrame({"c": ci, "key": ck}), on="key")[["q", "c"]]
        .drop_duplicates()
    )
    if pairs.empty:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    d = cpdist(
        [queries[i] for i in pairs.q.to_numpy()],
        [cands[i] for i in pairs.c.to_numpy()],
        scorer=Levenshtein.distance,
        dtype=np.uint8,
        score_cutoff=1,
        workers=-1,
    )
    pairs = pairs.assign(d=d)
    near = pairs[pairs.d <= 1].sort_values(["q", "d", "c"]).drop_duplicates("q")
    return (
        near.q.to_numpy(dtype=np.int64),
        near.c.to_numpy(dtype=np.int64),
        near.d.to_numpy(dtype=np.int64),
    )


def _nearest(
    queries: list[str], candidates: list[str], chunk: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each query the index of the first candidate at minimum edit distance, and the
    distance; candidates come in preference order, so the first minimum is the preferred
    tie. Exact, and fast where most queries have a near neighbour:

    1. distance 1 by symmetric deletion (:func:`_within_one`);
    2. the rest by rapidfuzz ``cdist`` in C, ring by ring of candidate length: a
       candidate whose length differs from the query's by more than ``D`` is farther
       than ``D``, so once the best candidate within ``|len - L| <= D`` is at most ``D``
       away it is the answer. Rings ``D`` = 2, 4, 8, ... each compare only the
       candidates not compared before, keeping a running (distance, index) minimum.
    """
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    best = np.zeros(len(queries), dtype=np.int64)
    dist = np.zeros(len(queries), dtype=np.int64)
    todo = np.arange(len(queries))
    done, picks, near = _within_one(queries, todo, candidates)
    best[done], dist[done] = picks, near
    todo = np.setdiff1d(todo, done, assume_unique=True)
    # bytes compare faster than str in rapidfuzz; canonical tokens are latin-1 already
    q_bytes = [q.encode("latin-1") for q in queries]
    c_bytes = [c.encode("latin-1") for c in candidates]
    c_len = np.array([len(c) for c in c_bytes])
    q_len = np.array([len(q) for q in q_bytes])
    run_d = np.full(len(queries), np.iinfo(np.int64).max, dtype=np.int64)
    run_i = np.full(len(queries), -1, dtype=np.int64)
    longest = int(c_len.max(initial=0)) + int(q_len.max(initial=0))
    inner, band = -1, 2
    while len(todo):
        final = band > longest
        for length in np.unique(q_len[todo]).tolist():
            group = todo[q_len[todo] == length]
            gap = np.abs(c_len - length)
            cand = np.flatnonzero((gap > inner) & (final | (gap <= band)))
            if len(cand) == 0:
                continue
            pool = [c_bytes[i] for i in cand]
            for start in range(0, len(group), chunk):
                idx = group[start : start + chunk]
                small = not final and band < 255
                d = cdist(  # uint8 is faster; in rings below 255, 255 means "far"
                    [q_bytes[i] for i in idx],
                    pool,
                    scorer=Levenshtein.distance,
                    dtype=np.uint8 if small else np.int32,
                    score_cutoff=254 if small else None,
                    workers=workers,
                )
                arg = d.argmin(axis=1)  # the first minimum: the preferred candidate
                low = d[np.arange(len(idx)), arg].astype(np.int64)
                pick = cand[arg]
                if small:  # 255 is "more than 254", not a distance: never kept
                    low[low >= 255] = np.iinfo(np.int64).max
                better = (low < run_d[idx]) | ((low == run_d[idx]) & (pick < run_i[idx]))
                run_d[idx[better]], run_i[idx[better]] = low[better], pick[better]
        settled = run_d[todo] <= (np.iinfo(np.int64).max if final else band)
        best[todo[settled]], dist[todo[settled]] = run_i[todo[settled]], run_d[todo[settled]]
        todo = todo[~settled]
        inner, band = band, band * 2
    return best, dist


def map_vocab(
    source_vocab,
    target_vocab,
    source_scheme: str | None = None,
    target_scheme: str | None = None,
    fixed: dict[int, int] | None = None,
    source_specials=(),
    target_specials=(),
    chunk: int = 4096,
    workers: int = -1,
) -> VocabMap:
    """Map every source id to a target id (the rules of the module docstring).

    ``source_vocab`` / ``target_vocab``: a ``{token: id}`` dict (a tokenizer's
    ``get_vocab()``) or a list of token strings indexed by id; schemes as in
    :func:`fusekit.align.tokens.canonical_tokens` (detected when None).
    ``fixed``: forced pairs (special tokens by role, :func:`special_pairs`),
    counted as exact. ``*_specials``: special token strings, which match only
    specials of the same string and spell as themselves.
    Returns a :class:`VocabMap` of length ``len(source_vocab)``.
    Raises ValueError on an empty vocabulary.
    """
    src_raw, tgt_raw = vocab_list(source_vocab), vocab_list(target_vocab)
    if not src_raw or not tgt_raw:
        raise ValueError("cannot map an empty vocabulary")
    s_special, t_special = frozenset(source_specials), frozenset(target_specials)
    src = canonical_tokens(src_raw, source_scheme, s_special)
    tgt = canonical_tokens(tgt_raw, target_scheme, t_special)

    def rank(i: int) -> tuple[int, int]:
        t = tgt_raw[i]
        return (2 if t in t_special else 1 if BYTE_FALLBACK.match(t) else 0, i)

    order = np.array(sorted(range(len(tgt)), key=rank), dtype=np.int64)
    by_bytes: dict[str, int] = {}
    by_string: dict[str, int] = {}
    for i in order.tolist():
        by_string.setdefault(tgt_raw[i], i)
        if tgt_raw[i] not in t_special:
            by_bytes.setdefault(tgt[i], i)

    def exact_id(raw: str, canon: str) -> int:
        same = by_string.get(raw, -1)
        if raw in s_special:  # a special matches only a special of the same string
            return same if raw in t_special else -1
        if same >= 0 and tgt[same] == canon and raw not in t_special:
            return same
        return by_bytes.get(canon, -1)

    target_id = np.array(
        [exact_id(r, c) for r, c in zip(src_raw, src, strict=True)], dtype=np.int64
    )
    for s, t in (fixed or {}).items():
        target_id[s] = t
    exact = target_id >= 0
    distance = np.zeros(len(src), dtype=np.int64)
    todo = np.flatnonzero(~exact)
    if len(todo):
        cands = [tgt[i] for i in order.tolist()]
        best, dist = _nearest([src[i] for i in todo], cands, chunk, workers)
        target_id[todo], distance[todo] = order[best], dist
    return VocabMap(target_id, exact, distance)


def vocab_map_report(
    vmap: VocabMap,
    source_vocab,
    target_vocab,
    specials: dict[int, str] | None = None,
) -> dict:
    """A summary to write beside a map: sizes, exact share, a histogram of the
    distances of the non-exact ids (0, 1, 2, 3, 4+), how many ids went to
    byte-fallback target tokens (in all, and by the nearest search), and how each
    source special token mapped
    (``specials``: source id -> rule, e.g. ``role eos`` or ``name``)."""
    src_raw, tgt_raw = vocab_list(source_vocab), vocab_list(target_vocab)
    near = vmap.distance[~vmap.exact]
    hist = {str(d): int((near == d).sum()) for d in range(4)}
    hist["4+"] = int((near >= 4).sum())
    fallback = np.array([BYTE_FALLBACK.match(t) is not None for t in tgt_raw])
    return {
        "source_size": len(src_raw),
        "target_size": len(tgt_raw),
        "exact": int(vmap.exact.sum()),
        "exact_share": round(float(vmap.exact.mean()), 6),
        "nearest_distance_histogram": hist,
        "to_byte_fallback": int(fallback[vmap.target_id].sum()),
        "nearest_to_byte_fallback": int(fallback[vmap.target_id[~vmap.exact]].sum()),
        "specials": [
            {
                "source_id": int(s),
                "source_token": src_raw[s],
                "target_id": int(vmap.target_id[s]),
                "target_token": tgt_raw[int(vmap.target_id[s])],
                "rule": rule,
            }
            for s, rule in sorted((specials or {}).items())
        ],
    }

"""Dynamic-programming alignment of two tokenizations (FuseLLM's DTW), fast.

Cost of matching token i of ``base`` with token j of ``other``: the edit
distance between their canonical spellings with spaces removed. The
cumulative cost ``D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``
is compiled with numba; without numba it is computed a row at a time: with
``a_j = min(D[i-1, j], D[i-1, j-1])`` and the row's prefix sums ``S``,
``D[i, j] = S_j + min_{k <= j}(a_k + C[i, k] - S_k)``, a cumulative minimum
numpy does in one pass. The cost matrix comes from rapidfuzz in C. The path
is traced back from the last cell preferring the diagonal, then up, then
left, exactly as FuseLLM's reference loop does (:func:`align_tokens_reference`),
so both return the same path.
"""

from __future__ import annotations

import numpy as np

from fusekit.align.tokens import canonical_tokens

_INF = np.iinfo(np.int64).max // 4


def _prepare(base, other, base_scheme, other_scheme, check_text) -> tuple[list[str], list[str]]:
    if len(base) == 0 or len(other) == 0:
        raise ValueError(
            f"cannot align an empty token sequence (lengths {len(base)} and {len(other)})"
        )
    a = [t.replace(" ", "") for t in canonical_tokens(base, base_scheme)]
    b = [t.replace(" ", "") for t in canonical_tokens(other, other_scheme)]
    if check_text:
        ta, tb = "".join(a), "".join(b)
        if ta != tb:
            k = next(
                (i for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y),
                min(len(ta), len(tb)),
            )
            raise ValueError(
                "the two tokenizations do not cover the same text: they differ at character "
                f"{k} ({ta[max(0, k - 10) : k + 10]!r} vs {tb[max(0, k - 10) : k + 10]!r})"
            )
    return a, b


def coded_costs(a: list[str], b: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edit distances between the distinct tokens of each side (computed once per
    distinct pair, in C by rapidfuzz) and each position's code: ``cost[i, j] =
    small[codes_a[i], codes_b[j]]``."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    seen_a: dict[str, int] = {}
    seen_b: dict[str, int] = {}
    ia = np.fromiter((seen_a.setdefault(t, len(seen_a)) for t in a), dtype=np.int64, count=len(a))
    ib = np.fromiter((seen_b.setdefault(t, len(seen_b)) for t in b), dtype=np.int64, count=len(b))
    small = cdist(
        list(seen_a), list(seen_b), scorer=Levenshtein.distance, dtype=np.int32, workers=1
    )
    return small.astype(np.int64), ia, ib


def cost_matrix(a: list[str], b: list[str]) -> np.ndarray:
    """The full [len(a), len(b)] matrix of edit distances."""
    small, ia, ib = coded_costs(a, b)
    return small[ia[:, None], ib[None, :]]


def cumulative_cost_numpy(cost: np.ndarray) -> np.ndarray:
    """The DTW matrix D (same shape as ``cost``), one vectorised pass per row
    (the fallback where numba is missing)."""
    n, m = cost.shape
    s = np.cumsum(cost, axis=1)
    c_minus_s = cost - s
    d = np.empty((n, m), dtype=np.int64)
    a = np.full(m, _INF, dtype=np.int64)
    a[0] = 0
    for i in range(n):
        if i:
            prev = d[i - 1]
            a[0] = prev[0]
            np.minimum(prev[1:], prev[:-1], out=a[1:])
        row = d[i]
        np.add(a, c_minus_s[i], out=row)
        np.minimum.accumulate(row, out=row)
        row += s[i]
    return d


def _dtw_loops(small, ia, ib):
    """D from coded costs, and the trace-back path (FuseLLM's tie order) as two arrays."""
    n, m = len(ia), len(ib)
    d = np.empty((n, m), dtype=np.int64)
    d[0, 0] = small[ia[0], ib[0]]
    for j in range(1, m):
        d[0, j] = d[0, j - 1] + small[ia[0], ib[j]]
    for i in range(1, n):
        row = small[ia[i]]
        d[i, 0] = d[i - 1, 0] + row[ib[0]]
        for j in range(1, m):
            best = d[i - 1, j - 1]
            if d[i - 1, j] < best:
                best = d[i - 1, j]
            if d[i, j - 1] < best:
                best = d[i, j - 1]
            d[i, j] = row[ib[j]] + best
    pi = np.empty(n + m, dtype=np.int64)
    pj = np.empty(n + m, dtype=np.int64)
    i, j, k = n - 1, m - 1, 0
    pi[0], pj[0] = i, j
    while i > 0 or j > 0:
        big = np.iinfo(np.int64).max
        diag = d[i - 1, j - 1] if i > 0 and j > 0 else big
        up = d[i - 1, j] if i > 0 else big
        left = d[i, j - 1] if j > 0 else big
        if diag <= up and diag <= left:
            i -= 1
            j -= 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
        k += 1
        pi[k], pj[k] = i, j
    return d, pi[: k + 1][::-1].copy(), pj[: k + 1][::-1].copy()


try:  # numba compiles the plain loops (about 2 ms for 1024 x 1024); cached on disk
    import numba

    _dtw_jit = numba.njit(cache=True)(_dtw_loops)
except ImportError:  # pragma: no cover - numba is a dependency; numpy still works
    _dtw_jit = None


def cumulative_cost(cost: np.ndarray) -> np.ndarray:
    """The DTW matrix D: compiled loops with numba, else the numpy row recurrence."""
    cost = np.ascontiguousarray(cost, dtype=np.int64)
    if _dtw_jit is None:
        return cumulative_cost_numpy(cost)
    n, m = cost.shape
    return _dtw_jit(cost, np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64))[0]


def trace_back(d: np.ndarray) -> list[tuple[int, int]]:
    """The alignment path from (0, 0) to the last cell, FuseLLM's tie order."""
    i, j = d.shape[0] - 1, d.shape[1] - 1
    path = [(i, j)]
    inf = float("inf")
    at = d.item
    while i > 0 or j > 0:
        diag = at(i - 1, j - 1) if i > 0 and j > 0 else inf
        up = at(i - 1, j) if i > 0 else inf
        left = at(i, j - 1) if j > 0 else inf
        if diag <= up and diag <= left:
            i, j = i - 1, j - 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
        path.append((i, j))
    path.reverse()
    return path


def align_tokens(
    base,
    other,
    base_scheme: str | None = None,
    other_scheme: str | None = None,
    check_text: bool = True,
) -> list[tuple[int, int]]:
    """Align two token-string sequences of the same text; returns the path as (i, j) pairs,
    i indexing ``base`` and j ``other``, from (0, 0) to (len(base)-1, len(other)-1).

    Schemes are detected from the tokens when not given (``byte_level``,
    ``metaspace``, ``plain``). With ``check_text`` the two sequences must spell
    the same text (spaces aside), else ValueError says where they differ.
    """
    a, b = _prepare(base, other, base_scheme, other_scheme, check_text)
    small, ia, ib = coded_costs(a, b)
    if _dtw_jit is None:
        return trace_back(cumulative_cost_numpy(small[ia[:, None], ib[None, :]]))
    _, pi, pj = _dtw_jit(small, ia, ib)
    return list(zip(pi.tolist(), pj.tolist(), strict=True))


def align_tokens_reference(
    base,
    other,
    base_scheme: str | None = None,
    other_scheme: str | None = None,
    check_text: bool = True,
) -> list[tuple[int, int]]:
    """The straightforward pure-Python DP with one ``editdistance.eval`` per cell, as in
    FuseLLM; kept as the baseline that tests and benchmarks compare against."""
    import editdistance

    a, b = _prepare(base, other, base_scheme, other_scheme, check_text)
    n, m = len(a), len(b)
    inf = float("inf")
    d = [[inf] * (m + 1) for _ in range(n + 1)]
    d[0][0] = 0
    for i in range(n):
        for j in range(m):
            d[i + 1][j + 1] = editdistance.eval(a[i], b[j]) + min(d[i][j + 1], d[i + 1][j], d[i][j])
    inner = [row[1:] for row in d[1:]]
    return trace_back(np.array(inner, dtype=np.int64))

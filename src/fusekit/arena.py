"""Arena-Hard v0.1: the judge prompt, verdict parsing, battles and Bradley-Terry scores.

arena-hard-auto is not a package, so its v0.1 protocol is restated here:

* **Files** (FORMATS.md): questions ``question.jsonl`` (``question_id``, ``category``,
  ``cluster``, ``turns: [{content}]``), answers ``model_answer/<model>.jsonl``
  (``question_id``, ``answer_id``, ``model_id``, ``choices: [{index, turns: [{content,
  token_len}]}]``, ``tstamp``).
* **Judging**: two games per question. Game 1 shows the *baseline* as assistant A and the
  evaluated model as B; game 2 swaps them. The conversation is the system prompt
  :data:`JUDGE_SYSTEM_PROMPT` and one user turn :data:`JUDGE_PROMPT_TEMPLATE`; when the
  judgment carries no verdict, the judge is asked to :data:`CONTINUE_PROMPT` (up to
  ``number_of_judgment_attempts`` turns in all) and the turns are concatenated.
* **Verdicts**: :func:`parse_verdict`, arena-hard's ``get_score`` rule.
* **Scores**: :func:`battles_from_judgments` then :func:`bradley_terry_scores`.
"""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pandas as pd

log = logging.getLogger("fusekit")

# arena-hard-auto config/judge_config.yaml (v0.1), reproduced as data: it defines the benchmark.
JUDGE_SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user prompt displayed below. You will be given assistant A's answer and "
    "assistant B's answer. Your job is to evaluate which assistant's answer is better.\n\n"
    "Begin your evaluation by generating your own answer to the prompt. You must provide your "
    "answers before judging any answers.\n\n"
    "When evaluating the assistants' answers, compare both assistants' answers with your answer. "
    "You must identify and correct any mistakes or inaccurate information.\n\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means "
    "the answer correctly responds to the prompt or follows the instructions. Note when user "
    "prompt has any ambiguity or more than one interpretation, it is more helpful and appropriate "
    "to ask for clarifications or more information from the user than providing an answer based "
    "on assumptions. Relevant means all parts of the response closely connect or are appropriate "
    "to what is being asked. Concise means the response is clear and not verbose or excessive.\n\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. Finally, "
    "identify any missing important information in the assistants' answers that would be "
    "beneficial to include when responding to the user prompt.\n\n"
    "After providing your explanation, you must output only one of the following choices as your "
    "final verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
JUDGE_PROMPT_TEMPLATE = (
    "<|User Prompt|>\n{question_1}\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_1}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_2}\n<|The End of Assistant B's Answer|>"
)
CONTINUE_PROMPT = "continue your judgment and finish by outputting a final verdict label"
VERDICT_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")
VERDICTS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
JUDGMENT_COLUMNS = (
    "question_id",
    "model",
    "baseline",
    "judge",
    "game",
    "user_prompt",
    "judgment",
    "score",
)
BATTLE_COLUMNS = ("question_id", "game", "model_a", "model_b", "winner")
SCORE_COLUMNS = ("model", "score", "lower", "upper", "rating", "n_battles", "rounds_missing")

# Elo scale of arena-hard's compute_mle_elo: rating = INIT + SCALE * log_BASE-odds
SCALE, BASE, INIT_RATING = 400.0, 10.0, 1000.0


def verdict(text: str) -> tuple[str | None, bool]:
    """``(label, try_again)`` by arena-hard's ``get_score``: the distinct non-empty matches of
    ``[[...]]``; one distinct label is the verdict; none means "ask the judge to continue";
    several different ones mean no verdict and no retry."""
    matches = {m for m in VERDICT_PATTERN.findall(text) if m != ""}
    if not matches:
        return None, True
    if len(matches) == 1:
        return matches.pop().strip("\n"), False
    return None, False


def parse_verdict(text: str) -> str | None:
    """The verdict label in a judgment (e.g. ``"A>B"``), or ``None``.

    Rule of arena-hard v0.1: all matches of ``\\[\\[([AB<>=]+)\\]\\]``; the same label
    repeated counts once; no match or two different labels give ``None``. A single label
    outside :data:`VERDICTS` (e.g. ``"A<B"``) is returned as matched, like arena-hard, and
    dropped later by :func:`battles_from_judgments`.
    """
    return verdict(text)[0]


def judge_prompt(question: str, answer_a: str, answer_b: str) -> list[dict]:
    """The v0.1 judge conversation for one game: system prompt and one user turn."""
    return [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": JUDGE_PROMPT_TEMPLATE.format(
                question_1=question, answer_1=answer_a, answer_2=answer_b
            ),
        },
    ]


_GAME1 = {"A>>B": ("model_a", True), "A>B": ("model_a", False), "A=B": ("tie", False)}
_GAME1 |= {"B>A": ("model_b", False), "B>>A": ("model_b", True)}
_SWAP = {"model_a": "model_b", "model_b": "model_a", "tie": "tie"}


def battles_from_judgments(judgments: pd.DataFrame, weight: int = 3) -> pd.DataFrame:
    """Battle rows (:data:`BATTLE_COLUMNS`) from per-game judgments (:data:`JUDGMENT_COLUMNS`:
    at least ``question_id``, ``model``, ``baseline``, ``game`` and ``score``).

    As arena-hard v0.1's ``show_result.py``: every battle has ``model_a`` = the baseline and
    ``model_b`` = the model. In game 1 the baseline was assistant A, so ``A>B`` means the
    baseline won; in game 2 the model was A, so ``A>B`` means the model won. ``A=B`` is a
    ``'tie'``. Strong verdicts (``>>``) are repeated ``weight`` times; games without a
    verdict (or with a label outside :data:`VERDICTS`) are dropped and counted in the log.
    """
    missing = {"question_id", "model", "baseline", "game", "score"} - set(judgments.columns)
    if missing:
        raise ValueError(f"judgments: missing columns {sorted(missing)}")
    rows, dropped = [], 0
    for r in judgments.itertuples(index=False):
        if r.score not in _GAME1:
            dropped += 1
            continue
        winner, strong = _GAME1[r.score]
        if int(r.game) == 2:
            winner = _SWAP[winner]
        elif int(r.game) != 1:
            raise ValueError(f"judgments: game must be 1 or 2, got {r.game!r}")
        row = (r.question_id, int(r.game), r.baseline, r.model, winner)
        rows.extend([row] * (weight if strong else 1))
    if dropped:
        log.warning("arena: %d of %d games have no valid verdict; dropped", dropped, len(judgments))
    return pd.DataFrame(rows, columns=list(BATTLE_COLUMNS))


def _check_connected(battles: pd.DataFrame, baseline: str) -> None:
    edges: dict[str, set[str]] = {}
    for a, b in zip(battles.model_a, battles.model_b, strict=True):
        edges.setdefault(a, set()).add(b)
        edges.setdefault(b, set()).add(a)
    if baseline not in edges:
        raise ValueError(f"baseline {baseline!r} is in no battle")
    seen, todo = {baseline}, [baseline]
    while todo:
        for n in edges[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    cut = sorted(set(edges) - seen)
    if cut:
        raise ValueError(f"models {cut} are not connected to the baseline {baseline!r} by battles")


def _design(battles: pd.DataFrame, models: list[str], baseline: str):
    """Rows for the weighted logistic regression: each battle twice (a wins with weight s,
    b wins with weight 1 - s; s = 1, 0 or 0.5 for a tie)."""
    free = [m for m in models if m != baseline]
    col = {m: i for i, m in enumerate(free)}
    n = len(battles)
    X = np.zeros((n, len(free)))
    for j, (a, b) in enumerate(zip(battles.model_a, battles.model_b, strict=True)):
        if a in col:
            X[j, col[a]] += 1.0
        if b in col:
            X[j, col[b]] -= 1.0
    s = np.select([battles.winner == "model_a", battles.winner == "tie"], [1.0, 0.5], 0.0)
    bad = ~battles.winner.isin(["model_a", "model_b", "tie"])
    if bad.any():
        raise ValueError(f"battles: unknown winner values {sorted(set(battles.winner[bad]))}")
    return X, s, free


def _fit(X: np.ndarray, s: np.ndarray, l2: float) -> np.ndarray:
    """Natural-log BT strengths by Newton's method on the penalised log-likelihood
    sum_j s_j log sigma(x_j theta) + (1 - s_j) log sigma(-x_j theta) - l2/2 |theta|^2."""
    theta = np.zeros(X.shape[1])
    if X.shape[1] == 0:
        return theta
    eye = np.eye(X.shape[1])
    for _ in range(200):
        z = X @ theta
        p = 1.0 / (1.0 + np.exp(-z))
        grad = X.T @ (s - p) - l2 * theta
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * eye
        step = np.linalg.solve(hess, grad)
        # damp huge steps (separable data, where theta walks out to the L2 balance point)
        big = np.max(np.abs(step))
        if big > 5.0:
            step *= 5.0 / big
        theta = theta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def _win_rates(battles: pd.DataFrame, models: list[str], baseline: str, l2: float) -> np.ndarray:
    """Strengths of ``models`` (baseline 0); NaN for a model in no battle of ``battles``
    (and for every model when the baseline is in none): nothing was measured."""
    present = set(battles.model_a) | set(battles.model_b)
    if baseline not in present:
        return np.full(len(models), np.nan)
    fitted = [m for m in models if m in present]
    X, s, free = _design(battles, fitted, baseline)
    theta = dict(zip(free, _fit(X, s, l2), strict=True))
    return np.array([theta.get(m, 0.0) if m in present else np.nan for m in models])


def bradley_terry_scores(
    battles: pd.DataFrame,
    baseline: str,
    rounds: int = 100,
    seed: int = 0,
    l2: float = 1e-4,
) -> pd.DataFrame:
    """Arena-Hard scores: each model's win rate (%) against ``baseline`` under a
    Bradley-Terry model fitted by maximum likelihood, with a bootstrap interval.

    ``battles`` has columns ``model_a``, ``model_b`` and ``winner`` (``'model_a'``,
    ``'model_b'`` or ``'tie'``), one row per battle; strong verdicts are already repeated
    (see :func:`battles_from_judgments`).

    The fit is arena-hard v0.1's ``compute_mle_elo`` restated: logistic regression without
    intercept of "a beats b" on ``+1`` for a and ``-1`` for b, where a win counts as one
    win, a loss as one loss and a tie as half a win and half a loss (two rows of weight
    1/2); strengths ``theta`` are in natural-log odds, the baseline's is fixed at 0 (so
    its win rate is exactly 50), and ``rating = 1000 + 400 * theta / ln 10`` is the same
    number on arena-hard's Elo scale (base 10, scale 400, anchored at 1000).
    ``score = 100 * sigmoid(theta_model - theta_baseline)``.

    Unlike arena-hard (``penalty=None``), a tiny L2 penalty ``l2/2 * |theta|^2`` keeps the
    estimate finite when a model wins (or loses) every battle: such a model scores close
    to, but not exactly, 100 (0). With ``l2=1e-4`` and 10 battles all won, the score is
    about 99.99; on ordinary data the penalty moves scores by far less than 0.01 points.
    With only battles against the baseline, each model's score equals its tie-adjusted
    empirical win rate ``(wins + ties / 2) / battles``.

    The interval is the 2.5th and 97.5th percentile of the score over ``rounds``
    bootstrap rounds, each resampling the battle rows with replacement (``seed`` fixes
    the draws); ``score`` itself is the fit on all battles. A round that draws no battle
    of a model measures nothing about it: as in arena-hard v0.1 (a NaN in its bootstrap
    frame, and ``np.percentile`` of a column with NaN is NaN), that model's ``lower`` and
    ``upper`` are NaN, ``rounds_missing`` counts such rounds and a warning names the
    model. (Filling the gap with the baseline's strength would put a bound at exactly 50.)

    Returns :data:`SCORE_COLUMNS`, best first: ``model``, ``score``, ``lower``,
    ``upper`` (percent; NaN when ``rounds_missing`` > 0), ``rating`` (Elo scale),
    ``n_battles`` (rows involving the model) and ``rounds_missing``.
    """
    missing = {"model_a", "model_b", "winner"} - set(battles.columns)
    if missing:
        raise ValueError(f"battles: missing columns {sorted(missing)}")
    if battles.empty:
        raise ValueError("battles: no battles to score")
    battles = battles.reset_index(drop=True)
    _check_connected(battles, baseline)
    models = sorted(set(battles.model_a) | set(battles.model_b))
    theta = _win_rates(battles, models, baseline, l2)
    rng = np.random.default_rng(seed)
    boot = np.empty((rounds, len(models)))
    for r in range(rounds):
        sample = battles.iloc[rng.integers(0, len(battles), len(battles))]
        boot[r] = _win_rates(sample, models, baseline, l2)
    pct = lambda t: 100.0 / (1.0 + np.exp(-t))  # noqa: E731
    counts = pd.concat([battles.model_a, battles.model_b]).value_counts()
    lower, upper = (
        np.percentile(pct(boot), [2.5, 97.5], axis=0) if rounds else (pct(theta), pct(theta))
    )
    missing = np.isnan(boot).sum(axis=0).astype(int)
    for m, k in zip(models, missing, strict=True):
        if k:
            log.warning(
                "arena: %s is in no battle of %d of %d bootstrap rounds; its interval is NaN "
                "(more battles, or fewer rounds, give one)",
                m,
                k,
                rounds,
            )
    out = pd.DataFrame(
        {
            "model": models,
            "score": pct(theta),
            "lower": lower,
            "upper": upper,
            "rating": INIT_RATING + SCALE * theta / math.log(BASE),
            "n_battles": [int(counts.get(m, 0)) for m in models],
            "rounds_missing": missing,
        }
    )
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def win_rate_standard_error(battles: pd.DataFrame, model: str) -> float:
    """The standard error (percentage points) of ``model``'s tie-adjusted win rate
    against the baseline, ``100 * sum(a_q) / sum(n_q)``, over its battles' questions.

    ``battles``: :data:`BATTLE_COLUMNS` rows (:func:`battles_from_judgments`, strong
    verdicts repeated). Per question ``q``: ``a_q`` the model's wins (a tie counts 1/2),
    ``n_q`` its battles. The battles of one question (both games, the repeats of a strong
    verdict) are not independent, so the question is the sampling unit: the ratio
    estimator's linearised (delta-method) variance ``Q / (Q - 1) * sum((a_q - p n_q)^2) /
    (sum n_q)^2`` (Cochran, *Sampling Techniques*, 3rd ed., eq. 6.13, without the
    finite-population correction). With only battles against the baseline the Bradley-Terry
    score of :func:`bradley_terry_scores` is this win rate, so this is its standard error.
    Raises ValueError for a model with battles on fewer than 2 questions."""
    mine = battles[(battles.model_a == model) | (battles.model_b == model)]
    if mine.question_id.nunique() < 2:
        raise ValueError(f"arena: {model!r} has battles on fewer than 2 questions")
    won = np.where(
        mine.winner == "tie",
        0.5,
        np.where(
            ((mine.winner == "model_b") & (mine.model_b == model))
            | ((mine.winner == "model_a") & (mine.model_a == model)),
            1.0,
            0.0,
        ),
    )
    per_q = pd.DataFrame({"q": mine.question_id.to_numpy(), "a": won}).groupby("q")["a"]
    a, n = per_q.sum().to_numpy(), per_q.size().to_numpy().astype(float)
    p, q = a.sum() / n.sum(), len(a)
    return float(100.0 * math.sqrt(q / (q - 1) * np.sum((a - p * n) ** 2)) / n.sum())


# ---------------------------------------------------------------- files and judging


def read_jsonl(path: str) -> list[dict]:
    """The records of a JSON-lines file; a line that is not a JSON object (a truncated
    last line, say) raises :class:`fusekit.checks.DataError` naming the file and line."""
    from fusekit.checks import read_jsonl as read

    return read(path)


def load_questions(path: str) -> pd.DataFrame:
    """Arena-Hard questions as a frame: ``question_id``, ``category``, ``cluster``,
    ``prompt`` (the first turn's content)."""
    recs = read_jsonl(path)
    for i, r in enumerate(recs):
        if "question_id" not in r or not r.get("turns"):
            raise ValueError(f"{path}: line {i + 1} has no question_id or turns")
    return pd.DataFrame(
        {
            "question_id": [str(r["question_id"]) for r in recs],
            "category": [r.get("category", "") for r in recs],
            "cluster": [r.get("cluster", "") for r in recs],
            "prompt": [r["turns"][0]["content"] for r in recs],
        }
    )


def load_answers(path: str) -> dict[str, str]:
    """question_id -> the first choice's first turn, from a ``model_answer`` JSONL file."""
    out = {}
    for i, r in enumerate(read_jsonl(path)):
        try:
            out[str(r["question_id"])] = r["choices"][0]["turns"][0]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"{path}: line {i + 1} is not an arena-hard model answer") from err
    return out


def answer_record(question_id: str, model: str, content: str, token_len: int) -> dict:
    """One line of arena-hard's ``model_answer/<model>.jsonl``."""
    import hashlib

    answer_id = hashlib.sha256(f"{model}\0{question_id}\0{content}".encode()).hexdigest()[:22]
    return {
        "question_id": question_id,
        "answer_id": answer_id,
        "model_id": model,
        "choices": [{"index": 0, "turns": [{"content": content, "token_len": int(token_len)}]}],
        "tstamp": 0.0,
    }


def answers_from_generations(generations: pd.DataFrame, questions: pd.DataFrame) -> list[dict]:
    """arena-hard ``model_answer`` records from a generations table (sample 0 of each
    prompt; ``prompt_id`` is the ``question_id``). Every question must have an answer."""
    gens = generations[generations["sample"] == 0].set_index("prompt_id")
    missing = sorted(set(questions.question_id) - set(gens.index))
    if missing:
        raise ValueError(
            f"generations lack answers to {len(missing)} questions, e.g. {missing[:3]}"
        )
    return [
        answer_record(q, gens.at[q, "model"], gens.at[q, "response"], gens.at[q, "n_tokens"])
        for q in questions.question_id
    ]


def judge_arena(
    questions: pd.DataFrame,
    answers: dict[str, str],
    baseline_answers: dict[str, str],
    model: str,
    baseline: str,
    judge,
    attempts: int = 2,
    settings: dict | None = None,
) -> pd.DataFrame:
    """Judge every question in both games with ``judge`` (a :class:`fusekit.judges.Judge`).

    Game 1: baseline = A, model = B; game 2: model = A, baseline = B. A judgment without a
    verdict is continued (:data:`CONTINUE_PROMPT`) up to ``attempts`` judge turns, as
    arena-hard's ``number_of_judgment_attempts``. Returns :data:`JUDGMENT_COLUMNS`, one
    row per (question, game); ``score`` is the parsed label or ``None``.
    """
    for name, d in (("model", answers), ("baseline", baseline_answers)):
        missing = sorted(set(questions.question_id) - set(d))
        if missing:
            raise ValueError(f"{name} answers lack {len(missing)} questions, e.g. {missing[:3]}")
    settings = settings or {}
    games = []
    for q in questions.itertuples(index=False):
        a, b = baseline_answers[q.question_id], answers[q.question_id]
        games.append([q.question_id, 1, judge_prompt(q.prompt, a, b), "", None, True])
        games.append([q.question_id, 2, judge_prompt(q.prompt, b, a), "", None, True])
    for attempt in range(attempts):
        todo = [g for g in games if g[5]]
        if not todo:
            break
        if attempt:
            for g in todo:
                g[2] = g[2] + [{"role": "user", "content": CONTINUE_PROMPT}]
        texts = judge.judge([g[2] for g in todo], **settings)
        for g, text in zip(todo, texts, strict=True):
            g[3] += "\n" + text
            g[4], g[5] = verdict(g[3])
            g[2] = g[2] + [{"role": "assistant", "content": text}]
    return pd.DataFrame(
        [
            (qid, model, baseline, judge.name, game, conv[1]["content"], text, score)
            for qid, game, conv, text, score, _ in games
        ],
        columns=list(JUDGMENT_COLUMNS),
    )

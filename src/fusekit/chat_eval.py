"""AlpacaEval-2 and Arena-Hard v0.1 for every model a study names: one function per script.

Files (``D`` = the evaluation-set directory written by :func:`build_chat_eval_sets`)::

    D/alpaca_eval/reference_outputs.json      AlpacaEval records of the reference model
    D/alpaca_eval/prompts.parquet             the instructions as a prompt set (generation)
    D/alpaca_eval/gamed_{concise,verbose}.json  tiny world only: gamed reference outputs
    D/arena_hard/question.jsonl               Arena-Hard v0.1 questions
    D/arena_hard/model_answer/<baseline>.jsonl  the baseline's answers
    D/arena_hard/prompts.parquet              the questions as a prompt set (generation)

Models answer the two prompt sets with the ordinary generation step (their own chat
template and ``models.<name>.generation`` settings); :func:`judge_alpaca` and
:func:`judge_arena` read those generations Parquet files directly.

Caches. ``cache_dir`` holds, per model and judge configuration, the judge's call cache
(``judge-<model>-<hash>.jsonl``) and alpaca_eval's annotation cache
(``alpaca-<annotator>-<model>-<hash>.json``); ``<hash>`` is :func:`judge_fingerprint`
of the judge config (never the key, which is not in it). Keep ``cache_dir`` out of the
rules' outputs, so a rerun after a crash, or after an output was deleted, finds every
answer already paid for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from fusekit.io import atomic_path, provenance, read_table, spec_hash, write_json, write_table

log = logging.getLogger("fusekit")

ALPACA_HUB = ("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline.json")
ALPACA_HUB_REVISION = "2edc6fad8be6b14ea7230aabfd08188da6b8b814"
TABLE_COLUMNS = (
    "model",
    "lc_win_rate",
    "lc_standard_error",
    "lc_standard_error_kind",
    "win_rate",
    "standard_error",
    "arena_hard",
    "arena_hard_lower",
    "arena_hard_upper",
    "arena_hard_rounds_missing",
    "alpaca_n",
    "arena_n_battles",
    "avg_length",
)


def _write_jsonl(records: list[dict], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _prompt_set(ids, prompts, references, sources) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_id": ids,
            "prompt": prompts,
            "reference": references,
            "system": "",
            "source": sources,
        }
    )


def build_chat_eval_sets(
    out_dir: str,
    corpus_path: str | None = None,
    alpaca_reference: str | None = None,
    arena_questions: str | None = None,
    arena_baseline: str | None = None,
    per_skill: int | None = None,
) -> dict[str, int]:
    """Write the evaluation sets (see the module doc) and return their sizes.

    Tiny world: ``corpus_path`` (the corpus Parquet; :mod:`fusekit.tiny.chat_eval`), the
    first ``per_skill`` distinct eval prompts of each skill (None: all).
    Paper scale: ``alpaca_reference`` (AlpacaEval records JSON, or ``"hub"`` for
    ``alpaca_eval_gpt4_baseline.json`` of the tatsu-lab/alpaca_eval dataset at a pinned
    revision: the gpt4_turbo reference outputs, 805 rows), ``arena_questions``
    (``question.jsonl``) and ``arena_baseline`` (``model_answer/gpt-4-0314.jsonl``)
    from arena-hard-auto's ``data/arena-hard-v0.1``.
    """
    from fusekit import alpaca, arena

    out = Path(out_dir)
    if corpus_path:
        from fusekit.tiny import chat_eval as tiny
        from fusekit.tiny.world import load_corpus

        items = tiny.eval_items(load_corpus(corpus_path), per_skill)
        reference = tiny.alpaca_reference(items)
        questions = tiny.arena_questions(items)
        baseline_records = tiny.arena_baseline(items)
        baseline = tiny.REFERENCE
        for name, df in tiny.gamed_outputs(reference).items():
            alpaca.write_records(df, out / "alpaca_eval" / f"gamed_{name}.json")
    else:
        if not (alpaca_reference and arena_questions and arena_baseline):
            raise ValueError("paper scale needs alpaca_reference, arena_questions, arena_baseline")
        if alpaca_reference == "hub":  # pragma: no cover - needs the hub
            from huggingface_hub import hf_hub_download

            alpaca_reference = hf_hub_download(
                ALPACA_HUB[0], ALPACA_HUB[1], repo_type="dataset", revision=ALPACA_HUB_REVISION
            )
        reference = alpaca.read_records(alpaca_reference)
        questions = arena.read_jsonl(arena_questions)
        baseline_records = arena.read_jsonl(arena_baseline)
        baseline = Path(arena_baseline).stem
    alpaca.write_records(reference, out / "alpaca_eval" / "reference_outputs.json")
    write_table(alpaca.prompts_from_records(reference), out / "alpaca_eval" / "prompts.parquet")
    _write_jsonl(questions, out / "arena_hard" / "question.jsonl")
    _write_jsonl(baseline_records, out / "arena_hard" / "model_answer" / f"{baseline}.jsonl")
    q = arena.load_questions(str(out / "arena_hard" / "question.jsonl"))
    answers = arena.load_answers(str(out / "arena_hard" / "model_answer" / f"{baseline}.jsonl"))
    missing = sorted(set(q.question_id) - set(answers))
    if missing:
        raise ValueError(f"the baseline {baseline!r} has no answer to {len(missing)} questions")
    prompts = _prompt_set(
        q.question_id, q.prompt, [answers[i] for i in q.question_id], "arena_hard:" + q.cluster
    )
    write_table(prompts, out / "arena_hard" / "prompts.parquet")
    sizes = {"alpaca_eval": len(reference), "arena_hard": len(q)}
    log.info("chat evaluation sets in %s: %s (arena baseline %s)", out, sizes, baseline)
    return sizes


# what determines a judge's answers, by kind (each request's messages and sampling
# settings are in every cache line's own key, fusekit.judges.cache_key); caps, retries,
# back-off, timeouts, parallelism, batch size, the URL and the key's variable do not
ANSWER_KEYS = {
    "openai": ("kind", "model"),
    "local": ("kind", "path", "max_length", "tie", "strong", "temperature"),
}


def judge_fingerprint(spec: dict) -> str:
    """Hash of what determines a judge's answers (:data:`ANSWER_KEYS` of its kind); for a
    local judge also of its model files' names, sizes and modification times, so a
    rebuilt reward model never meets a stale cache. Raising ``max_calls`` or changing
    retries, timeouts or parallelism keeps the cache (nothing is paid twice)."""
    keys = ANSWER_KEYS.get(spec.get("kind"), tuple(sorted(spec)))
    parts = {"spec": {k: spec.get(k) for k in keys}}
    if spec.get("kind") == "local" and Path(spec["path"]).is_dir():
        parts["files"] = sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in Path(spec["path"]).iterdir()
            if p.is_file()
        )
    return spec_hash(parts)


def _cache(cache_dir: str | None, prefix: str, model: str, spec: dict, ext: str):
    if not cache_dir:
        return None
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return str(Path(cache_dir) / f"{prefix}-{model}-{judge_fingerprint(spec)}.{ext}")


def judge_alpaca(
    reference_path: str,
    generations_path: str,
    judge_spec: dict,
    cache_dir: str | None,
    lc_reference: str | None,
    out_table: str,
    out_metrics: str,
    annotator: str | None = None,
    threads: int = 1,
    lc_bootstrap_rounds: int = 0,
    seed: int = 0,
) -> dict:
    """AlpacaEval-2 of one model: per-item judgments (Parquet,
    :data:`fusekit.alpaca.ANNOTATION_COLUMNS`) and metrics (JSON). ``lc_bootstrap_rounds``:
    the LC's standard error where instruction difficulties are unknown
    (:func:`fusekit.alpaca.length_controlled`)."""
    from fusekit import alpaca
    from fusekit.generation import read_generations
    from fusekit.judges import load_judge

    annotator = annotator or alpaca.ANNOTATOR
    reference = alpaca.read_records(reference_path)
    outputs = alpaca.outputs_from_generations(read_generations(generations_path), reference)
    model = outputs.generator.iloc[0]
    judge = load_judge(judge_spec, _cache(cache_dir, "judge", model, judge_spec, "jsonl"), threads)
    with _run_dir(out_table) as run_dir:
        table, metrics = alpaca.evaluate_alpaca(
            outputs,
            reference,
            judge,
            run_dir,
            _cache(cache_dir, f"alpaca-{annotator}", model, judge_spec, "json"),
            lc_reference,
            annotator,
            lc_bootstrap_rounds=lc_bootstrap_rounds,
            seed=seed,
        )
    spec = {
        "judge": judge_spec,
        "annotator": annotator,
        "lc_reference": lc_reference,
        "lc_bootstrap_rounds": lc_bootstrap_rounds,
    }
    metrics["provenance"] = provenance(spec)
    write_table(table, out_table)
    write_json(metrics, out_metrics)
    return metrics


@contextlib.contextmanager
def _run_dir(path: str):
    """A scratch directory for alpaca_eval's generated annotator config."""
    with tempfile.TemporaryDirectory(prefix=f"fusekit-{Path(path).stem}-") as d:
        yield Path(d)


def build_lc_reference(
    reference_path: str,
    gamed_paths: list[str],
    judge_spec: dict,
    cache_dir: str | None,
    out: str,
    annotator: str | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """The tiny world's ``df_gamed.csv``: gamed reference outputs judged against the
    reference by the evaluation judge (:func:`fusekit.alpaca.lc_reference_table`)."""
    from fusekit import alpaca
    from fusekit.judges import load_judge

    annotator = annotator or alpaca.ANNOTATOR
    reference = alpaca.read_records(reference_path)
    gamed = {}
    for path in gamed_paths:
        outputs = alpaca.read_records(path)
        name = outputs.generator.iloc[0]
        judge = load_judge(
            judge_spec, _cache(cache_dir, "judge", name, judge_spec, "jsonl"), threads
        )
        with _run_dir(out) as run_dir:
            gamed[name] = alpaca.annotate(
                outputs,
                reference,
                judge,
                run_dir,
                _cache(cache_dir, f"alpaca-{annotator}", name, judge_spec, "json"),
                annotator,
            )
    df = alpaca.lc_reference_table(reference, gamed)
    write_table(df, out)
    return df


def answers_by_prompt(gens: pd.DataFrame, questions: pd.DataFrame, where: str) -> pd.DataFrame:
    """``gens`` (answers to another set with the same prompts) with each row's
    ``prompt_id`` replaced by the id of the question with the same prompt text; rows whose
    prompt is no question are dropped. Raises ValueError (naming ``where``) when two
    questions share a prompt text."""
    by_prompt = dict(zip(questions.prompt, questions.question_id, strict=True))
    if len(by_prompt) != len(questions):
        raise ValueError(f"{where}: prompt texts repeat; answers cannot be matched by prompt")
    return gens.assign(prompt_id=gens.prompt.map(by_prompt)).dropna(subset=["prompt_id"])


def judge_arena(
    questions_path: str,
    baseline_path: str,
    generations_path: str,
    judge_spec: dict,
    cache_dir: str | None,
    out_judgments: str,
    out_answers: str | None = None,
    attempts: int = 2,
    settings: dict | None = None,
    threads: int = 1,
    match_prompts: bool = False,
) -> pd.DataFrame:
    """Arena-Hard v0.1 judgments of one model, both games (Parquet,
    :data:`fusekit.arena.JUDGMENT_COLUMNS`); ``out_answers`` also receives the model's
    answers as an arena-hard ``model_answer`` JSONL file. ``match_prompts``: the
    generations answer another set with the same prompts (the tiny world's AlpacaEval-2
    set): each question takes the answer to its prompt text (ValueError when a prompt
    text repeats or a question has no answer)."""
    from fusekit import arena
    from fusekit.generation import read_generations
    from fusekit.judges import load_judge

    questions = arena.load_questions(questions_path)
    baseline = Path(baseline_path).stem
    gens = read_generations(generations_path)
    if match_prompts:
        gens = answers_by_prompt(gens, questions, questions_path)
    records = arena.answers_from_generations(gens, questions)
    model = records[0]["model_id"]
    answers = {r["question_id"]: r["choices"][0]["turns"][0]["content"] for r in records}
    judge = load_judge(judge_spec, _cache(cache_dir, "judge", model, judge_spec, "jsonl"), threads)
    df = arena.judge_arena(
        questions, answers, arena.load_answers(baseline_path), model, baseline, judge,
        attempts, settings,
    )  # fmt: skip
    n_null = int(df.score.isna().sum())
    log.info(
        "arena %s: %d games judged by %s, %d without verdict", model, len(df), judge.name, n_null
    )
    write_table(df, out_judgments)
    if out_answers:
        _write_jsonl(records, Path(out_answers))
    return df


def score_arena(
    judgment_paths: list[str],
    out: str,
    rounds: int = 100,
    seed: int = 0,
    weight: int = 3,
    out_battles: str | None = None,
) -> dict:
    """Bradley-Terry win rates against the baseline with bootstrap intervals for every
    model in ``judgment_paths`` (fitted together), as JSON."""
    from fusekit import arena

    judgments = pd.concat([read_table(p, arena.JUDGMENT_COLUMNS) for p in judgment_paths])
    baselines = judgments.baseline.unique()
    if len(baselines) != 1:
        raise ValueError(f"judgments against several baselines: {sorted(baselines)}")
    battles = arena.battles_from_judgments(judgments, weight)
    scores = arena.bradley_terry_scores(battles, baselines[0], rounds, seed)
    result = {
        "baseline": str(baselines[0]),
        "judges": sorted(map(str, judgments.judge.unique())),
        "rounds": rounds,
        "seed": seed,
        "strong_weight": weight,
        "n_games": len(judgments),
        "n_games_without_verdict": int(judgments.score.isna().sum()),
        # NaN (an interval of a model missing from bootstrap rounds) as null: strict JSON
        "scores": [
            {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in scores.to_dict("records")
        ],
        "provenance": provenance({"judgments": [Path(p).name for p in judgment_paths]}, seed),
    }
    write_json(result, out)
    if out_battles:
        write_table(battles, out_battles)
    return result


def tabulate_chat_eval(alpaca_paths: list[str], arena_path: str, out: str) -> pd.DataFrame:
    """One table (:data:`TABLE_COLUMNS`) of the models in ``alpaca_paths`` (metrics JSON
    files, in that order): AlpacaEval-2 LC and raw win rates with standard errors (the
    LC's kind: ``alpaca_eval``, ``bootstrap`` or ``none`` = unknown, empty cell), and the
    Arena-Hard win rate with its 95% interval (empty where bootstrap rounds missed the
    model, ``arena_hard_rounds_missing`` > 0). Every model must have both evaluations."""
    from fusekit.checks import DataError, read_json

    arena_json = read_json(arena_path, "Arena-Hard scores")
    if not isinstance(arena_json, dict) or not isinstance(arena_json.get("scores"), list):
        raise DataError(f"{arena_path}: expected an object with a list 'scores'")
    arena_scores = {s["model"]: s for s in arena_json["scores"]}

    def num(x):
        return float("nan") if x is None else float(x)

    rows = []
    for path in alpaca_paths:
        m = read_json(path, "AlpacaEval metrics")
        if not isinstance(m, dict) or "model" not in m:
            raise DataError(f"{path}: expected an AlpacaEval metrics object with 'model'")
        a = arena_scores.get(m["model"])
        if a is None:
            raise ValueError(f"{arena_path}: no Arena-Hard score for {m['model']!r} (from {path})")
        rows.append(
            (
                m["model"],
                m["length_controlled_winrate"],
                num(m.get("lc_standard_error")),
                m.get("lc_standard_error_kind", "alpaca_eval"),
                m["win_rate"],
                m["standard_error"],
                a["score"],
                num(a["lower"]),
                num(a["upper"]),
                int(a.get("rounds_missing", 0)),
                int(m["n_total"]),
                int(a["n_battles"]),
                m["avg_length"],
            )
        )
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    write_table(df, out)
    return df

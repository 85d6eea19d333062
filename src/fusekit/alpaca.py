"""AlpacaEval 2 through the alpaca_eval package's own annotator and metrics.

How a model is evaluated (:func:`evaluate_alpaca`):

1. The annotator is one of alpaca_eval's own configs (paper scale and tiny world:
   ``weighted_alpaca_eval_gpt4_turbo``). :func:`write_annotator_config` copies its
   ``configs.yaml`` entry into a run directory with the prompt template as an absolute
   path into the installed package and *without* ``fn_completions`` / ``model_name``:
   the completion function is plugged in as a callable (``SingleAnnotator`` accepts one,
   ``decoders.get_fn_completions`` returns callables unchanged) that sends each prompt,
   converted to chat messages by ``alpaca_eval.utils.prompt_to_chatml``, to a
   :class:`fusekit.judges.Judge`. The judge's choice dicts go back as
   ``completions_all``, which the config's own parser (``logprob_parser`` on the
   ``m``/``M`` top log-probabilities) turns into preferences. Everything else --
   random output order, preference encoding, duplicate handling, the annotation cache at
   ``caching_path`` -- is ``alpaca_eval.annotators.PairwiseAnnotator``.
2. Metrics: ``alpaca_eval.metrics.get_length_controlled_winrate`` (which also returns the
   raw ``win_rate`` of ``get_winrate``), GLM ``length_controlled_v1``, weights not saved.
   No precomputed leaderboard is read or written.

The length-controlled win rate offline. alpaca_eval's GLM always calls
``hf_hub_download("tatsu-lab/alpaca_eval", "df_gamed.csv")`` for two things: the
per-instruction difficulty (a fitted term per AlpacaEval instruction) and annotations of
two *gamed* baselines (the reference model prompted to be concise or verbose, weight 0.1
each in the fit, which anchor the length term). With ``lc_reference`` set, that call
is answered with a local file in the same format (:data:`LC_REFERENCE_COLUMNS`) and any
other hub call is refused; the GLM code itself runs unchanged. At paper scale
``lc_reference`` may point to a downloaded copy of the real ``df_gamed.csv`` (identical
results) or be null (alpaca_eval downloads it; needs the hub). The tiny world builds its
own with :func:`lc_reference_table`: gamed baselines made the same way (concise and
verbose variants of the reference answers, judged against the references by the same
judge) and every instruction difficulty 0, because the tiny world has no leaderboard to
fit difficulties on. So the tiny LC is alpaca_eval's GLM with the difficulty term
switched off; the paper-scale LC is alpaca_eval's exactly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

log = logging.getLogger("fusekit")

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
GLM = "length_controlled_v1"
LC_REFERENCE_COLUMNS = (
    "model",
    "index",
    "preference",
    "std_delta_len",
    "instruction_difficulty",
    "not_gamed_baseline",
)
RECORD_COLUMNS = ("dataset", "instruction", "output", "generator")
ANNOTATION_COLUMNS = (
    "index",
    "dataset",
    "instruction",
    "generator_1",
    "output_1",
    "generator_2",
    "output_2",
    "annotator",
    "preference",
    "glm_preference",
    "raw_completion",
)
# the least-penalised C of LogisticRegressionCV's default grid (np.logspace(-4, 4, 10)):
# bootstrap rounds refit the GLM at it, one fit per round instead of 5-fold CV over 10 Cs
BOOTSTRAP_C = 1e4
METRIC_KEYS = (
    "length_controlled_winrate",
    "lc_standard_error",
    "win_rate",
    "standard_error",
    "discrete_win_rate",
    "n_wins",
    "n_wins_base",
    "n_draws",
    "n_total",
)


def _alpaca_eval():
    """Import alpaca_eval (0.6.6 needs ``pkg_resources``: setuptools < 81)."""
    import alpaca_eval.annotators
    import alpaca_eval.constants
    import alpaca_eval.metrics
    import alpaca_eval.utils

    return alpaca_eval


# -------------------------------------------------------------------- data


def read_records(path: str) -> pd.DataFrame:
    """AlpacaEval records (a JSON list of ``{instruction, output, generator, dataset}``),
    checked where they enter: valid JSON (a truncated file names its line and column), a
    non-empty list of objects, ``instruction`` and ``output`` text in every row,
    instructions unique. Raises :class:`fusekit.checks.DataError` naming the file, row
    and column."""
    from fusekit.checks import DataError, check_text, read_json

    recs = read_json(path, "AlpacaEval records (a JSON list)")
    if not isinstance(recs, list) or not recs:
        got = "an empty list" if isinstance(recs, list) else type(recs).__name__
        raise DataError(f"{path}: expected a non-empty JSON list of records, got {got}")
    kinds = [i for i, r in enumerate(recs) if not isinstance(r, dict)]
    if kinds:
        i = kinds[0]
        raise DataError(f"{path}: row {i}: expected a JSON object, got {type(recs[i]).__name__}")
    df = pd.DataFrame(recs)
    missing = {"instruction", "output"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: AlpacaEval records need {sorted(missing)}")
    check_text(df, ["instruction", "output"], path)
    if "dataset" not in df:
        df["dataset"] = ""
    if "generator" not in df:
        df["generator"] = Path(path).stem
    dup = df.instruction.duplicated()
    if dup.any():
        raise DataError(f"{path}: instruction of row {int(dup.idxmax())} is repeated")
    return df[list(RECORD_COLUMNS)].reset_index(drop=True)


def write_records(df: pd.DataFrame, path: str) -> None:
    from fusekit.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(df[list(RECORD_COLUMNS)].to_dict("records"), indent=2, ensure_ascii=False)
            + "\n"
        )


def prompt_ids(n: int) -> list[str]:
    """``prompt_id`` of the i-th AlpacaEval instruction in a prompt set."""
    return [f"alpaca-{i:04d}" for i in range(n)]


def prompts_from_records(reference: pd.DataFrame) -> pd.DataFrame:
    """The prompt set (:data:`fusekit.data.PROMPT_COLUMNS`) that models answer."""
    return pd.DataFrame(
        {
            "prompt_id": prompt_ids(len(reference)),
            "prompt": reference.instruction,
            "reference": reference.output,
            "system": "",
            "source": "alpaca_eval:" + reference.dataset.astype(str),
        }
    )


def outputs_from_generations(generations: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """A model's AlpacaEval outputs from its generations on :func:`prompts_from_records`
    (sample 0 of each prompt), in the reference order."""
    gens = generations[generations["sample"] == 0].set_index("prompt_id")
    ids = prompt_ids(len(reference))
    missing = sorted(set(ids) - set(gens.index))
    if missing:
        raise ValueError(f"generations lack {len(missing)} AlpacaEval prompts, e.g. {missing[:3]}")
    models = gens.model.unique()
    if len(models) != 1:
        raise ValueError(f"generations of several models: {sorted(models)}")
    return pd.DataFrame(
        {
            "dataset": reference.dataset,
            "instruction": reference.instruction,
            "output": [gens.at[i, "response"] for i in ids],
            "generator": models[0],
        }
    )


# -------------------------------------------------------------------- annotator


def write_annotator_config(annotator: str, run_dir: str | Path) -> Path:
    """Copy alpaca_eval's ``evaluators_configs/<annotator>`` entry into
    ``run_dir/<annotator>/configs.yaml`` for use with a plugged-in completion function:
    absolute prompt template, no ``fn_completions``, no ``model_name``."""
    ae = _alpaca_eval()
    base = Path(ae.constants.EVALUATORS_CONFIG_DIR)
    src = base / annotator / "configs.yaml"
    if not src.exists():
        raise ValueError(f"alpaca_eval has no annotator config {annotator!r} ({src})")
    configs = yaml.safe_load(src.read_text())
    if len(configs) != 1:
        raise ValueError(f"{src}: expected one annotator, found {sorted(configs)}")
    name, cfg = next(iter(configs.items()))
    cfg = dict(cfg)
    cfg.pop("fn_completions", None)
    kwargs = dict(cfg.get("completions_kwargs") or {})
    kwargs.pop("model_name", None)
    cfg["completions_kwargs"] = kwargs
    template = Path(cfg["prompt_template"])
    cfg["prompt_template"] = str(template if template.is_absolute() else base / template)
    out = Path(run_dir) / name / "configs.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump({name: cfg}, sort_keys=True))
    return out


def completion_function(judge):
    """An alpaca_eval ``fn_completions`` that asks ``judge``: takes ``prompts`` (alpaca_eval's
    ChatML-marked text) and the config's ``completions_kwargs`` (``max_tokens``,
    ``temperature``, ``logprobs``, ``top_logprobs``), returns ``completions`` (texts),
    ``completions_all`` (choice dicts) and per-example price and time."""
    ae = _alpaca_eval()

    def fn_completions(prompts, **kwargs):
        kwargs.pop("model_name", None)
        t = time.perf_counter()
        requests = []
        for p in prompts:
            p = p.strip()
            if p.startswith("<|im_start|>"):
                requests.append(ae.utils.prompt_to_chatml(p))
            else:
                requests.append([{"role": "user", "content": p}])
        choices = judge.complete(requests, **kwargs) if requests else []
        seconds = (time.perf_counter() - t) / max(1, len(prompts))
        return {
            "completions": [c["text"] for c in choices],
            "completions_all": choices,
            "price_per_example": [0.0] * len(choices),
            "time_per_example": [seconds] * len(choices),
        }

    return fn_completions


@contextlib.contextmanager
def offline_lc_reference(path: str | None):
    """While active, alpaca_eval's GLM reads ``df_gamed.csv`` from ``path`` and may fetch
    nothing else from the hub. ``None``: leave alpaca_eval alone (it downloads)."""
    if path is None:
        yield
        return
    import alpaca_eval.metrics.glm_winrate as glm

    def local_download(repo_id, filename, **kwargs):
        if repo_id == "tatsu-lab/alpaca_eval" and filename == "df_gamed.csv":
            return str(path)
        raise RuntimeError(f"offline: refusing to download {filename!r} from {repo_id!r}")

    saved = glm.hf_hub_download
    glm.hf_hub_download = local_download
    try:
        yield
    finally:
        glm.hf_hub_download = saved


def annotate(
    model_outputs: pd.DataFrame,
    reference: pd.DataFrame,
    judge,
    run_dir: str | Path,
    caching_path: str | Path | None,
    annotator: str = ANNOTATOR,
    seed: int = 0,
) -> pd.DataFrame:
    """alpaca_eval pairwise annotations of ``model_outputs`` against ``reference``
    (``output_1`` = reference, ``output_2`` = model; preference in [1, 2], 2 = model wins)."""
    ae = _alpaca_eval()
    missing = set(reference.instruction) - set(model_outputs.instruction)
    if missing:
        raise ValueError(f"model outputs lack {len(missing)} reference instructions")
    config = write_annotator_config(annotator, run_dir)
    pa = ae.annotators.PairwiseAnnotator(
        annotators_config=str(config),
        caching_path=str(caching_path) if caching_path else None,
        seed=seed,
        fn_completions=completion_function(judge),
    )
    outputs = model_outputs.set_index("instruction").loc[reference.instruction].reset_index()
    annotations = pa.annotate_head2head(outputs_1=reference, outputs_2=outputs)
    df = pd.DataFrame(annotations)
    if len(df) != len(reference):
        raise ValueError(f"alpaca_eval returned {len(df)} annotations for {len(reference)} items")
    return df


def _glm():
    _alpaca_eval()
    import alpaca_eval.metrics.glm_winrate as glm

    return glm


def read_lc_reference(lc_reference: str | None) -> pd.DataFrame:
    """``df_gamed.csv`` as alpaca_eval's GLM reads it: from ``lc_reference`` (a local
    file), or from the hub when ``None``. ``ValueError`` naming the file when a column of
    :data:`LC_REFERENCE_COLUMNS` is missing or a feature is not finite."""
    glm = _glm()
    with offline_lc_reference(lc_reference):
        path = glm.hf_hub_download(
            repo_id="tatsu-lab/alpaca_eval",
            filename="df_gamed.csv",
            repo_type="dataset",
            token=glm.constants.DATASETS_TOKEN,
            force_download=glm.constants.DATASETS_FORCE_DOWNLOAD,
            cache_dir=glm.constants.DEFAULT_CACHE_DIR,
        )
    df = pd.read_csv(path)
    missing = set(LC_REFERENCE_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: not a df_gamed.csv, no columns {sorted(missing)}")
    for col in ("std_delta_len", "instruction_difficulty"):
        bad = ~np.isfinite(df[col].astype(float))
        if bad.any():
            raise ValueError(f"{path}: row {int(bad.idxmax())} has a non-finite {col}")
    return df


def length_feature(annotations: pd.DataFrame) -> tuple[pd.Series, str | None]:
    """The GLM's length feature of a model's items, and a note when it falls back.

    alpaca_eval: ``std_delta_len = d / std(d)`` with ``d = len(output_1) - len(output_2)``
    in characters (reference minus model) and ``std`` over the model's items. When ``d``
    has no spread that is 0/0 (NaN: pandas' "cannot reindex on an axis with duplicate
    labels" inside the fit) or d/0 (+-inf: every item as if its length differed without
    bound). Documented fallback, used only then: ``d`` equal to 0 everywhere (outputs of
    the reference's lengths) gives the feature 0, nothing to correct; a constant ``d != 0``
    is standardised by the spread of the reference outputs' lengths instead (the
    benchmark's own length scale), or gives 0 when those have no spread either (the
    length effect cannot be measured on these items). ``ValueError`` with fewer than two
    items.
    """
    if len(annotations) < 2:
        raise ValueError(
            f"length-controlled win rate needs at least 2 annotated items, got {len(annotations)}"
        )
    len_ref = annotations["output_1"].astype(str).str.len().astype(float)
    delta = len_ref - annotations["output_2"].astype(str).str.len().astype(float)
    delta = delta.reset_index(drop=True)
    std = float(delta.std())
    if std > 0:
        return delta / std, None
    d = float(delta.iloc[0])
    if d == 0:
        return delta * 0.0, "every output has its reference's length: length feature 0"
    scale = float(len_ref.std())
    if scale > 0:
        note = (
            f"every output differs from its reference by {-d:+.0f} characters (no spread): "
            f"standardised by the spread of reference lengths ({scale:.1f})"
        )
        return delta / scale, note
    return delta * 0.0, (
        f"every output differs from its reference by {-d:+.0f} characters and the "
        "references have one length: the length effect is not measurable, feature 0"
    )


def _model_rows(annotations: pd.DataFrame, difficulty: pd.Series) -> tuple[pd.DataFrame, str]:
    """The model's rows of the GLM's training frame (alpaca_eval's featurisation)."""
    feature, note = length_feature(annotations)
    df = pd.DataFrame(
        {
            "preference": annotations["preference"].astype(float).replace({0.0: 1.5}).to_numpy()
            - 1,
            "index": np.arange(len(annotations)),
        }
    )
    df["std_delta_len"] = feature.to_numpy()
    df["instruction_difficulty"] = difficulty.to_numpy()[: len(df)]
    df["not_gamed_baseline"] = True
    return df, note


def _glm_predict(
    rows: pd.DataFrame, gamed: pd.DataFrame, glm_name: str, C: float | None = None
) -> tuple[np.ndarray, float]:
    """alpaca_eval's GLM fit (``make_dmatrix_for_model``, ``fit_LogisticRegressionCV``,
    gamed baselines weighted as in ``_get_featurized_data``) on ``rows``; returns the
    predicted preference of every item at length difference 0 and the C used. ``C``
    given: that C without cross-validation (bootstrap rounds)."""
    glm = _glm()
    info = glm.GLM_INFO[glm_name]
    test = rows[["instruction_difficulty", "not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0
    lam = info["regularize_to_baseline_lambda"]
    train = pd.concat([gamed, rows], axis=0).reset_index(drop=True) if lam else rows
    XY, X_test = glm.make_dmatrix_for_model(train, test, formula=info["formula"])
    weight = None
    if lam:
        ngb = train["not_gamed_baseline"].astype(bool)
        weight = ngb.astype(float) + (lam * (~ngb)).astype(float) / 2
    keep = XY["preference"].notna()
    kwargs = dict(info["kwargs"]) if C is None else {"n_splits": 0, "C": C}
    model = glm.fit_LogisticRegressionCV(
        XY[keep],
        "preference",
        is_ytrue_proba=True,
        sample_weight=None if weight is None else weight[keep],
        **kwargs,
    )
    used = float(np.ravel(model.C_)[0]) if hasattr(model, "C_") else float(model.C)
    return model.predict_proba(X_test)[:, 1], used


def length_controlled(
    annotations: pd.DataFrame,
    lc_reference: str | None,
    glm: str = GLM,
    bootstrap_rounds: int = 0,
    seed: int = 0,
) -> dict:
    """AlpacaEval-2's length-controlled win rate of one model's ``annotations``
    (``output_1`` = reference, ``output_2`` = model, ``preference`` in [1, 2]), in percent.

    alpaca_eval's ``get_length_controlled_winrate`` restated on alpaca_eval's own pieces
    (``get_winrate``, ``GLM_INFO``, ``make_dmatrix_for_model``,
    ``fit_LogisticRegressionCV``; ``df_gamed.csv`` from ``lc_reference``, see the module
    doc): on ordinary inputs the numbers are alpaca_eval's exactly (tested). Differences:
    degenerate length differences get the documented fallback of :func:`length_feature`
    (named in ``lc_note``) instead of a pandas error; ``glm_preference`` is added to
    ``annotations`` as alpaca_eval does.

    Standard error. alpaca_eval's ``lc_standard_error`` is the standard error over
    instructions of the predicted per-instruction preferences: with known instruction
    difficulties (the real ``df_gamed.csv``) it is the leaderboard's number, and returned
    as it is. Where every difficulty is 0 (unknown: the tiny world) those predictions are
    all equal and that "standard error" is 0 whatever the sample size: fake precision.
    There ``lc_standard_error`` is the standard deviation of the LC over
    ``bootstrap_rounds`` resamples of the model's items (gamed rows fixed), each GLM
    refitted at :data:`BOOTSTRAP_C`, the least-penalised C of the cross-validation grid
    (one fit per round instead of 50; keeping the full fit's C would resample a fit that
    is pinned at 0.5 whenever cross-validation chose a C that zeroes it, and report SE 0
    again); or None with ``bootstrap_rounds=0``. ``lc_standard_error_kind`` says which
    (``alpaca_eval``, ``bootstrap``, ``none``).

    Why an LC can be exactly 50.00: the GLM is an L1-penalised logistic regression whose
    C is chosen by 5-fold cross-validation. When the model's preferences do not move the
    cross-validated log-loss away from "no difference to the reference" (a raw win rate
    within noise of 50 on a small set), the chosen C sets every coefficient to 0 and each
    prediction to 0.5. It is alpaca_eval's answer, not a failure: read it with its
    (bootstrap) standard error, which then spans the raw win rate.
    """
    ae = _alpaca_eval()
    if "index" in annotations.columns:
        raise ValueError("annotations must not have an 'index' column (the GLM adds its own)")
    need = {"output_1", "output_2", "generator_1", "generator_2", "preference"}
    missing = need - set(annotations.columns)
    if missing:
        raise ValueError(f"annotations lack columns {sorted(missing)}")
    models = annotations["generator_2"].unique()
    if len(models) != 1:
        raise ValueError(f"annotations of several models: {sorted(map(str, models))}")
    metrics = dict(ae.metrics.winrate.get_winrate(annotations))
    out = {k: float(metrics[k]) for k in METRIC_KEYS if k in metrics}
    if models[0] == annotations["generator_1"].iloc[0]:  # the reference against itself
        annotations["glm_preference"] = 0.5
        return out | {
            "length_controlled_winrate": 50.0,
            "lc_standard_error": 0.0,
            "lc_standard_error_kind": "alpaca_eval",
            "lc_note": "the reference against itself: 50 by construction",
        }
    gamed = read_lc_reference(lc_reference).drop(columns=["model"])
    difficulty = gamed.drop_duplicates("index")["instruction_difficulty"].reset_index(drop=True)
    if len(difficulty) < len(annotations):
        raise ValueError(
            f"{lc_reference or 'df_gamed.csv'}: instruction difficulties for "
            f"{len(difficulty)} instructions, annotations of {len(annotations)}"
        )
    rows, note = _model_rows(annotations.reset_index(drop=True), difficulty)
    if note:
        log.warning("alpaca_eval LC of %s: %s", models[0], note)
    predicted, C = _glm_predict(rows, gamed, glm)
    annotations["glm_preference"] = predicted
    known = bool((difficulty.iloc[: len(rows)] != 0).any())
    out["length_controlled_winrate"] = float(predicted.mean() * 100)
    if known:
        se, kind = float(pd.Series(predicted).sem() * 100), "alpaca_eval"
    elif bootstrap_rounds > 0:
        rng = np.random.default_rng(seed)
        ann = annotations.reset_index(drop=True)
        lcs = []
        for _ in range(bootstrap_rounds):
            pick = rng.integers(0, len(ann), len(ann))
            sample, _note = _model_rows(ann.iloc[pick].reset_index(drop=True), difficulty)
            lcs.append(_glm_predict(sample, gamed, glm, BOOTSTRAP_C)[0].mean() * 100)
        se, kind = float(np.std(lcs, ddof=1)), "bootstrap"
    else:
        se, kind = None, "none"
    out |= {
        "lc_standard_error": se,
        "lc_standard_error_kind": kind,
        "lc_bootstrap_rounds": bootstrap_rounds if kind == "bootstrap" else 0,
        "lc_C": C,
        "lc_note": note or "",
    }
    return out


def _jsonable(x):
    if isinstance(x, dict | list):
        return json.dumps(x, sort_keys=True, default=str)
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def annotation_table(annotations: pd.DataFrame) -> pd.DataFrame:
    """Per-item judgments (:data:`ANNOTATION_COLUMNS`) for Parquet."""
    df = annotations.reset_index(drop=True).copy()
    df.insert(0, "index", np.arange(len(df)))
    for c in ANNOTATION_COLUMNS:
        if c not in df:
            df[c] = None
    if "preference_raw_completion" in df:  # alpaca_eval's name: <annotation key>_raw_completion
        df["raw_completion"] = df["preference_raw_completion"]
    df["raw_completion"] = df["raw_completion"].map(_jsonable)
    df["preference"] = df["preference"].astype(float)
    df["glm_preference"] = df["glm_preference"].astype(float)
    return df[list(ANNOTATION_COLUMNS)]


def evaluate_alpaca(
    model_outputs: pd.DataFrame,
    reference: pd.DataFrame,
    judge,
    run_dir: str | Path,
    caching_path: str | Path | None,
    lc_reference: str | None,
    annotator: str = ANNOTATOR,
    glm: str = GLM,
    lc_bootstrap_rounds: int = 0,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Annotate and score one model: per-item table and metrics (LC and raw win rates in
    percent with standard errors, counts, average output length in characters; the LC's
    standard error and its kind as :func:`length_controlled` gives them)."""
    names = model_outputs.generator.unique()
    if len(names) != 1:
        raise ValueError(f"model outputs of several generators: {sorted(names)}")
    ann = annotate(model_outputs, reference, judge, run_dir, caching_path, annotator)
    metrics = length_controlled(ann, lc_reference, glm, lc_bootstrap_rounds, seed)
    metrics |= {
        "model": str(names[0]),
        "reference": str(reference.generator.iloc[0]),
        "annotator": annotator,
        "judge": judge.name,
        "glm": glm,
        "lc_reference": "hub" if lc_reference is None else Path(lc_reference).name,
        "avg_length": float(model_outputs.output.str.len().mean()),
    }
    lc_se = metrics["lc_standard_error"]
    log.info(
        "alpaca_eval %s: LC %.2f (SE %s, %s), WR %.2f (SE %.2f), n=%d",
        metrics["model"],
        metrics["length_controlled_winrate"],
        "n/a" if lc_se is None else f"{lc_se:.2f}",
        metrics["lc_standard_error_kind"],
        metrics["win_rate"],
        metrics["standard_error"],
        metrics["n_total"],
    )
    return annotation_table(ann), metrics


def lc_reference_table(reference: pd.DataFrame, gamed: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A ``df_gamed.csv`` (:data:`LC_REFERENCE_COLUMNS`) from annotations of gamed
    baselines against the reference (each from :func:`annotate`, in reference order).

    ``preference`` is on the GLM's [0, 1] scale (1 = the gamed output wins),
    ``std_delta_len`` is ``len(reference) - len(gamed)`` over its standard deviation
    within that gamed model (as the GLM featurises a model), ``instruction_difficulty``
    is 0 and ``not_gamed_baseline`` False. Rows come model by model in instruction order,
    so the first block's row labels are the instruction indices the GLM looks up.
    """
    blocks = []
    for name, ann in gamed.items():
        if list(ann.instruction) != list(reference.instruction):
            raise ValueError(f"gamed annotations {name!r} are not in reference order")
        delta = ann.output_1.str.len() - ann.output_2.str.len()
        std = delta.std()
        blocks.append(
            pd.DataFrame(
                {
                    "model": name,
                    "index": np.arange(len(ann)),
                    "preference": ann.preference.astype(float).replace({0.0: 1.5}) - 1,
                    "std_delta_len": delta / std if std > 0 else 0.0,
                    "instruction_difficulty": 0.0,
                    "not_gamed_baseline": False,
                }
            )
        )
    return pd.concat(blocks, ignore_index=True)[list(LC_REFERENCE_COLUMNS)]

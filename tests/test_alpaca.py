"""AlpacaEval-2 through alpaca_eval's own annotator and GLM, offline; and the tiny world's
chat evaluation end to end (sets, generations, both judges, scores, the study table)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fusekit import alpaca, chat_eval
from fusekit.io import write_table
from fusekit.judges import LocalJudge

ROOT = Path(__file__).resolve().parents[1]


def _annotations(len_model, prefs, name="model", len_ref=100):
    n = len(prefs)
    return pd.DataFrame(
        {
            "instruction": [f"instruction {i}" for i in range(n)],
            "output_1": ["r" * len_ref] * n,
            "output_2": ["m" * int(k) for k in len_model],
            "generator_1": "reference",
            "generator_2": name,
            "annotator": "synthetic",
            "preference": 1.0 + np.asarray(prefs),
        }
    )


def _length_judge(len_model, len_ref=100, k=3.0):
    """P(model wins) from the length difference only."""
    delta = len_ref - np.asarray(len_model, dtype=float)
    return 1 / (1 + np.exp(k * np.tanh(delta / delta.std())))


def _lc_reference(path, judge, n=300):
    """A df_gamed.csv whose gamed baselines (concise: 50 characters shorter than the
    reference, verbose: 50 longer) are judged by ``judge`` (lengths -> P(gamed wins))."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"instruction": [f"instruction {i}" for i in range(n)]})
    gamed = {}
    for name, shift in (("concise", -50), ("verbose", 50)):
        lens = 100 + shift + rng.integers(-20, 21, n)
        gamed[name] = _annotations(lens, judge(lens), name)
    df = alpaca.lc_reference_table(reference, gamed)
    assert list(df.columns) == list(alpaca.LC_REFERENCE_COLUMNS)
    assert (df["index"][:n] == np.arange(n)).all() and not df.not_gamed_baseline.any()
    df.to_csv(path, index=False)
    return str(path)


def test_lc_removes_a_pure_length_bias(tmp_path):
    lc_reference = _lc_reference(tmp_path / "df_gamed.csv", _length_judge)
    rng = np.random.default_rng(1)
    lens = 100 + rng.integers(-30, 91, 300)  # the model is mostly longer
    m = alpaca.length_controlled(_annotations(lens, _length_judge(lens)), lc_reference)
    assert m["win_rate"] > 65, m
    assert abs(m["length_controlled_winrate"] - 50) < 5, m
    assert m["n_total"] == 300


def test_lc_equals_win_rate_without_length_effect(tmp_path):
    # a judge blind to length: the gamed baselines tie with the reference
    lc_reference = _lc_reference(tmp_path / "df_gamed.csv", lambda lens: np.full(len(lens), 0.5))
    rng = np.random.default_rng(2)
    lens = 100 + rng.integers(-30, 91, 300)
    ann = _annotations(lens, np.full(300, 0.7))
    m = alpaca.length_controlled(ann, lc_reference)
    assert m["win_rate"] == pytest.approx(70)
    assert m["length_controlled_winrate"] == pytest.approx(70, abs=1)
    assert "glm_preference" in ann  # alpaca_eval adds it in place


def _alpaca_evals_own(ann, lc_reference):
    import alpaca_eval.metrics as aem

    with alpaca.offline_lc_reference(lc_reference):
        return aem.get_length_controlled_winrate(ann.copy(), save_weights_dir=None)


def test_lc_is_alpaca_evals_on_ordinary_inputs(tmp_path):
    lc_reference = _lc_reference(tmp_path / "df_gamed.csv", _length_judge)
    rng = np.random.default_rng(5)
    for wr in (0.2, 0.6):
        lens = 100 + rng.integers(-40, 61, 120)
        ann = _annotations(lens, (rng.random(120) < wr).astype(float))
        mine = alpaca.length_controlled(ann.copy(), lc_reference)
        theirs = _alpaca_evals_own(ann, lc_reference)
        for key in ("length_controlled_winrate", "win_rate", "standard_error", "n_wins"):
            assert mine[key] == pytest.approx(theirs[key], abs=1e-9), key


@pytest.mark.parametrize(
    "case, len_model, len_ref",
    [
        ("identical lengths", [100] * 60, [100] * 60),
        ("constant gap, one reference length", [105] * 60, [100] * 60),
        ("constant gap, shorter", [97] * 60, [100] * 60),
        ("constant gap, references vary", None, None),
    ],
)
def test_degenerate_length_differences_get_the_documented_fallback(
    tmp_path, case, len_model, len_ref
):
    # alpaca_eval itself: NaN features and "cannot reindex on an axis with duplicate
    # labels", or -inf features (tanh = -1) that pull LC far from the raw win rate.
    # Gamed baselines judged by a judge that mildly prefers longer answers
    lc_reference = _lc_reference(
        tmp_path / "df_gamed.csv", lambda lens: 1 / (1 + np.exp(-(lens - 100) / 60))
    )
    n = 60
    prefs = np.r_[np.ones(42), np.zeros(18)]  # raw win rate 70
    if len_model is None:
        refs = 100 + np.random.default_rng(0).integers(-30, 31, n)
        ann = _annotations([0] * n, prefs)
        ann["output_1"] = ["r" * int(k) for k in refs]
        ann["output_2"] = ["m" * int(k + 3) for k in refs]  # always 3 characters longer
    else:
        ann = _annotations(len_model, prefs, len_ref=len_ref[0])
    m = alpaca.length_controlled(ann, lc_reference)
    assert m["win_rate"] == pytest.approx(70)
    # no length difference worth correcting: LC stays near the raw win rate
    assert abs(m["length_controlled_winrate"] - 70) < 5, m
    assert m["lc_note"], m
    if len_model is None:
        assert "spread of reference lengths" in m["lc_note"]
        feature, _ = alpaca.length_feature(ann)
        assert np.allclose(feature, -3 / np.std(refs, ddof=1))
    else:
        feature, _ = alpaca.length_feature(ann)
        assert (feature == 0).all()  # one reference length: nothing to standardise by


def test_identical_outputs_and_bad_inputs(tmp_path):
    lc_reference = _lc_reference(tmp_path / "df_gamed.csv", _length_judge)
    same = _annotations([100] * 30, np.full(30, 0.5))
    same["output_2"] = same["output_1"]
    m = alpaca.length_controlled(same, lc_reference)
    assert m["length_controlled_winrate"] == pytest.approx(50, abs=1e-6)
    assert "reference's length" in m["lc_note"]
    with pytest.raises(ValueError, match="at least 2 annotated items"):
        alpaca.length_controlled(_annotations([100], [1.0]), lc_reference)
    with pytest.raises(ValueError, match=r"lack columns \['preference'\]"):
        alpaca.length_controlled(same.drop(columns="preference"), lc_reference)
    broken = tmp_path / "broken.csv"
    pd.read_csv(lc_reference).drop(columns="std_delta_len").to_csv(broken, index=False)
    with pytest.raises(ValueError, match="broken.csv: not a df_gamed.csv"):
        alpaca.length_controlled(_annotations([90, 110], [1.0, 0.0]), str(broken))


def test_lc_of_exactly_50_is_the_l1_fit_finding_no_difference_and_its_se_says_so(tmp_path):
    # a judge blind to length and a model that wins 30 of 64 items (raw 46.9 +- 6.3):
    # cross-validation picks a C at which L1 zeroes every coefficient, so LC is 50.00;
    # alpaca_eval's own LC standard error is 0 here (every instruction difficulty is 0)
    blind = lambda lens: np.full(len(lens), 0.5)  # noqa: E731
    lc_reference = _lc_reference(tmp_path / "df_gamed.csv", blind, n=64)
    rng = np.random.default_rng(3)
    lens = 100 + rng.integers(-30, 31, 64)
    ann = _annotations(lens, np.r_[np.ones(30), np.zeros(34)])
    theirs = _alpaca_evals_own(ann, lc_reference)
    assert theirs["length_controlled_winrate"] == pytest.approx(50.0, abs=1e-9)
    assert theirs["lc_standard_error"] == pytest.approx(0.0, abs=1e-9)
    none = alpaca.length_controlled(ann.copy(), lc_reference)
    assert none["length_controlled_winrate"] == pytest.approx(50.0, abs=1e-9)
    assert none["lc_standard_error"] is None and none["lc_standard_error_kind"] == "none"
    m = alpaca.length_controlled(ann.copy(), lc_reference, bootstrap_rounds=40, seed=1)
    assert m["lc_standard_error_kind"] == "bootstrap" and m["lc_bootstrap_rounds"] == 40
    # an honest SE: of the order of the raw win rate's (binomial: sqrt(.47 * .53 / 63))
    assert 0.5 * m["standard_error"] < m["lc_standard_error"] < 2 * m["standard_error"]
    assert abs(m["length_controlled_winrate"] - m["win_rate"]) < 2 * m["lc_standard_error"]


def test_known_instruction_difficulties_keep_alpaca_evals_standard_error(tmp_path):
    path = _lc_reference(tmp_path / "df_gamed.csv", _length_judge)
    df = pd.read_csv(path)
    df["instruction_difficulty"] = np.tile(np.linspace(-1, 1, 300), 2)
    df.to_csv(path, index=False)
    rng = np.random.default_rng(4)
    lens = 100 + rng.integers(-40, 61, 300)
    ann = _annotations(lens, (rng.random(300) < 0.6).astype(float))
    mine = alpaca.length_controlled(ann.copy(), path, bootstrap_rounds=5)
    theirs = _alpaca_evals_own(ann, path)
    assert mine["lc_standard_error_kind"] == "alpaca_eval"
    assert mine["lc_standard_error"] == pytest.approx(theirs["lc_standard_error"], abs=1e-9)
    assert mine["length_controlled_winrate"] == pytest.approx(
        theirs["length_controlled_winrate"], abs=1e-9
    )


def test_offline_lc_refuses_other_downloads():
    import alpaca_eval.metrics.glm_winrate as glm

    with alpaca.offline_lc_reference("/x/df_gamed.csv"):
        assert glm.hf_hub_download("tatsu-lab/alpaca_eval", "df_gamed.csv") == "/x/df_gamed.csv"
        with pytest.raises(RuntimeError, match="offline"):
            glm.hf_hub_download("tatsu-lab/alpaca_eval", "instruction_difficulty.csv")
    assert glm.hf_hub_download.__module__.startswith("huggingface_hub")


def test_annotator_config_is_alpaca_evals_own(tmp_path):
    path = alpaca.write_annotator_config(alpaca.ANNOTATOR, tmp_path)
    (name, cfg), *rest = yaml.safe_load(path.read_text()).items()
    assert name == "weighted_alpaca_eval_gpt4_turbo" and not rest
    assert "fn_completions" not in cfg and "model_name" not in cfg["completions_kwargs"]
    assert cfg["fn_completion_parser"] == "logprob_parser"
    assert cfg["completions_kwargs"]["logprobs"] is True
    assert Path(cfg["prompt_template"]).is_absolute() and Path(cfg["prompt_template"]).exists()


def test_local_judge_tokens_parse_with_alpaca_evals_parser():
    from alpaca_eval.completion_parsers import logprob_parser

    judge = LocalJudge.__new__(LocalJudge)
    judge.temperature = 1.0
    for d, p_first in ((2.0, 1 / (1 + np.exp(-2.0))), (-1.0, 1 / (1 + np.exp(1.0)))):
        c = judge.alpaca_choice(d)
        pref = logprob_parser(c, "m", ["m", "M"], is_binarize=False)
        assert pref == [pytest.approx(2 - p_first)]
        assert c["text"] == ("m" if d > 0 else "M")


# ----------------------------------------------------------------- end to end, tiny

SIZE = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
GEN = {"temperature": 0.0, "max_new_tokens": 6, "samples_per_prompt": 1, "batch_size": 32}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from fusekit.generation import generate_responses
    from fusekit.tiny.corpus import build_corpus, filler_text
    from fusekit.tiny.models import build_model
    from fusekit.tiny.tokenizers import train_tokenizer

    root = tmp_path_factory.mktemp("chat_eval")
    corpus = build_corpus(0, {"pretrain": 40, "eval": 4})
    write_table(corpus, root / "corpus.parquet")
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 40), "byte_bpe", 300, "chatml")
    size = SIZE | {"max_position": 256}
    build_model("LlamaForCausalLM", tok, size, seed=0).save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    rm = build_model("LlamaForSequenceClassification", tok, size, seed=1, num_labels=1)
    rm.save_pretrained(root / "rm")
    tok.save_pretrained(root / "rm")
    sets = root / "sets"
    sizes = chat_eval.build_chat_eval_sets(str(sets), corpus_path=str(root / "corpus.parquet"))
    gens = {}
    for bench in ("alpaca_eval", "arena_hard"):
        prompts = sets / bench / "prompts.parquet"
        out = root / f"gens_{bench}_lm.parquet"
        generate_responses(
            str(prompts),
            "tiny_lm",
            str(root / "lm"),
            {"generation": GEN},
            "transformers",
            0,
            str(out),
        )
        # a second "model" that answers with the reference's final sentence
        p = pd.read_parquet(prompts)
        copy = pd.DataFrame(
            {
                "prompt_id": p.prompt_id,
                "model": "terse",
                "sample": 0,
                "prompt": p.prompt,
                "response": [r.split(" . ")[-1] for r in p.reference],
                "n_tokens": 4,
                "finish_reason": "stop",
            }
        )
        write_table(copy, root / f"gens_{bench}_terse.parquet")
        gens[bench] = [out, root / f"gens_{bench}_terse.parquet"]
    judge = {"kind": "local", "path": str(root / "rm"), "max_length": 256, "tie": 0.05}
    return {"root": root, "sets": sets, "sizes": sizes, "gens": gens, "judge": judge}


def test_sets_are_in_the_paper_formats(tiny):
    sets = tiny["sets"]
    ref = json.loads((sets / "alpaca_eval" / "reference_outputs.json").read_text())
    assert set(ref[0]) == {"dataset", "instruction", "output", "generator"}
    assert {r["generator"] for r in ref} == {"tiny_reference"}
    q = [json.loads(x) for x in (sets / "arena_hard" / "question.jsonl").read_text().splitlines()]
    assert set(q[0]) == {"question_id", "category", "cluster", "turns"}
    assert len(q[0]["question_id"]) == 32 and q[0]["category"] == "arena-hard-v0.1"
    a = (sets / "arena_hard" / "model_answer" / "tiny_reference.jsonl").read_text().splitlines()
    rec = json.loads(a[0])
    assert set(rec) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
    assert rec["choices"][0]["turns"][0]["token_len"] > 0
    assert len(ref) == len(q) == tiny["sizes"]["alpaca_eval"] == tiny["sizes"]["arena_hard"]
    assert len({r["instruction"] for r in ref}) == len(ref)


def test_offline_tiny_run_end_to_end(tiny, tmp_path, monkeypatch):
    sets, judge = tiny["sets"], tiny["judge"]
    cache = tmp_path / "cache"
    lc_ref = tmp_path / "df_gamed.csv"
    gamed = [str(sets / "alpaca_eval" / f"gamed_{g}.json") for g in ("concise", "verbose")]
    reference = str(sets / "alpaca_eval" / "reference_outputs.json")
    chat_eval.build_lc_reference(reference, gamed, judge, str(cache), str(lc_ref))
    alpaca_metrics = []
    for g in tiny["gens"]["alpaca_eval"]:
        name = pd.read_parquet(g).model[0]
        m = chat_eval.judge_alpaca(
            reference,
            str(g),
            judge,
            str(cache),
            str(lc_ref),
            str(tmp_path / f"alpaca_{name}.parquet"),
            str(tmp_path / f"alpaca_{name}.json"),
        )
        alpaca_metrics.append(tmp_path / f"alpaca_{name}.json")
        assert 0 <= m["length_controlled_winrate"] <= 100 and 0 <= m["win_rate"] <= 100
        assert m["n_total"] == tiny["sizes"]["alpaca_eval"]
        items = pd.read_parquet(tmp_path / f"alpaca_{name}.parquet")
        assert list(items.columns) == list(alpaca.ANNOTATION_COLUMNS)
        assert items.preference.between(1, 2).all() and items.glm_preference.notna().all()
        assert "top_logprobs" in items.raw_completion[0]

    # a rerun is served by the annotation cache: the judge is not asked again
    def no_calls(self, requests, **settings):
        raise AssertionError("judge called despite the cache")

    monkeypatch.setattr(LocalJudge, "complete", no_calls)
    again = chat_eval.judge_alpaca(
        reference,
        str(tiny["gens"]["alpaca_eval"][0]),
        judge,
        str(cache),
        str(lc_ref),
        str(tmp_path / "again.parquet"),
        str(tmp_path / "again.json"),
    )
    first = json.loads(alpaca_metrics[0].read_text())
    assert again["win_rate"] == pytest.approx(first["win_rate"])
    monkeypatch.undo()

    judgments = []
    for g in tiny["gens"]["arena_hard"]:
        name = pd.read_parquet(g).model[0]
        out = tmp_path / f"arena_{name}.parquet"
        df = chat_eval.judge_arena(
            str(sets / "arena_hard" / "question.jsonl"),
            str(sets / "arena_hard" / "model_answer" / "tiny_reference.jsonl"),
            str(g),
            judge,
            str(cache),
            str(out),
            str(tmp_path / f"{name}.jsonl"),
        )
        assert len(df) == 2 * tiny["sizes"]["arena_hard"] and df.score.notna().all()
        assert set(df.game) == {1, 2} and (df.baseline == "tiny_reference").all()
        judgments.append(str(out))
    scores = tmp_path / "arena.json"
    r = chat_eval.score_arena(judgments, str(scores), rounds=20)
    by_model = {s["model"]: s for s in r["scores"]}
    assert by_model["tiny_reference"]["score"] == 50.0
    for s in r["scores"]:
        assert s["lower"] <= s["score"] <= s["upper"]

    # the table, through the script
    table = tmp_path / "table.csv"
    args = ["--alpaca", *map(str, alpaca_metrics), "--arena", str(scores), "--out", str(table)]
    proc = subprocess.run(
        [sys.executable, ROOT / "scripts" / "tabulate_chat_eval.py", *args],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    t = pd.read_csv(table)
    assert list(t.columns) == list(chat_eval.TABLE_COLUMNS)
    assert t.model.tolist() == ["tiny_lm", "terse"]
    assert (t.arena_hard_lower <= t.arena_hard).all() and (t.arena_hard <= t.arena_hard_upper).all()


def test_tiny_chat_sets_take_the_first_prompts_of_each_skill():
    from fusekit.tiny.chat_eval import eval_items
    from fusekit.tiny.corpus import build_corpus

    corpus = build_corpus(0, {"eval": 5})
    every = eval_items(corpus)
    some = eval_items(corpus, per_skill=2)
    assert (some.groupby("skill").size() == 2).all()
    assert set(some.skill) == set(every.skill)
    for skill, rows in some.groupby("skill"):
        first = every[every.skill == skill].head(2)
        assert rows.prompt.tolist() == first.prompt.tolist()

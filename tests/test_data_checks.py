"""Malformed data files stop the stage they enter, naming the file, row and column, and
leave no output behind (issue 19 item 4).

Each case builds the smallest bad file in ``tmp_path`` from a small valid frame and calls
the stage's entry function (the one its script calls). Each asserts the error type
(:class:`fusekit.checks.DataError`), that the message starts with the bad file's path
and names the row (index and prompt id) and column, and that the stage wrote nothing:
no output and no hidden temporary sibling.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fusekit.checks import DataError
from fusekit.generation import GENERATION_COLUMNS
from fusekit.logits import write_dump
from fusekit.rewards.scoring import SCORE_COLUMNS
from fusekit.tiny.corpus import build_corpus, filler_text
from fusekit.tiny.models import build_model
from fusekit.tiny.tokenizers import train_tokenizer

SIZE = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "max_position": 48,
}
RMS = ["rm_a", "rm_b"]
K = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One tiny tokenizer and model (the source, and the target of the alignment cases)."""
    root = tmp_path_factory.mktemp("checks_world")
    corpus = build_corpus(0, {"pretrain": 30})
    texts = [f"{p} {r}" for p, r in zip(corpus.prompt, corpus.reference, strict=True)]
    tok = train_tokenizer(texts + filler_text(0, 30), "metaspace_bpe", 300, "vicuna")
    build_model("LlamaForCausalLM", tok, SIZE, seed=0).save_pretrained(root / "m")
    tok.save_pretrained(root / "m")
    return root / "m", tok


# ---------------------------------------------------------------- small valid frames


def prompts(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(n)],
            "prompt": [f"what is {i} + 1 ?" for i in range(n)],
            "reference": [f"{i + 1}" for i in range(n)],
            "system": "",
            "source": "test",
        }
    )


def generations(model: str = "a", n: int = 3) -> pd.DataFrame:
    p = prompts(n)
    return pd.DataFrame(
        {
            "prompt_id": p.prompt_id,
            "model": model,
            "sample": 0,
            "prompt": p.prompt,
            "response": [f"answer {i} from {model}" for i in range(n)],
            "n_tokens": 3,
            "finish_reason": "stop",
        }
    )[list(GENERATION_COLUMNS)]


def scores(model: str, rm: str, values) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_id": [f"p{i}" for i in range(len(values))],
            "model": model,
            "sample": 0,
            "reward_model": rm,
            "score": [float(v) for v in values],
            "truncated": False,
            "n_input_tokens": 5,
        }
    )[list(SCORE_COLUMNS)]


def dump_rows(tok, pids, model="a", k=K, bad_id=None):
    """Rows of a dump of short responses (own token first), optionally one bad top-k id."""
    rows = []
    for i, pid in enumerate(pids):
        ids = tok(f"the answer is {i}", add_special_tokens=False).input_ids + [tok.eos_token_id]
        top = np.array([[t] + list(range(5, 5 + k - 1)) for t in ids], dtype=np.int32)
        if bad_id is not None and i == 1:
            top[0, 1] = bad_id
        lp = np.log(np.tile(np.linspace(0.6, 0.1, k), (len(ids), 1))).astype(np.float32)
        rows.append(
            dict(
                prompt_id=pid,
                model=model,
                response=f"the answer is {i}",
                n_tokens=len(ids),
                ce=1.0 + i,
                token_ids=ids,
                topk_ids=top.ravel().tolist(),
                topk_logprobs=lp.ravel().tolist(),
            )
        )
    return rows


def write(df: pd.DataFrame, path: Path) -> str:
    df.to_parquet(path, index=False)
    return str(path)


def votes(pids, models) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt_id": pids,
            "model": models,
            "sample": 0,
            "votes": 2,
            "prompt": "q",
            "response": "r",
        }
    )


# ---------------------------------------------------------------- the cases
# each returns (entry callable, bad file, expected row/column pattern, outputs)


def case_empty_generations(tmp, world):
    from fusekit.rewards.scoring import score_responses

    bad = write(generations().iloc[:0], tmp / "gens.parquet")
    out = tmp / "scores.parquet"
    return (
        lambda: score_responses("rm_a", "/no/such/rm", {}, bad, str(out)),
        bad,
        r"no generations",
        [out],
    )


def case_integer_responses(tmp, world):
    from fusekit.rewards.scoring import score_responses

    bad = write(generations().assign(response=[1, 2, 3]), tmp / "gens.parquet")
    out = tmp / "scores.parquet"
    return (
        lambda: score_responses("rm_a", "/no/such/rm", {}, bad, str(out)),
        bad,
        r"row 0 \(prompt_id 'p0'\), column 'response': expected text, got int",
        [out],
    )


def _vote_case(tmp, value):
    from fusekit.inference_mode import vote

    gens = [write(generations(m), tmp / f"gen_{m}.parquet") for m in "ab"]
    paths = []
    for rm in RMS:
        s = pd.concat(
            [scores("a", rm, [1, 2, 3]), scores("b", rm, [0, value if rm == "rm_b" else 1, 0])],
            ignore_index=True,
        )
        paths.append(write(s, tmp / f"{rm}.parquet"))
    out = tmp / "votes.parquet"
    return (lambda: vote(paths, gens, RMS, "rm_a", str(out)), paths[1], out)


def case_nan_score(tmp, world):
    run, bad, out = _vote_case(tmp, math.nan)
    return run, bad, r"row 4 \(prompt_id 'p1'\), model 'b', sample 0, .*column 'score'", [out]


def case_posinf_score(tmp, world):
    run, bad, out = _vote_case(tmp, math.inf)
    return run, bad, r"row 4 \(prompt_id 'p1'\).*column 'score': infinite value inf", [out]


def case_posinf_score_preference(tmp, world):
    from fusekit.preference.build import build_fuserl_data

    p = write(prompts(), tmp / "prompts.parquet")
    gens = [write(generations(m), tmp / f"gen_{m}.parquet") for m in "ab"]
    sc = [
        write(scores("a", "rm_a", [1, 2, 3]), tmp / "a.parquet"),
        write(scores("b", "rm_a", [0, math.inf, 0]), tmp / "b.parquet"),
    ]
    outs = [tmp / f"{n}.parquet" for n in ("sft", "po")] + [tmp / "counts.csv"]
    return (
        lambda: build_fuserl_data(
            p, gens, sc, "rm_a", 0, {"sft": 1, "po": 1}, 0.0, *map(str, outs)
        ),
        sc[1],
        r"row 1 \(prompt_id 'p1'\), model 'b'.*column 'score': infinite",
        outs,
    )


def case_topk_ids_outside_source_vocab(tmp, world):
    from fusekit.training_mode import align_dump, build_vocab_map

    path, tok = world
    vmap = tmp / "map.parquet"
    build_vocab_map(str(path), str(path), str(vmap))
    bad = tmp / "dump.parquet"
    write_dump(
        dump_rows(tok, ["p0", "p1"], bad_id=len(tok) + 7),
        str(bad),
        {"k": K, "vocab": "source", "vocab_size": len(tok)},
    )
    out = tmp / "aligned.parquet"
    return (
        lambda: align_dump(str(bad), str(path), str(path), str(vmap), str(out)),
        str(bad),
        rf"row 1 \(prompt_id 'p1'\), column 'topk_ids': id {len(tok) + 7} outside",
        [out],
    )


def _vocab_map_case(tmp, world, value):
    from fusekit.training_mode import align_dump, build_vocab_map

    path, tok = world
    good = tmp / "good_map.parquet"
    build_vocab_map(str(path), str(path), str(good))
    df = pd.read_parquet(good)
    df.loc[10, "target_id"] = value(len(tok))
    bad = write(df, tmp / "map.parquet")
    dump = tmp / "dump.parquet"
    write_dump(dump_rows(tok, ["p0"]), str(dump), {"k": K, "vocab_size": len(tok)})
    out = tmp / "aligned.parquet"
    return (
        lambda: align_dump(str(dump), str(path), str(path), bad, str(out)),
        bad,
        r"row 10 \(source id 10\), column 'target_id': target id -?\d+ outside",
        [out],
    )


def case_vocab_map_target_out_of_range(tmp, world):
    return _vocab_map_case(tmp, world, lambda n: n + 3)


def case_vocab_map_target_negative(tmp, world):
    return _vocab_map_case(tmp, world, lambda n: -2)


def _prompt_case(tmp, frame_or_table, pattern):
    from fusekit.generation import generate_responses

    bad = tmp / "prompts.parquet"
    if isinstance(frame_or_table, pa.Table):
        pq.write_table(frame_or_table, bad)
    else:
        write(frame_or_table, bad)
    out = tmp / "gens.parquet"
    spec = {"generation": {}}
    return (
        lambda: generate_responses(str(bad), "m", "/no/such/model", spec, "transformers", 0, out),
        str(bad),
        pattern,
        [out],
    )


def case_invalid_utf8_prompt(tmp, world):
    p = prompts()
    raw = pa.array([s.encode() for s in p.prompt[:1]] + [b"caf\xe9 \xff", b"ok"], pa.binary())
    col = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())  # unvalidated bytes
    table = pa.Table.from_pandas(p, preserve_index=False).set_column(1, "prompt", col)
    return _prompt_case(tmp, table, r"column 'prompt', row 1: invalid UTF-8")


def case_duplicate_prompt_ids(tmp, world):
    p = prompts().assign(prompt_id=["p0", "p1", "p0"])
    return _prompt_case(tmp, p, r"row 2, column 'prompt_id': prompt id 'p0' repeats row 0")


def case_null_prompt_ids(tmp, world):
    p = prompts().assign(prompt_id=["p0", None, "p2"])
    return _prompt_case(tmp, p, r"row 1, column 'prompt_id': missing prompt id")


def case_prompt_too_long_for_dump(tmp, world):
    from fusekit.training_mode import dump_reference_logits

    path, _ = world
    p = prompts()
    p.loc[1, "prompt"] = " ".join(["what is the capital of france ?"] * 20)
    bad = write(p, tmp / "prompts.parquet")
    out = tmp / "dump.parquet"
    cfg = {"top_k": K, "top_p": 1.0, "temperature": 1.0, "max_length": None}
    return (
        lambda: dump_reference_logits(bad, "m", str(path), {}, cfg, str(out)),
        bad,
        r"row 1 \(prompt_id 'p1'\): prompt \+ response \+ EOS is \d+ tokens .* context of 48",
        [out],
    )


def case_no_prompt_fits_the_dump(tmp, world):
    from fusekit.training_mode import dump_reference_logits

    path, _ = world
    bad = write(prompts(), tmp / "prompts.parquet")
    out = tmp / "dump.parquet"
    cfg = {"top_k": K, "top_p": 1.0, "temperature": 1.0, "max_length": 4}
    return (
        lambda: dump_reference_logits(bad, "m", str(path), {}, cfg, str(out)),
        bad,
        r"no row fits logits.max_length = 4 .* first row 0 \(prompt_id 'p0'\)",
        [out],
    )


def case_truncated_json_reference(tmp, world):
    from fusekit.chat_eval import judge_alpaca

    recs = [{"instruction": f"q{i}", "output": f"a{i}", "generator": "gpt4"} for i in range(3)]
    text = json.dumps(recs, indent=2)
    bad = tmp / "reference_outputs.json"
    bad.write_text(text[: len(text) // 2])
    gens = write(generations(), tmp / "gens.parquet")
    outs = [tmp / "judged.parquet", tmp / "judged.json"]
    return (
        lambda: judge_alpaca(str(bad), gens, {}, None, None, *map(str, outs)),
        str(bad),
        r"invalid AlpacaEval records .* at line \d+, column \d+.*truncated",
        outs,
    )


def case_truncated_jsonl_arena_answers(tmp, world):
    from fusekit.arena import load_answers

    line = json.dumps({"question_id": "q1", "choices": [{"turns": [{"content": "x"}]}]})
    bad = tmp / "answers.jsonl"
    bad.write_text(line + "\n" + line[: len(line) // 2] + "\n")
    return lambda: load_answers(str(bad)), str(bad), r"line 2, column \d+: invalid JSON", []


def _training_case(tmp, world, votes_frame=None, dumps=None, prompt_n=3):
    from fusekit.train.examples import build_examples

    _, tok = world
    p = write(prompts(prompt_n), tmp / "prompts.parquet")
    v = write(votes_frame, tmp / "votes.parquet") if votes_frame is not None else None
    meta = {"k": K, "vocab": "target", "vocab_size": len(tok)}
    paths = {}
    for name, (pids, k, mode) in (dumps or {}).items():
        paths[name] = (str(tmp / f"{mode}_{name}.parquet"), mode)
        write_dump(dump_rows(tok, pids, name, k), paths[name][0], {**meta, "k": k})
    infer = {n: p for n, (p, m) in paths.items() if m == "inference"}
    train = {n: p for n, (p, m) in paths.items() if m == "training"}
    return lambda: build_examples(tok, p, v, infer, train, "min_ce", 256), paths, v, p


def case_votes_not_in_prompts(tmp, world):
    run, _, v, p = _training_case(
        tmp, world, votes(["p0", "p1", "p9"], ["a", "a", "a"]), {"a": (["p0"], K, "inference")}
    )
    return run, v, r"row 2, prompt_id 'p9' is not in .*prompts.parquet", []


def case_dump_not_in_prompts(tmp, world):
    run, paths, _, _ = _training_case(
        tmp, world, None, {"a": (["p0", "p7"], K, "training"), "b": (["p0", "p7"], K, "training")}
    )
    return run, paths["a"][0], r"row 1, prompt_id 'p7' is not in .*prompts.parquet", []


def case_inference_dump_not_in_votes(tmp, world):
    run, paths, _, _ = _training_case(
        tmp,
        world,
        votes(["p0", "p1"], ["a", "b"]),
        {"a": (["p0", "p1"], K, "inference")},
    )
    return run, paths["a"][0], r"row 1 \(prompt_id 'p1'\) .* was won by 'b' in", []


def case_dumps_of_different_k(tmp, world):
    run, paths, _, _ = _training_case(
        tmp,
        world,
        None,
        {"a": (["p0", "p1"], K, "training"), "b": (["p0", "p1"], K + 1, "training")},
    )
    return run, paths["b"][0], rf"top-k k = {K + 1}, but .*training_a.parquet has k = {K}", []


def _sequence_case(tmp, world, table, shape, pattern):
    from fusekit.io import read_table
    from fusekit.train.sequences import build_sequence_examples

    _, tok = world
    bad = write(table, tmp / f"{shape}.parquet")
    # as fusekit.train.preference reads a data file and names it
    return (
        lambda: build_sequence_examples(tok, read_table(bad), shape, 256, None, bad),
        bad,
        pattern,
        [],
    )


def case_preference_pairs_null_prompt_id(tmp, world):
    t = pd.DataFrame(
        {
            "prompt_id": ["p0", None],
            "prompt": ["q0", "q1"],
            "chosen_response": ["a", "b"],
            "rejected_response": ["c", "d"],
        }
    )
    return _sequence_case(tmp, world, t, "pair", r"row 1, column 'prompt_id': missing prompt id")


def case_fuserl_groups_nan_best_score(tmp, world):
    t = pd.DataFrame(
        {
            "prompt_id": ["p0", "p0"],
            "prompt": ["q0", "q0"],
            "model": ["a", "b"],
            "best_response": ["x", "y"],
            "best_score": [1.0, math.nan],
        }
    )
    return _sequence_case(
        tmp,
        world,
        t,
        "weighted_sft",
        r"row 1 \(prompt_id 'p0'\), model 'b', column 'best_score': missing value",
    )


CASES = {
    name.removeprefix("case_"): fn for name, fn in globals().items() if name.startswith("case_")
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_file_is_named_and_nothing_is_written(case, world, tmp_path):
    run, bad_file, pattern, outputs = CASES[case](tmp_path, world)
    before = set(tmp_path.iterdir())
    with pytest.raises(DataError) as err:
        run()
    msg = str(err.value)
    assert msg.startswith(f"{bad_file}: "), msg
    assert re.search(pattern, msg), f"{pattern!r} not in {msg!r}"
    for out in outputs:
        assert not Path(out).exists(), f"{out} was written"
    # no output and no hidden temporary sibling (atomic_path's .<name>.*) appeared
    assert set(tmp_path.iterdir()) == before, sorted(set(tmp_path.iterdir()) - before)


def test_valid_frames_pass_every_stage_they_enter(world, tmp_path):
    # the same small frames, unbroken, go through: the checks stop only bad files
    from fusekit.inference_mode import vote
    from fusekit.train.examples import build_examples
    from fusekit.training_mode import align_dump, build_vocab_map

    gens = [write(generations(m), tmp_path / f"gen_{m}.parquet") for m in "ab"]
    paths = [
        write(
            pd.concat([scores("a", rm, [1, 2, 3]), scores("b", rm, [0, 5, 0])]),
            tmp_path / f"{rm}.parquet",
        )
        for rm in RMS
    ]
    voted = vote(paths, gens, RMS, "rm_a", str(tmp_path / "votes.parquet"))
    assert dict(zip(voted.prompt_id, voted.model, strict=True)) == {"p0": "a", "p1": "b", "p2": "a"}
    path, tok = world
    build_vocab_map(str(path), str(path), str(tmp_path / "map.parquet"))
    write_dump(dump_rows(tok, ["p0", "p2"]), str(tmp_path / "d.parquet"), {"k": K})
    aligned = align_dump(
        str(tmp_path / "d.parquet"),
        str(path),
        str(path),
        str(tmp_path / "map.parquet"),
        str(tmp_path / "al_a.parquet"),
    )
    assert [r["prompt_id"] for r in aligned] == ["p0", "p2"]
    write(prompts(), tmp_path / "prompts.parquet")
    examples = build_examples(
        tok,
        str(tmp_path / "prompts.parquet"),
        str(tmp_path / "votes.parquet"),
        {"a": str(tmp_path / "al_a.parquet")},
        {},
    )
    assert [e.prompt_id for e in examples] == ["p0", "p2"]

"""The tiny world's OpenLLM benchmarks: lm-eval tasks over local JSONL files.

Each paper benchmark has a tiny analogue built from the corpus's ``eval`` split,
scored with the same kind of metric, so the evaluation code path (lm-eval's
task loader, its loglikelihood and generation requests, its metrics) is the one
the paper config takes:

============  ===============================  =========================================
benchmark     tiny task (its share of each     metric (as in the Open LLM Leaderboard v1)
              skill's eval items)
============  ===============================  =========================================
MMLU          ``tiny_mmlu``: one subtask per    acc, macro-averaged over subtasks of
              skill (arith 2/10, every lookup,  unequal size
              reverse 1/11, upper 2/12)
HellaSwag     ``tiny_hellaswag`` (reverse 3/11, acc_norm: pick a right response among
              upper 2/12)                       copies stating wrong answers
ARC           ``tiny_arc`` (upper 5/12)         acc_norm: pick the right final answer
Winogrande    ``tiny_winogrande`` (reverse      acc: a right response vs those with a
              4/11)                             wrong answer
GSM8K         ``tiny_gsm8k`` (arith 7/10)       exact_match on the number after
                                                "the answer is", generated greedily
TruthfulQA    ``tiny_truthfulqa_mc2`` (arith    mc2: probability mass on the true answers,
              1/10, reverse 3/11, upper 3/12)   against *imitative* falsehoods: the answer
                                                a model gives by echoing the question
                                                (the letters unreversed or in lower case,
                                                the two digits side by side) and a near miss
============  ===============================  =========================================

Both reference styles are right (issue 17 item 2). The sources learn short answers in
pretraining, while the fusion references are worked (the input restated and the steps
first: ProFuser's harder ground truth, ``tiny_world.corpus.fusion_references``), so a
fused model answers at length. Every choice task therefore states each answer, the right
one and the distractors, in both styles (:func:`fusekit.tiny.corpus.render_reference`), and
both right responses are gold: ``label`` is a list, lm-eval's multiple-target case, where
the most likely choice must be one of them. Chance is unchanged (2 right of 8, Winogrande
2 of 4), and a model is not marked down for the style it answers in. TruthfulQA's true
set holds both styles and the bare answer, and its false set the same forms of the wrong
answers. GSM8K generates :data:`GSM8K_MAX_GEN_TOKS` tokens, enough for a worked sum,
whose last number is still the answer. Until this, the choices were short only, and the
first worked build's fused models fell 16 points below the target (stop 23).

Sizes (issue 17 item 4). No eval item is in two benchmarks: :func:`allocate` cuts each
skill's eval items (``tiny_world.corpus.sizes.eval``, per skill) into the shares of
:data:`ALLOCATION`. The items are distinct (the corpus never repeats an eval item) and
the benchmarks disjoint, so lm-eval's standard errors, computed as if the items were
independent, are what they say, and so is their combination into the average's
(:func:`fusekit.eval.precision.average_standard_error`); :func:`benchmark_item_counts`
feeds :func:`fusekit.eval.precision.worst_case_average_se`, the bound a set size
guarantees before any model is evaluated. Until this layout the benchmarks shared
items (the same arith items in four of them), which made that bound 1.63 points where
the sizes alone said 1.0. ARC then asked arith and lookup items; those skills have few
items (600 pairs, one lookup per entity) and GSM8K and MMLU need them, so ARC is now
upper-casing, which the models can do (it was at chance).

ARC is asked 0-shot in the tiny world (``config/tiny.yaml``): the tiny models were never
trained on multi-turn chats, and a 1-shot prompt rendered as one (lm-eval's
``fewshot_as_multiturn`` with the chat template) measures that format, not the skill.
The earlier TruthfulQA analogue (colour lookups only, one plain wrong colour) was
saturated: every model scored 87-100.

Data files are written next to the task YAMLs and referenced relative to the
directory the workflow runs in (the repository root), so the folder can be
read by ``lm_eval.tasks.TaskManager(include_path=...)`` with no network.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml

from fusekit.io import atomic_path
from fusekit.tiny.corpus import REFERENCE_STYLES, render_reference

# Which benchmark each eval item serves (issue 17 item 4). Every skill's eval items are
# cut, in corpus order, into consecutive slices, one per (task, weight) below, sized in
# proportion to the weights (:func:`allocate`): no item is in two benchmarks, so the six
# are independent and the standard error of their average is what
# :func:`fusekit.eval.precision.worst_case_average_se` computes from the sizes alone.
# (Before, the same arith items were in MMLU, ARC, GSM8K and TruthfulQA and the same
# reverse items in four benchmarks: the worst case was 1.63 points, not the 1.0 the
# sizes gave as if independent.) arith (600 pairs, the fusion split keeps the rest) and
# lookup (one entity each) have few items, so they go where the papers' benchmarks need
# them (GSM8K is arithmetic; MMLU has a subtask per skill); the letter skills, with 11000
# items, fill the rest. tiny_mmlu's subtasks differ in size on purpose: its macro
# average then differs from lm-eval's size-weighted group score, and tests tell them apart.
ALLOCATION: dict[str, tuple[tuple[str, int], ...]] = {
    "arith": (("tiny_gsm8k", 7), ("tiny_mmlu_arith", 2), ("tiny_truthfulqa_mc2", 1)),
    "lookup": (("tiny_mmlu_lookup", 1),),
    "reverse": (
        ("tiny_mmlu_reverse", 1),
        ("tiny_hellaswag", 3),
        ("tiny_winogrande", 4),
        ("tiny_truthfulqa_mc2", 3),
    ),
    "upper": (
        ("tiny_mmlu_upper", 2),
        ("tiny_hellaswag", 2),
        ("tiny_arc", 5),
        ("tiny_truthfulqa_mc2", 3),
    ),
}
# the skills the tasks are built from; others in the corpus (code, greek: FuseChat-3.0's
# domains) are left out, so adding a skill to the world does not change these benchmarks
OPENLLM_SKILLS = tuple(ALLOCATION)
N_CHOICES = 4
# tokens tiny_gsm8k generates: a worked arith answer ("we add 29 and 19 . ... the answer
# is 48") is at most 52 tokens of the target's tokenizer (spm_450), the short one 20
GSM8K_MAX_GEN_TOKS = 64


def allocate(counts: Mapping[str, int]) -> dict[str, dict[str, tuple[int, int]]]:
    """Which eval items each task takes: task -> skill -> ``(start, stop)``, a slice of
    that skill's items in corpus order, for ``counts`` (skill -> its number of eval
    items; skills not in :data:`ALLOCATION` are ignored, and those missing count 0).

    Each skill's slices partition ``range(counts[skill])`` (every item in exactly one
    task) with sizes ``floor(n * w / W)`` for weight ``w`` of total ``W``, at least 1 while
    there are items for each, the rounding remainder going to the heaviest task (the
    first of equal weights). A slice of size 0 is left out. ValueError for a negative
    count."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for skill, shares in ALLOCATION.items():
        n = counts.get(skill, 0)
        if n < 0:
            raise ValueError(f"{skill}: {n} eval items")
        total = sum(w for _, w in shares)
        sizes = [n * w // total for _, w in shares]
        heaviest = max(range(len(shares)), key=lambda i: (shares[i][1], -i))
        sizes[heaviest] += n - sum(sizes)
        for i in range(len(sizes)):  # at least one item each while there are enough
            if sizes[i] == 0 and n >= len(shares):
                sizes[i], sizes[heaviest] = 1, sizes[heaviest] - 1
        start = 0
        for (task, _), size in zip(shares, sizes, strict=True):
            if size:
                out.setdefault(task, {})[skill] = (start, start + size)
            start += size
    return out


_UTILS = '''"""lm-eval hooks of the tiny tasks; the logic lives in fusekit."""

from fusekit.eval.openllm import process_results_mc2  # noqa: F401
'''


def _wrong_answers(gold: str, pool: list[str], rng: random.Random, n: int) -> list[str]:
    """``n`` plausible wrong answers: near sums, other orders of the same letters, the
    wrong case, other colours (from ``pool``, the skill's answers)."""
    if gold.lstrip("-").isdigit():
        g = int(gold)
        near = [str(g + d) for d in (-3, -2, -1, 1, 2, 3) if g + d >= 0]
        return rng.sample(near, min(n, len(near)))
    letters = gold.split()
    if len(letters) > 1:
        orders = {" ".join(p) for p in itertools.permutations(letters)} - {gold}
        if gold.isupper():
            orders.add(gold.lower())
        return rng.sample(sorted(orders), min(n, len(orders)))
    others = sorted({a for a in pool if a != gold})
    return rng.sample(others, min(n, len(others)))


_ECHO = (
    (re.compile(r"^(\d+) plus (\d+) makes "), lambda m: m.group(1) + m.group(2)),
    (re.compile(r"^reading (.+?) backwards gives "), lambda m: m.group(1)),
    (re.compile(r"^in capitals (.+?) is "), lambda m: m.group(1)),
)


def _imitative_answer(reference: str, gold: str, pool: list[str]) -> str | None:
    """The wrong answer a model gives by imitating the question rather than answering it:
    the two digits side by side ("3 + 4" -> "34"), the letters as given (not reversed,
    not in capitals), or for a lookup the commonest other colour of the skill. None when
    that equals the gold answer (a palindrome, say)."""
    for pattern, echo in _ECHO:
        m = pattern.match(reference)
        if m:
            wrong = echo(m)
            return wrong if wrong != gold else None
    others = [a for a in pool if a != gold]
    return others[0] if others else None


def _styled(skill: str, prompt: str, answers: list[str]) -> list[str]:
    """Each answer stated in each reference style: the short responses first (in
    ``answers``' order), then the worked ones (:func:`fusekit.tiny.corpus.render_reference`)."""
    return [
        render_reference(skill, prompt, a, style) for style in REFERENCE_STYLES for a in answers
    ]


def _shuffled(choices: list[str], right: int, rng: random.Random) -> tuple[list[str], list[int]]:
    """``choices`` shuffled, and where the ``right`` first ones went (sorted)."""
    order = list(range(len(choices)))
    rng.shuffle(order)
    return [choices[i] for i in order], sorted(j for j, i in enumerate(order) if i < right)


def build_task_docs(eval_split: pd.DataFrame, seed: int) -> dict[str, list[dict]]:
    """Documents of every tiny task, keyed by task name (pure function of the split).

    Only rows of :data:`OPENLLM_SKILLS` are used; other skills are ignored. Each skill's
    rows are shared out by :func:`allocate` (no item in two tasks); a task of several
    skills lists them in :data:`ALLOCATION`'s order of skills. Tasks with no item are
    left out."""
    rng = random.Random(f"openllm-{seed}")
    eval_split = eval_split[eval_split["skill"].isin(OPENLLM_SKILLS)]
    by_skill = {s: g.reset_index(drop=True) for s, g in eval_split.groupby("skill", sort=True)}
    answers = {s: sorted(set(g["answer"])) for s, g in by_skill.items()}
    slices = allocate({s: len(g) for s, g in by_skill.items()})

    def items(task: str) -> pd.DataFrame:
        parts = [by_skill[s].iloc[a:b] for s, (a, b) in slices.get(task, {}).items()]
        return pd.concat(parts, ignore_index=True) if parts else eval_split.head(0)

    def choice_rows(frame: pd.DataFrame, n_wrong: int) -> list[dict]:
        """The right response in both styles among both styles' copies that state
        wrong answers; ``label`` lists the two right choices."""
        rows = []
        for r in frame.itertuples():
            wrong = _wrong_answers(r.answer, answers[r.skill], rng, n_wrong)
            right = _styled(r.skill, r.prompt, [r.answer])
            choices, label = _shuffled(right + _styled(r.skill, r.prompt, wrong), len(right), rng)
            rows.append({"id": r.prompt_id, "query": r.prompt, "choices": choices, "label": label})
        return rows

    docs: dict[str, list[dict]] = {}
    for skill in ALLOCATION:
        docs[f"tiny_mmlu_{skill}"] = choice_rows(items(f"tiny_mmlu_{skill}"), N_CHOICES - 1)
    docs["tiny_hellaswag"] = choice_rows(items("tiny_hellaswag"), N_CHOICES - 1)
    docs["tiny_arc"] = choice_rows(items("tiny_arc"), N_CHOICES - 1)
    docs["tiny_winogrande"] = choice_rows(items("tiny_winogrande"), 1)

    docs["tiny_gsm8k"] = [
        {"id": r.prompt_id, "query": r.prompt, "answer": r.answer}
        for r in items("tiny_gsm8k").itertuples()
    ]

    rows = []
    for r in items("tiny_truthfulqa_mc2").itertuples():
        echo = _imitative_answer(r.reference, r.answer, answers[r.skill])
        near = [w for w in _wrong_answers(r.answer, answers[r.skill], rng, 3) if w != echo]
        wrong = ([echo] if echo else []) + near[: 2 - bool(echo)]
        true = [*_styled(r.skill, r.prompt, [r.answer]), f"the answer is {r.answer}"]
        false = _styled(r.skill, r.prompt, wrong) + [f"the answer is {w}" for w in wrong]
        rows.append(
            {
                "id": r.prompt_id,
                "query": r.prompt,
                "mc2_targets": {
                    "choices": true + false,
                    "labels": [1] * len(true) + [0] * len(false),
                },
            }
        )
    docs["tiny_truthfulqa_mc2"] = rows
    return {name: rows for name, rows in docs.items() if rows}


def benchmark_item_counts(docs: dict[str, list[dict]]) -> dict[str, int | list[int]]:
    """Items per benchmark of :func:`build_task_docs`'s documents, keyed by the lm-eval
    task a benchmark names: ``tiny_mmlu`` the list of its subtasks' sizes (sorted by
    subtask name; it is macro-averaged), every other task its number of documents. The
    input of :func:`fusekit.eval.precision.worst_case_average_se`."""
    counts: dict[str, int | list[int]] = {}
    mmlu = sorted(name for name in docs if name.startswith("tiny_mmlu_"))
    if mmlu:
        counts["tiny_mmlu"] = [len(docs[name]) for name in mmlu]
    counts.update({name: len(rows) for name, rows in docs.items() if name not in mmlu})
    return counts


def _dataset(data_file: str) -> dict:
    return {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "fewshot_split": "test",
        "doc_to_text": "{{query}}",
    }


def _metric(name: str) -> dict:
    return {"metric": name, "aggregation": "mean", "higher_is_better": True}


def task_spec(name: str, data_file: str) -> dict:
    """The lm-eval task YAML of one tiny task."""
    spec = {"task": name, **_dataset(data_file), "metadata": {"version": 1.0}}
    if name == "tiny_gsm8k":
        spec.update(
            output_type="generate_until",
            doc_to_target="{{answer}}",
            generation_kwargs={
                "until": ["\n\n"],
                "do_sample": False,
                "max_gen_toks": GSM8K_MAX_GEN_TOKS,
            },
            filter_list=[
                {
                    "name": "strict-match",
                    "filter": [
                        {"function": "regex", "regex_pattern": r"the answer is (\-?[0-9]+)"},
                        {"function": "take_first"},
                    ],
                }
            ],
            metric_list=[{**_metric("exact_match"), "ignore_case": True}],
        )
    elif name == "tiny_truthfulqa_mc2":
        spec.update(
            output_type="multiple_choice",
            doc_to_target=0,
            doc_to_choice="{{mc2_targets.choices}}",
            process_results="!function utils.process_results_mc2",
            metric_list=[_metric("acc")],
        )
    else:
        metrics = [_metric("acc")]
        if name in ("tiny_hellaswag", "tiny_arc"):
            metrics.append(_metric("acc_norm"))
        spec.update(
            output_type="multiple_choice",
            doc_to_target="label",
            doc_to_choice="choices",
            metric_list=metrics,
        )
    return spec


class _FunctionTag(str):
    """A string dumped as lm-eval's ``!function`` YAML tag."""


def _represent_function(dumper, value):
    return dumper.represent_scalar("!function", value.removeprefix("!function "))


yaml.SafeDumper.add_representer(_FunctionTag, _represent_function)


def write_tasks(corpus_path: str | Path, out_dir: str | Path, seed: int) -> dict[str, int]:
    """Write every tiny task (JSONL data + YAML) and the ``tiny_mmlu`` group into
    ``out_dir``, atomically as a folder. Returns the number of documents per task."""
    corpus = pd.read_parquet(corpus_path)
    if "split" not in corpus.columns:
        raise ValueError(f"{corpus_path}: no 'split' column; is this the tiny corpus?")
    eval_split = corpus[corpus["split"] == "eval"]
    if eval_split.empty:
        raise ValueError(f"{corpus_path}: the 'eval' split is empty")
    docs = build_task_docs(eval_split, seed)
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        for name, rows in docs.items():
            data_file = (out_dir / f"{name}.jsonl").as_posix()
            with open(tmp / f"{name}.jsonl", "w") as f:
                for row in rows:
                    f.write(json.dumps(row, sort_keys=True) + "\n")
            spec = task_spec(name, data_file)
            if "process_results" in spec:
                spec["process_results"] = _FunctionTag(spec["process_results"])
            (tmp / f"{name}.yaml").write_text(
                yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
            )
        subtasks = sorted(n for n in docs if n.startswith("tiny_mmlu_"))
        group = {
            "group": "tiny_mmlu",
            "task": subtasks,
            "aggregate_metric_list": [
                {"metric": "acc", "aggregation": "mean", "weight_by_size": True}
            ],
            "metadata": {"version": 1.0},
        }
        (tmp / "tiny_mmlu.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
        (tmp / "utils.py").write_text(_UTILS)
    return {name: len(rows) for name, rows in docs.items()}

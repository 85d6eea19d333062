"""GSM8K scored by the final-number rule (Open-Instruct), through lm-eval's own machinery."""

import json
import os
import re

import pytest
import yaml

from fusekit.eval.filters import FINAL_NUMBER, filter_ensemble, final_number
from fusekit.eval.openllm import _with_filters, benchmark_value

# (model output, gold, credited by Open-Instruct's rule, by lm-eval's gsm8k_cot strict-match)
PHRASINGS = [
    ("48 / 2 = 24 in May, 48 + 24 = 72 in all. The answer is 72.", "72", 1, 1),
    ("She pays 12 - 2 = 10 dollars. So the answer is 10.", "10", 1, 0),
    ("5 + 4 = 9 toys. The final answer is 9.", "9", 1, 0),
    ("It costs 1,000 + 80 = 1,080 dollars. The answer is 1,080.", "1080", 1, 1),
    ("Total: 18", "18", 1, 0),
    ("**Answer:** 42", "42", 1, 0),
    ("The answer is 7. (I first thought 8.)", "7", 0, 1),  # the last number is 8
    ("I cannot tell.", "3", 0, 0),
    ("He has $1,000,000 left. The answer is $1,000,000.", "1000000", 1, 0),
    ("the answer is 12...", "12", 1, 0),  # lm-eval's flexible-extract reads '...' here
]


def _gsm8k_cot():
    import lm_eval.tasks

    path = os.path.join(os.path.dirname(lm_eval.tasks.__file__), "gsm8k", "gsm8k-cot.yaml")
    return yaml.safe_load(open(path).read().replace("!function", ""))


@pytest.mark.parametrize("output,gold,final,strict", PHRASINGS)
def test_final_number_rule_on_answers_phrased_several_ways(output, gold, final, strict):
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    spec = _gsm8k_cot()
    metric = spec["metric_list"][0]

    def em(pred):
        return exact_match_hf_evaluate(
            references=[gold],
            predictions=[pred],
            ignore_case=True,
            ignore_punctuation=False,
            regexes_to_ignore=metric["regexes_to_ignore"],
        )["exact_match"]

    # fusekit's filter through lm-eval's FilterEnsemble, scored by gsm8k_cot's own metric
    class Inst:
        def __init__(self, text):
            self.resps, self.doc, self.filtered_resps = [text], {}, {}

    inst = Inst(output)
    filter_ensemble(FINAL_NUMBER).apply([inst])
    assert inst.filtered_resps[FINAL_NUMBER] == final_number(output)
    assert em(inst.filtered_resps[FINAL_NUMBER]) == final
    strict_filter = next(f for f in spec["filter_list"] if f["name"] == "strict-match")["filter"][0]
    pred = RegexFilter(strict_filter["regex_pattern"]).apply([[output]], [None])[0][0]
    assert em(pred) == strict


def test_final_number_is_open_instructs_rule():
    # allenai/open-instruct eval/gsm/run_eval.py, restated independently
    def open_instruct(output):
        output = re.sub(r"(\d),(\d)", r"\1\2", output)
        numbers = re.findall(r"[-+]?\d*\.\d+|\d+", output)
        return numbers[-1] if numbers else output

    for output, *_ in PHRASINGS:
        assert final_number(output) == open_instruct(output)
    assert final_number("paid 2.50 then -3.5") == "-3.5"
    assert final_number("no digits") == "no digits"


def test_benchmark_value_reads_the_configured_filter_and_names_its_key():
    out = {
        "results": {
            "gsm8k_cot": {
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.05,
                "exact_match,flexible-extract": 0.5,
                "exact_match_stderr,flexible-extract": 0.06,
                "exact_match,final-number": 0.75,
                "exact_match_stderr,final-number": 0.04,
            }
        }
    }
    v = benchmark_value(out, "gsm8k_cot", "exact_match", "lm_eval", "final-number")
    assert (v["value"], v["stderr"], v["key"]) == (75.0, 4.0, "exact_match,final-number")
    assert benchmark_value(out, "gsm8k_cot", "exact_match", "lm_eval")["value"] == 75.0
    strict = benchmark_value(out, "gsm8k_cot", "exact_match", "lm_eval", "strict-match")
    assert strict["value"] == 25.0
    del out["results"]["gsm8k_cot"]["exact_match,final-number"]
    # stock gsm8k_cot results: the last-number filter lm-eval has, not the literal phrase
    assert benchmark_value(out, "gsm8k_cot", "exact_match", "lm_eval")["value"] == 50.0
    with pytest.raises(KeyError, match="filter 'final-number'"):
        benchmark_value(out, "gsm8k_cot", "exact_match", "lm_eval", "final-number")


def test_the_filter_is_added_to_an_lm_eval_task_and_scores_its_documents(tmp_path):
    from lm_eval.tasks import TaskManager

    from fusekit.tiny.openllm_tasks import task_spec

    docs = [
        {"id": "a", "query": "compute 7 + 4 .", "answer": "11"},
        {"id": "b", "query": "compute 1 + 2 .", "answer": "3"},
        {"id": "c", "query": "compute 5 + 5 .", "answer": "10"},
    ]
    data = tmp_path / "tiny_gsm8k.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    spec = task_spec("tiny_gsm8k", str(data))
    (tmp_path / "tiny_gsm8k.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    bench = {"gsm8k": {"task": "tiny_gsm8k", "filter": FINAL_NUMBER}}
    (task,) = _with_filters(manager, bench, ["tiny_gsm8k"])
    assert FINAL_NUMBER in [f.name for f in task._filters]
    task.build_all_requests(limit=None)
    outputs = {
        "a": "7 plus 4 makes 11 . so the answer is 11 .",  # final number 11: right
        "b": "1 plus 2 makes 3",  # no "the answer is": right by the final number
        "c": "the answer is 10 , or 11",  # final number 11: wrong
    }
    for inst in task.instances:
        inst.resps = [outputs[inst.doc["id"]]]
    task.apply_filters()
    got = {
        inst.doc["id"]: task.process_results(inst.doc, [inst.filtered_resps[FINAL_NUMBER]])
        for inst in task.instances
    }
    assert {k: v["exact_match"] for k, v in got.items()} == {"a": 1.0, "b": 1.0, "c": 0.0}
    with pytest.raises(ValueError, match="no answer filter 'last-word'"):
        filter_ensemble("last-word")

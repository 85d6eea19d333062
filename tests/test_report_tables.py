"""Tables whose columns mix sources of numbers (OpenLLM, another benchmark suite, the chat
evaluation, columns not run), the reported CSVs' layouts, and which rows get evaluated."""

import copy
import json
import math

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from fusekit import workflow
from fusekit.config import ConfigError, check_references
from fusekit.report.tables import (
    CODE_REASON,
    Z95,
    build_table,
    not_run_columns,
    paper_layout,
    read_reported,
    tabulate,
)
from fusekit.report.verify import NOT_RUN, render_verification, write_verification

PAPER = yaml.safe_load((ROOT / "config/config.yaml").read_text())
TINY = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())

CARD = """benchmark,Base,Tuned,Fused
AlpacaEval-2 LC,28.3,41.3,65.4
Arena-Hard WR,28.1,38.7,58.2
MT-Bench,8.4,8.5,9.0
GSM8K,85.9,,88.0
HumanEval,69.5,69.5,71.3
Average,40.5,43.2,47.3
"""
SUITES = {
    "card": {
        "allow_code_execution": False,
        "benchmarks": {
            "gsm8k": {"label": "GSM8K", "task": "t_gsm", "num_fewshot": 0, "metric": "em"},
            "humaneval": {
                "label": "HumanEval",
                "task": "t_he",
                "num_fewshot": 0,
                "metric": "pass@1",
                "executes_code": True,
            },
        },
    }
}
CARD_SPEC = {
    "reported_layout": "models_as_columns",
    # configured out of the card's order: the table follows the card
    "not_run": {"MT-Bench": "needs a multi-turn judge", "Average": "not recomputable"},
    "suites": {"card": ["gsm8k", "humaneval"]},
    "chat": ["AlpacaEval-2 LC", "Arena-Hard WR"],
    "average": False,
    "rows": [
        {"model": "base", "reported": "Base"},
        {"variant": "SFT", "reported": "Tuned"},
        {"variant": "DPO", "reported": "Fused"},
    ],
}
CHAT = pd.DataFrame(
    {
        "model": ["base", "SFT", "DPO", "src"],
        "lc_win_rate": [30.0, 40.0, 60.0, 10.0],
        "lc_standard_error": [1.5, math.nan, 2.0, 1.0],
        "lc_standard_error_kind": ["bootstrap", "none", "bootstrap", "bootstrap"],
        "win_rate": [31.0, 41.0, 61.0, 11.0],
        "standard_error": [1.0, 1.0, 1.0, 1.0],
        "arena_hard": [27.0, 39.0, 50.0, 5.0],
        "arena_hard_lower": [25.5, 37.0, 48.0, 4.0],
        "arena_hard_upper": [29.0, 41.5, 52.0, 6.0],
        "arena_hard_rounds_missing": [0, 0, 0, 0],
    }
)


def _eval_json(path, values: dict[str, tuple[float, float | None]]) -> str:
    path.write_text(
        json.dumps({"benchmarks": {k: {"value": v, "stderr": se} for k, (v, se) in values.items()}})
    )
    return str(path)


def _card_table(tmp_path):
    (tmp_path / "card.csv").write_text("# a model card, benchmarks as rows\n" + CARD)
    chat = tmp_path / "chat_eval.csv"
    CHAT.to_csv(chat, index=False)
    suite = {
        "base": _eval_json(tmp_path / "b.json", {"gsm8k": (80.0, 1.0)}),
        "SFT": _eval_json(tmp_path / "s.json", {"gsm8k": (84.5, 1.2)}),
        "DPO": _eval_json(tmp_path / "d.json", {"gsm8k": (88.25, None)}),
    }
    spec = {**CARD_SPEC, "reported": str(tmp_path / "card.csv")}
    out = tmp_path / "card_table.csv"
    table = tabulate("card", spec, {}, {}, out, SUITES, {"card": suite}, chat)
    return spec, table, out


def test_reported_csvs_skip_comments_and_keep_their_index_as_strings(tmp_path):
    t4 = read_reported(ROOT / "config/reported/wrpo_table4.csv", "num_sources")
    assert list(t4.index) == ["1", "2", "5", "10"]  # the trailing '# note' line is skipped
    assert t4.loc["10", "AlpacaEval-2 WR"] == 58.0
    t3 = read_reported(ROOT / "config/reported/wrpo_table3.csv", "method")
    assert t3.loc["WRPO_IPO", "AlpacaEval-2 LC"] == 53.3
    t2 = read_reported(ROOT / "config/reported/wrpo_table2.csv")
    assert t2.loc["Target (LLaMA3-8B-Instruct)", "Arena-Hard WR"] == 20.6
    card = read_reported(
        ROOT / "config/reported/fusechat3_llama31_8b.csv", None, "models_as_columns"
    )
    assert card.loc["FuseChat-Llama-3.1-8B-Instruct", "AlpacaEval-2 LC"] == 65.4
    assert card.loc["Llama-3.1-8B-Instruct", "LiveCodeBench 2408-2411"] == 12.3
    assert len(card.columns) == 15 and list(card.index)[0] == "Llama-3.1-8B-Instruct"
    with pytest.raises(ValueError, match="no 'method' column"):
        read_reported(ROOT / "config/reported/wrpo_table4.csv", "method")
    (tmp_path / "dup.csv").write_text("benchmark,A\nX,1\nX,2\n")
    with pytest.raises(ValueError, match=r"benchmark rows \['X'\]"):
        read_reported(tmp_path / "dup.csv", None, "models_as_columns")
    with pytest.raises(ValueError, match="unknown layout"):
        read_reported(tmp_path / "dup.csv", None, "sideways")


def test_a_card_table_mixes_chat_suite_and_not_run_columns(tmp_path):
    _, table, out = _card_table(tmp_path)
    assert out.is_file()
    cells = table.set_index(["model", "column"])
    # columns in the card's order, whatever order the config lists them in
    assert list(dict.fromkeys(table["column"])) == [
        "AlpacaEval-2 LC",
        "Arena-Hard WR",
        "MT-Bench",
        "GSM8K",
        "HumanEval",
        "Average",
    ]
    lc = cells.loc[("base", "AlpacaEval-2 LC")]
    assert (lc.reproduced, lc.stderr, lc.reported) == (30.0, 1.5, 28.3)
    assert lc.ci_lower == pytest.approx(30 - Z95 * 1.5, abs=1e-4) and lc.difference == 1.7
    assert math.isnan(cells.loc[("SFT", "AlpacaEval-2 LC")].ci_lower)  # SE unknown
    arena = cells.loc[("DPO", "Arena-Hard WR")]  # the bootstrap interval, no SE
    assert (arena.ci_lower, arena.ci_upper, arena.reported) == (48.0, 52.0, 58.2)
    assert math.isnan(arena.stderr) and arena.difference == pytest.approx(-8.2)
    gsm = cells.loc[("SFT", "GSM8K")]  # the suite's value; the card's cell is empty
    assert gsm.reproduced == 84.5 and gsm.stderr == 1.2 and math.isnan(gsm.reported)
    assert cells.loc[("DPO", "GSM8K")].reported == 88.0
    assert math.isnan(cells.loc[("DPO", "GSM8K")].stderr)
    for col, rep in [("MT-Bench", 9.0), ("HumanEval", 71.3), ("Average", 47.3)]:
        cell = cells.loc[("DPO", col)]  # not run: the reported number, nothing reproduced
        assert math.isnan(cell.reproduced) and math.isnan(cell.difference)
        assert cell.reported == rep
    assert set(table["kind"]) == {"model", "variant"}
    layout = paper_layout(table).set_index("model")
    assert layout.loc["SFT", "GSM8K"] == 84.5 and math.isnan(layout.loc["SFT", "MT-Bench"])


def test_not_run_reasons_include_code_execution_without_opt_in():
    reasons = not_run_columns(CARD_SPEC, {}, SUITES)
    assert reasons == {
        "HumanEval": CODE_REASON.format(suite="card"),
        "MT-Bench": "needs a multi-turn judge",
        "Average": "not recomputable",
    }
    allowed = {"card": {**SUITES["card"], "allow_code_execution": True}}
    assert "HumanEval" not in not_run_columns(CARD_SPEC, {}, allowed)


def test_missing_inputs_of_a_mixed_table_are_named(tmp_path):
    rep = read_reported(_write(tmp_path / "c.csv", CARD), None, "models_as_columns")
    suite = {"card": {"base": {"gsm8k": 1.0}, "SFT": {"gsm8k": 1.0}, "DPO": {"gsm8k": 1.0}}}
    with pytest.raises(ValueError, match="need the study's chat_eval.csv"):
        build_table("c", CARD_SPEC, {}, {}, rep, SUITES, suite, None)
    with pytest.raises(ValueError, match="chat_eval.csv has no row 'DPO'"):
        build_table("c", CARD_SPEC, {}, {}, rep, SUITES, suite, CHAT[CHAT.model != "DPO"])
    with pytest.raises(ValueError, match="no card evaluation of 'SFT'"):
        build_table("c", CARD_SPEC, {}, {}, rep, SUITES, {"card": {"base": {"gsm8k": 1}}}, CHAT)
    with pytest.raises(ValueError, match="average needs every column"):
        build_table("c", {**CARD_SPEC, "average": "Mean"}, {}, {}, rep, SUITES, suite, CHAT)
    with pytest.raises(ValueError, match=r"labels \['Average'\] appear more than once"):
        build_table("c", {**CARD_SPEC, "average": True}, {}, {}, rep, SUITES, suite, CHAT)
    with pytest.raises(ValueError, match="no benchmark suite 'other'"):
        build_table(
            "c", {**CARD_SPEC, "suites": {"other": ["x"]}}, {}, {}, rep, SUITES, suite, CHAT
        )


def _write(path, text):
    path.write_text(text)
    return path


def test_an_average_named_like_the_papers_is_recomputed_and_compared():
    bench = {"a": {"label": "A"}, "b": {"label": "B"}}
    rep = pd.DataFrame({"method": ["10"], "B": [10.0], "A": [50.0], "Avg": [30.0]})
    rep = rep.set_index("method")
    spec = {"benchmarks": ["a", "b"], "average": "Avg", "rows": [{"variant": "W", "reported": 10}]}
    evals = {"W": {"a": {"value": 52.0, "stderr": 1.0}, "b": {"value": 9.0, "stderr": 2.0}}}
    t = build_table("t7", spec, bench, evals, rep).set_index("column")
    assert list(t.index) == ["B", "A", "Avg"]  # the reported CSV's order, average last
    assert t.loc["Avg", "reproduced"] == 30.5 and t.loc["Avg", "reported"] == 30.0
    assert t.loc["Avg", "stderr"] == pytest.approx(math.sqrt(0.25 + 1.0), abs=1e-4)
    assert t.loc["A", "row"] == "10"  # an integer reported row compared as a string


def test_verification_lists_not_run_columns_with_reasons_never_as_failures(tmp_path):
    spec, table, out = _card_table(tmp_path)
    reasons = not_run_columns(spec, {}, SUITES)
    text = render_verification(
        "fusechat3",
        {"card": table},
        {"card": "The card"},
        {},
        1.0,
        "tiny",
        not_run={"card": reasons},
        suites={"card": {"benchmarks": {"gsm8k": SUITES["card"]["benchmarks"]["gsm8k"]}}},
    )
    assert "stand-ins" in text  # the tiny world's note
    assert "| GSM8K (suite card) | `t_gsm` | 0 | em |" in text
    assert "- **MT-Bench**: needs a multi-turn judge" in text
    assert f"- **HumanEval**: {CODE_REASON.format(suite='card')}" in text
    # 18 cells; 13 with a reported value that was reproduced; 3 columns x 3 rows not run
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| not run |" in summary
    line = next(ln for ln in summary.splitlines() if ln.startswith("| card |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "18" and cells[2] == "8" and cells[-1] == "9"
    assert "differs" not in [
        ln.split("|")[-3].strip() for ln in text.splitlines() if "MT-Bench |" in ln
    ]
    mt = [ln for ln in text.splitlines() if "| DPO | MT-Bench |" in ln]
    assert len(mt) == 1 and f"| {NOT_RUN} |" in mt[0] and "| 9.00 |" in mt[0]
    # the file-to-file path gives the same text
    md = tmp_path / "verification.md"
    assert (
        write_verification(
            "fusechat3",
            {"card": str(out)},
            {"card": "The card"},
            {},
            1.0,
            "tiny",
            str(md),
            not_run={"card": reasons},
            suites={"card": {"benchmarks": {"gsm8k": SUITES["card"]["benchmarks"]["gsm8k"]}}},
        )
        == text
    )


def test_only_table_rows_are_evaluated_on_their_tables_suites():
    targets = workflow.report_targets(PAPER)
    openllm = {t for t in targets if "/openllm/" in t}
    # WRPO Table 7: the target and seven variants; no source of 236B is ever evaluated
    assert "results/evaluation/openllm/Meta-Llama-3-8B-Instruct.json" in openllm
    assert "results/wrpo/evaluation/openllm/WRPO_SimPO.json" in openllm
    assert not any("DeepSeek" in t or "Mistral-Large" in t for t in openllm)
    assert "results/wrpo/evaluation/openllm/WRPO-alpha0.3.json" not in openllm
    # ProFuser: its table rows (InferFuse is in none of its tables)
    assert "results/profuser/evaluation/openllm/ProFuser.json" in openllm
    assert "results/profuser/evaluation/openllm/InferFuse.json" not in openllm
    # FuseChat-3.0's card suite: its three rows only, not on OpenLLM
    suite = {t for t in targets if "/suites/" in t}
    assert suite == {
        "results/evaluation/suites/fusechat3/Llama-3.1-8B-Instruct.json",
        "results/fusechat3/evaluation/suites/fusechat3/SFT.json",
        "results/fusechat3/evaluation/suites/fusechat3/DPO.json",
    }
    assert not any(t.startswith("results/fusechat3/evaluation/openllm") for t in openllm)
    for name in ("llama31_8b",):
        assert f"results/fusechat3/{name}.csv" in targets
    assert {f"results/wrpo/table{n}.csv" for n in (2, 3, 4, 7)} <= set(targets)
    # code execution stays off unless opted in: HumanEval and MBPP are not run
    assert "humaneval" not in workflow.suite_benchmarks(PAPER, "fusechat3")
    reasons = workflow.table_not_run(PAPER, "fusechat3", "llama31_8b")
    assert reasons["MBPP"] == CODE_REASON.format(suite="fusechat3") and len(reasons) == 8
    opted = copy.deepcopy(PAPER)
    opted["evaluation"]["suites"]["fusechat3"]["allow_code_execution"] = True
    assert "humaneval" in workflow.suite_benchmarks(opted, "fusechat3")
    assert workflow.suite_settings(opted, "fusechat3")["confirm_run_unsafe_code"] is True
    assert "HumanEval" not in workflow.table_not_run(opted, "fusechat3", "llama31_8b")
    assert workflow.suite_settings(PAPER, "fusechat3")["apply_chat_template"] is True
    assert workflow.suite_settings(PAPER, "openllm")["apply_chat_template"] is False
    assert workflow.suite_code_env(opted, "fusechat3") == "HF_ALLOW_CODE_EVAL=1 "
    assert workflow.suite_code_env(PAPER, "fusechat3") == ""
    job = workflow.suite_job_settings(TINY, "fusechat3", "tgt_llama")  # the tiny task folder
    assert job["tasks_dir"] == TINY["evaluation"]["openllm"]["tasks_dir"]
    assert job["seed"] == TINY["seed"] and "benchmarks" not in job


def test_table_inputs_and_what_verification_describes():
    assert workflow.table_inputs(TINY, "wrpo", "table3") == ["results/tiny/wrpo/chat_eval.csv"]
    assert workflow.table_evaluations(TINY, "wrpo", "table3") == {}
    t7 = workflow.table_inputs(TINY, "wrpo", "table7")
    assert t7[0] == "results/tiny/evaluation/openllm/tgt_llama.json" and len(t7) == 4
    card = workflow.table_inputs(TINY, "fusechat3", "llama31_8b")
    assert card == [
        "results/tiny/evaluation/suites/fusechat3/tgt_llama.json",
        "results/tiny/fusechat3/evaluation/suites/fusechat3/SFT.json",
        "results/tiny/fusechat3/evaluation/suites/fusechat3/DPO.json",
        "results/tiny/fusechat3/chat_eval.csv",
    ]
    keys, suites = workflow.study_benchmarks(TINY, "fusechat3")
    assert keys == [] and list(suites["fusechat3"]["benchmarks"]) == ["gsm8k"]
    keys, suites = workflow.study_benchmarks(TINY, "profuser")
    assert keys == list(TINY["evaluation"]["openllm"]["benchmarks"]) and suites == {}
    assert workflow.study_not_run(TINY, "profuser") == {}
    assert set(workflow.study_not_run(TINY, "wrpo")) == {"table2", "table3", "table4"}


def test_shipped_wrpo_and_fusechat_tables_match_their_reported_rows():
    for cfg, n4 in [(PAPER, ["1", "2", "5", "10"]), (TINY, ["1", "2", "10"])]:
        t4 = cfg["studies"]["wrpo"]["tables"]["table4"]
        assert [str(r["reported"]) for r in t4["rows"]] == n4
        assert t4["rows"][-1]["variant"] == "WRPO"
        t7 = cfg["studies"]["wrpo"]["tables"]["table7"]
        # the tiny world leaves out four rows of the paper's eight (the DAG's budget)
        assert t7["average"] == "Avg" and len(t7["rows"]) == (8 if cfg is PAPER else 4)
    # every WRPO source has a Table 2 row at paper scale
    t2 = PAPER["studies"]["wrpo"]["tables"]["table2"]
    assert {r.get("model") for r in t2["rows"]} >= set(PAPER["studies"]["wrpo"]["sources"])


def _bad(mutate, match, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = copy.deepcopy(TINY)
    mutate(cfg)
    with pytest.raises(ConfigError, match=match):
        check_references(cfg)


def test_config_check_of_mixed_tables(monkeypatch):
    monkeypatch.chdir(ROOT)
    check_references(copy.deepcopy(TINY))
    check_references(copy.deepcopy(PAPER))
    tables = lambda c: c["studies"]["wrpo"]["tables"]  # noqa: E731
    _bad(lambda c: tables(c)["table3"].update(average=True), "table3.average", monkeypatch)
    _bad(
        lambda c: tables(c)["table2"]["rows"].append({"model": "rm_judge_none"}),
        "is not defined under models",
        monkeypatch,
    )
    _bad(
        lambda c: c["studies"]["fusechat3"]["tables"]["llama31_8b"].update(suites={"x": ["a"]}),
        "suites.x",
        monkeypatch,
    )
    _bad(
        lambda c: tables(c)["table4"]["rows"].append({"variant": "WRPO", "reported": 7}),
        "7 is not a model row",
        monkeypatch,
    )
    _bad(
        lambda c: tables(c)["table3"]["not_run"].update({"AlpacaEval-2 LC": "dup"}),
        "appear more than once",
        monkeypatch,
    )
    _bad(
        lambda c: tables(c)["table3"]["not_run"].update({"MT-Bench T9": "no such column"}),
        r"has no column \['MT-Bench T9'\]",
        monkeypatch,
    )

    def profuser_row(c):
        c["models"]["other"] = dict(c["models"]["tgt_llama"])
        tables(c)["table2"]["rows"].append({"model": "other"})

    _bad(profuser_row, "not a source or the target", monkeypatch)


def test_code_execution_opt_in_reaches_lm_eval(monkeypatch, tmp_path):
    """A suite's allow_code_execution becomes lm-eval's confirm_run_unsafe_code."""
    import fusekit.eval.openllm as openllm

    seen = {}

    def fake(model_path, benchmarks, **kwargs):
        seen.update(kwargs)
        return {"benchmarks": {}}

    monkeypatch.setattr(openllm, "evaluate_model", fake)
    openllm.evaluate_to_file("m", {}, {"confirm_run_unsafe_code": True}, str(tmp_path / "a.json"))
    assert seen["confirm_run_unsafe_code"] is True
    openllm.evaluate_to_file("m", {}, {}, str(tmp_path / "b.json"))
    assert seen["confirm_run_unsafe_code"] is False

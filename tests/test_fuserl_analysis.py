"""FuseRL's analyses (issue 16 item 4): held-out split, preference accuracy, bias and
variance against a judge, the ablation per objective; the workflow that plans them and
the table beside the recovered cells."""

import math
import statistics
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from test_fuserl_training import groups  # noqa: F401
from test_preference_build import write_inputs
from test_preference_training import world  # noqa: F401

from fusekit import workflow as layout
from fusekit.io import write_table
from fusekit.preference.build import build_fuserl_data
from fusekit.report import fuserl_analysis as fa

# sources A (rows 0, 1) and B (rows 2, 3) in the group layout
GROUPS = pd.DataFrame(
    [
        # prompt, source, best, worst, has_pair
        ("p1", "A", 0.9, 0.1, True),
        ("p1", "B", 0.5, 0.2, True),
        ("p2", "A", 0.7, 0.3, True),
        ("p2", "B", 0.7, 0.6, True),  # ties A's best: the across pair is skipped
        ("p3", "A", 0.4, 0.4, False),  # no pair: its rows are placeholders
        ("p3", "B", 0.8, 0.1, True),
        ("p4", "B", 0.6, 0.5, True),  # no log-probs (example dropped): skipped
    ],
    columns=["prompt_id", "model", "best_score", "worst_score", "has_pair"],
).assign(best_sample=0, worst_sample=1)

# (prompt, row) -> (logp_sum, n_tokens); average = sum / n
LOGPS = {
    ("p1", 0): (-2.0, 2),  # A best -1
    ("p1", 1): (-6.0, 3),  # A worst -2   -> within correct
    ("p1", 2): (-3.0, 1),  # B best -3
    ("p1", 3): (-1.0, 1),  # B worst -1   -> within wrong; across A (-1) > B (-3): correct
    ("p2", 0): (-4.0, 4),  # A best -1
    ("p2", 1): (-2.0, 2),  # A worst -1   -> a model tie: not a preference for the chosen
    ("p2", 2): (-1.0, 2),  # B best -0.5
    ("p2", 3): (-4.0, 2),  # B worst -2   -> correct
    ("p3", 0): (-9.0, 1),  # placeholder (A has no pair)
    ("p3", 1): (0.0, 1),
    ("p3", 2): (-2.0, 2),  # B best -1
    ("p3", 3): (-3.0, 2),  # B worst -1.5 -> correct
}


def logps_frame(values=LOGPS):
    return pd.DataFrame(
        [(p, r, s, n) for (p, r), (s, n) in values.items()],
        columns=["prompt_id", "row", "logp_sum", "n_tokens"],
    )


def test_pairs_follow_the_group_layout_and_skip_ties():
    scored = fa.scored_responses(GROUPS, logps_frame())
    assert list(zip(scored.prompt_id, scored.source, strict=True)) == [
        ("p1", "A"),
        ("p1", "B"),
        ("p2", "A"),
        ("p2", "B"),
        ("p3", "B"),
    ]
    assert scored.set_index(["prompt_id", "source"]).loc[("p3", "B"), "best_avg_logp"] == -1.0
    pairs, ties = fa.preference_pairs(scored)
    across = pairs[pairs.kind == "across"]
    assert ties == 1 and len(across) == 1
    assert across.iloc[0][["chosen_source", "rejected_source"]].tolist() == ["A", "B"]


def test_preference_accuracy_exact_counts_and_wilson_interval():
    acc = fa.preference_accuracy(GROUPS, {"m": logps_frame()}).set_index("kind")
    assert acc.loc["within", ["n", "correct"]].tolist() == [5, 3]
    assert acc.loc["within", "accuracy"] == pytest.approx(0.6)
    # Wilson 95% for 3/5
    assert acc.loc["within", "ci_lower"] == pytest.approx(0.2307, abs=1e-4)
    assert acc.loc["within", "ci_upper"] == pytest.approx(0.8824, abs=1e-4)
    assert acc.loc["across", ["n", "correct", "reward_ties"]].tolist() == [1, 1, 1]
    assert all(math.isnan(x) for x in fa.wilson_interval(0, 0))  # NaN without pairs


def test_bias_and_variance_against_a_hand_computation():
    beta, tau = 2.0, 0.1
    bv = fa.bias_variance(GROUPS, {"m": logps_frame()}, beta, tau).set_index("kind")

    def sig(x):
        return 1 / (1 + math.exp(-x))

    # within pairs: (model margin of average log-probs, reward gap)
    within = [(1.0, 0.8), (-2.0, 0.3), (0.0, 0.4), (1.5, 0.1), (0.5, 0.7)]
    e = [sig(beta * m) - sig(g / tau) for m, g in within]
    assert bv.loc["within", "n"] == 5
    assert bv.loc["within", "bias"] == pytest.approx(statistics.mean(e))
    assert bv.loc["within", "abs_bias"] == pytest.approx(abs(statistics.mean(e)))
    assert bv.loc["within", "variance"] == pytest.approx(statistics.variance(e))
    assert bv.loc["within", "mse"] == pytest.approx(statistics.mean(x * x for x in e))
    # one across pair (A over B on p1): variance undefined
    e1 = sig(beta * 2.0) - sig(0.4 / tau)
    assert bv.loc["across", "bias"] == pytest.approx(e1)
    assert math.isnan(bv.loc["across", "variance"])
    with pytest.raises(ValueError, match="must be > 0"):
        fa.bias_variance(GROUPS, {"m": logps_frame()}, 0.0, tau)


def test_another_judge_rescores_the_same_responses_keeping_the_orientation():
    scores = []
    for r in GROUPS.itertuples():
        # the judge reverses B's pairs: worst above best
        b, w = (r.worst_score, r.best_score) if r.model == "B" else (r.best_score, r.worst_score)
        scores += [(r.prompt_id, r.model, 0, b, "J"), (r.prompt_id, r.model, 1, w, "J")]
    table = pd.DataFrame(scores, columns=["prompt_id", "model", "sample", "score", "reward_model"])
    judged = fa.rescore_groups(GROUPS, fa.judge_score_lookup(table, "J"))
    bv = fa.bias_variance(judged, {"m": logps_frame()}, 1.0, 0.1, "J").set_index("kind")
    assert bv.loc["within", "mean_p_judge"] < 0.5  # the judge disagrees on B's pairs
    pj = [1 / (1 + math.exp(-g / 0.1)) for g in (0.8, -0.3, 0.4, -0.1, -0.7)]
    assert bv.loc["within", "mean_p_judge"] == pytest.approx(statistics.mean(pj))
    assert bv.loc["within", "judge"] == "J"
    with pytest.raises(ValueError, match="no scores from 'K'"):
        fa.judge_score_lookup(table, "K")
    with pytest.raises(ValueError, match="no score for prompt"):
        fa.rescore_groups(GROUPS, {})


def tiny_fuserl():
    with open("config/tiny.yaml") as f:
        return yaml.safe_load(f)


def test_ablation_roles_come_from_the_config():
    roles = fa.ablation_roles(tiny_fuserl()["studies"]["fuserl"]["variants"])
    assert list(dict.fromkeys(roles.label)) == ["DPO", "SimPO", "RLOO"]
    dpo = roles[roles.label == "DPO"].set_index("role").variant.to_dict()
    assert dpo == {
        "SFT": "SFT",
        "FuseSFT": "FuseSFT",
        "SFT+PO": "SFT+DPO",
        "FuseSFT+PO": "FuseSFT+DPO",
        "FuseRL": "FuseRL_DPO",
    }
    twice = {
        "S": {"init": "target", "stages": [{"objective": "fuse_sft", "temperature": 0.0}]},
        "S2": {"init": "target", "stages": [{"objective": "fuse_sft", "temperature": 0.0}]},
    }
    with pytest.raises(ValueError, match="for role 'SFT'"):
        fa.ablation_roles(
            {**twice, "P": {"init": "S", "stages": [{"objective": "fusepo_dpo", "temperature": 0}]}}
        )


def chat_rows(models):
    return pd.DataFrame(
        {
            "model": models,
            "lc_win_rate": [10.0 + i for i in range(len(models))],
            "lc_standard_error": 1.0,
            "win_rate": 20.0,
            "standard_error": float("nan"),
            "arena_hard": 30.0,
            "arena_hard_lower": 28.0,
            "arena_hard_upper": 33.0,
        }
    )


def test_ablation_table_and_figure(tmp_path):
    variants = tiny_fuserl()["studies"]["fuserl"]["variants"]
    write_table(chat_rows(["tgt_llama", *variants]), tmp_path / "chat.csv")
    table = fa.write_ablation(
        str(tmp_path / "chat.csv"), variants, str(tmp_path / "a.csv"), str(tmp_path / "a.png")
    )
    assert len(table) == 3 * 5 * 3 and (tmp_path / "a.png").stat().st_size > 0
    lc = table[(table.variant == "SFT+DPO") & (table.column == "AlpacaEval-2 LC")].iloc[0]
    i = 1 + list(variants).index("SFT+DPO")
    assert lc.value == 10.0 + i and lc.ci_lower == pytest.approx(10.0 + i - 1.959964, abs=1e-5)
    wr = table[(table.variant == "SFT") & (table.column == "AlpacaEval-2 WR")].iloc[0]
    assert wr.value == 20.0 and math.isnan(wr.ci_lower)  # SE unknown: no interval
    ah = table[(table.variant == "SFT") & (table.column == "Arena-Hard WR")].iloc[0]
    assert (ah.ci_lower, ah.ci_upper) == (28.0, 33.0)
    write_table(chat_rows(["tgt_llama"]), tmp_path / "short.csv")
    with pytest.raises(ValueError, match="chat_eval.csv has no row 'SFT'"):
        fa.write_ablation(str(tmp_path / "short.csv"), variants, str(tmp_path / "b.csv"), "x.png")


def test_file_entry_points_write_tables_and_figures(tmp_path):
    write_table(GROUPS, tmp_path / "heldout.parquet")
    write_table(logps_frame(), tmp_path / "m.parquet")
    logps = {"target": str(tmp_path / "m.parquet"), "SFT": str(tmp_path / "m.parquet")}
    acc = fa.write_accuracy(
        str(tmp_path / "heldout.parquet"), logps, str(tmp_path / "acc.csv"), str(tmp_path / "a.png")
    )
    assert list(acc.model.unique()) == ["target", "SFT"] and (tmp_path / "a.png").exists()
    bv = fa.write_bias_variance(
        str(tmp_path / "heldout.parquet"),
        logps,
        str(tmp_path / "bv.csv"),
        str(tmp_path / "bv.png"),
        1.0,
        0.5,
        "rm",
    )
    assert len(bv) == 4 and (tmp_path / "bv.png").exists()
    out = subprocess.run(
        [sys.executable, "scripts/fuserl_analysis.py", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--out" in out.stdout


def test_build_fuserl_data_holds_out_a_third_part(tmp_path):
    a = [("x", 0.5), ("y", 0.1)] * 5
    b = [("z", 0.3), ("w", 0.2)] * 5
    gens, scores = write_inputs(tmp_path, {"a": a, "b": b})
    out = [str(tmp_path / f) for f in ("fusesft.parquet", "fusepo.parquet", "counts.csv")]
    held = str(tmp_path / "heldout.parquet")
    parts = {"sft": 2, "po": 2, "heldout": 1}
    sft, po = build_fuserl_data(
        str(tmp_path / "prompts.parquet"), gens, scores, "rm", 0, parts, 0.0, *out, held
    )
    heldout = pd.read_parquet(held)
    assert heldout.prompt_id.nunique() == 1 and len(heldout) == 2  # every source's line
    assert not set(heldout.prompt_id) & (set(sft.prompt_id) | set(po.prompt_id))
    assert heldout.has_pair.all()
    counts = pd.read_csv(out[2]).set_index("what").n
    assert counts["heldout_prompts"] == 1 and counts["heldout_pairs"] == 2
    # without a heldout part: the file is written empty, nothing is held out
    sft, po = build_fuserl_data(
        str(tmp_path / "prompts.parquet"),
        gens,
        scores,
        "rm",
        0,
        {"sft": 2, "po": 3},
        0.0,
        *out,
        held,
    )
    assert pd.read_parquet(held).empty and sft.prompt_id.nunique() + po.prompt_id.nunique() == 5
    with pytest.raises(ValueError, match="give heldout_out"):
        build_fuserl_data(
            str(tmp_path / "prompts.parquet"), gens, scores, "rm", 0, parts, 0.0, *out
        )


@pytest.mark.parametrize("name", ["config.yaml", "tiny.yaml"])
def test_workflow_plans_the_analyses_from_the_config(name):
    with open(f"config/{name}") as f:
        cfg = yaml.safe_load(f)
    targets = layout.final_targets(cfg)
    files = layout.fuserl_analysis_files(cfg, "fuserl")
    for key in ("accuracy", "accuracy_figure", "bias_variance", "bias_variance_figure"):
        assert files[key] in targets
    assert files["ablation"] in targets and files["ablation_figure"] in targets
    logps = layout.fuserl_heldout_logps(cfg, "fuserl")
    assert list(logps) == ["target", *cfg["studies"]["fuserl"]["variants"]]
    root = {"config.yaml": "results", "tiny.yaml": "results/tiny"}[name]  # a root per scale
    assert logps["FuseRL_DPO"] == f"{root}/fuserl/ref_logps/FuseRL_DPO/heldout.parquet"
    assert layout.data_shape("heldout") == "group"
    # the judge is the study's reward model: no other scores are read
    assert layout.fuserl_judge(cfg, "fuserl") == cfg["studies"]["fuserl"]["reward_model"]
    assert layout.fuserl_judge_scores(cfg, "fuserl") == []
    other = {**cfg["studies"]["fuserl"], "analysis": {"judge": "other_rm"}}
    cfg2 = {**cfg, "studies": {**cfg["studies"], "fuserl": other}}
    ds = other["train_dataset"]
    assert layout.fuserl_judge_scores(cfg2, "fuserl") == [
        f"{root}/scores/{ds}/other_rm/{m}.parquet" for m in other["sources"]
    ]
    # no variant trains on the held-out prompts
    assert all(v["data"] != "heldout" for v in cfg["studies"]["fuserl"]["variants"].values())


@pytest.mark.parametrize("name", ["config.yaml", "tiny.yaml"])
def test_table1_cells_without_a_recovered_number_read_not_reported_here(tmp_path, name):
    from fusekit.report.tables import COLUMNS, build_table, read_reported_spec
    from fusekit.report.verify import VERDICTS, write_verification

    with open(f"config/{name}") as f:
        cfg = yaml.safe_load(f)
    study = cfg["studies"]["fuserl"]
    spec = study["tables"]["table1"]
    names = [r.get("model") or r["variant"] for r in spec["rows"]]
    chat = chat_rows(names).assign(standard_error=1.0)
    table = build_table("table1", spec, {}, {}, read_reported_spec(spec), chat=chat)
    assert len(table) == 3 * len(names)
    write_table(table, tmp_path / "table1.csv")
    write_table(chat, tmp_path / "chat_eval.csv")
    out = tmp_path / "verification.md"
    text = write_verification(
        "fuserl",
        {"table1": str(tmp_path / "table1.csv")},
        {"table1": spec["title"]},
        {},
        1.0,
        cfg["scale"],
        str(out),
        str(tmp_path / "chat_eval.csv"),
        study.get("chat_table"),
        verification=layout.verification_spec(cfg, "fuserl"),
    )
    cells = [ln for ln in text.split("## table1", 1)[1].split("\n## ")[0].splitlines()]
    cells = [
        ln.split(" | ")
        for ln in cells
        if ln.startswith("| ")
        and " | AlpacaEval" in ln
        or ln.startswith("| ")
        and " | Arena-Hard" in ln
    ]
    assert len(cells) == len(table)
    judged = {(c[2], c[3]): c[9] for c in cells}
    recovered = {("SFT+DPO", "Arena-Hard WR"), ("FuseRL_DPO", "Arena-Hard WR")}
    for key, verdict in judged.items():
        if key in recovered:
            assert verdict in VERDICTS
        else:
            assert verdict == "not reported here", key
    assert "no reported value" not in text
    assert "| 57.60 |" in text and "| 57.50 |" in text
    # the assumptions with their configured defaults
    alpha = study["fuserl"]["temperature"]
    assert f"| FuseSFT source-weight temperature alpha | {alpha} |" in text
    assert "| rloo_offline form |" in text and "| prompt split FuseSFT:FusePO:held-out |" in text
    assert set(pd.read_csv(tmp_path / "table1.csv").columns) == set(COLUMNS)


def test_other_studies_keep_their_verdict_wording():
    with open("config/config.yaml") as f:
        cfg = yaml.safe_load(f)
    for study in cfg["studies"]:
        if study != "fuserl":
            assert layout.verification_spec(cfg, study) == {"assumptions": []}


def test_analysis_reads_a_real_group_log_prob_file(world, groups, tmp_path):  # noqa: F811
    """score_reference_logps on group-shaped held-out data (row 2k: source k's best):
    every source's worst is the same refusal, so per prompt its average log-prob is the
    same whichever source it is read for."""
    from test_fuserl_training import SORRY

    from fusekit.train.reference import score_reference_logps

    ref = score_reference_logps(
        str(world / "groups.parquet"), "group", str(world / "target"), {}, 96,
        str(tmp_path / "ref.parquet"), batch_size=2,
    )  # fmt: skip
    scored = fa.scored_responses(groups, ref)
    assert len(scored) == int(groups.has_pair.sum())
    # per prompt, the refusal for every source: the same input, the same average
    assert (
        scored.groupby("prompt_id").worst_avg_logp.agg(lambda x: x.round(4).nunique()) == 1
    ).all()
    assert (scored.best_avg_logp != scored.worst_avg_logp).all()
    assert (groups.loc[groups.has_pair, "worst_response"] == SORRY).all()
    acc = fa.preference_accuracy(groups, {"target": ref}).set_index("kind")
    assert acc.loc["within", "n"] == len(scored)

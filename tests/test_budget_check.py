"""The budget check (issue 17 item 3): the prediction interval, the verdicts, the table
from a claims results table, the longer run's variant and the config."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from fusekit import workflow as layout
from fusekit.checks import DataError
from fusekit.config import ConfigError
from fusekit.report.budget_check import (
    COLUMNS,
    budget_markdown,
    budget_table,
    budget_verdict,
    pooled_sd,
    prediction_halfwidth,
    write_budget_check,
)
from fusekit.report.claims import RESULT_COLUMNS, check_all_claims, check_study_claims
from fusekit.train.fusion import resolve_variant, scale_epochs, variant_epochs

# Student t quantile t_{0.975, 4}, from a printed table (not from scipy)
T_975_4 = 2.776445


def test_prediction_halfwidth_by_hand():
    values = np.array([70.0, 72.0, 74.0, 71.0, 73.0])  # mean 72, variance 2.5
    expected = T_975_4 * math.sqrt(2.5) * math.sqrt(1 + 1 / 5)
    assert prediction_halfwidth(values) == pytest.approx(expected, rel=1e-5)
    assert math.isnan(prediction_halfwidth(np.array([70.0])))


def test_prediction_interval_covers_one_new_draw_95_percent():
    """Monte Carlo: a sixth draw from the distribution of five lies inside their
    prediction interval 95% of the time (the interval's definition, independent of its
    formula)."""
    rng = np.random.default_rng(0)
    trials = 20000
    draws = rng.normal(50.0, 2.0, size=(trials, 6))
    inside = 0
    for row in draws:
        half = prediction_halfwidth(row[:5])
        inside += abs(row[5] - row[:5].mean()) <= half
    # binomial SE at 0.95 over 20000 trials is 0.0015
    assert inside / trials == pytest.approx(0.95, abs=0.006)


@pytest.mark.parametrize(
    ("diff", "verdict"),
    [(0.0, "converged"), (4.8, "converged"), (4.9, "improving"), (-4.9, "degrading")],
)
def test_budget_verdict(diff, verdict):
    assert budget_verdict(diff, -4.85, 4.85) == verdict


def test_budget_verdict_nan_is_inconclusive():
    assert budget_verdict(1.0, math.nan, math.nan) == "inconclusive"


def _results(values: dict[str, list[float]], world_seed=1234) -> pd.DataFrame:
    rows = [
        {
            "study": "s",
            "model": m,
            "seed": i + 1,
            "world_seed": world_seed,
            "metric": "average",
            "value": v,
        }
        for m, vs in values.items()
        for i, v in enumerate(vs)
    ]
    rows.append(
        {
            "study": "s",
            "model": "tgt",
            "seed": None,
            "world_seed": world_seed,
            "metric": "average",
            "value": 60.0,
        }
    )
    return pd.DataFrame(rows)


def _curve(losses: list[float], epochs_per_point: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.arange(len(losses)) * 10,
            "stage": 0,
            "stage_epoch": np.arange(len(losses)),
            "epoch": np.arange(len(losses)) * epochs_per_point,
            "loss": losses,
        }
    )


def test_budget_table_rows():
    results = _results({"A": [70.0, 72.0, 74.0, 71.0, 73.0], "B": [60.0, 60.5, 59.5, 60.0, 60.0]})
    half_a = T_975_4 * math.sqrt(2.5) * math.sqrt(1.2)
    table = budget_table(
        "s",
        results,
        {"A": 72.0 + half_a + 0.1, "B": 60.0},
        seed=1,
        factor=2,
        epochs={"A": 9, "B": 9},
        heldout_base={"A": _curve([0.2, 0.12, 0.10])},
        heldout_budget={"A": _curve([0.2, 0.11, 0.09, 0.085, 0.08])},
    )
    assert list(table.columns) == list(COLUMNS)
    a, b = table.set_index("variant").loc["A"], table.set_index("variant").loc["B"]
    assert a.verdict == "improving" and b.verdict == "converged"
    assert a.base_mean == pytest.approx(72.0) and a["diff"] == pytest.approx(half_a + 0.1)
    assert a.pi_high == pytest.approx(half_a, rel=1e-5) and a.pi_low == pytest.approx(-half_a)
    assert a.base_seed_value == 70.0 and a.n_seeds == 5 and a.budget_epochs == 18
    # the last held-out points, 0.10 -> 0.08: 20% lower
    assert a.heldout_base == 0.10 and a.heldout_budget == 0.08
    assert a.heldout_change == pytest.approx(-0.2)
    assert math.isnan(b.heldout_base) and math.isnan(b.heldout_change)


def test_pooled_sd_by_hand():
    # variances 2.5 (n=5) and 1.0 (n=3): (4 * 2.5 + 2 * 1.0) / 6 = 2.0
    sd, df = pooled_sd([np.array([70.0, 72.0, 74.0, 71.0, 73.0]), np.array([1.0, 2.0, 3.0]),
                        np.array([9.0])])  # fmt: skip
    assert (sd, df) == (pytest.approx(math.sqrt(2.0)), 6)
    assert math.isnan(pooled_sd([np.array([1.0])])[0])


# Student t quantile t_{0.975, 8}, from a printed table
T_975_8 = 2.306004


def test_single_run_variant_uses_the_pooled_spread():
    """A variant with one normal run is compared with the seeded variants' pooled sd:
    the interval of two single runs' difference, t(df) * sd * sqrt(2)."""
    results = _results({"A": [70.0, 72.0, 74.0, 71.0, 73.0], "B": [60.0, 61.0, 59.0, 60.0, 60.0]})
    # pooled variance (10 + 2) / 8 = 1.5, df 8
    half = T_975_8 * math.sqrt(1.5) * math.sqrt(2)
    table = budget_table(
        "s",
        results,
        {"A": 72.0, "B": 60.0, "G": 50.0 - half - 0.05},
        seed=1,
        factor=2,
        epochs={"A": 9, "B": 9, "G": 9},
        single={"G": 50.0},
    ).set_index("variant")
    assert list(table.index) == ["A", "B", "G"]
    g = table.loc["G"]
    assert g.sd_from == "pooled" and table.loc["A"].sd_from == "seeds"
    assert g.base_sd == pytest.approx(math.sqrt(1.5)) and g.n_seeds == 1
    assert g.pi_high == pytest.approx(half, rel=1e-5) and g.verdict == "degrading"
    assert g.base_mean == 50.0 and math.isnan(g.seed)
    with pytest.raises(ValueError, match="need seeded variants"):
        budget_table("s", results, {"G": 1.0}, 1, 2, {"G": 9}, single={"G": 2.0})


def test_budget_table_refuses_bad_results():
    results = _results({"A": [70.0, 72.0]})
    with pytest.raises(DataError, match="no seeded average rows of C"):
        budget_table("s", results, {"C": 1.0}, seed=1, factor=2, epochs={"C": 9}, source="r.csv")
    # the repeated seed, or another claims seed, missing: the results file is named
    with pytest.raises(DataError, match=r"r\.csv: A lacks the average of claims seeds \[3\]"):
        budget_table("s", results, {"A": 1.0}, 3, 2, {"A": 9}, source="r.csv")
    with pytest.raises(DataError, match=r"r\.csv: A lacks the average of claims seeds \[3, 5\]"):
        budget_table("s", results, {"A": 1.0}, 1, 2, {"A": 9}, source="r.csv", seeds=[1, 3, 5])
    doubled = pd.concat([results, results[results.model == "A"].head(1)])
    with pytest.raises(DataError, match=r"r\.csv: A has several average rows of seeds \[1\]"):
        budget_table("s", doubled, {"A": 1.0}, 1, 2, {"A": 9}, source="r.csv")
    # a NaN is an error, not an "inconclusive" that would spread through the pooled sd
    nan = _results({"A": [70.0, math.nan], "B": [60.0, 61.0]})
    with pytest.raises(DataError, match=r"r\.csv: A's average is not finite at seeds \[2\]"):
        budget_table("s", nan, {"A": 1.0, "G": 1.0}, 1, 2, {"A": 9, "G": 9}, source="r.csv",
                     single={"G": 50.0})  # fmt: skip
    with pytest.raises(DataError, match="A: the longer run's average is nan"):
        budget_table("s", results, {"A": math.nan}, 1, 2, {"A": 9})
    with pytest.raises(DataError, match="G: the normal run's average is inf"):
        budget_table("s", results, {"A": 1.0, "G": 1.0}, 1, 2, {"A": 9, "G": 9},
                     single={"G": math.inf})  # fmt: skip
    two_worlds = pd.concat([results, _results({"A": [71.0, 73.0]}, world_seed=7)])
    with pytest.raises(DataError, match="several world seeds"):
        budget_table("s", two_worlds, {"A": 1.0}, seed=1, factor=2, epochs={"A": 9})


def test_budget_outputs(tmp_path):
    results = _results({"A": [70.0, 72.0, 74.0, 71.0, 73.0]})
    base, longer = {"A": _curve([0.2, 0.12, 0.10])}, {"A": _curve([0.2, 0.11, 0.09, 0.09, 0.09])}
    table = budget_table("s", results, {"A": 73.0}, 1, 2, {"A": 2}, base, longer)
    out = tmp_path / "budget_check.csv"
    write_budget_check(table, out, tmp_path / "b.md", tmp_path / "f.png", base, longer)
    assert pd.read_csv(out).verdict.tolist() == ["converged"]
    page = (tmp_path / "b.md").read_text()
    assert "| A | 2 -> 4 | 72.0 ± 1.6 (5) | 73.0 | +1.0 [-4.8, +4.8] | converged |" in page
    assert "0.100 -> 0.090 (-10%)" in budget_markdown(table)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scale_epochs():
    study = {
        "stages": [
            {"modes": ["inference"], "epochs": 3, "beta": 0.1},
            {"modes": ["inference", "training"], "epochs": 6, "lambda": 0.5},
        ],
        "sources": ["a"],
        "variants": {"P": {}},
    }
    v = resolve_variant(study, "P")
    longer = scale_epochs(v, 2)
    assert [s["epochs"] for s in longer["stages"]] == [6, 12]
    assert [{k: x for k, x in s.items() if k != "epochs"} for s in longer["stages"]] == [
        {k: x for k, x in s.items() if k != "epochs"} for s in v["stages"]
    ]
    assert {k: x for k, x in longer.items() if k != "stages"} == {
        k: x for k, x in v.items() if k != "stages"
    }
    assert [s["epochs"] for s in v["stages"]] == [3, 6]  # not modified in place
    assert variant_epochs(v) == 9 and variant_epochs(longer) == 18
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="positive integer"):
            scale_epochs(v, bad)


def _tiny_config() -> dict:
    return yaml.safe_load((ROOT / "config/tiny.yaml").read_text())


def test_tiny_budget_check_spec_and_targets():
    cfg = _tiny_config()
    spec = layout.budget_check_spec(cfg, "profuser")
    seeded = ["CSFT", "Fuse", "ProFuser", "ReverseFuse", "SimulFuse"]
    single = ["FuseNeox", "FuseQwen2", "GTLen", "InferFuse", "RMScore"]
    assert spec == {
        "factor": 2,
        "seed": cfg["studies"]["profuser"]["claims_seeds"][0],
        "seeds": cfg["studies"]["profuser"]["claims_seeds"],
        "variants": sorted(seeded + single),
        "seeded": seeded,
        "single": single,
    }
    # every variant of the study is checked
    assert spec["variants"] == sorted(cfg["studies"]["profuser"]["variants"])
    assert layout.budget_check_base(cfg, "profuser", "ProFuser")["model"].endswith(
        "profuser/seeds/1/models/ProFuser"
    )
    assert layout.budget_check_base(cfg, "profuser", "GTLen") == {
        "model": "results/tiny/profuser/models/GTLen",
        "evaluation": "results/tiny/profuser/evaluation/openllm/GTLen.json",
    }
    assert layout.budget_check_files(cfg, "profuser")["markdown"] in layout.claims_targets(cfg)
    # a study without the key has no check
    cfg2 = copy.deepcopy(cfg)
    del cfg2["studies"]["profuser"]["budget_check"]
    assert layout.budget_check_spec(cfg2, "profuser") is None
    assert layout.budget_check_studies(cfg2) == []


def test_budget_check_without_a_variant_claim_is_a_config_error():
    cfg = _tiny_config()
    spec = cfg["studies"]["profuser"]
    spec["claims"] = [c for c in spec["claims"] if c["better"] not in spec["variants"]]
    spec["claims"] += [
        {"id": "src", "better": "src_neox", "worse": "tgt_llama", "metric": "average"}
    ]
    with pytest.raises(ConfigError, match=r"studies\.profuser\.budget_check"):
        check_study_claims(cfg, "profuser")


def test_budget_check_without_claims_or_seeds_is_a_config_error():
    """A budget check needs the claims run's seeds: on a study without claims or without
    claims_seeds it is refused at plan time, not skipped (check_all_claims, which the
    workflow runs)."""
    cfg = _tiny_config()
    check_all_claims(cfg)
    no_claims = copy.deepcopy(cfg)
    del no_claims["studies"]["profuser"]["claims"]
    assert "profuser" not in layout.claims_studies(no_claims)
    with pytest.raises(ConfigError, match=r"studies\.profuser\.budget_check: no claim"):
        check_all_claims(no_claims)
    no_seeds = copy.deepcopy(cfg)
    del no_seeds["studies"]["profuser"]["claims_seeds"]
    with pytest.raises(ConfigError, match=r"studies\.profuser\.claims_seeds"):
        check_all_claims(no_seeds)


def test_tabulate_script_names_the_file_and_writes_nothing(tmp_path):
    """scripts/tabulate_budget_check.py on bad inputs: a NaN average names its evaluation
    file, a --single variant outside --variants is refused, and no output is written."""

    def evaluation(name, value):
        path = tmp_path / f"{name}.json"
        bench = {"value": value, "stderr": 1.0}
        path.write_text(json.dumps({"benchmarks": {"arc": bench, "mmlu": bench}}))
        return str(path)

    results = tmp_path / "claims_results.csv"
    rows = _results({"A": [70.0, 72.0, 71.0]})
    rows["study"] = "profuser"
    rows.assign(**{c: None for c in RESULT_COLUMNS if c not in rows}).to_csv(results, index=False)
    out = tmp_path / "out"

    def run(variants, evaluations, single="[]", single_evaluations=()):
        cmd = [sys.executable, str(ROOT / "scripts/tabulate_budget_check.py"),
               "--study", "profuser", "--results", str(results),
               "--variants", json.dumps(variants), "--evaluations", *evaluations,
               "--base-models", *[str(tmp_path)] * len(variants),
               "--budget-models", *[str(tmp_path)] * len(variants),
               "--epochs", json.dumps({v: 9 for v in variants}), "--factor", "2",
               "--seed", "1", "--seeds", "[1, 2, 3]", "--single", single,
               "--single-evaluations", *single_evaluations,
               "--out", str(out / "b.csv"), "--markdown", str(out / "b.md"),
               "--figure", str(out / "b.png")]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    nan = evaluation("A_nan", math.nan)
    done = run(["A"], [nan])
    assert done.returncode != 0 and f"{nan}: the average is nan" in done.stderr
    done = run(["A"], [evaluation("A", 72.0)], '["G"]', [evaluation("G", 50.0)])
    assert done.returncode != 0 and "--single: ['G'] are not among --variants" in done.stderr
    assert not out.exists()
    done = run(["A"], [evaluation("A", 72.0)])
    assert done.returncode == 0, done.stderr
    assert pd.read_csv(out / "b.csv").verdict.tolist() == ["converged"]


def test_budget_check_of_an_unknown_variant_is_a_config_error():
    cfg = _tiny_config()
    cfg["studies"]["profuser"]["budget_check"]["variants"] = ["GTLen", "Nope"]
    with pytest.raises(ConfigError, match=r"budget_check\.variants: \['Nope'\]"):
        check_study_claims(cfg, "profuser")

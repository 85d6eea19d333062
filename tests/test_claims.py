"""Claims of the papers on the tiny world (fusekit.report.claims, scripts/tabulate_claims.py):
paired differences over seeds, Student t intervals checked by hand, verdicts, errors
naming the claim / model / rows, the Markdown page, the forest plot and the script."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from scipy import stats

from fusekit.checks import DataError
from fusekit.config import ConfigError
from fusekit.report.claims import (
    RESULT_COLUMNS,
    TABLE_COLUMNS,
    check_claims,
    check_study_claims,
    claims_markdown,
    claims_table,
    format_interval,
    plot_claims,
    results_from_evaluations,
)

TINY = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
PNG = b"\x89PNG\r\n\x1a\n"
T975_DF2 = 4.302652729911275  # Student t, two-sided 95%, 2 degrees of freedom (tables: 4.303)


def long(study="s", metric="average", **models) -> pd.DataFrame:
    """Results rows from ``model={world_seed: {seed: value}}`` (seed None: no seed)."""
    rows = [
        {"study": study, "model": m, "seed": seed, "world_seed": w, "metric": metric, "value": v}
        for m, worlds in models.items()
        for w, seeds in worlds.items()
        for seed, v in seeds.items()
    ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def claim(cid="c", better="A", worse="B", metric="average", **extra) -> dict:
    return {"id": cid, "better": better, "worse": worse, "metric": metric, **extra}


def one(results, spec=None, **kwargs) -> pd.Series:
    df = claims_table(results, [spec or claim()], "s", **kwargs)
    assert list(df.columns) == list(TABLE_COLUMNS)
    return df.iloc[0]


def pair(diffs, base=50.0) -> pd.DataFrame:
    """A (seeds 1..n) with A_s - B_s = diffs[s]; B varies a lot between seeds, so an
    unpaired comparison would be far wider than the paired one."""
    b = {s: base + 10.0 * s for s in range(1, len(diffs) + 1)}
    a = {s: b[s] + d for s, d in zip(b, diffs, strict=True)}
    return long(A={0: a}, B={0: b})


def test_t_interval_matches_a_hand_computation():
    r = one(pair([1.0, 2.0, 4.0]))
    # by hand: mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9; var 21/9
    mean, se = 7 / 3, math.sqrt(21 / 9 / 3)
    assert r.mean_diff == pytest.approx(mean)
    assert r.se == pytest.approx(se)
    assert stats.t.ppf(0.975, 2) == pytest.approx(T975_DF2)
    assert r.ci_low == pytest.approx(mean - T975_DF2 * se)
    assert r.ci_high == pytest.approx(mean + T975_DF2 * se)
    assert (r.ci_low, r.ci_high) == pytest.approx((-1.4613, 6.1279), abs=1e-4)
    assert (r.n_seeds, r.n_worlds, r.n_pairs, r.unit) == (3, 1, 3, "seed")
    assert r.verdict == "inconclusive"
    assert (r.better_mean - r.worse_mean) == pytest.approx(mean)


@pytest.mark.parametrize(
    ("diffs", "extra", "expected"),
    [
        ([2.0, 3.0, 2.5, 3.5], {}, "reproduced"),
        ([-2.0, -3.0, -2.5], {}, "not reproduced"),
        ([1.0, -1.0, 2.0, -2.0], {}, "inconclusive"),
        ([1.0, 1.2, 0.9, 1.1], {"margin": 2.0}, "not reproduced"),
        ([1.0, 1.2, 0.9, 1.1], {"margin": 0.5}, "reproduced"),
        ([-2.0, -3.0, -2.5], {"direction": "lower"}, "reproduced"),
        ([0.0, 0.0, 0.0], {}, "not reproduced"),  # no gain at all: upper bound 0 <= margin 0
    ],
    ids=[
        "above",
        "below",
        "straddles",
        "gain-under-margin",
        "gain-over-margin",
        "lower",
        "exactly-zero",
    ],
)
def test_verdicts(diffs, extra, expected):
    r = one(pair(diffs), claim(**extra))
    assert r.verdict == expected, r.reason
    sign = -1 if extra.get("direction") == "lower" else 1
    assert r.mean_diff == pytest.approx(sign * np.mean(diffs))


def test_fewer_than_two_seeds_is_inconclusive():
    r = one(pair([5.0]))
    assert r.verdict == "inconclusive"
    assert r.reason.startswith("fewer than 2 seeds")
    assert r.mean_diff == pytest.approx(5.0)
    assert math.isnan(r.ci_low) and math.isnan(r.se)


def test_a_trained_model_with_one_seed_is_not_a_constant():
    # A has seed 1 only: it pairs with B's seed 1, it is not spread over B's five seeds
    r = one(long(A={0: {1: 60.0}}, B={0: {s: 50.0 + s for s in range(1, 6)}}))
    assert r.n_pairs == 1 and r.verdict == "inconclusive"
    assert "4 unpaired runs dropped" in r.reason


def test_a_seed_independent_source_is_a_constant_per_world():
    src = {0: {None: 40.0}}
    r = one(long(A={0: {1: 41.0, 2: 43.0, 3: 42.0}}, SRC=src), claim(worse="SRC"))
    assert r.mean_diff == pytest.approx(2.0)  # (1 + 3 + 2) / 3
    assert r.se == pytest.approx(1 / math.sqrt(3))
    assert (r.n_seeds, r.n_pairs) == (3, 3)
    # named seed-independent, its seed column is ignored
    named = one(
        long(A={0: {1: 41.0, 2: 43.0, 3: 42.0}}, SRC={0: {1234: 40.0}}),
        claim(worse="SRC"),
        seed_independent=["SRC"],
    )
    assert named.mean_diff == pytest.approx(2.0) and named.n_pairs == 3


def test_pairing_by_seed_and_row_order():
    b = {s: 50.0 + 10.0 * s for s in range(1, 6)}
    a = {s: v + 1.0 for s, v in b.items()}
    results = long(A={0: a}, B={0: b})
    r = one(results)
    # paired: every difference is 1 (an unpaired comparison would straddle 0 widely)
    assert (r.mean_diff, r.se, r.ci_low, r.ci_high) == pytest.approx((1.0, 0.0, 1.0, 1.0))
    assert r.verdict == "reproduced"
    shuffled = results.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        claims_table(shuffled, [claim()], "s"), claims_table(results, [claim()], "s")
    )


def test_unpaired_seeds_are_dropped_and_counted():
    r = one(long(A={0: {1: 51.0, 2: 52.0, 3: 53.0}}, B={0: {1: 50.0, 2: 50.0, 4: 50.0}}))
    assert r.n_pairs == 2 and r.mean_diff == pytest.approx(1.5)
    assert "2 unpaired runs dropped" in r.reason


def test_three_worlds_use_the_t_over_world_means():
    # world means of the differences: 1, 2, 4 (seeds within a world differ by +-1)
    a = {w: {1: 50.0 + m - 1.0, 2: 50.0 + m + 1.0} for w, m in {7: 1, 8: 2, 9: 4}.items()}
    b = {w: {1: 50.0, 2: 50.0} for w in (7, 8, 9)}
    r = one(long(A=a, B=b))
    mean, se = 7 / 3, math.sqrt(21 / 9 / 3)
    assert (r.unit, r.n_worlds, r.n_pairs, r.n_seeds) == ("world", 3, 6, 2)
    assert r.ci_low == pytest.approx(mean - T975_DF2 * se)
    assert r.ci_high == pytest.approx(mean + T975_DF2 * se)
    assert r.world_sd == pytest.approx(math.sqrt(21 / 9))
    assert "3 world means" in r.reason


def test_two_worlds_pool_seeds_and_report_the_world_spread():
    a = {1: {1: 51.0, 2: 53.0}, 2: {1: 54.0, 2: 56.0}}  # world means of d: 2 and 5
    b = {1: {1: 50.0, 2: 50.0}, 2: {1: 50.0, 2: 50.0}}
    r = one(long(A=a, B=b))
    d = np.array([1.0, 3.0, 4.0, 6.0])
    q = stats.t.ppf(0.975, 3)
    se = d.std(ddof=1) / 2
    assert (r.unit, r.n_pairs, r.n_worlds) == ("seed", 4, 2)
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - q * se, d.mean() + q * se))
    assert r.world_sd == pytest.approx(abs(5 - 2) / math.sqrt(2))


def test_reported_difference_and_other_studies_rows():
    results = pd.concat([pair([1.0, 2.0]), long(study="other", A={0: {1: 0.0}})])
    r = one(results, claim(reported_better=55.11, reported_worse=54.20, direction="lower"))
    assert r.reported_diff == pytest.approx(-0.91)
    assert r.n_pairs == 2


@pytest.mark.bad_input
def test_missing_model_names_the_claim_model_and_file():
    with pytest.raises(DataError, match=r"claim 'pf_vs_x'.*'Ghost'.*results/s/long\.csv"):
        claims_table(
            pair([1.0, 2.0]), [claim("pf_vs_x", worse="Ghost")], "s", source="results/s/long.csv"
        )


@pytest.mark.bad_input
def test_missing_metric_names_the_claim_and_metric():
    with pytest.raises(DataError, match=r"claim 'c'.*no metric 'lc_win_rate'"):
        claims_table(pair([1.0, 2.0]), [claim(metric="lc_win_rate")], "s")


@pytest.mark.bad_input
def test_duplicate_rows_are_named():
    results = pair([1.0, 2.0])
    results = pd.concat([results, results.iloc[[1]]], ignore_index=True)
    with pytest.raises(DataError, match=r"long\.csv: duplicate .* rows 1, 4") as err:
        claims_table(results, [claim()], "s", source="long.csv")
    assert "A" in str(err.value)


@pytest.mark.bad_input
def test_nan_value_is_an_error():
    results = pair([1.0, 2.0])
    results.loc[2, "value"] = float("nan")
    with pytest.raises(DataError, match=r"not a finite number .* rows 2"):
        claims_table(results, [claim()], "s")


@pytest.mark.bad_input
def test_seed_independent_model_with_two_rows_in_a_world():
    results = long(A={0: {1: 1.0, 2: 2.0}}, SRC={0: {1: 0.0, 2: 0.5}})
    with pytest.raises(DataError, match=r"'SRC' is seed-independent .* world seeds \[0\]"):
        claims_table(results, [claim(worse="SRC")], "s", seed_independent=["SRC"])


@pytest.mark.bad_input
def test_no_rows_of_the_study():
    with pytest.raises(DataError, match=r"no rows of study 'nope'"):
        claims_table(pair([1.0, 2.0]), [claim()], "nope")


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ([claim(), claim()], r"studies\.s\.claims\[1\]\.id: 'c' repeats"),
        ([claim(betterr="A")], r"studies\.s\.claims\[0\]: unknown keys \['betterr'\]"),
        ([claim(direction="up")], r"studies\.s\.claims\[0\]\.direction"),
        ([claim(margin="big")], r"studies\.s\.claims\[0\]\.margin"),
        ([claim(worse="A")], r"studies\.s\.claims\[0\]: better and worse are both 'A'"),
        ([{"id": "c", "better": "A", "worse": "B"}], r"studies\.s\.claims\[0\]\.metric: req"),
        ({"id": "c"}, r"studies\.s\.claims: expected a list"),
    ],
    ids=[
        "duplicate-id",
        "unknown-key",
        "bad-direction",
        "bad-margin",
        "same-model",
        "no-metric",
        "not-a-list",
    ],
)
def test_bad_claims_name_the_key(claims, match):
    with pytest.raises(ConfigError, match=match):
        claims_table(pair([1.0, 2.0]), claims, "s")


def test_markdown_shows_every_claim_verdict_and_interval():
    results = pd.concat(
        [
            long(A={0: {1: 52.0, 2: 53.0, 3: 54.0}}, B={0: {1: 50.0, 2: 50.0, 3: 50.0}}),
            long(C={0: {1: 40.0, 2: 41.0}}),
        ]
    )
    claims = [
        claim("a_vs_b", text="A above B", reported_better=55.11, reported_worse=54.20),
        claim("b_vs_a", "B", "A"),
        claim("c_vs_b", "C", "B"),
    ]
    df = claims_table(results, claims, "s")
    assert df["verdict"].tolist() == ["reproduced", "not reproduced", "not reproduced"]
    md = claims_markdown(df)
    q = stats.t.ppf(0.975, 2)  # d = 2, 3, 4: mean 3, se 1/sqrt(3)
    lo, hi = 3 - q / math.sqrt(3), 3 + q / math.sqrt(3)
    assert f"+3.0 [{lo:.1f}, {hi:.1f}]" in md
    assert "+0.9" in md  # the paper's 55.11 - 54.20
    for cid, verdict in zip(df["claim"], df["verdict"], strict=True):
        line = next(x for x in md.splitlines() if x.startswith(f"| {cid} |"))
        assert f"**{verdict}**" in line
    assert "whole interval lies above the margin" in md
    assert "1 reproduced, 2 not reproduced, 0 inconclusive" in md
    assert format_interval(1.83, 0.4, 3.21) == "+1.8 [0.4, 3.2]"


def test_forest_plot_is_a_png(tmp_path):
    df = claims_table(
        pd.concat([pair([1.0, 2.0, 3.0]), long(C={0: {1: 1.0}})]),
        [claim(reported_better=2.0, reported_worse=1.0, margin=0.5), claim("c2", "C", "B")],
        "s",
    )
    out = tmp_path / "claims.png"
    plot_claims(df, out)
    assert out.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="no claims"):
        plot_claims(df.iloc[:0], tmp_path / "empty.png")


def _roles(study: dict) -> set[str]:
    return {*study["sources"], study["target"], *study["variants"]}


CLAIMS_STUDIES = sorted(s for s, spec in TINY["studies"].items() if spec.get("claims"))


@pytest.mark.parametrize("study", CLAIMS_STUDIES)
def test_the_tiny_claims_name_the_tiny_models_and_validate(study):
    spec = TINY["studies"][study]
    names = _roles(spec)
    claims = check_claims(spec["claims"], f"studies.{study}.claims")
    for c in claims:
        assert {c["better"], c["worse"]} <= names, c["id"]


def test_the_profuser_claims_reported_values_are_table1s():
    reported = pd.read_csv(ROOT / "config/reported/profuser_table1.csv").set_index("model")
    rows = TINY["studies"]["profuser"]["tables"]["table1"]["rows"]
    role = {r.get("model") or r["variant"]: r.get("reported") for r in rows}
    for c in TINY["studies"]["profuser"]["claims"]:
        names = {side: role[c[side]] for side in ("better", "worse")}
        for side, name in names.items():
            # a side without a reported row leaves the claim without a reported difference
            want = None if None in names.values() else reported.loc[name, "Average"]
            assert c.get(f"reported_{side}") == want, (c["id"], side)


def test_the_preference_claims_reported_values_are_the_papers_cells():
    """WRPO Table 2 (rows by role, as its table2), FuseRL's two recovered Arena-Hard cells
    and the FuseChat-3.0 card's Arena-Hard (its SFT and Instruct columns)."""
    column = {"win_rate": "AlpacaEval-2 WR", "arena_hard": "Arena-Hard WR"}
    wrpo = pd.read_csv(ROOT / "config/reported/wrpo_table2.csv", comment="#").set_index("model")

    def rows(study, table):
        return TINY["studies"][study]["tables"][table]["rows"]

    role = {r["variant"]: r["reported"] for r in rows("wrpo", "table2") if "variant" in r}
    fuserl = pd.read_csv(ROOT / "config/reported/fuserl_table1_partial.csv", comment="#")
    fuserl_role = {
        r["variant"]: r.get("reported") for r in rows("fuserl", "table1") if "variant" in r
    }
    card = pd.read_csv(ROOT / "config/reported/fusechat3_llama31_8b.csv").set_index("benchmark")
    card_role = {
        r.get("model") or r["variant"]: r["reported"] for r in rows("fusechat3", "llama31_8b")
    }
    checked = 0
    for study in ("wrpo", "fuserl", "fusechat3"):
        for c in TINY["studies"][study]["claims"]:
            for side in ("better", "worse"):
                got, col = c.get(f"reported_{side}"), column[c["metric"]]
                if study == "wrpo":
                    want = wrpo.loc[role[c[side]], col]
                elif study == "fuserl":
                    name = fuserl_role.get(c[side])
                    cell = fuserl.set_index("model")[col].get(name) if name else None
                    want = None if cell is None or pd.isna(cell) else float(cell)
                else:
                    want = None if col not in card.index else card.loc[col, card_role[c[side]]]
                    want = None if c["metric"] == "win_rate" else want  # the card has LC only
                assert got == want, (study, c["id"], side)
                checked += got is not None
    assert checked == 8  # WRPO 4, FuseRL 2, FuseChat-3.0 2


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/tabulate_claims.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_script_help():
    proc = run_script("--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--results", "--claims", "--study", "--out", "--markdown", "--figure"):
        assert flag in proc.stdout


def test_script_end_to_end(tmp_path):
    results = long(
        study="profuser",
        ProFuser={0: {1: 62.0, 2: 63.0, 3: 64.0}},
        CSFT={0: {1: 60.0, 2: 60.5, 3: 61.0}},
        src_neox={0: {None: 50.0}},  # a source: empty seed in the CSV
    )
    csv = tmp_path / "long.csv"
    results.to_csv(csv, index=False)
    claims = [
        claim("profuser_vs_csft", "ProFuser", "CSFT"),
        claim("profuser_vs_src_neox", "ProFuser", "src_neox"),
    ]
    out, md, png = tmp_path / "claims.csv", tmp_path / "claims.md", tmp_path / "claims.png"
    proc = run_script(
        "--results",
        str(csv),
        "--claims",
        json.dumps(claims),
        "--study",
        "profuser",
        "--out",
        str(out),
        "--markdown",
        str(md),
        "--figure",
        str(png),
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert table["claim"].tolist() == ["profuser_vs_csft", "profuser_vs_src_neox"]
    assert table["verdict"].tolist() == ["reproduced", "reproduced"]
    assert table.loc[1, "mean_diff"] == pytest.approx(13.0)  # 63 - 50, the source a constant
    assert "profuser_vs_src_neox" in md.read_text()
    assert png.read_bytes()[:8] == PNG


# -- the claims run's wiring (fusekit.workflow, results_from_evaluations) -----------------


def _tiny():
    return yaml.safe_load((ROOT / "config/tiny.yaml").read_text())


def test_the_claims_run_reads_seeded_variants_and_shared_model_evaluations():
    from fusekit import workflow as layout

    cfg = _tiny()
    assert layout.claims_studies(cfg) == ["fusechat3", "fuserl", "profuser", "wrpo"]
    variants, models = layout.claims_names(cfg, "profuser")
    assert variants == ["CSFT", "Fuse", "ProFuser", "ReverseFuse", "SimulFuse"]
    assert models == ["src_llama", "src_neox", "src_qwen2", "tgt_llama"]
    evals = layout.claims_evaluations(cfg, "profuser")
    seeds = cfg["studies"]["profuser"]["claims_seeds"]
    assert len(evals) == len(variants) * len(seeds) + len(models)
    assert {"model": "CSFT", "seed": seeds[0], "kind": "openllm", "path": "results/tiny/"
            f"profuser/seeds/{seeds[0]}/evaluation/openllm/CSFT.json"} in evals  # fmt: skip
    assert {"model": "tgt_llama", "seed": None, "kind": "openllm",
            "path": "results/tiny/evaluation/openllm/tgt_llama.json"} in evals  # fmt: skip
    # claim sides by evaluation: FuseChat-3.0 claims on the chat evaluations only
    fusechat = cfg["studies"]["fusechat3"]
    assert layout.claim_sides(fusechat) == {"DPO", "SFT"}
    assert layout.claim_sides(fusechat, "openllm") == set()
    assert layout.claim_sides(fusechat, "arena_hard") == {"DPO", "SFT"}
    # the claims run is not part of the default target
    assert layout.claims_files(cfg, "profuser")["markdown"] not in layout.final_targets(cfg)
    for study in layout.claims_studies(cfg):
        check_study_claims(cfg, study)
        assert layout.claims_files(cfg, study)["markdown"] in layout.claims_targets(cfg)


def test_a_preference_claims_run_trains_the_whole_chain_per_seed():
    """FuseRL_DPO starts from FuseSFT: in the claims run from that seed's FuseSFT, and its
    DPO reference log-probs are that model's; the data are the study's, shared."""
    from fusekit import workflow as layout

    cfg = _tiny()
    inputs = layout.preference_inputs(cfg, "fuserl", "FuseRL_DPO", 3)
    assert inputs == {
        "data": ["results/tiny/fuserl/data/fusepo.parquet"],
        "init": ["results/tiny/fuserl/seeds/3/models/FuseSFT"],
        "reference": ["results/tiny/fuserl/seeds/3/ref_logps/FuseSFT/fusepo.parquet"],
    }
    # the DAG's own variant is unchanged by the seed argument's default
    assert layout.preference_inputs(cfg, "fuserl", "FuseRL_DPO")["init"] == [
        "results/tiny/fuserl/models/FuseSFT"
    ]
    # a variant that starts from the target starts from the one built target, every seed
    target = cfg["models"]["tgt_llama"]["path"]
    assert layout.preference_inputs(cfg, "fuserl", "SFT", 3)["init"] == [target]
    assert layout.seeded_model_dir(cfg, "fuserl", "target", 3) == target
    # WRPO learns from its init's own samples: per seed, that seed's Target-SFT samples and
    # quadruples; the SFT data (its best source responses) are the study's
    wrpo = layout.preference_inputs(cfg, "wrpo", "WRPO", 2)
    assert wrpo["data"] == ["results/tiny/wrpo/seeds/2/data/quadruples.parquet"]
    assert wrpo["reference"] == [
        "results/tiny/wrpo/seeds/2/ref_logps/Target-SFT/quadruples.parquet"
    ]
    assert layout.target_sample_files(cfg, "wrpo", 2)["generations"] == (
        "results/tiny/wrpo/seeds/2/target_samples/Target-SFT.parquet"
    )
    assert layout.preference_inputs(cfg, "wrpo", "Target-SFT", 2)["data"] == [
        "results/tiny/wrpo/data/target_sft.parquet"
    ]
    # chat claims read AlpacaEval-2 metrics and Arena-Hard judgments: seeded for a variant,
    # the shared ones for a model
    evals = layout.claims_evaluations(cfg, "fusechat3")
    assert {e["kind"] for e in evals} == {"alpaca_eval", "arena_hard"}
    path = "results/tiny/fusechat3/seeds/2/chat_eval/arena_hard/DPO.parquet"
    assert {"model": "DPO", "seed": 2, "kind": "arena_hard", "path": path} in evals
    assert layout.claims_evaluation_file(cfg, "wrpo", "alpaca_eval", "tgt_llama", None) == (
        "results/tiny/chat_eval/alpaca_eval/judged/tgt_llama.json"
    )
    # the tiny sets share their prompts: a seeded variant's Arena-Hard answers are its
    # AlpacaEval-2 answers
    assert layout.seeded_chat_generations(cfg, "wrpo", "arena_hard", "WRPO", 4) == (
        "results/tiny/wrpo/seeds/4/generations/alpaca_eval/WRPO.parquet"
    )


@pytest.mark.bad_input
def test_a_chat_claim_needs_the_chat_evaluation():
    cfg = _tiny()
    check_study_claims(cfg, "wrpo")
    del cfg["evaluation"]["arena_hard"]
    with pytest.raises(ConfigError, match=r"studies\.wrpo\.claims\[0\]\.metric: 'win_rate'"):
        check_study_claims(cfg, "wrpo")


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s["claims"][0].update(worse="ghost"), r"claims\[0\]\.worse: 'ghost'"),
        (lambda s: s["claims"][1].update(metric="mmlu_pro"), r"claims\[1\]\.metric"),
        (lambda s: s.update(claims_seeds=[7]), r"claims_seeds.*at least 2"),
        (lambda s: s["claims"][2].update(id=s["claims"][0]["id"]), r"claims\[2\]\.id"),
    ],
    ids=["unknown_model", "unknown_metric", "one_seed", "duplicate_id"],
)
def test_bad_claims_config_stops_at_plan_time(edit, match):
    cfg = _tiny()
    edit(cfg["studies"]["profuser"])
    with pytest.raises(ConfigError, match=r"config key studies\.profuser\." + match):
        check_study_claims(cfg, "profuser")


def _evaluation(path, scores, stderr=1.0):
    path.write_text(
        json.dumps({"benchmarks": {k: {"value": v, "stderr": stderr} for k, v in scores.items()}})
    )
    return str(path)


def test_results_from_evaluations_average_is_the_benchmark_mean(tmp_path):
    entries = [
        {"model": "A", "seed": 1, "path": _evaluation(tmp_path / "a1.json", {"x": 50, "y": 70})},
        {"model": "A", "seed": 2, "path": _evaluation(tmp_path / "a2.json", {"x": 40, "y": 60})},
        {"model": "T", "seed": None, "path": _evaluation(tmp_path / "t.json", {"x": 30, "y": 30})},
    ]
    df = results_from_evaluations(entries, "s", world_seed=9)
    avg = df[df.metric == "average"].set_index("model")
    assert avg.loc["A"].value.tolist() == [60.0, 50.0] and avg.loc["T"].value == 30.0
    assert pd.isna(avg.loc["T"].seed) and (df.world_seed == 9).all()
    # through a file, as the workflow passes it: the source's empty seed makes it a constant
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    claims = [{"id": "a_vs_t", "better": "A", "worse": "T", "metric": "average"}]
    table = claims_table(pd.read_csv(path), claims, "s")
    assert table.n_seeds.iloc[0] == 2 and table.mean_diff.iloc[0] == pytest.approx(25.0)
    bad = {"model": "A", "seed": 3, "path": _evaluation(tmp_path / "a3.json", {"x": 1})}
    with pytest.raises(DataError, match="a3.json: metrics"):
        results_from_evaluations([*entries, bad], "s")


def test_results_from_evaluations_add_the_averages_standard_error(tmp_path):
    entries = [
        {"model": "A", "seed": 1, "path": _evaluation(tmp_path / "a1.json", {"x": 50, "y": 70})},
        {
            "model": "A",
            "seed": 2,
            "path": _evaluation(tmp_path / "a2.json", {"x": 40, "y": 60}, stderr=3.0),
        },
        # lm-eval gives no standard error with a limit: no average_se row, no error
        {
            "model": "T",
            "seed": None,
            "path": _evaluation(tmp_path / "t.json", {"x": 30, "y": 30}, stderr=None),
        },
    ]
    df = results_from_evaluations(entries, "s", world_seed=9)
    se = df[df.metric == "average_se"]
    assert se.model.tolist() == ["A", "A"]
    # sqrt(1 + 1) / 2 and sqrt(9 + 9) / 2
    assert se.value.tolist() == pytest.approx([math.sqrt(2) / 2, math.sqrt(18) / 2])
    assert df[df.metric == "average"].value.tolist() == [60.0, 50.0, 30.0]


def _judgments(path, games, model="M"):
    """Arena-Hard judgments of ``model`` against "base": ``games`` maps a question to its
    (game 1, game 2) verdicts (in game 1 the baseline is assistant A)."""
    rows = [
        {"question_id": q, "model": model, "baseline": "base", "judge": "j", "game": g,
         "user_prompt": "", "judgment": "", "score": verdict}
        for q, verdicts in games.items()
        for g, verdict in zip((1, 2), verdicts, strict=True)
    ]  # fmt: skip
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def test_results_from_chat_evaluations(tmp_path):
    alpaca = tmp_path / "a.json"
    alpaca.write_text(json.dumps({"model": "M", "length_controlled_winrate": 50.0, "win_rate": 44.1,
                                  "standard_error": 4.5, "lc_standard_error": None}))  # fmt: skip
    # per question the model wins 2, 0, 1 (two ties) and 1 of its 2 games: 50%, and the
    # questions' win rates 1, 0, 1/2, 1/2 have standard error sd / sqrt(4) (equal games
    # per question: the ratio estimator's SE is the plain SE of the per-question rates)
    even = {"q1": ("B>A", "A>B"), "q2": ("A>B", "B>A"), "q3": ("A=B", "A=B"),
            "q4": ("B>A", "B>A")}  # fmt: skip
    entries = [
        {"model": "M", "seed": 1, "kind": "alpaca_eval", "path": str(alpaca)},
        {"model": "M", "seed": 1, "kind": "arena_hard",
         "path": _judgments(tmp_path / "even.parquet", even)},
    ]  # fmt: skip
    df = results_from_evaluations(entries, "s", world_seed=0).set_index("metric").value
    assert df["lc_win_rate"] == 50.0 and df["win_rate"] == 44.1 and df["win_rate_se"] == 4.5
    assert "lc_win_rate_se" not in df  # unknown, not 0
    assert df["arena_hard"] == pytest.approx(50.0, abs=0.01)
    assert df["arena_hard_se"] == pytest.approx(100 * np.std([1, 0, 0.5, 0.5], ddof=1) / 2)
    # a strong win counts arena_weight times: 4 + 0 + 1 + 1 wins of 4 + 2 + 2 + 2 battles
    strong = {**even, "q1": ("B>>A", "A>B")}
    path = _judgments(tmp_path / "strong.parquet", strong)
    entry = {"model": "M", "seed": 1, "kind": "arena_hard", "path": path}
    df = results_from_evaluations([entry], "s", arena_weight=3).set_index("metric").value
    assert df["arena_hard"] == pytest.approx(60.0, abs=0.01)
    # unequal battles per question (4, 2, 2, 2), by hand: p = 0.6, sum (a_q - p n_q)^2 =
    # 1.6^2 + 1.2^2 + 0.2^2 + 0.2^2 = 4.08, SE = sqrt(4/3 * 4.08) / 10
    assert df["arena_hard_se"] == pytest.approx(100 * math.sqrt(4 / 3 * 4.08) / 10)


@pytest.mark.bad_input
def test_results_from_chat_evaluations_name_the_bad_file(tmp_path):
    wrong = _judgments(tmp_path / "other.parquet", {"q1": ("A>B", "A>B")}, model="X")
    with pytest.raises(DataError, match=r"other\.parquet: judgments of \['X'\], expected only 'M'"):
        results_from_evaluations([{"model": "M", "seed": 1, "kind": "arena_hard",
                                   "path": wrong}], "s")  # fmt: skip
    lc_only = tmp_path / "lc.json"
    lc_only.write_text(json.dumps({"length_controlled_winrate": 50.0}))
    with pytest.raises(DataError, match=r"lc\.json: not an AlpacaEval metrics object"):
        results_from_evaluations([{"model": "M", "seed": 1, "kind": "alpaca_eval",
                                   "path": str(lc_only)}], "s")  # fmt: skip
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": "X", "length_controlled_winrate": 50.0, "win_rate": 1}))
    with pytest.raises(DataError, match=r"other\.json: metrics of 'X', expected 'M'"):
        results_from_evaluations([{"model": "M", "seed": 1, "kind": "alpaca_eval",
                                   "path": str(other)}], "s")  # fmt: skip
    no_verdict = _judgments(tmp_path / "none.parquet", {"q1": (None, None), "q2": (None, None)})
    with pytest.raises(DataError, match=r"none\.parquet: "):
        results_from_evaluations([{"model": "M", "seed": 1, "kind": "arena_hard",
                                   "path": no_verdict}], "s")  # fmt: skip
    with pytest.raises(ValueError, match="unknown evaluation kind 'mtbench'"):
        results_from_evaluations([{"model": "M", "seed": 1, "kind": "mtbench",
                                   "path": str(lc_only)}], "s")  # fmt: skip


def test_claims_show_each_sides_evaluation_standard_error():
    results = pd.concat(
        [
            long(A={0: {1: 52.0, 2: 53.0, 3: 54.0}}, B={0: {1: 50.0, 2: 50.0, 3: 50.0}}),
            long(
                metric="average_se",
                A={0: {1: 0.8, 2: 0.9, 3: 1.0}},
                B={0: {1: 0.7, 2: 0.7, 3: 0.7}},
            ),
        ]
    )
    r = one(results)
    assert (r.eval_se_better, r.eval_se_worse) == pytest.approx((0.9, 0.7))
    assert r.mean_diff == pytest.approx(3.0)  # the average_se rows are not the metric
    md = claims_markdown(claims_table(results, [claim()], "s"))
    assert "eval SE" in md
    line = next(x for x in md.splitlines() if x.startswith("| c |"))
    assert "0.9 / 0.7" in line
    # a claim on a metric with no _se rows, and a results table without any: NaN, shown -
    old = one(pair([1.0, 2.0]))
    assert math.isnan(old.eval_se_better) and math.isnan(old.eval_se_worse)
    old_md = claims_markdown(claims_table(pair([1.0, 2.0]), [claim()], "s"))
    assert "– / –" in next(x for x in old_md.splitlines() if x.startswith("| c |"))
    # a claims table written before the columns existed still renders
    legacy = claims_table(pair([1.0, 2.0]), [claim()], "s").drop(
        columns=["eval_se_better", "eval_se_worse"]
    )
    assert "| c |" in claims_markdown(legacy)


def test_tabulate_claims_results_script_writes_average_se(tmp_path):
    entries = [
        {"model": "A", "seed": 1, "path": _evaluation(tmp_path / "a.json", {"x": 50, "y": 70})},
        {"model": "T", "seed": None, "path": _evaluation(tmp_path / "t.json", {"x": 30}, 2.0)},
    ]
    out = tmp_path / "results.csv"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/tabulate_claims_results.py"),
            "--study",
            "s",
            "--evaluations",
            json.dumps(entries),
            "--world-seed",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    se = pd.read_csv(out).query("metric == 'average_se'").set_index("model")["value"]
    assert se.to_dict() == pytest.approx({"A": math.sqrt(2) / 2, "T": 2.0})

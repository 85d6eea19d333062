"""The claims run on the tiny world, reduced for CI (issue 17 item 5): one ProFuser claim
and two FuseChat-3.0 claims over two training seeds, through the real rules (seeded
training and evaluation, OpenLLM and chat, the long results table, the claims table, its
page and its forest plot). Pairing two trained variants by seed is tested on tables in
tests/test_claims.py (CI's 30 minutes leave room for these trainings here)."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import yaml
from conftest import snakemake

from fusekit.arena import VERDICTS as ARENA_VERDICTS
from fusekit.report.budget_check import budget_verdict
from fusekit.report.claims import VERDICTS

pytestmark = pytest.mark.workflow
CLAIMS = ("profuser_vs_target",)


def run_reduced_claims(tiny_world, tmp_path, study: str, claims, *extra: str) -> dict:
    """The claims run of ``study`` with only ``claims`` (ids) over seeds 1 and 2, and the
    ``extra`` targets; the config it ran with."""
    cfg = json.loads(json.dumps(yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())))
    spec = cfg["studies"][study]
    spec["claims"] = [c for c in spec["claims"] if c["id"] in claims]
    spec["claims_seeds"] = [1, 2]
    if "budget_check" in spec:  # one single-run variant besides the compared ones
        spec["budget_check"]["variants"] = ["FuseNeox"]
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = f"results/tiny/{study}/claims.md"
    snakemake(
        "--profile", "profiles/tiny", target, *extra, "--configfile", str(path), cwd=tiny_world
    )
    return cfg


def assert_twice_the_steps(normal: pd.DataFrame, longer: pd.DataFrame) -> None:
    """Twice the epochs is twice each stage's examples, ``ceil(2 * n / batch)`` steps
    where the normal run took ``ceil(n / batch)``: twice its steps, or one fewer when
    the normal run's last step of the stage was a partial batch."""
    steps, more = normal.groupby("stage").size(), longer.groupby("stage").size()
    assert more.index.tolist() == steps.index.tolist()
    for stage, n in steps.items():
        assert more[stage] in (2 * n - 1, 2 * n), stage


def test_reduced_claims_run(tiny_world, tmp_path):
    """The claims run, and its budget check (ProFuser at twice its epochs)."""
    run_reduced_claims(
        tiny_world, tmp_path, "profuser", CLAIMS, "results/tiny/profuser/budget_check.md"
    )

    base = tiny_world / "results/tiny/profuser"
    results = pd.read_csv(base / "claims_results.csv")
    # ProFuser once per seed, the base target once (seed-independent)
    runs = results[results.metric == "average"].groupby("model").seed.apply(list).to_dict()
    assert sorted(runs) == ["ProFuser", "tgt_llama"] and sorted(runs["ProFuser"]) == [1, 2]
    assert len(runs["tgt_llama"]) == 1 and pd.isna(runs["tgt_llama"][0])
    # the two seeds trained two different models (the seed reaches the trainer)
    per_seed = results[(results.model == "ProFuser") & (results.metric == "average")]
    logs = [base / f"seeds/{s}/models/ProFuser/train_log.csv" for s in (1, 2)]
    assert not pd.read_csv(logs[0]).loss.equals(pd.read_csv(logs[1]).loss)
    assert len(per_seed) == 2

    table = pd.read_csv(base / "claims.csv").set_index("claim")
    assert set(table.index) == set(CLAIMS)
    assert (table.n_seeds == 2).all() and table.verdict.isin(VERDICTS).all()
    assert (table.ci_low <= table.mean_diff).all() and (table.mean_diff <= table.ci_high).all()
    # the difference is ProFuser's seed mean minus the target's single evaluation
    avg = results[results.metric == "average"]
    expected = (
        avg[avg.model == "ProFuser"].value.mean() - avg[avg.model == "tgt_llama"].value.iloc[0]
    )
    assert table.loc["profuser_vs_target", "mean_diff"] == pytest.approx(expected, abs=1e-6)
    page = (base / "claims.md").read_text()
    assert all(c in page for c in CLAIMS)
    assert (base / "figures/claims.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the budget check: ProFuser again at twice its epochs, with seed 1's training seed,
    # and FuseNeox (no claims seeds) with its default-DAG run's seed
    check = pd.read_csv(base / "budget_check.csv").set_index("variant", drop=False)
    assert check.variant.tolist() == ["FuseNeox", "ProFuser"]
    single = check.loc["FuseNeox"]
    assert single.sd_from == "pooled" and pd.isna(single.seed) and single.n_seeds == 1
    dag_run = pd.read_csv(base / "models/FuseNeox/train_log.csv")
    longer_single = pd.read_csv(base / "budget_check/models/FuseNeox/train_log.csv")
    assert_twice_the_steps(dag_run, longer_single)
    assert longer_single.loss.iloc[0] == pytest.approx(dag_run.loss.iloc[0], rel=1e-6)
    row = check.loc["ProFuser"]
    assert (row.seed, row.n_seeds, row.factor) == (1, 2, 2)
    assert (row.epochs, row.budget_epochs) == (9, 18)
    normal = pd.read_csv(base / "seeds/1/models/ProFuser/train_log.csv")
    longer = pd.read_csv(base / "budget_check/models/ProFuser/train_log.csv")
    assert_twice_the_steps(normal, longer)
    # the same initial weights, seed and first batch: the same loss before the first update
    assert longer.loss.iloc[0] == pytest.approx(normal.loss.iloc[0], rel=1e-6)
    seeded = per_seed.set_index("seed").value
    assert row.base_mean == pytest.approx(seeded.mean(), abs=1e-4)
    assert row.base_seed_value == pytest.approx(seeded.loc[1], abs=1e-4)
    assert row["diff"] == pytest.approx(row.budget_value - seeded.mean(), abs=1e-4)
    assert row.verdict == budget_verdict(row["diff"], row.pi_low, row.pi_high)
    heldout = pd.read_csv(base / "budget_check/models/ProFuser/heldout_log.csv")
    assert row.heldout_budget == pytest.approx(heldout.sort_values("step").loss.iloc[-1])
    assert heldout.epoch.max() == 18
    assert row.sd_from == "seeds"
    assert "| ProFuser | 9 -> 18 |" in (base / "budget_check.md").read_text()
    assert (base / "figures/budget_check.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PREFERENCE_CLAIMS = ("lndpo_vs_sft_wr", "lndpo_vs_sft_arena")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reduced_preference_claims_run(tiny_world, tmp_path):
    """FuseChat-3.0's LN-DPO above SFT on AlpacaEval-2 and Arena-Hard: per seed the SFT
    model, its reference log-probs, the DPO model started from it, and both chat
    evaluations; the results table reads the seeded judgments."""
    cfg = run_reduced_claims(tiny_world, tmp_path, "fusechat3", PREFERENCE_CLAIMS)

    base = tiny_world / "results/tiny/fusechat3"
    seeds = [base / f"seeds/{s}" for s in (1, 2)]
    # the whole chain per seed: two SFT models, two reference log-prob tables (each the
    # DPO's reference, from its seed's SFT model), two DPO models, all different
    for part in ("models/SFT/model.safetensors", "ref_logps/SFT/dpo.parquet",
                 "models/DPO/model.safetensors"):  # fmt: skip
        assert _sha(seeds[0] / part) != _sha(seeds[1] / part), part
    assert _sha(seeds[0] / "models/SFT/model.safetensors") != _sha(
        base / "models/SFT/model.safetensors"
    )

    results = pd.read_csv(base / "claims_results.csv")
    runs = results[results.metric == "win_rate"].groupby("model").seed.apply(sorted).to_dict()
    assert runs == {"DPO": [1, 2], "SFT": [1, 2]}
    # the values are the seeded evaluations' own: AlpacaEval-2's metrics file, and
    # Arena-Hard's tie-adjusted win rate counted by hand from the judgments
    for s in (1, 2):
        metrics = json.loads((seeds[s - 1] / "chat_eval/alpaca_eval/DPO.json").read_text())
        row = results[(results.model == "DPO") & (results.seed == s)].set_index("metric").value
        assert row["win_rate"] == pytest.approx(metrics["win_rate"], abs=1e-4)  # CSV: 4 places
        judged = pd.read_parquet(seeds[s - 1] / "chat_eval/arena_hard/DPO.parquet")
        weight = cfg["evaluation"]["arena_hard"].get("strong_weight", 3)
        won = n = 0.0
        for r in judged.itertuples():
            if r.score not in ARENA_VERDICTS:  # a game without a verdict is dropped
                continue
            model_first = r.game == 2  # game 2: the model is assistant A
            w = weight if ">>" in r.score else 1
            if r.score == "A=B":
                won += 0.5
            elif (r.score.startswith("A") and model_first) or (
                r.score.startswith("B") and not model_first
            ):
                won += w
            n += w
        assert row["arena_hard"] == pytest.approx(100 * won / n, abs=0.05)

    table = pd.read_csv(base / "claims.csv").set_index("claim")
    assert set(table.index) == set(PREFERENCE_CLAIMS)
    assert (table.n_seeds == 2).all() and table.verdict.isin(VERDICTS).all()
    assert table.eval_se_better.gt(0).all()  # both metrics carry their evaluation's SE

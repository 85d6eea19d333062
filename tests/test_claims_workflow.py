"""The claims run on the tiny world, reduced for CI (issue 17 item 5): one claim over two
training seeds, through the real rules (seeded training and evaluation, the long results
table, the claims table, its page and its forest plot). Pairing two trained variants by
seed is tested on tables in tests/test_claims.py (CI's 30 minutes leave room for two
trainings here)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import snakemake

from fusekit.report.claims import VERDICTS

pytestmark = pytest.mark.workflow
CLAIMS = ("profuser_vs_target",)


def test_reduced_claims_run(tiny_world, tmp_path):
    cfg = json.loads(json.dumps(yaml.safe_load((tiny_world / "config/tiny.yaml").read_text())))
    spec = cfg["studies"]["profuser"]
    spec["claims"] = [c for c in spec["claims"] if c["id"] in CLAIMS]
    spec["claims_seeds"] = [1, 2]
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = "results/tiny/profuser/claims.md"
    snakemake("--profile", "profiles/tiny", target, "--configfile", str(path), cwd=tiny_world)

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

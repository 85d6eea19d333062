"""What makes Snakemake rerun a job (issue 18 item 3): the tracked config slices and the
inputs of a fusion variant, without running Snakemake."""

from __future__ import annotations

import yaml
from conftest import ROOT
from snakemake.rules import Rule

from fusekit import workflow as layout


def test_result_settings_drops_run_only_keys_at_every_depth():
    spec = {
        "path": "m",
        "batch_size": 64,
        "generation": {"temperature": 0.8, "batch_size": 8},
        "train": [{"lr": 1.0, "save_every": 5}],
    }
    assert layout.result_settings(spec) == {
        "path": "m",
        "generation": {"temperature": 0.8},
        "train": [{"lr": 1.0}],
    }
    assert layout.result_settings(spec, drop=("generation",)) == {
        "path": "m",
        "train": [{"lr": 1.0}],
    }
    assert layout.result_settings(spec, keep=("batch_size",))["generation"]["batch_size"] == 8
    assert spec["generation"]["batch_size"] == 8  # not modified


def test_untracked_params_are_derived_for_snakemake():
    """Snakemake leaves a derived param (a function of resources, input, output or threads)
    out of its params rerun trigger; an untracked param must be one, a tracked one not."""
    param = layout.untracked(lambda w: "value")
    assert param({"x": 1}, None) == "value"
    assert Rule._is_deriving_function(param)
    assert not Rule._is_deriving_function(lambda w: "value")


def test_a_variant_reads_only_what_its_stages_need():
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    csft = layout.fusion_inputs(cfg, "profuser", "CSFT")  # training mode only
    assert csft["votes"] == [] and csft["inference"] == []
    assert len(csft["training"]) == len(cfg["studies"]["profuser"]["sources"])
    infer = layout.fusion_inputs(cfg, "profuser", "InferFuse")  # inference mode only
    assert infer["training"] == [] and infer["votes"] and infer["inference"]
    both = layout.fusion_inputs(cfg, "profuser", "ProFuser")
    assert both["votes"] and both["inference"] and both["training"]
    # rm_score ordering reads the votes whatever the modes
    cfg["studies"]["profuser"]["variants"]["CSFT"]["order"] = "rm_score"
    assert layout.fusion_inputs(cfg, "profuser", "CSFT")["votes"]

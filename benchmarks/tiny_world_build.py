"""How long the tiny world takes to build from nothing, on this machine.

Copies the workflow to a temporary directory, runs
``snakemake --profile profiles/tiny --cores N`` for the world's accuracy
table, and prints the wall time against the 3-minute target, the per-rule
job times from Snakemake's benchmark files, and the fixed cost of one job
(a job started through the fork server, as the tiny world's are, measured in the same
run)
as a share of the total.

    python benchmarks/tiny_world_build.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from conftest import copy_workflow, snakemake  # noqa: E402
from job_startup import forked_startup  # noqa: E402

TARGET_S = 180.0


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", help="build in this directory and keep it")
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/tiny_world_build.json"))
    a = p.parse_args()

    wd = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="fusekit-bench-"))
    wd.mkdir(parents=True, exist_ok=True)
    copy_workflow(wd)
    t = time.perf_counter()
    snakemake(
        "--profile",
        "profiles/tiny",
        "--cores",
        str(a.cores),
        "results/tiny/world/skill_accuracy.csv",
        cwd=wd,
    )
    wall = time.perf_counter() - t

    rows = []
    for tsv in sorted((wd / "results/tiny/benchmarks/world").rglob("*.tsv")):
        rule = tsv.parent.name if tsv.parent.name != "world" else tsv.stem
        rows.append(
            {"rule": rule, "job": tsv.stem, "s": float(pd.read_csv(tsv, sep="\t").s.iloc[0])}
        )
    jobs = pd.DataFrame(rows)
    per_rule = (
        jobs.groupby("rule").s.agg(["count", "sum", "max"]).sort_values("sum", ascending=False)
    )
    startup = forked_startup()
    total = jobs.s.sum()

    print(
        f"tiny world build on {a.cores} cores: wall {wall:.1f} s (target {TARGET_S:.0f} s, "
        f"ratio {wall / TARGET_S:.2f} of the budget)"
    )
    print(
        f"sum of job times {total:.1f} s over {len(jobs)} jobs; "
        f"parallel speed-up {total / wall:.2f}x"
    )
    print(
        f"one job's start-up through the fork server: {startup:.2f} s; "
        f"x {len(jobs)} jobs = {startup * len(jobs) / total:.0%} of job time"
    )
    print(per_rule.round(1).to_string())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps(
            {
                "cores": a.cores,
                "wall_s": wall,
                "target_s": TARGET_S,
                "job_s_sum": total,
                "import_s": startup,
                "per_rule": per_rule.reset_index().to_dict("records"),
            },
            indent=2,
        )
    )
    if not a.keep:
        shutil.rmtree(wd, ignore_errors=True)
    sys.exit(0 if wall <= TARGET_S else 1)


if __name__ == "__main__":
    main()

"""How long results/tiny/table1.csv takes from nothing in the tiny world, on this machine
(target: 10 minutes on 2 CPU cores, the design card's headline table).

Copies the workflow to a temporary directory, runs
``snakemake --profile profiles/tiny --cores N results/tiny/table1.csv``, and prints the
wall time against the target, the number of jobs and the job time per stage from
Snakemake's benchmark files.

    python benchmarks/tiny_table1.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import copy_workflow, snakemake  # noqa: E402

TARGET_S = 600.0


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", help="build in this directory and keep it")
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/tiny_table1.json"))
    a = p.parse_args()

    wd = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="fusekit-table1-"))
    wd.mkdir(parents=True, exist_ok=True)
    copy_workflow(wd)
    t = time.perf_counter()
    snakemake(
        "--profile", "profiles/tiny", "--cores", str(a.cores), "results/tiny/table1.csv", cwd=wd
    )
    wall = time.perf_counter() - t

    rows = [
        {
            "stage": tsv.relative_to(wd / "results/tiny/benchmarks").parts[0],
            "s": float(pd.read_csv(tsv, sep="\t").s.iloc[0]),
        }
        for tsv in (wd / "results/tiny/benchmarks").rglob("*.tsv")
    ]
    jobs = pd.DataFrame(rows)
    per_stage = jobs.groupby("stage").s.agg(["count", "sum"]).sort_values("sum", ascending=False)
    print(
        f"results/tiny/table1.csv from nothing: {wall:.1f} s wall on {a.cores} cores "
        f"(target {TARGET_S:.0f} s, ratio {wall / TARGET_S:.2f}); {len(jobs)} jobs, "
        f"job time sum {jobs.s.sum():.1f} s"
    )
    print(per_stage.round(1).to_string())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps(
            {
                "wall_s": wall,
                "target_s": TARGET_S,
                "jobs": len(jobs),
                "job_s_sum": float(jobs.s.sum()),
                "cores": a.cores,
            },
            indent=2,
        )
    )
    if not a.keep:
        import shutil

        shutil.rmtree(wd, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The tiny world's time budgets on this machine (issue 17 item 6), each measured from
nothing and printed against its budget:

===========================  ==========  ==============================================
what                         budget      command timed
===========================  ==========  ==============================================
default tiny DAG             12 min      ``snakemake --profile profiles/tiny --cores N``
claims run                   30 min      ``snakemake --profile profiles/tiny --cores N
                                         claims`` (every study's claims.md, after the
                                         default DAG, in the same copy: what it adds)
CI                           30 min      ``bash .ci/run`` in a fresh ``git clone`` of HEAD
===========================  ==========  ==============================================

The DAG and the claims run work in a copy of the workflow; CI clones the committed HEAD
(commit first). Each prints its wall time, the ratio to its budget, the sum of job
times and the five rules that took longest (from Snakemake's benchmark files), and the
fixed cost of one job (a job started through the fork server, as the tiny world's are,
measured in the same run) as a share of all job time. Exits 1 when a budget is exceeded.

    python benchmarks/budgets.py [--cores 2] [--skip dag,claims,ci] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from conftest import copy_workflow  # noqa: E402
from job_startup import forked_startup  # noqa: E402

BUDGETS_S = {"dag": 12 * 60.0, "claims": 30 * 60.0, "ci": 30 * 60.0}
CLAIMS_TARGET = "claims"  # rules/claims.smk: every claims study's claims.md


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    """Run ``cmd`` in ``cwd`` with its output in ``log``; the wall time in seconds.
    Raises SystemExit naming the log when the command fails."""
    t = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}): see {log}")
    return wall


def job_times(bench_dir: Path, since: float = 0.0) -> pd.DataFrame:
    """One row per Snakemake benchmark file written after ``since`` (epoch seconds):
    rule (the folder under ``bench_dir``) and seconds."""
    rows = []
    for tsv in sorted(bench_dir.rglob("*.tsv")):
        if tsv.stat().st_mtime < since:
            continue
        rule = (
            tsv.relative_to(bench_dir).parts[1]
            if len(tsv.relative_to(bench_dir).parts) > 2
            else tsv.stem
        )
        rows.append({"rule": rule, "s": float(pd.read_csv(tsv, sep="\t").s.iloc[0])})
    return pd.DataFrame(rows, columns=["rule", "s"])


def report(name: str, wall: float, jobs: pd.DataFrame | None, startup: float) -> dict:
    budget = BUDGETS_S[name]
    verdict = "within" if wall <= budget else "OVER"
    print(
        f"{name:7s} {wall / 60:6.1f} min  budget {budget / 60:4.0f} min  "
        f"ratio {wall / budget:4.2f}  {verdict}"
    )
    out = {"wall_s": round(wall, 1), "budget_s": budget, "ratio": round(wall / budget, 3)}
    if jobs is not None and len(jobs):
        total = jobs.s.sum()
        top = jobs.groupby("rule").s.agg(["count", "sum"]).sort_values("sum", ascending=False)
        print(
            f"        {len(jobs)} jobs, {total / 60:.1f} job-min (speed-up {total / wall:.2f}x); "
            f"job start-up {startup:.2f} s x {len(jobs)} = {startup * len(jobs) / total:.0%} "
            "of job time"
        )
        for rule, r in top.head(5).iterrows():
            print(f"        {rule:32s} {int(r['count']):4d} jobs {r['sum'] / 60:6.1f} job-min")
        out |= {
            "jobs": len(jobs),
            "job_s": round(total, 1),
            "top_rules": top.head(5).reset_index().round(1).to_dict("records"),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--skip", default="", help="comma-separated: dag, claims, ci")
    p.add_argument("--keep", help="work in this directory and keep it")
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/budgets.json"))
    a = p.parse_args()
    skip = {s for s in a.skip.split(",") if s}
    unknown = skip - set(BUDGETS_S)
    if unknown:
        p.error(f"--skip: unknown {sorted(unknown)}; known: {sorted(BUDGETS_S)}")
    if "dag" in skip and "claims" not in skip:
        p.error("the claims run is timed after the default DAG: skip both or neither")

    if a.keep and Path(a.keep).exists() and any(Path(a.keep).iterdir()):
        p.error(f"--keep {a.keep}: the folder exists and is not empty (timings start from nothing)")
    base = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="fusekit-budgets-"))
    base.mkdir(parents=True, exist_ok=True)
    startup = forked_startup()
    print(
        f"{a.cores} cores; one job's start-up (through the fork server, imports done): "
        f"{startup:.2f} s"
    )
    smk = [sys.executable, "-m", "snakemake", "--profile", "profiles/tiny", "--cores", str(a.cores)]
    results: dict[str, dict] = {}
    if "dag" not in skip:
        (base / "workflow").mkdir(exist_ok=True)
        wd = copy_workflow(base / "workflow")
        bench = wd / "results/tiny/benchmarks"
        wall = run(smk, wd, base / "dag.log")
        results["dag"] = report("dag", wall, job_times(bench), startup)
        if "claims" not in skip:
            t0 = time.time()
            wall = run([*smk, CLAIMS_TARGET], wd, base / "claims.log")
            results["claims"] = report("claims", wall, job_times(bench, since=t0), startup)
    if "ci" not in skip:
        clone = base / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        wall = run(["bash", ".ci/run"], clone, base / "ci.log")
        results["ci"] = report("ci", wall, None, startup)

    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps({"cores": a.cores, "startup_s": startup} | results, indent=2) + "\n"
    )
    print(f"logs in {base}" if a.keep else "")
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(0 if all(r["wall_s"] <= r["budget_s"] for r in results.values()) else 1)


if __name__ == "__main__":
    main()

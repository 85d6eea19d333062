"""The fixed cost of one workflow job, with and without the fork server, on this machine.

A job of the tiny world is ``python scripts/<step>.py``: before any work it starts Python
and imports torch, transformers' auto classes and fusekit. This times a script that does
only that, ``--runs`` times each way, in the same run:

- plain: ``python job.py`` (what a Slurm job, or ``forkserver: false``, does);
- forked: ``python -m fusekit.forkserver run job.py`` against a server started here
  (what a local job of the tiny world does).

Prints the median, min and max of each and the ratio forked / plain; writes
``benchmarks/out/job_startup.json``.

    python benchmarks/job_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fusekit import forkserver

ROOT = Path(__file__).resolve().parents[1]
JOB = (
    "import torch, transformers\n"
    "from transformers import AutoTokenizer, AutoModelForCausalLM\n"
    "import fusekit.training_mode\n"
)


def _time(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def startup_costs(runs: int = 5) -> dict[str, list[float]]:
    """Seconds per run of the import-only job: ``{"plain": [...], "forked": [...]}``,
    the two alternating so that both see the same machine load."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.py"
        job.write_text(JOB)
        path = str(Path(tmp) / "sock")
        proc = forkserver.start(path)
        env = dict(os.environ)
        env.pop(forkserver.ENV, None)
        forked_env = {**env, forkserver.ENV: path}
        out: dict[str, list[float]] = {"plain": [], "forked": []}
        try:
            for _ in range(runs):
                out["plain"].append(_time([sys.executable, str(job)], env))
                out["forked"].append(
                    _time([sys.executable, "-m", "fusekit.forkserver", "run", str(job)], forked_env)
                )
        finally:
            forkserver.stop(proc)
    return out


def forked_startup(runs: int = 3) -> float:
    """Median seconds of one job's start-up as the tiny world's jobs start (through the
    fork server): the fixed cost per job that the budget benchmarks print."""
    return statistics.median(startup_costs(runs)["forked"])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/job_startup.json"))
    a = p.parse_args()
    costs = startup_costs(a.runs)
    for name, times in costs.items():
        print(
            f"{name:7s} median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)"
        )
    ratio = statistics.median(costs["forked"]) / statistics.median(costs["plain"])
    print(f"forked / plain: {ratio:.3f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({**costs, "ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()

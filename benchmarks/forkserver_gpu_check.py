"""The fork server on a GPU: does a job forked from the server (torch, transformers and
fusekit imported there, CUDA never initialised there) use CUDA as a job that python
starts does? fusekit.forkserver assumes so and keeps GPU jobs off the server anyway (the
paper-scale config sets ``forkserver: false``); this checks the assumption on a machine
with a GPU.

The same job runs ``--jobs`` times through the server (``python -m fusekit.forkserver
run``, what ``fusekit-python`` does) and once as ``python job.py``: it seeds a generator
on the device, multiplies two 2048 x 2048 matrices and sums the product. Printed per run:
whether the job found its modules preloaded (a forked job) or fell back to python, whether
CUDA was initialised when the job began, the sum, and the wall time of the whole command.
Exits 1 when a run fails, a forked run falls back to python, or a sum differs from the
plain run's.

    python benchmarks/forkserver_gpu_check.py                 # one GPU
    python benchmarks/forkserver_gpu_check.py --device cpu    # the same on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

JOB = """
import json, sys
preloaded = "transformers" in sys.modules  # imported by the server before the fork
import torch
device = sys.argv[1]
initialised = torch.cuda.is_initialized()
g = torch.Generator(device=device).manual_seed(0)
a = torch.randn(2048, 2048, device=device, generator=g)
b = torch.randn(2048, 2048, device=device, generator=g)
total = (a @ b).double().sum().item()
name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
print(json.dumps({"preloaded": preloaded, "cuda_initialised_at_start": initialised,
                  "sum": total, "device": name, "pid": __import__("os").getpid()}))
"""


def _run(cmd: list[str]) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t
    out = {"returncode": proc.returncode, "wall_s": wall, "fell_back": False}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        out |= json.loads(lines[-1])
    elif proc.returncode == 0:  # a job that printed nothing: report it as failed
        out["returncode"] = -1
    out["fell_back"] = "running python itself" in proc.stderr
    if proc.returncode != 0:
        out["stderr"] = proc.stderr[-2000:]
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--jobs", type=int, default=3, help="runs through the server")
    p.add_argument("--threads", type=int, default=2, help="the jobs' thread variables")
    p.add_argument("--out", default=None, help="also write the runs as JSON here")
    a = p.parse_args()

    from fusekit import forkserver

    # the server serves jobs whose environment is its own: the python on PATH is this one
    # and the thread variables are what Snakemake would set
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    os.environ.update(forkserver.job_environment(a.threads, tempfile.gettempdir()))
    with tempfile.TemporaryDirectory() as tmp:
        job = os.path.join(tmp, "job.py")
        with open(job, "w") as fh:
            fh.write(JOB)
        plain = _run([sys.executable, job, a.device])
        handle = forkserver.start_local(a.threads)
        try:
            forked = [
                _run([sys.executable, "-m", "fusekit.forkserver", "run", job, a.device])
                for _ in range(a.jobs)
            ]
        finally:
            forkserver.stop_local([handle])
    failures = []
    print(f"plain  : {json.dumps(plain)}")
    for i, r in enumerate(forked, 1):
        print(f"forked {i}: {json.dumps(r)}")
        if r["returncode"] != 0:
            failures.append(f"forked run {i} exited {r['returncode']}")
        elif r["fell_back"] or not r["preloaded"]:
            failures.append(f"forked run {i} ran python itself")
        elif r["sum"] != plain.get("sum"):
            failures.append(f"forked run {i}: sum {r['sum']!r} != plain {plain.get('sum')!r}")
    if plain["returncode"] != 0:
        failures.append(f"plain run exited {plain['returncode']}")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"plain": plain, "forked": forked, "failures": failures}, fh, indent=1)
    print("OK: forked jobs use the device as plain ones" if not failures else "\n".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

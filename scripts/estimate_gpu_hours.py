"""GPU hours each stage takes at paper scale, estimated from the config (docs/cluster.md)."""

import csv

import yaml

from fusekit.cli import parser
from fusekit.gpu_hours import MFU, PEAK_TFLOPS, estimate, summary

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--config", default="config/config.yaml", help="paper-scale config")
    p.add_argument("--gpu", default="a100", choices=sorted(PEAK_TFLOPS), help="GPU model")
    p.add_argument("--out", default="-", help="CSV of every job's estimate ('-': none)")
    a = p.parse_args()
    with open(a.config) as fh:
        config = yaml.safe_load(fh)
    rows = estimate(config, a.gpu)
    if a.out != "-":
        with open(a.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    mfu = ", ".join(f"{k} {v:.0%}" for k, v in MFU.items())
    print(f"GPU hours on {a.gpu} ({PEAK_TFLOPS[a.gpu]:.0f} TFLOP/s bf16; MFU {mfu})\n")
    print("| study | stage | jobs | GPU hours |\n| --- | --- | ---: | ---: |")
    for r in summary(rows):
        jobs = "" if r["jobs"] is None else r["jobs"]
        print(f"| {r['study']} | {r['stage']} | {jobs} | {r['gpu_hours']:,.0f} |")

"""Bytes per token of the sparse top-k logit dumps on the tiny world (target: <= 64 for k = 10).

Builds the tiny world's reference dumps with Snakemake if they are missing,
then prints, per source model, the file size over the dumped tokens, beside
the dense float32 row that the sparse dump replaces (vocabulary size x 4 bytes).

    python benchmarks/logit_dump_size.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from fusekit.logits import read_dump

ROOT = Path(__file__).resolve().parents[1]
TARGET = 64


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/out/logit_dump_size.json"))
    a = p.parse_args()
    cfg = yaml.safe_load((ROOT / "config/tiny.yaml").read_text())
    ds = cfg["studies"]["profuser"]["train_dataset"]
    sources = cfg["studies"]["profuser"]["sources"]
    dumps = [ROOT / f"results/tiny/logits/{ds}/{m}.parquet" for m in sources]
    if not all(d.exists() for d in dumps):
        env = dict(
            os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "--profile",
                "profiles/tiny",
                *[str(d.relative_to(ROOT)) for d in dumps],
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
    rows = []
    for m, d in zip(sources, dumps, strict=True):
        data, meta = read_dump(str(d))
        tokens = sum(r["n_tokens"] for r in data)
        size = d.stat().st_size
        vocab = json.loads((ROOT / cfg["models"][m]["path"] / "config.json").read_text())[
            "vocab_size"
        ]
        rows.append(
            {
                "model": m,
                "k": int(meta["k"]),
                "tokens": tokens,
                "bytes": size,
                "bytes_per_token": size / tokens,
                "dense_bytes_per_token": 4 * vocab,
            }
        )
        print(
            f"{m}: k={meta['k']}, {tokens} tokens, {size} bytes: {size / tokens:.1f} bytes/token "
            f"(target <= {TARGET}; a dense float32 row of {vocab} would be {4 * vocab}, "
            f"{4 * vocab / (size / tokens):.0f}x larger)"
        )
    worst = max(r["bytes_per_token"] for r in rows)
    print(f"worst: {worst:.1f} bytes/token, {worst / TARGET:.2f} of the target")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

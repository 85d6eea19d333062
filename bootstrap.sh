#!/usr/bin/env bash
# Create .venv with everything fusekit needs on a CPU machine (idempotent).
#   bash bootstrap.sh
# Needs Python 3.11 (python3.11, or python3 if that is 3.11; or set PYTHON).
# The CPU install pins torch 2.13.0 and installs it first, so that nothing
# later pulls a CUDA build. Where pip's default index serves CUDA wheels, point
# it at a CPU index: FUSEKIT_TORCH_INDEX=https://download.pytorch.org/whl/cpu
# pip is pinned too: 26.3 resolves `pip install --dry-run --use-feature=fast-deps` from
# package metadata alone (tests/test_gpu_requirements.py), where 23.2 downloads every wheel.
# GPU nodes do not use this script: `pip install -r requirements-gpu.txt -e .` (torch 2.14.0,
# vLLM, DeepSpeed), or the rules' conda environments (envs/*.yaml, the same pins).
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
  for py in "${PYTHON:-}" python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"
      return
    fi
  done
  echo "bootstrap.sh: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2
  exit 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi

stamp=.venv/.fusekit-install-stamp
want=$(cat pyproject.toml bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap.sh: installing into .venv (about 2 minutes the first time)" >&2
  index=()
  [ -n "${FUSEKIT_TORCH_INDEX:-}" ] && index=(--index-url "$FUSEKIT_TORCH_INDEX")
  .venv/bin/python -m pip install --quiet --disable-pip-version-check pip==26.3
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${index[@]}" torch==2.13.0
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,slurm]'
  echo "$want" >"$stamp"
fi

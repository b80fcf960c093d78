#!/usr/bin/env bash
# The compatibility run on the declared floors, offline: `bash scripts/run_floor_tests.sh [pytest args]`.
# Installs the package into ./.venv-floor with every lower bound of pyproject.toml pinned (constraints/floor.txt),
# prints the versions it runs and runs the test suite there, all but the Space's browser tests (see below). torch
# 2.7.1 comes from PyPI as a CUDA build (about 3 GB with its nvidia wheels; it runs on the CPU), since 2.13.0 is the
# only CPU build on this platform.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-floor
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.uniperceiver-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints/floor.txt -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[dev,scale,peft,sentence-transformers,onnx,torchao]" -c constraints/floor.txt
    touch "$stamp"
fi
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
from pathlib import Path

pins = [line.split("==")[0] for line in Path("constraints/floor.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")]
print("floor run on: " + ", ".join(f"{name} {version(name)}" for name in pins))
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_UPDATE_DOWNLOAD_COUNTS=0 TOKENIZERS_PARALLELISM=false
# The Space's browser tests run on the newest releases only: with gradio 6.0.1, Debian's chromium kept rendering the
# app in software without end (one test past 6 minutes at 2 cores busy); the Space's API tests still run here.
exec "$VENV/bin/python" -m pytest -k "not in_the_browser" "$@"

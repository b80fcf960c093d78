#!/usr/bin/env bash
# Creates ./.venv (once) and installs the package with its test extras (dev; scale: faiss-cpu and ray; peft;
# sentence-transformers; onnx and torchao: serving).
# torch is pinned first to the CPU build: an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.uniperceiver-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
    .venv/bin/python -m pip install --quiet -e ".[dev,scale,peft,sentence-transformers,onnx,torchao]"
    touch "$stamp"
fi

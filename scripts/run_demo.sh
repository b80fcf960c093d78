#!/usr/bin/env bash
# The main job, on a fresh machine: zero-shot classification of a few images against a few labels.
#   bash scripts/run_demo.sh [--model DIR | --checkpoint PATH] [--images ...] [--labels ...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python examples/zero_shot_classification.py "$@"

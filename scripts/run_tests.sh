#!/usr/bin/env bash
# The whole test suite, offline, on a fresh machine: `bash scripts/run_tests.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# The Space's browser tests drive Debian's chromium (pip playwright, no browser download); as root, install it.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium > /dev/null
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_UPDATE_DOWNLOAD_COUNTS=0 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"

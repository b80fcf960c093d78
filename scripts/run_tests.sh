#!/usr/bin/env bash
# The whole test suite, offline, on a fresh machine: `bash scripts/run_tests.sh [pytest args]`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# Debian packages the tests read: chromium drives the Space's browser tests (pip playwright, no browser download);
# the Space and the corpus builder draw emoji with Noto Color Emoji and name them from unicode-data; the corpus's
# quotations come from fortunes-min. As root, install the missing ones.
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || packages+=(fonts-noto-color-emoji)
[ -f /usr/share/unicode/emoji/emoji-test.txt ] || packages+=(unicode-data)
[ -d /usr/share/games/fortunes ] || packages+=(fortunes-min)
if [ ${#packages[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    apt-get update -qq && apt-get install -y -qq "${packages[@]}" > /dev/null
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_UPDATE_DOWNLOAD_COUNTS=0 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Lint and format check with the pinned ruff (pyproject.toml's [tool.ruff]): `bash scripts/run_lint.sh`.
# `--fix` applies the fixes and the formatting instead of checking.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if [ "${1:-}" = "--fix" ]; then
    .venv/bin/ruff check --fix .
    .venv/bin/ruff format .
else
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
fi

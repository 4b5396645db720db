#!/usr/bin/env bash
# Set up (scripts/setup_env.sh) and run the default test suite (fast, CPU-only).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"

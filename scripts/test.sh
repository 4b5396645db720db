#!/usr/bin/env bash
# Set up (scripts/setup_env.sh) and run the checks: ruff on the whole tree, mypy on acestep_core/, then the test
# suite (default: the fast CPU tests). Extra arguments go to pytest, e.g. `scripts/test.sh -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"

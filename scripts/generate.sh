#!/usr/bin/env bash
# Generate music from the command line: creates .venv with scripts/setup_env.sh on first use, then runs
# `python -m acestep_core generate` with every argument passed through, e.g.
#   scripts/generate.sh --tags "pop, female vocals" --lyrics @lyrics.txt --duration 60 --output song.wav
# See `scripts/generate.sh --help` for all options.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "first use: creating $ROOT/.venv and installing PyTorch and the requirements (about 5 GB of downloads," \
       "a few minutes; once)" >&2
  bash "$ROOT/scripts/setup_env.sh" >&2
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$ROOT/.venv/bin/python" -m acestep_core generate "$@"

#!/usr/bin/env bash
# Create .venv (if needed) and install everything the pack and its tests need, from this
# repository's own files. Idempotent: a second run only checks.
# TORCH_SPEC/TORCHAUDIO_SPEC select the torch build (tests use 2.11.0, as the golden data).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.11.0}"
TORCHAUDIO_SPEC="${TORCHAUDIO_SPEC:-torchaudio==2.11.0}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "$TORCH_SPEC" "$TORCHAUDIO_SPEC"
.venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
# this package itself (editable, no dependencies): `acestep-core` and `python -m acestep_core` from any folder
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -c "import torch, torchaudio; print('torch', torch.__version__, 'torchaudio', torchaudio.__version__)"

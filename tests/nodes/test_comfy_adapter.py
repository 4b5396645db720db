"""Opt-in (``-m comfy``, ``COMFYUI_ROOT`` = a ComfyUI checkout, ``COMFYUI_PYTHON`` = its interpreter): the nodes
through the adapter's ComfyUI branch (ModelPatcher, comfy.ops, folder_paths, ProgressBar, interrupt)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parity import REPO_ROOT, TINY_CHECKPOINT, require_parity

from .conftest import VOCAB


@pytest.mark.comfy
def test_nodes_run_inside_comfyui(tmp_path: Path) -> None:
    require_parity()
    comfyui = os.environ.get("COMFYUI_ROOT")
    if not comfyui or not Path(comfyui, "comfy").is_dir():
        pytest.skip("set COMFYUI_ROOT to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    script = Path(__file__).with_name("comfy_smoke.py")
    result = subprocess.run([python, str(script), comfyui, str(REPO_ROOT), str(TINY_CHECKPOINT), str(VOCAB),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0 and "SMOKE OK" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]

"""CPU checks of the original-implementation benchmark driver (``bench/bench_original.py``).

The original ACE-Step checkout is never part of this repository: the smoke run needs ``ACESTEP_ORIGINAL_ROOT``
(the folder holding its ``acestep/`` package) and an importable ``diffusers``; otherwise it is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_original

ROOT = Path(__file__).resolve().parent.parent


def test_help_without_the_original() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_original.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--ace-step-root" in proc.stdout and "--time-budget" in proc.stdout
    assert "acestep" not in sys.modules  # importing the driver does not import the original


def test_missing_root_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"acestep/pipeline_ace_step.py not found"):
        bench_original.import_original(str(tmp_path))


def test_tiny_cpu_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = os.environ.get("ACESTEP_ORIGINAL_ROOT")
    if not root:
        pytest.skip("ACESTEP_ORIGINAL_ROOT (a checkout of the original ACE-Step) is not set")
    if importlib.util.find_spec("diffusers") is None:
        pytest.skip("diffusers is not importable (the original needs it)")
    out = tmp_path / "orig.json"
    results = bench_original.main(["--ace-step-root", root, "--tiny", "--device", "cpu", "--dtype", "fp32",
                                   "--durations", "2", "--steps", "3", "--batch", "1", "--guidance", "app,off",
                                   "--json", str(out)])
    assert [(r.dur_s, r.steps, r.guidance) for r in results] == [(2.0, 3, "app"), (2.0, 3, "off")]
    app, off = results
    # app: guidance window [0, 2) of 3 steps -> 2 APG steps with ERG uncond passes, ERG lyric encode, ERG tag
    assert app.calls == {"apg_forward": 2, "decode": 3, "decode_erg": 2, "encode": 1, "encode_erg": 1,
                         "euler_step": 3, "text_embeddings_erg": 1}
    assert off.calls == {"decode": 3, "encode": 2, "euler_step": 3}
    for r in results:
        assert all(math.isfinite(v) and v > 0 for v in (r.cond_s, r.sample_s, r.decode_s, r.total_s, r.rtf))
    assert "| 2 | 3 | 1 | app |" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["environment"]["implementation"] == "original ACE-Step"

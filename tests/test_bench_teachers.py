"""CPU smoke test of the teacher benchmark (``bench/bench_teachers.py``) on tiny teachers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import bench_teachers
from tests.parity import REPO_ROOT


def test_bench_teachers_tiny_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    results = bench_teachers.main(["--tiny", "--device", "cpu", "--seconds", "6", "--max-chunks", "all,1",
                                   "--repeats", "1", "--json", str(out)])
    assert [(r.teacher, r.precision, r.max_chunks) for r in results] == [
        (t, p, c) for t in ("MERT-v1-330M", "mHuBERT-147") for p in ("fp32", "bf16") for c in ("all", "1")]
    mert, mhubert = results[0], results[-1]
    assert (mert.chunks, mert.frames) == (2, 374 + 75) and (mhubert.chunks, mhubert.frames) == (1, 300)
    assert all(r.time_s > 0 and r.peak_gib is None for r in results)
    table = capsys.readouterr().out
    assert "| MERT-v1-330M | fp32 | all | 6 | 1 | 2 | 449 |" in table
    assert len(json.loads(out.read_text(encoding="utf-8"))["results"]) == 8


def test_bench_teachers_runs_without_the_generation_stack() -> None:
    code = textwrap.dedent("""
        import sys
        for name in ["einops", "tokenizers", "huggingface_hub", "soundfile", "torchaudio", "transformers"]:
            sys.modules[name] = None
        from bench import bench_teachers
        results = bench_teachers.main(["--tiny", "--device", "cpu", "--seconds", "1", "--precisions", "fp32",
                                       "--teachers", "m-hubert", "--repeats", "1"])
        print("frames", results[0].frames)
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("frames 50")

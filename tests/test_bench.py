"""CPU smoke test of the generation benchmark (``bench/bench_generate.py``) on the tiny configs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import bench_generate


def test_bench_tiny_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    results = bench_generate.main(["--tiny", "--device", "cpu", "--dtype", "fp32", "--durations", "2", "--steps",
                                   "2", "--batch", "1", "--guidance", "app,off", "--repeats", "1",
                                   "--json", str(out)])
    assert [(r.dur_s, r.steps, r.batch, r.guidance) for r in results] == [(2.0, 2, 1, "app"), (2.0, 2, 1, "off")]
    assert [r.passes for r in results] == [3, 2]  # app: window [0, 1) of 2 steps gets an extra uncond pass
    for r in results:
        for value in (r.cond_s, r.sample_s, r.s_per_step, r.decode_s, r.total_s, r.rtf, r.tflops):
            assert math.isfinite(value) and value > 0
        assert r.pct_peak is None and r.peak_sample_gib is None  # CPU: no peak / VRAM
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == 2 and "| app |" in rows[0] and "| off |" in rows[1]
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["environment"]["weights"] == "random tiny" and len(payload["results"]) == 2


def test_flops_formula_counts_guidance_window() -> None:
    cfg = bench_generate.MODEL_SPECS["ace-step-v1-3.5b"].transformer
    assert bench_generate.transformer_passes(27, "app") == 27 + 14  # window (6, 20)
    assert bench_generate.transformer_passes(60, "off") == 60
    one = bench_generate.decode_pass_flops(cfg, 1, 2583, 431)
    assert bench_generate.decode_pass_flops(cfg, 4, 2583, 431) == 4 * one
    assert 8e12 < one < 16e12  # ~2.1 B matmul parameters in the blocks x 2 x 2583 frames

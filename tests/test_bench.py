"""CPU smoke test of the generation benchmark (``bench/bench_generate.py``) on the tiny configs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from acestep_core.runtime import quant
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


def _tiny(*extra: str) -> list[bench_generate.Result]:
    return bench_generate.main(["--tiny", "--device", "cpu", "--dtype", "fp32", "--durations", "2", "--steps", "2",
                                "--batch", "1", "--guidance", "app", "--repeats", "1", *extra])


def test_bench_low_vram_tiny_cpu(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU the stages' moves are no-ops; the staged path (generate + overlapped decode) still runs, and
    the transformer is handed to the denoiser itself (not a wrapper), with the encode patch removed after."""
    staged: list[tuple[str, list[str]]] = []
    released: list[str] = []
    real_stage, real_release = bench_generate.stage, bench_generate.release_cuda_graphs

    def recording_stage(name, *modules, device, peaks=None):
        staged.append((name, [type(m).__name__ for m in modules if m is not None]))
        return real_stage(name, *modules, device=device, peaks=peaks)

    def recording_release(transformer) -> None:
        released.append(type(transformer).__name__)
        real_release(transformer)

    monkeypatch.setattr(bench_generate, "stage", recording_stage)
    monkeypatch.setattr(bench_generate, "release_cuda_graphs", recording_release)
    (result,) = _tiny("--low-vram", "--accel", "graphs")
    assert result.accel == "graphs+lowvram" and result.low_vram and not result.fp8
    assert result.move_s >= 0 and math.isfinite(result.total_s) and result.peak_sample_gib is None
    assert staged[:2] == [("generate", ["UMT5Encoder", "AceStepTransformer"]), ("decode", ["AudioCodec"])]
    assert len(staged) == 4 and set(released) == {"AceStepTransformer"} and len(released) == 2  # warm-up + case
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2 |")]
    assert len(rows) == 1 and "| graphs+lowvram |" in rows[0]


def test_bench_default_runs_unstaged(monkeypatch: pytest.MonkeyPatch) -> None:
    staged: list[list[Any]] = []
    real_stage = bench_generate.stage

    def recording_stage(name, *modules, device, peaks=None):
        staged.append([m for m in modules if m is not None])
        return real_stage(name, *modules, device=device, peaks=peaks)

    monkeypatch.setattr(bench_generate, "stage", recording_stage)
    (result,) = _tiny()
    assert result.accel == "default" and result.move_s == 0.0 and staged and all(m == [] for m in staged)


@pytest.mark.skipif(not quant.fp8_supported(), reason="torch without float8")
def test_bench_fp8_tiny_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    (result,) = _tiny("--fp8", "--low-vram", "--json", str(out))
    assert result.accel == "default+fp8+lowvram" and result.fp8 and result.low_vram
    assert math.isfinite(result.sample_s) and result.sample_s > 0
    text = capsys.readouterr().out
    assert "fp8 transformer, low-vram staging" in text and "| default+fp8+lowvram |" in text
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["environment"]["fp8"] is True and payload["results"][0]["fp8"] is True


def test_marking_sample_start_keeps_the_module_and_removes_the_patch() -> None:
    import torch

    class Fake(torch.nn.Module):
        def encode(self, x):
            return x + 1

    fake, clock = Fake(), bench_generate.Clock(torch.device("cpu"))
    with bench_generate.marking_sample_start(fake, clock):
        assert fake.encode(torch.zeros(1)).item() == 1 and "sample_start" in clock.marks
        first = clock.marks["sample_start"]
        fake.encode(torch.zeros(1))
        assert clock.marks["sample_start"] >= first  # the last encode call marks the start of sampling
    assert "encode" not in vars(fake) and fake.encode(torch.zeros(1)).item() == 1

"""CPU smoke tests of the training benchmarks: ours (``bench/bench_train.py``) on the tiny configs, and the
original trainer's driver (``bench/bench_train_original.py``) when a checkout of the original and its packages
are at hand (``ACESTEP_ORIGINAL_ROOT`` = the folder holding ``trainer.py`` and ``acestep/``; otherwise skipped,
as in CI, which has no diffusers)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import bench_train
from tests.parity import REPO_ROOT

TINY_R64_LORA_PARAMS = 894_976  # r 64 x (in + out) over the 211 RapMachine-target Linears of the tiny transformer
NUMBERS = ("s_per_step", "s_per_step_min", "s_per_step_max", "loop_s_per_step", "first_step_s", "clips_per_hour",
           "lora_params", "loss", "case_wall_s")


def test_bench_train_tiny_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "train.json"
    results = bench_train.main(["--tiny", "--device", "cpu", "--cases", "faithful-r64", "--seconds", "5",
                                "--steps", "2", "--warmup", "0", "--lyric-tokens", "32", "--json", str(out)])
    assert [(r.case, r.status, r.batch, r.ckpt) for r in results] == [("faithful-r64", "ok", 1, "on")]
    payload = json.loads(out.read_text(encoding="utf-8"))
    env, (row,) = payload["environment"], payload["results"]
    assert env["weights"] == "random tiny" and env["latent_frames"] == 54  # ceil(5 s at 44.1 kHz / 4096)
    assert env["teacher_frames"] == {"mert": 374, "m-hubert": 250}  # one full 5 s MERT chunk; 250 of 1499
    for name in NUMBERS:
        assert isinstance(row[name], (int, float)) and math.isfinite(row[name]) and row[name] > 0, name
    assert row["clips_per_hour"] == pytest.approx(3600 / row["s_per_step"])
    assert row["lora_params"] == TINY_R64_LORA_PARAMS
    assert len(row["step_times"]) == 2 and row["train_peak_gib"] is None  # CPU: no device memory figures
    assert "| faithful-r64 | fp32 | on | 64 | 1 | adamw |" in capsys.readouterr().out


def test_case_selection_and_unknown_names() -> None:
    assert [c.name for c in bench_train.select_cases(["light"])] == [
        "light-bf16-r64", "light-fp8-r64", "light-fp8-adamw8bit-r64"]
    assert len(bench_train.select_cases(["all"])) == len(bench_train.CASES)
    with pytest.raises(SystemExit, match="unknown"):
        bench_train.select_cases(["fastest"])


def test_full_size_input_lengths() -> None:
    """240 s = the dataset's crop: the latent and teacher-feature lengths the real caches hold."""
    n = bench_train.clip_samples(300.0)
    assert n == 240 * 48000
    assert bench_train.latent_frames(n) == 2584
    assert bench_train.teacher_frames(n) == {"mert": 17952, "m-hubert": 11992}


def test_original_trainer_tiny_cpu(tmp_path: Path) -> None:
    """In its own process: importing the original trainer sets global torch flags (TF32) and ``sys.path``."""
    root = os.environ.get("ACESTEP_ORIGINAL_ROOT")
    if not root or not (Path(root) / "trainer.py").is_file():
        pytest.skip("ACESTEP_ORIGINAL_ROOT (a checkout of the original ACE-Step with trainer.py) is not set")
    missing = [m for m in ("diffusers", "transformers", "peft", "pytorch_lightning", "loguru", "matplotlib")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the original trainer's packages are not importable: {missing}")
    out = tmp_path / "orig.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "bench_train_original.py"), "--ace-step-root",
                           root, "--tiny", "--device", "cpu", "--ranks", "64", "--seconds", "6", "--steps", "2",
                           "--warmup", "0", "--lyric-tokens", "32", "--json", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    payload = json.loads(out.read_text(encoding="utf-8"))
    (row,) = payload["results"]
    assert row["status"] == "ok" and row["lora_params"] == TINY_R64_LORA_PARAMS  # the same 211 modules as ours
    for name in ("s_per_step", "clips_per_hour", "preprocess_s", "mert_s", "mhubert_s", "text_s", "dcae_s"):
        assert isinstance(row[name], float) and math.isfinite(row[name]) and row[name] > 0, name
    assert payload["environment"]["float32_matmul_precision"] == "high"  # set by importing the original trainer
    assert "| original-r64 | 64 | 1 |" in proc.stdout


def test_train_targets_report() -> None:
    from bench import train_targets

    def row(case: str, group: str, r: int, batch: int, clips: float, peak: float | None, status: str = "ok"
            ) -> dict[str, object]:
        return {"case": case, "group": group, "r": r, "batch": batch, "clips_per_hour": clips, "ckpt": "auto->off",
                "train_peak_gib": peak, "status": status}

    ours = {"environment": {"gpu": "H200", "seconds": 240.0, "not_built": {"codec_fp32_gib": 1.0}},
            "results": [row("fast-r64", "fast", 64, 1, 9000.0, 20.0), row("fast-r64", "fast", 64, 2, 13000.0, 30.0),
                        row("fast-r64", "fast", 64, 4, 0.0, None, status="oom: CUDA"),
                        row("light-bf16-r64", "light", 64, 1, 8000.0, 10.0),
                        row("light-fp8-r64", "light", 64, 1, 7000.0, 7.5)]}
    original = {"results": [row("original-r64", "original", 64, 1, 4000.0, 25.0),
                            row("original-r256", "original", 256, 1, 3500.0, 27.0)]}
    lines = train_targets.report(ours, original).splitlines()
    assert lines[2] == "| fast r 64 >= 3x original | 13000 clips/h (batch 2, ckpt auto->off) vs 4000: 3.25x | yes |"
    assert lines[3] == "| fast r 256 >= 3x original | no fast result | n/a |"
    assert lines[4] == "| light-bf16-r64 peak <= 12 GB | 10.74 GB (10.00 GiB) | yes |"
    assert lines[5].endswith("| no |")  # 7.5 GiB = 8.05 GB
    assert lines[6] == "| light-fp8-adamw8bit-r64 peak <= 8 GB | not measured | n/a |"

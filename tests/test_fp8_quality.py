"""CPU smoke test of the fp8 quality benchmark (``bench/fp8_quality.py``) on the tiny configs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from bench import fp8_quality

pytestmark = pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="torch without float8")


def test_fp8_quality_tiny_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fp8.json"
    result = fp8_quality.main(["--tiny", "--device", "cpu", "--dtype", "fp32", "--duration", "2", "--steps", "3",
                               "--json", str(out)])
    for name in ("velocity", "latents"):
        diff = result[name]
        assert math.isfinite(diff["max_abs"]) and 0 < diff["rel"] < 1, (name, diff)
    assert result["finite"] and result["quantized_layers"] > 0
    assert result["transformer_bytes_after"] < result["transformer_bytes_before"]
    text = capsys.readouterr().out
    assert "| velocity |" in text and "| latents |" in text and "GiB ->" in text
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["environment"]["weights"] == "random tiny" and payload["result"]["quantized_layers"] > 0

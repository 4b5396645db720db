"""Helpers for comparing against the golden data in ``../shared/parity``.

Tolerances come from ``parity/tolerances.json`` (never loosened in tests). Every
comparison's max abs error is appended to ``$ACESTEP_PARITY_REPORT`` (if set) so a
run can report measured errors per golden.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ACESTEP_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()
PARITY_DIR = SHARED_DIR / "parity"
TINY_CHECKPOINT = PARITY_DIR / "tiny_checkpoint"


REQUIRE_PARITY_ENV = "ACESTEP_REQUIRE_PARITY"  # set by .ci/run: a missing parity folder fails the run
# What a complete parity folder holds (README sections 1-8); a run with ACESTEP_REQUIRE_PARITY fails without any.
PARITY_ENTRIES = ("README.md", "tolerances.json", "tiny_checkpoint", "modules", "tokenizer", "pipeline", "lora",
                  "training", "teachers")
MISSING_REASON = f"golden data not found at {PARITY_DIR} (set ACESTEP_SHARED_DIR to the folder holding parity/)"


def missing_parity_entries() -> list[str]:
    """The entries of :data:`PARITY_ENTRIES` absent from the parity folder (all of them if it is missing)."""
    return [name for name in PARITY_ENTRIES if not (PARITY_DIR / name).exists()]


def require_parity() -> Path:
    """Skip (with a reason) when the golden data folder is absent; CI fails earlier (``ACESTEP_REQUIRE_PARITY``)."""
    if not PARITY_DIR.is_dir():
        pytest.skip(MISSING_REASON)
    return PARITY_DIR


def require_parity_module() -> None:
    """Call at the top of a test module that reads golden data at import (to parametrize): without the data the
    whole module is one visible skip instead of silently fewer tests."""
    if not PARITY_DIR.is_dir():
        pytest.skip(MISSING_REASON, allow_module_level=True)


@cache
def tolerances() -> dict[str, dict[str, float]]:
    data = json.loads((PARITY_DIR / "tolerances.json").read_text())
    return data["tolerances"]  # type: ignore[no-any-return]


@cache
def load_golden(relative: str) -> dict[str, torch.Tensor]:
    """Load ``parity/<relative>`` (a safetensors file) as a dict of CPU tensors."""
    return load_file(str(require_parity() / relative))


def assert_golden(actual: torch.Tensor, expected: torch.Tensor, category: str, name: str) -> float:
    """Elementwise ``|a - e| <= atol + rtol * |e|`` with the tolerance of ``category``.

    Returns the max abs error (also logged to the parity report).
    """
    tol = tolerances()[category]
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != golden {tuple(expected.shape)}"
    a = actual.detach().to(torch.float64).cpu()
    e = expected.to(torch.float64)
    err = (a - e).abs()
    bound = tol["atol"] + tol["rtol"] * e.abs()
    max_err = float(err.max()) if err.numel() else 0.0
    report = os.environ.get("ACESTEP_PARITY_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "category": category, "max_abs_err": max_err}) + "\n")
    bad = err > bound
    if bool(bad.any()):
        idx = int(torch.nonzero(bad.flatten())[0])
        raise AssertionError(
            f"{name}: {int(bad.sum())}/{err.numel()} elements outside {category} tolerance "
            f"(atol {tol['atol']}, rtol {tol['rtol']}); max abs err {max_err:.3e}; first at flat index {idx}: "
            f"got {a.flatten()[idx].item():.6g}, golden {e.flatten()[idx].item():.6g}"
        )
    return max_err

"""The training targets, read from the two benchmarks' JSON files of one device call.

Usage::

    python -m bench.train_targets OURS_JSON ORIGINAL_JSON

Targets (one H200, 240 s clips): the fast options (bf16, checkpointing auto, best batch) give at least 3x the
original trainer's clips per hour at the same rank; the peak (``train_peak_gib``, allocated) of r 64 with
cached inputs is at most 12 GB with bf16 base weights (``light-bf16-r64``) and at most 8 GB with fp8 base
weights (``light-fp8-r64``, ``light-fp8-adamw8bit-r64``). GB = 10^9 bytes; the GiB figure is printed too.
The codec and teacher weights (``not_built``) are not in a run's step peak: ``build_training_run`` moves them
to the CPU once the songs are prepared (the codec returns to the device for previews only).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPEEDUP_TARGET = 3.0
PEAK_TARGETS_GB = {"light-bf16-r64": 12.0, "light-fp8-r64": 8.0, "light-fp8-adamw8bit-r64": 8.0}
GIB_PER_GB = 1e9 / 2**30


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok"]


def speed_rows(ours: dict[str, Any], original: dict[str, Any]) -> list[list[str]]:
    rows = []
    for orig in _ok(original["results"]):
        fast = [r for r in _ok(ours["results"]) if r["group"] == "fast" and r["r"] == orig["r"]]
        if not fast:
            rows.append([f"fast r {orig['r']} >= {SPEEDUP_TARGET:g}x original", "no fast result", "n/a"])
            continue
        best = max(fast, key=lambda r: r["clips_per_hour"])
        ratio = best["clips_per_hour"] / orig["clips_per_hour"]
        rows.append([f"fast r {orig['r']} >= {SPEEDUP_TARGET:g}x original",
                     f"{best['clips_per_hour']:.0f} clips/h (batch {best['batch']}, ckpt {best['ckpt']}) vs "
                     f"{orig['clips_per_hour']:.0f}: {ratio:.2f}x", "yes" if ratio >= SPEEDUP_TARGET else "no"])
    return rows


def peak_rows(ours: dict[str, Any]) -> list[list[str]]:
    by_case = {r["case"]: r for r in _ok(ours["results"]) if r["batch"] == 1}
    rows = []
    for case, limit_gb in PEAK_TARGETS_GB.items():
        result = by_case.get(case)
        if result is None or result.get("train_peak_gib") is None:
            rows.append([f"{case} peak <= {limit_gb:g} GB", "not measured", "n/a"])
            continue
        gib = result["train_peak_gib"]
        rows.append([f"{case} peak <= {limit_gb:g} GB",
                     f"{gib / GIB_PER_GB:.2f} GB ({gib:.2f} GiB)",
                     "yes" if gib / GIB_PER_GB <= limit_gb else "no"])
    return rows


def report(ours: dict[str, Any], original: dict[str, Any]) -> str:
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in speed_rows(ours, original) + peak_rows(ours)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.train_targets OURS_JSON ORIGINAL_JSON")
    ours, original = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args)
    text = report(ours, original)
    print(f"training targets ({ours['environment']['gpu']}, {ours['environment']['seconds']:g} s clips)")
    print(text)
    return text


if __name__ == "__main__":
    main()

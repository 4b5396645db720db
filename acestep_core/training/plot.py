"""The loss curve as a picture, without plotting libraries: an RGB array (for ComfyUI's IMAGE output) and a PNG
file (zlib + the PNG chunk format). Raw per-step losses in light grey, a running mean in blue, axes ticks every
fifth of the range; drawn with plain tensor indexing."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch

from .save import atomic_write_bytes

__all__ = ["loss_curve_image", "write_png"]

BACKGROUND, AXIS, RAW, MEAN = (255, 255, 255), (90, 90, 90), (200, 200, 200), (31, 119, 180)


def _running_mean(values: torch.Tensor, window: int) -> torch.Tensor:
    cumulative = torch.cat([values.new_zeros(1), values.cumsum(0)])
    index = torch.arange(1, len(values) + 1)
    start = (index - window).clamp(min=0)
    return (cumulative[index] - cumulative[start]) / (index - start)


def _polyline(image: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, color: tuple[int, int, int]) -> None:
    """Draw straight segments between consecutive points (pixel coordinates) into ``image`` [H, W, 3]."""
    for x0, y0, x1, y1 in zip(xs[:-1].tolist(), ys[:-1].tolist(), xs[1:].tolist(), ys[1:].tolist(), strict=True):
        count = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        px = torch.linspace(x0, x1, count).round().long().clamp(0, image.shape[1] - 1)
        py = torch.linspace(y0, y1, count).round().long().clamp(0, image.shape[0] - 1)
        image[py, px] = torch.tensor(color, dtype=torch.uint8)


def loss_curve_image(history: Sequence[tuple[int, float]], *, width: int = 640, height: int = 360) -> torch.Tensor:
    """``[height, width, 3]`` uint8 picture of the loss per step (an empty frame when there is no step yet)."""
    image = torch.tensor(BACKGROUND, dtype=torch.uint8).repeat(height, width, 1)
    left, right, top, bottom = 40, width - 10, 10, height - 30
    image[top:bottom + 1, left] = torch.tensor(AXIS, dtype=torch.uint8)
    image[bottom, left:right + 1] = torch.tensor(AXIS, dtype=torch.uint8)
    if not history:
        return image
    steps = torch.tensor([s for s, _ in history], dtype=torch.float64)
    losses = torch.tensor([v for _, v in history], dtype=torch.float64)
    low, high = float(losses.min()), float(losses.max())
    span = high - low if high > low else 1.0
    first, last = float(steps[0]), float(steps[-1])
    xs = left + (steps - first) / max(last - first, 1.0) * (right - left)

    def to_y(values: torch.Tensor) -> torch.Tensor:
        return bottom - (values - low) / span * (bottom - top)

    for tick in range(1, 5):  # ticks every fifth of each axis
        image[bottom - tick * (bottom - top) // 5, left - 4:left] = torch.tensor(AXIS, dtype=torch.uint8)
        image[bottom:bottom + 4, left + tick * (right - left) // 5] = torch.tensor(AXIS, dtype=torch.uint8)
    if len(history) > 1:
        _polyline(image, xs, to_y(losses), RAW)
        _polyline(image, xs, to_y(_running_mean(losses, max(1, len(losses) // 20))), MEAN)
    else:
        image[int(to_y(losses)[0]), int(xs[0])] = torch.tensor(MEAN, dtype=torch.uint8)
    return image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, image: torch.Tensor) -> Path:
    """Write an ``[H, W, 3]`` uint8 image as an 8-bit RGB PNG (atomically)."""
    height, width, _ = image.shape
    rows = torch.cat([torch.zeros(height, 1, dtype=torch.uint8), image.reshape(height, width * 3)], dim=1)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(rows.contiguous().numpy().tobytes(), 6)) + _chunk(b"IEND", b""))
    return atomic_write_bytes(path, data)

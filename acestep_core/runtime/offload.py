"""Explicit offload for low-VRAM runs outside ComfyUI: components live on the CPU and each stage moves only
what it needs to the accelerator and back.

* :func:`on_device` moves modules to a device for a ``with`` block and back to where each was, even when the
  block raises; on CUDA it then calls ``torch.cuda.empty_cache()`` so the next stage sees the freed memory.
* :func:`stage` does that for a named stage and logs the stage's peak (``torch.cuda.max_memory_allocated``
  since the stage began, weights included) at INFO level on CUDA; ``peaks`` collects the numbers.
* :func:`decode_memory_bytes` / :func:`sampling_memory_bytes`: activation-memory estimates (weights excluded)
  that the ComfyUI nodes pass to ``load_models_gpu(..., memory_required=...)``, so ComfyUI offloads other
  models (e.g. the transformer before a decode) when the card lacks room.

Inside ComfyUI the nodes leave placement to ``comfy.model_management`` (see ``nodes/comfy_adapter.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["decode_memory_bytes", "log_peaks", "module_device", "on_device", "sampling_memory_bytes", "stage"]

# ComfyUI's own estimate for the ACE-Step audio VAE (comfy/sd.py, "Ace Step Audio"):
# memory_used_decode = shape[2] * shape[3] * 87000 * dtype_size for latents [B, 8, 16, T], per batch item.
# For 240 s (T = 2583) in bf16 that is 7.2 GB; the full decode measured ~4 GB on an H100, so it is conservative.
DECODE_BYTES_PER_ROW_FRAME = 87000  # x height (16) x T x dtype size
WAVEFORM_BYTES_PER_FRAME = 4096 * 2 * 4 * 3  # float32 stereo at 44.1 kHz (+ resampled copy and crop), per frame
# Sampling: per latent frame and transformer pass, ~32 x model width activation elements alive at once
# (GLUMBConv expand to 2 x 2.5 D plus SiLU/gate copies, q/k/v and their float32 linear-attention copies).
SAMPLING_ELEMENTS_PER_FRAME_DIM = 32
SAMPLING_BATCHED_PASSES = 3  # conditional + unconditional (+ text-only with double guidance) in one batch


def module_device(module: nn.Module) -> torch.device | None:
    """The device of the module's first parameter or buffer (``None`` for a module without tensors)."""
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return None


def _same(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


@contextlib.contextmanager
def on_device(*modules: nn.Module | None, device: torch.device | str) -> Iterator[None]:
    """Move ``modules`` (``None`` entries are skipped) to ``device`` for the block, then back where each was.

    Modules already on ``device`` are not moved (no copy, nothing to undo). Moves back happen even when the
    block raises (e.g. out of memory); the CUDA cache is emptied afterwards.
    """
    device = torch.device(device)
    moved: list[tuple[nn.Module, torch.device]] = []
    try:
        for module in modules:
            home = module_device(module) if module is not None else None
            if module is None or home is None or _same(home, device):
                continue
            moved.append((module, home))  # before .to(): a half-moved module still goes back
            module.to(device)
        yield
    finally:
        for module, home in reversed(moved):
            module.to(home)
        if moved:
            _empty_cache(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


@contextlib.contextmanager
def stage(name: str, *modules: nn.Module | None, device: torch.device | str,
          peaks: dict[str, int] | None = None) -> Iterator[None]:
    """A named stage: :func:`on_device` for ``modules`` and, on CUDA, the stage's peak memory logged at INFO
    (and stored in ``peaks[name]``, bytes). Nothing is measured or logged on other devices."""
    device = torch.device(device)
    _reset_peak(device)
    with on_device(*modules, device=device):
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            if peaks is not None:
                peaks[name] = peak
            logger.info("low-vram stage %s: peak %.2f GiB on %s", name, peak / 2**30, device)


def log_peaks(peaks: dict[str, Any]) -> None:
    """One INFO line with every stage peak (GiB), and the overall maximum."""
    if peaks:
        parts = ", ".join(f"{k} {v / 2**30:.2f}" for k, v in peaks.items())
        logger.info("peak GPU memory per stage (GiB): %s; max %.2f", parts, max(peaks.values()) / 2**30)


def decode_memory_bytes(latent_shape: tuple[int, ...] | torch.Size, dtype: torch.dtype, *, overlapped: bool,
                        window_frames: int = 512) -> int:
    """Activation memory of ``AudioCodec.decode`` for latents ``[B, 8, 16, T]`` (codec weights excluded).

    The full decode runs the whole batch at once; the overlapped decode runs one item and one DCAE window of
    ``window_frames`` latent frames at a time, so only the output waveform grows with ``B * T``.
    """
    batch, _, height, frames = (int(d) for d in latent_shape)
    per_frame = height * DECODE_BYTES_PER_ROW_FRAME * dtype.itemsize
    active = min(frames, window_frames) if overlapped else batch * frames
    return active * per_frame + batch * frames * WAVEFORM_BYTES_PER_FRAME


def sampling_memory_bytes(batch: int, frames: int, model_dim: int, dtype: torch.dtype) -> int:
    """Activation memory of one sampling step of the transformer (weights excluded), a conservative estimate."""
    elements = SAMPLING_BATCHED_PASSES * batch * frames * model_dim * SAMPLING_ELEMENTS_PER_FRAME_DIM
    return elements * dtype.itemsize

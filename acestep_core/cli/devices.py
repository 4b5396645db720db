"""Device, dtype and memory options of ``python -m acestep_core generate``, checked before any model work."""

from __future__ import annotations

import argparse
import logging

import torch

from .errors import UsageError

logger = logging.getLogger("acestep_core.cli")

__all__ = ["DTYPE_NAMES", "memory_options", "resolve_device", "resolve_dtype"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu (upstream's order); explicit devices must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UsageError(f"--device {name!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from e
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if device.type not in available:
        raise UsageError(f"--device {name}: unsupported device type; use auto, cpu, cuda, cuda:N or mps")
    if not available[device.type]:
        raise UsageError(f"--device {name}: {device.type.upper()} is not available on this machine/torch build; "
                         "use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return device


DTYPE_NAMES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
               "float16": torch.float16, "half": torch.float16, "fp32": torch.float32, "float32": torch.float32,
               "float": torch.float32}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` = bf16 on CUDA, fp32 elsewhere (upstream forces fp32 on MPS); ``bf16``/``bfloat16``, ``fp16``/
    ``float16``, ``fp32``/``float32`` (the torch spellings) name a dtype."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPE_NAMES:
        raise UsageError(f"--dtype {name}: unknown; use auto, {', '.join(DTYPE_NAMES)}")
    return DTYPE_NAMES[name]


def memory_options(args: argparse.Namespace, device: torch.device) -> tuple[bool, bool]:
    """``--low-vram`` (a no-op on the CPU, logged) and ``--fp8`` (needs float8 support, not on MPS)."""
    low_vram, fp8 = bool(getattr(args, "low_vram", False)), bool(getattr(args, "fp8", False))
    if low_vram and device.type == "cpu":
        logger.info("--low-vram has no effect on --device cpu (everything already lives in CPU memory)")
        low_vram = False
    if fp8:
        from ..runtime.quant import fp8_supported

        if not fp8_supported():
            raise UsageError(f"--fp8 needs torch.float8_e4m3fn, which torch {torch.__version__} lacks; upgrade "
                             "torch to 2.1 or newer, or leave out --fp8")
        if device.type == "mps":
            raise UsageError("--fp8: float8 weights are not supported on MPS; use --device cuda or cpu, or leave "
                             "out --fp8")
    return low_vram, fp8

"""When a fused Triton kernel runs instead of its plain PyTorch reference: one policy for every kernel.

A kernel runs on a CUDA tensor of a dtype it supports, on a GPU of at least its compute capability, when Triton
imports, ``ACESTEP_NO_TRITON`` is unset (or ``0``) and no earlier launch of that kernel failed in this process.
A failed launch (a Triton build error, a driver refusal) switches that kernel to the reference path for the rest
of the process, with one warning; out-of-memory errors are re-raised (the reference would need memory too).

The decision is a pure function of a few facts (:func:`decide`) so it is tested directly; :func:`use_triton`
gathers the facts for a tensor and logs each kernel's first decision once. Everything here is plain Python on
cached values, so a ``torch.compile``d caller sees constants, not guards that change between calls.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

logger = logging.getLogger(__name__)

__all__ = ["CONV1D_NLC", "GLU_DEPTHWISE", "NO_TRITON_ENV", "KernelSpec", "decide", "failures", "run_fused",
           "triton_available", "use_triton"]

NO_TRITON_ENV = "ACESTEP_NO_TRITON"
T = TypeVar("T")


@dataclass(frozen=True)
class KernelSpec:
    """A fused kernel: its name (for logs), the activation dtypes it handles and the GPUs it needs."""

    name: str
    dtypes: tuple[torch.dtype, ...]
    min_capability: tuple[int, int]


# The GLUMBConv middle (SiLU, depthwise conv, GLU): element-wise arithmetic, fine in every float dtype.
GLU_DEPTHWISE = KernelSpec("GLUMBConv SiLU-depthwise-GLU", (torch.bfloat16, torch.float16, torch.float32), (7, 0))
# The vocoder head's convolutions: bf16/fp16 tensor-core dots (Ampere or newer).
CONV1D_NLC = KernelSpec("vocoder HiFi-GAN head (fused convolutions)", (torch.bfloat16, torch.float16), (8, 0))

_FAILED: dict[str, str] = {}  # kernel name -> the error that switched it off for this process
_LOGGED: set[tuple[str, bool, str]] = set()


@functools.cache
def triton_available() -> bool:
    """Whether Triton imports (checked once per process)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "no Triton"
        return False
    return True


@functools.cache
def _capability(device_index: int) -> tuple[int, int]:
    major, minor = torch.cuda.get_device_capability(device_index)
    return int(major), int(minor)


def _disabled_by_env() -> bool:
    return os.environ.get(NO_TRITON_ENV, "") not in ("", "0")


def decide(spec: KernelSpec, *, is_cuda: bool, dtype: torch.dtype, capability: tuple[int, int] | None,
           triton_ok: bool, disabled: bool, failure: str | None) -> tuple[bool, str]:
    """``(use the fused kernel, why)`` from the facts; the reason is what the log line says."""
    if not is_cuda:
        return False, "not a CUDA tensor"
    if dtype not in spec.dtypes:
        return False, f"{dtype} activations (fused path: {', '.join(str(d) for d in spec.dtypes)})"
    if disabled:
        return False, f"{NO_TRITON_ENV} is set"
    if failure is not None:
        return False, f"an earlier launch failed in this process ({failure})"
    if not triton_ok:
        return False, "Triton is not importable"
    if capability is None or capability < spec.min_capability:
        need = ".".join(map(str, spec.min_capability))
        return False, f"GPU compute capability {capability} (needs {need} or newer)"
    return True, f"Triton on a compute capability {capability[0]}.{capability[1]} GPU, {dtype}"


def use_triton(spec: KernelSpec, x: torch.Tensor) -> bool:
    """Whether ``spec`` runs fused for activations ``x`` (its first decision per reason is logged)."""
    capability = None
    if x.is_cuda:
        capability = _capability(x.device.index if x.device.index is not None else torch.cuda.current_device())
    ok, reason = decide(spec, is_cuda=x.is_cuda, dtype=x.dtype, capability=capability,
                        triton_ok=x.is_cuda and triton_available(), disabled=_disabled_by_env(),
                        failure=_FAILED.get(spec.name))
    if x.is_cuda and (spec.name, ok, reason) not in _LOGGED:
        _LOGGED.add((spec.name, ok, reason))
        logger.info("%s: %s (%s)", spec.name, "fused kernel" if ok else "plain PyTorch path", reason)
    return ok


def failures() -> dict[str, str]:
    """Kernels switched off in this process by a failed launch, with the error (a copy)."""
    return dict(_FAILED)


def run_fused(spec: KernelSpec, fused: Callable[[], T], reference: Callable[[], T]) -> T:
    """``fused()``; if it raises (other than out of memory), switch ``spec`` off for the process with one warning
    and return ``reference()``."""
    try:
        return fused()
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - a Triton build/launch failure must not lose the user's work
        _FAILED[spec.name] = f"{type(error).__name__}: {error}"
        logger.warning("%s: the fused Triton kernel failed (%s); using the plain PyTorch path for the rest of "
                       "this process", spec.name, _FAILED[spec.name])
        return reference()

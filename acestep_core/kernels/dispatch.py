"""When a fused Triton kernel runs instead of its plain PyTorch reference: one policy for every kernel.

A kernel runs on a CUDA tensor of a dtype it supports, on a GPU of at least its compute capability, when Triton
imports, ``ACESTEP_NO_TRITON`` is unset (or ``0``) and no earlier launch of that kernel failed in this process.
A failed launch (a Triton build error, a driver refusal) switches that kernel to the reference path for the rest
of the process, with one warning; out-of-memory errors are re-raised (the reference would need memory too).

CUDA graph capture under PyTorch's ``cudaMallocAsync`` allocator (ComfyUI's default) is one more fact. Tensors
allocated while a stream is captured are then CUDA graph memory nodes: their addresses are reserved but not mapped
until the graph is launched, so ``cuPointerGetAttribute``, which Triton's launcher calls on every tensor argument,
answers ``CUDA_ERROR_INVALID_VALUE`` and Triton raises "Pointer argument (at 0) cannot be accessed from Triton (cpu
tensor?)". Under PyTorch's caching allocator the same capture draws from a private pool of ordinary ``cudaMalloc``
memory, which the check accepts. A kernel that can be launched with raw device pointers (which the launcher takes
unchecked, :attr:`KernelSpec.raw_pointer_launch`) runs fused there; any other (and every kernel Inductor generates)
must not run inside such a capture: :func:`triton_capturable` is that fact for the CUDA-graph plan.

The decision is a pure function of these facts (:func:`decide`) so it is tested directly; :func:`decision` gathers
the facts for a tensor and logs each kernel's first decision per reason once. Code that ``torch.compile`` traces
asks :func:`traced_decision` instead: it is evaluated once at trace time (``assume_constant_result``), so the
compiled graph holds a constant, with no guards on this module's state and no graph break for its log line.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch

logger = logging.getLogger(__name__)

__all__ = ["ASYNC_ALLOCATOR", "CONV1D_NLC", "GLU_DEPTHWISE", "NO_TRITON_ENV", "Decision", "KernelSpec",
           "allocator_backend", "decide", "decision", "failures", "is_compiling", "run_fused", "traced_decision",
           "triton_available", "triton_capturable", "use_triton"]

NO_TRITON_ENV = "ACESTEP_NO_TRITON"
ASYNC_ALLOCATOR = "cudaMallocAsync"  # torch.cuda.get_allocator_backend() of PYTORCH_CUDA_ALLOC_CONF=backend:...
T = TypeVar("T")


@dataclass(frozen=True)
class KernelSpec:
    """A fused kernel: its name (for logs), the activation dtypes it handles, the GPUs it needs, and whether it
    can be launched with raw device pointers (so it also runs inside a capture under ``cudaMallocAsync``)."""

    name: str
    dtypes: tuple[torch.dtype, ...]
    min_capability: tuple[int, int]
    raw_pointer_launch: bool = False


class Decision(NamedTuple):
    """What :func:`decide` answers: run fused or not, why (the log line), and whether to pass raw pointers."""

    fused: bool
    reason: str
    raw_pointers: bool = False


# The GLUMBConv middle (SiLU, depthwise conv, GLU): element-wise arithmetic, fine in every float dtype.
GLU_DEPTHWISE = KernelSpec("GLUMBConv SiLU-depthwise-GLU", (torch.bfloat16, torch.float16, torch.float32), (7, 0),
                           raw_pointer_launch=True)
# The vocoder head's convolutions: bf16/fp16 tensor-core dots (Ampere or newer); never captured in a graph.
CONV1D_NLC = KernelSpec("vocoder HiFi-GAN head (fused convolutions)", (torch.bfloat16, torch.float16), (8, 0))
_SPECS = {spec.name: spec for spec in (GLU_DEPTHWISE, CONV1D_NLC)}

_FAILED: dict[str, str] = {}  # kernel name -> the error that switched it off for this process
_LOGGED: set[tuple[str, bool, str]] = set()


def _trace_constant(fn: Callable[..., T]) -> Callable[..., T]:
    """``torch.compiler.assume_constant_result`` where this torch has it (2.1+); a no-op otherwise."""
    mark = getattr(getattr(torch, "compiler", None), "assume_constant_result", None)
    return mark(fn) if mark is not None else fn


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing the caller (``False`` on a torch without ``torch.compiler``)."""
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(check()) if check is not None else False


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


@functools.cache
def allocator_backend() -> str:
    """PyTorch's CUDA allocator backend (``native`` or ``cudaMallocAsync``; fixed for the process), ``native``
    without CUDA."""
    if not torch.cuda.is_available():
        return "native"
    return str(torch.cuda.get_allocator_backend())


def triton_capturable(allocator: str) -> bool:
    """Whether Triton's launcher (ours and Inductor's) accepts tensors allocated during a CUDA graph capture under
    ``allocator``: not under ``cudaMallocAsync`` (see the module docstring)."""
    return allocator != ASYNC_ALLOCATOR


def _disabled_by_env() -> bool:
    return os.environ.get(NO_TRITON_ENV, "") not in ("", "0")


def decide(spec: KernelSpec, *, is_cuda: bool, dtype: torch.dtype, capability: tuple[int, int] | None,
           triton_ok: bool, disabled: bool, failure: str | None, capturing: bool = False,
           allocator: str = "native") -> Decision:
    """The decision from the facts; its reason is what the log line says."""
    if not is_cuda:
        return Decision(False, "not a CUDA tensor")
    if dtype not in spec.dtypes:
        return Decision(False, f"{dtype} activations (fused path: {', '.join(str(d) for d in spec.dtypes)})")
    if disabled:
        return Decision(False, f"{NO_TRITON_ENV} is set")
    if failure is not None:
        return Decision(False, f"an earlier launch failed in this process ({failure})")
    if not triton_ok:
        return Decision(False, "Triton is not importable")
    if capability is None or capability < spec.min_capability:
        need = ".".join(map(str, spec.min_capability))
        return Decision(False, f"GPU compute capability {capability} (needs {need} or newer)")
    if capturing and not triton_capturable(allocator):
        if spec.raw_pointer_launch:
            return Decision(True, f"CUDA graph capture under {allocator}: launched with raw device pointers", True)
        return Decision(False, f"CUDA graph capture under {allocator} (Triton's launcher rejects graph memory)")
    return Decision(True, f"Triton on a compute capability {capability[0]}.{capability[1]} GPU, {dtype}")


def _facts_decision(spec: KernelSpec, is_cuda: bool, device_index: int | None, dtype: torch.dtype,
                    capturing: bool) -> Decision:
    capability = None
    if is_cuda:
        capability = _capability(device_index if device_index is not None else torch.cuda.current_device())
    result = decide(spec, is_cuda=is_cuda, dtype=dtype, capability=capability,
                    triton_ok=is_cuda and triton_available(), disabled=_disabled_by_env(),
                    failure=_FAILED.get(spec.name), capturing=capturing,
                    allocator=allocator_backend() if capturing else "native")
    if is_cuda and (spec.name, result.fused, result.reason) not in _LOGGED:
        _LOGGED.add((spec.name, result.fused, result.reason))
        logger.info("%s: %s (%s)", spec.name, "fused kernel" if result.fused else "plain PyTorch path", result.reason)
    return result


def decision(spec: KernelSpec, x: torch.Tensor) -> Decision:
    """The decision for activations ``x`` in eager code (its first decision per reason is logged)."""
    capturing = x.is_cuda and torch.cuda.is_current_stream_capturing()
    return _facts_decision(spec, x.is_cuda, x.device.index, x.dtype, capturing)


def use_triton(spec: KernelSpec, x: torch.Tensor) -> bool:
    """Whether ``spec`` runs fused for activations ``x`` (see :func:`decision`)."""
    return decision(spec, x).fused


@_trace_constant
def _traced(name: str, device_type: str, device_index: int, dtype: torch.dtype) -> bool:
    spec = _SPECS[name]
    return _facts_decision(spec, device_type == "cuda", None if device_index < 0 else device_index, dtype,
                           capturing=False).fused


def traced_decision(spec: KernelSpec, x: torch.Tensor) -> bool:
    """:func:`use_triton` for code that ``torch.compile`` traces: a constant of the compiled graph (a compiled
    graph is never captured under ``cudaMallocAsync``, see :func:`triton_capturable`)."""
    index = x.device.index
    return bool(_traced(spec.name, x.device.type, -1 if index is None else index, x.dtype))


def failures() -> dict[str, str]:
    """Kernels switched off in this process by a failed launch, with the error (a copy)."""
    return dict(_FAILED)


def run_fused(spec: KernelSpec, fused: Callable[[], T], reference: Callable[[], T]) -> T:
    """``fused()``; if it raises (other than out of memory), switch ``spec`` off for the process with one warning
    and return ``reference()``. Eager code only: compiled code calls the fused op directly."""
    try:
        return fused()
    except torch.OutOfMemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - a Triton build/launch failure must not lose the user's work
        _FAILED[spec.name] = f"{type(error).__name__}: {error}"
        logger.warning("%s: the fused Triton kernel failed (%s); using the plain PyTorch path for the rest of "
                       "this process", spec.name, _FAILED[spec.name])
        return reference()

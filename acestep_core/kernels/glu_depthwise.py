"""GLUMBConv middle part: ``SiLU -> depthwise 3-tap conv -> GLU(SiLU)`` on channels-last activations.

``u`` [B, T, 2H] (output of the 1x1 expand conv) -> ``y`` [B, T, H]::

    s = silu(u);  c = depthwise_conv3(s, weight [2H, 1, 3], bias [2H]) (zero padded in time)
    y = c[..., :H] * silu(c[..., H:])

The reference path is exactly upstream's op sequence (each op rounds to the activation dtype). The Triton
path computes the same expression in one kernel (one read of ``u``, one write of ``y``) with the same rounding
points (SiLU output, conv output, gate SiLU, product each rounded to the activation dtype; conv accumulated in
fp32 as bias + tap 0 + tap 1 + tap 2, as ATen's depthwise kernel does), so the two agree to within one rounding
of the activation dtype. Upstream ran this as four kernels over [B, 2H, T] tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

from . import dispatch
from .dispatch import GLU_DEPTHWISE

BLOCK_T = 32
BLOCK_C = 128
OP_NAME = "acestep::silu_depthwise_glu"


def silu_depthwise_glu_reference(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Plain PyTorch: ``u`` [B, T, 2H], ``weight`` [2H, 1, 3], ``bias`` [2H] -> [B, T, H] (contiguous)."""
    channels = weight.shape[0]
    conv = F.conv1d(F.silu(u).transpose(1, 2), weight, bias, padding=weight.shape[-1] // 2, groups=channels)
    value, gate = conv.chunk(2, dim=1)  # [B, H, T] each
    # training (autograd needs no out=) and torch.compile (Inductor mis-lowers the out= form): same values
    if dispatch.is_compiling() or (torch.is_grad_enabled() and (u.requires_grad or weight.requires_grad)):
        return (value.transpose(1, 2) * F.silu(gate).transpose(1, 2)).contiguous()
    out = torch.empty(u.shape[0], u.shape[1], channels // 2, dtype=u.dtype, device=u.device)
    return torch.mul(value.transpose(1, 2), F.silu(gate).transpose(1, 2), out=out)


def silu_depthwise_glu(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``u`` [B, T, 2H] -> [B, T, H]; the fused Triton kernel where :mod:`.dispatch` allows, else the reference.

    Traced by ``torch.compile``: the decision is a trace-time constant and the registered op is called directly
    (a failure surfaces from the compiled call, where :mod:`acestep_core.runtime.accel` falls back). Eager: the
    launch falls back to the reference for the process if it fails; inside a CUDA graph capture under
    ``cudaMallocAsync`` the kernel is launched with raw device pointers (see :mod:`.dispatch`).
    """
    needs_grad = torch.is_grad_enabled() and (u.requires_grad or weight.requires_grad)  # the kernel has no backward
    if weight.shape[-1] != 3 or needs_grad:
        return silu_depthwise_glu_reference(u, weight, bias)
    if dispatch.is_compiling():
        if not (dispatch.traced_decision(GLU_DEPTHWISE, u) and _op_registered()):
            return silu_depthwise_glu_reference(u, weight, bias)
        full = bias if bias is not None else weight.new_zeros(weight.shape[0])
        return torch.ops.acestep.silu_depthwise_glu(u.contiguous(), weight.contiguous(), full.contiguous())
    choice = dispatch.decision(GLU_DEPTHWISE, u)
    if not choice.fused:
        return silu_depthwise_glu_reference(u, weight, bias)
    full_bias = bias if bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    args = (u.contiguous(), weight.contiguous(), full_bias.contiguous())
    launch = _launch_raw if choice.raw_pointers else _triton_op()[0]
    return dispatch.run_fused(GLU_DEPTHWISE, lambda: launch(*args),
                              lambda: silu_depthwise_glu_reference(u, weight, bias))


@dispatch._trace_constant
def _op_registered() -> bool:
    """Registers the op before a trace uses it (called at trace time, outside the graph)."""
    _triton_op()
    return True


def _grid(frames: int, hidden: int, batch: int) -> tuple[int, int, int]:
    return (-(-frames // BLOCK_T), -(-hidden // BLOCK_C), batch)


def _launch_raw(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Launch the kernel with raw device pointers: Triton's launcher checks tensor arguments with
    ``cuPointerGetAttribute``, which refuses the not-yet-mapped graph memory of a capture under cudaMallocAsync;
    integer pointers are passed unchecked (the kernel was compiled for these tensors by ``warmup``)."""
    kernel = _triton_op()[1]
    batch, frames, channels = u.shape
    hidden = channels // 2
    y = torch.empty(batch, frames, hidden, dtype=u.dtype, device=u.device)
    grid = _grid(frames, hidden, batch)
    with torch.cuda.device(u.device):
        compiled = kernel.warmup(u, weight, bias, y, frames, hidden, BLOCK_T=BLOCK_T, BLOCK_C=BLOCK_C, grid=grid)
        compiled = compiled.result() if hasattr(compiled, "result") else compiled
        compiled[grid](u.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr(), frames, hidden,
                       BLOCK_T, BLOCK_C)
    return y


@functools.cache
def _triton_op() -> tuple[Any, Any]:
    """Build the Triton kernel and register it as the ``torch.library`` op ``acestep::silu_depthwise_glu`` (so
    ``torch.compile`` traces it); returns ``(op, kernel)``."""
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    @triton.jit
    def kernel(u_ptr, w_ptr, b_ptr, y_ptr, frames, hidden, BLOCK_T: tl.constexpr,  # noqa: N803
               BLOCK_C: tl.constexpr):  # noqa: N803
        pid_t, pid_c, item = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)[:, None]  # [BT, 1]
        c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]  # [1, BC]
        c_ok = c < hidden
        dtype = y_ptr.dtype.element_ty
        u_item = u_ptr + item.to(tl.int64) * frames * 2 * hidden
        acc_v = tl.load(b_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
        acc_g = tl.load(b_ptr + hidden + c, mask=c_ok, other=0.0).to(tl.float32)
        for k in tl.static_range(3):
            tt = t + (k - 1)
            ok = (tt >= 0) & (tt < frames) & c_ok
            row = u_item + tt.to(tl.int64) * 2 * hidden
            uv = tl.load(row + c, mask=ok, other=0.0).to(tl.float32)
            ug = tl.load(row + hidden + c, mask=ok, other=0.0).to(tl.float32)
            sv = (uv / (1.0 + tl.exp(-uv))).to(dtype).to(tl.float32)
            sg = (ug / (1.0 + tl.exp(-ug))).to(dtype).to(tl.float32)
            wv = tl.load(w_ptr + c * 3 + k, mask=c_ok, other=0.0).to(tl.float32)
            wg = tl.load(w_ptr + (hidden + c) * 3 + k, mask=c_ok, other=0.0).to(tl.float32)
            acc_v += wv * sv
            acc_g += wg * sg
        value = acc_v.to(dtype).to(tl.float32)
        gate = acc_g.to(dtype).to(tl.float32)
        gate = (gate / (1.0 + tl.exp(-gate))).to(dtype).to(tl.float32)
        out = y_ptr + item.to(tl.int64) * frames * hidden + t.to(tl.int64) * hidden + c
        tl.store(out, (value * gate).to(dtype), mask=(t < frames) & c_ok)

    @triton_op(OP_NAME, mutates_args=())
    def op(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, frames, channels = u.shape
        hidden = channels // 2
        y = torch.empty(batch, frames, hidden, dtype=u.dtype, device=u.device)
        wrap_triton(kernel)[_grid(frames, hidden, batch)](u, weight, bias, y, frames, hidden, BLOCK_T=BLOCK_T,
                                                           BLOCK_C=BLOCK_C)
        return y

    return op, kernel

"""Channels-last 1-D convolution with fused epilogues, for the HiFi-GAN head of the vocoder.

``x`` [B, L, C_in] (any strides) -> [B, L, C_out], stride 1, "same" zero padding, any dilation. The epilogue
reproduces the rounding points of the op sequence it replaces (each step rounds to the activation dtype)::

    r = round(conv(x, w))              # fp32 accumulation, as cuDNN
    r = round(r + bias)                # ATen adds the conv bias as a separate op
    r = round(r + residual)            # optional: ``conv2(...) + x`` of a residual block
    r = round(acc + r)                 # optional: running sum over the residual blocks of a stage
    r = round(r * scale)               # optional: the mean over those blocks (scale = 1/n, exact for 1/2, 1/4)
    r = round(tanh(r))                 # optional: the output activation
    out = r and/or round(silu(r))      # the plain value, its SiLU (the only way the next layer reads it), or both

so the fused path differs from the reference only by the summation order inside the convolution. The
reference path (:func:`conv1d_nlc_reference`) is exactly that op sequence in plain PyTorch and runs off CUDA,
for fp32, or with ``ACESTEP_NO_TRITON=1`` (:mod:`.dispatch` decides).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import dispatch
from .dispatch import CONV1D_NLC


@dataclass(frozen=True)
class Epilogue:
    """What happens to ``round(conv + bias)`` before it is stored (see the module docstring)."""

    scale: float = 1.0
    tanh: bool = False
    write_plain: bool = True
    write_silu: bool = False

    def __post_init__(self) -> None:
        if not (self.write_plain or self.write_silu):
            raise ValueError("Epilogue: write_plain or write_silu must be set")


def conv1d_nlc_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilation: int,
                         epilogue: Epilogue, residual: torch.Tensor | None = None,
                         acc: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Plain PyTorch: ``x`` [B, L, C_in], ``weight`` [C_out, C_in, K] (K odd), ``bias`` [C_out] ->
    ``(plain, silu)`` [B, L, C_out] each (``None`` where not asked for)."""
    pad = dilation * (weight.shape[-1] - 1) // 2
    r = F.conv1d(x.transpose(1, 2), weight, None, padding=pad, dilation=dilation).transpose(1, 2)
    r = r + bias
    if residual is not None:
        r = r + residual
    if acc is not None:
        r = acc + r
    if epilogue.scale != 1.0:
        r = r * epilogue.scale
    if epilogue.tanh:
        r = torch.tanh(r)
    plain = r.contiguous() if epilogue.write_plain else None
    return plain, (F.silu(r).contiguous() if epilogue.write_silu else None)


def use_triton(x: torch.Tensor) -> bool:
    """Whether :func:`conv1d_nlc` takes the Triton path for ``x`` (the policy of :mod:`.dispatch`)."""
    return dispatch.use_triton(CONV1D_NLC, x)


def conv1d_nlc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilation: int, epilogue: Epilogue,
               residual: torch.Tensor | None = None, acc: torch.Tensor | None = None
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Fused conv (Triton on CUDA bf16/fp16, else the reference). ``acc`` may be overwritten in place."""
    if weight.shape[-1] % 2 == 0:
        raise ValueError(f"conv1d_nlc: odd kernel sizes only (same padding), got {weight.shape[-1]}")
    expected = (x.shape[0], x.shape[1], weight.shape[0])
    for name, t in (("residual", residual), ("acc", acc)):
        if t is not None and (tuple(t.shape) != expected or not t.is_contiguous()):
            raise ValueError(f"conv1d_nlc: {name} must be contiguous {list(expected)}, got {list(t.shape)}")

    def reference() -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return conv1d_nlc_reference(x, weight, bias, dilation, epilogue, residual, acc)

    if not use_triton(x):
        return reference()
    w_kio = weight.permute(2, 1, 0).contiguous()  # [K, C_in, C_out]
    return dispatch.run_fused(CONV1D_NLC, lambda: _launch(x, w_kio, bias.contiguous(), dilation, epilogue,
                                                          residual, acc), reference)


def _blocks(c_in: int, c_out: int) -> tuple[int, int, int, int, int]:
    """(BLOCK_L, BLOCK_N, BLOCK_K, num_warps, num_stages) by channel count (measured on an H100, bench/README)."""
    if c_out >= 128:
        return 128, min(256, _next_pow2(c_out)), 64, 8, 3
    if c_out >= 32 and c_in >= 32:
        block = _next_pow2(min(c_in, c_out, 64))
        return 128, block, block, 4, 3
    return 256, max(16, min(64, _next_pow2(c_out))), max(16, min(64, _next_pow2(c_in))), 4, 3


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _launch(x: torch.Tensor, w_kio: torch.Tensor, bias: torch.Tensor, dilation: int, epilogue: Epilogue,
            residual: torch.Tensor | None, acc: torch.Tensor | None
            ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    batch, length, c_in = x.shape
    taps, _, c_out = w_kio.shape
    new = functools.partial(torch.empty, batch, length, c_out, dtype=x.dtype, device=x.device)
    plain = (acc if acc is not None else new()) if epilogue.write_plain else None
    silu = new() if epilogue.write_silu else None
    dummy = plain if plain is not None else silu
    block_l, block_n, block_k, warps, stages = _blocks(c_in, c_out)
    grid = (_cdiv(length, block_l), _cdiv(c_out, block_n), batch)
    _kernel()[grid](
        x, w_kio, bias, residual if residual is not None else dummy, acc if acc is not None else dummy,
        plain if plain is not None else dummy, silu if silu is not None else dummy,
        length, c_in, c_out, taps, x.stride(0), x.stride(1), x.stride(2), dilation, dilation * (taps - 1) // 2,
        float(epilogue.scale), int(residual is not None), int(acc is not None), int(epilogue.scale != 1.0),
        int(epilogue.tanh), int(plain is not None), int(silu is not None),
        BLOCK_L=block_l, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages,
    )
    return plain, silu


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@functools.cache
def _kernel() -> Any:
    import triton
    import triton.language as tl

    flags = ["taps", "dilation", "pad", "scale", "has_res", "has_acc", "has_scale", "has_tanh", "write_plain",
             "write_silu"]  # runtime values, not compile-time specialisations: one compile per block shape

    @triton.jit(do_not_specialize=flags)
    def kernel(x_ptr, w_ptr, b_ptr, r_ptr, a_ptr, y_ptr, s_ptr, length, c_in, c_out, taps, sxb, sxl, sxc,
               dilation, pad, scale, has_res, has_acc, has_scale, has_tanh, write_plain, write_silu,
               BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):  # noqa: N803
        pid_l, pid_n, item = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        rows = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = cols < c_out
        x_item = x_ptr + item.to(tl.int64) * sxb
        dtype = y_ptr.dtype.element_ty
        acc = tl.zeros((BLOCK_L, BLOCK_N), dtype=tl.float32)
        for tap in range(taps):
            src = rows + (tap * dilation - pad)
            src_ok = (src >= 0) & (src < length)
            x_rows = x_item + src.to(tl.int64)[:, None] * sxl
            for k0 in range(0, c_in, BLOCK_K):
                ks = k0 + tl.arange(0, BLOCK_K)
                k_ok = ks < c_in
                xt = tl.load(x_rows + ks[None, :] * sxc, mask=src_ok[:, None] & k_ok[None, :], other=0.0)
                wt = tl.load(w_ptr + (tap * c_in + ks)[:, None] * c_out + cols[None, :],
                             mask=k_ok[:, None] & col_ok[None, :], other=0.0)
                acc = tl.dot(xt, wt, acc)
        r = acc.to(dtype).to(tl.float32)
        r = (r + tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]).to(dtype).to(tl.float32)
        offsets = (item.to(tl.int64) * length + rows.to(tl.int64))[:, None] * c_out + cols[None, :]
        ok = (rows < length)[:, None] & col_ok[None, :]
        if has_res:
            r = (r + tl.load(r_ptr + offsets, mask=ok, other=0.0).to(tl.float32)).to(dtype).to(tl.float32)
        if has_acc:
            r = (tl.load(a_ptr + offsets, mask=ok, other=0.0).to(tl.float32) + r).to(dtype).to(tl.float32)
        if has_scale:
            r = (r * scale).to(dtype).to(tl.float32)
        if has_tanh:
            e = tl.exp(-2.0 * tl.abs(r))
            t = (1.0 - e) / (1.0 + e)
            r = (tl.where(r < 0, -t, t)).to(dtype).to(tl.float32)
        if write_plain:
            tl.store(y_ptr + offsets, r.to(dtype), mask=ok)
        if write_silu:
            tl.store(s_ptr + offsets, (r / (1.0 + tl.exp(-r))).to(dtype), mask=ok)

    return kernel

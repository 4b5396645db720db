"""Fused kernels (acestep_core.kernels): the reference path is upstream's op sequence; the Triton path (GPU
only) agrees with it to one rounding of the activation dtype."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from acestep_core.kernels import silu_depthwise_glu, silu_depthwise_glu_reference


def _upstream(u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Upstream GLUMBConv middle on [B, C, T]: silu -> depthwise conv -> chunk -> h * silu(gate)."""
    h = F.conv1d(F.silu(u.transpose(1, 2)), weight, bias, padding=1, groups=weight.shape[0])
    h, gate = torch.chunk(h, 2, dim=1)
    return (h * F.silu(gate)).transpose(1, 2)


def _inputs(batch: int, frames: int, hidden: int, dtype: torch.dtype, device: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, frames, 2 * hidden, generator=gen) * 2
    weight = torch.randn(2 * hidden, 1, 3, generator=gen) * 0.5
    bias = torch.randn(2 * hidden, generator=gen) * 0.1
    return (t.to(device=device, dtype=dtype) for t in (u, weight, bias))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_is_upstream_op_sequence(dtype: torch.dtype) -> None:
    u, weight, bias = _inputs(2, 13, 24, dtype, "cpu", seed=0)
    out = silu_depthwise_glu_reference(u, weight, bias)
    assert out.is_contiguous() and out.shape == (2, 13, 24)
    torch.testing.assert_close(out, _upstream(u, weight, bias), rtol=0, atol=0)
    torch.testing.assert_close(silu_depthwise_glu(u, weight, bias), out, rtol=0, atol=0)  # CPU: reference


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("dtype", "frames", "hidden"), [(torch.bfloat16, 2583, 6400), (torch.bfloat16, 37, 200),
                                                         (torch.float32, 646, 300)])
def test_triton_matches_reference(dtype: torch.dtype, frames: int, hidden: int) -> None:
    u, weight, bias = _inputs(2, frames, hidden, dtype, "cuda", seed=1)
    fused = silu_depthwise_glu(u, weight, bias)
    reference = silu_depthwise_glu_reference(u, weight, bias)
    ulp = torch.finfo(dtype).eps
    scale = reference.abs().clamp_min(1.0)
    error = float(((fused.float() - reference.float()).abs() / scale).max())
    if dtype == torch.bfloat16:  # same rounding points: at most one bf16 rounding apart, nearly all identical
        assert error <= 2 * ulp
        assert float((fused != reference).float().mean()) < 0.01
    else:  # fp32: exp / fused multiply-adds differ from ATen's by a few ulps (3 taps, 2 SiLUs, 1 product)
        assert error <= 16 * ulp

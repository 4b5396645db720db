"""Exact float32 emulation of torch's CPU softmax kernel with a given vector width.

The goldens were recorded on a CPU whose torch float32 softmax runs 16-lane (AVX-512) code; the row
sums' order depends on the lane count, and the tiny random UMT5 checkpoint (unscaled T5 attention)
amplifies that last-bit difference past the module tolerance on 8-lane (AVX2) hosts. Parity tests
that run the UMT5 encoder therefore swap ``torch.softmax`` for :func:`reference_softmax` (16 lanes);
``tests/core/test_text_encoder.py::test_reference_softmax_is_torch_kernel`` proves the emulation is
torch's own kernel for the host's lane count. Production code is unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import torch

HOST_LANES = {"AVX2": 8, "AVX512": 16}  # float32 lanes of torch's CPU vector code per capability
REFERENCE_LANES = 16

def _fma(a: torch.Tensor, b: torch.Tensor | float, c: torch.Tensor | float) -> torch.Tensor:
    """float32 fused multiply-add: the product is exact in float64, one rounding to float32 after the add."""
    return (a.double() * torch.as_tensor(b, dtype=torch.float64) + torch.as_tensor(c, dtype=torch.float64)).float()


def _sleef_expf_u10(x: torch.Tensor) -> torch.Tensor:
    """SLEEF ``expf_u10`` (torch's vectorised float32 exp on x86) in float32 steps, FMA as in its AVX2/512 builds."""
    f32 = torch.float32
    q = torch.round(x * torch.tensor(1.442695040888963407359924681001892137426645954152985934135449406931, dtype=f32))
    s = _fma(q, -torch.tensor(0.693145751953125, dtype=f32), x)
    s = _fma(q, -torch.tensor(1.428606765330187045e-06, dtype=f32), s)
    u = torch.full_like(x, 0.000198527617612853646278381)
    for coef in (0.00139304355252534151077271, 0.00833336077630519866943359, 0.0416664853692054748535156,
                 0.166666671633720397949219, 0.5):
        u = _fma(u, s, torch.tensor(coef, dtype=f32))
    u = 1.0 + _fma(s * s, u, s)
    exponent = q.clamp(-300, 300).to(torch.int64)  # out-of-range rows are replaced below
    half = exponent >> 1
    u = u * torch.pow(2.0, half.double()).float() * torch.pow(2.0, (exponent - half).double()).float()
    u = torch.where(x < -104.0, torch.zeros_like(u), u)
    return torch.where(x > 100.0, torch.full_like(u, float("inf")), u)


def _lane_sum(values: torch.Tensor, lanes: int) -> torch.Tensor:
    """Row sums in the order of ATen's ``vec::reduce_all`` with ``lanes``-wide vectors. [..., n] -> [...]"""
    n = values.shape[-1]
    if n < lanes:  # short rows: plain left-to-right sum
        total = values[..., 0]
        for i in range(1, n):
            total = total + values[..., i]
        return total
    acc = values[..., :lanes].clone()
    full = n // lanes
    for chunk in range(1, full):
        acc = acc + values[..., chunk * lanes:(chunk + 1) * lanes]
    tail = n - full * lanes
    if tail:
        acc[..., :tail] = acc[..., :tail] + values[..., full * lanes:]
    width = lanes // 2
    while width >= 1:  # butterfly over the lanes
        acc = acc[..., :width] + acc[..., width:2 * width]
        width //= 2
    return acc[..., 0]


def reference_softmax(x: torch.Tensor, dim: int = -1, lanes: int = REFERENCE_LANES) -> torch.Tensor:
    """float32 softmax over the last dim exactly as torch's CPU kernel with ``lanes``-wide vectors."""
    assert dim in (-1, x.ndim - 1) and x.dtype == torch.float32
    shifted = x - x.amax(dim=-1, keepdim=True)
    exp = _sleef_expf_u10(shifted)
    return exp * (1.0 / _lane_sum(exp, lanes)[..., None])


@contextlib.contextmanager
def reference_softmax_kernel() -> Iterator[None]:
    """Within the block, ``torch.softmax`` is the recording machine's 16-lane kernel."""
    with mock.patch.object(torch, "softmax", reference_softmax):
        yield

"""8-bit AdamW: the dynamic codes, block-wise quantisation (every value goes to its nearest code entry), the
exact AdamW update for small tensors, a trajectory close to AdamW for large ones, and ~2 bytes of state per
parameter."""

from __future__ import annotations

import pytest
import torch

from acestep_core.training.adam8bit import (
    BLOCK_SIZE,
    MIN_8BIT_NUMEL,
    AdamW8bit,
    dequantize_blockwise,
    dynamic_code,
    quantize_blockwise,
)


@pytest.mark.parametrize("signed", [True, False])
def test_codes_are_256_sorted_distinct_values_spanning_the_block_range(signed: bool) -> None:
    code = dynamic_code(signed)
    assert code.numel() == 256 and torch.all(code[1:] > code[:-1])
    assert code.max() == 1.0 and (code == 0).sum() == 1
    assert (code.min() < -0.99) if signed else (code.min() == 0.0)
    positive = code[code > 0]
    assert positive.min() < 1e-6  # small moments keep a non-zero code


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("signed", [True, False])
def test_every_value_goes_to_its_nearest_code_entry(seed: int, signed: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    numel = int(torch.randint(1, 5 * BLOCK_SIZE, (1,), generator=gen))  # also sizes that are no block multiple
    x = torch.randn(numel, generator=gen) * torch.logspace(-8, 2, numel)[torch.randperm(numel, generator=gen)]
    x = x if signed else x.abs()
    index, absmax = quantize_blockwise(x, signed)
    assert index.dtype == torch.uint8 and absmax.numel() == -(-numel // BLOCK_SIZE)
    got = dequantize_blockwise(index, absmax, signed, x)
    code = dynamic_code(signed).double()
    scale = absmax.double().repeat_interleave(BLOCK_SIZE)[:numel]
    best = ((x.double() / scale)[:, None] - code[None, :]).abs().min(dim=1).values * scale
    float32_rounding = 2e-7 * scale  # x / absmax and code * absmax are computed in float32
    assert torch.all((got.double() - x.double()).abs() <= best + float32_rounding)
    blocks = torch.nn.functional.pad(x, (0, (-numel) % BLOCK_SIZE)).view(-1, BLOCK_SIZE)
    torch.testing.assert_close(absmax, blocks.abs().amax(dim=1), rtol=0, atol=0)


def test_small_tensors_take_the_exact_adamw_update() -> None:
    gen = torch.Generator().manual_seed(0)
    start, target = torch.randn(40, 50, generator=gen), torch.randn(40, 50, generator=gen)
    assert start.numel() < MIN_8BIT_NUMEL
    ours, ref = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    settings = {"lr": 1e-2, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 1e-2}
    optimizers = [AdamW8bit([ours], **settings), torch.optim.AdamW([ref], foreach=False, **settings)]
    for _ in range(20):
        for param, optimizer in zip((ours, ref), optimizers, strict=True):
            optimizer.zero_grad()
            ((param - target) ** 2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_large_tensors_follow_adamw_closely_with_two_bytes_of_state() -> None:
    gen = torch.Generator().manual_seed(1)
    start, target = torch.randn(256, 192, generator=gen), torch.randn(256, 192, generator=gen)
    ours, ref = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    settings = {"lr": 1e-2, "betas": (0.8, 0.9), "eps": 1e-8, "weight_decay": 1e-2}
    optimizers = [AdamW8bit([ours], **settings), torch.optim.AdamW([ref], **settings)]
    for _ in range(100):
        for param, optimizer in zip((ours, ref), optimizers, strict=True):
            optimizer.zero_grad()
            ((param - target) ** 2).mean().backward()
            optimizer.step()
    moved = (ref - start).norm()
    assert (ours - ref).norm() < 0.05 * moved  # within 5 % of how far AdamW moved the weights
    state = optimizers[0].state[ours]
    state_bytes = sum(v.numel() * v.element_size() for k, v in state.items() if k != "step")
    assert state_bytes <= 2.05 * ours.numel()  # vs 8 bytes per parameter for AdamW

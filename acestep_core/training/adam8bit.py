"""8-bit AdamW: the AdamW update with both moments stored in 8 bits (block-wise dynamic quantisation).

The optimiser states of AdamW take 8 bytes per trained parameter (two fp32 moments); here they take ~2 (one
byte each plus a float32 scale per block of :data:`BLOCK_SIZE` values). That matters for full fine-tuning (3.3 B
parameters: 26 GiB of moments in fp32, 6.6 GiB here); for a LoRA it is a small saving.

The idea is bitsandbytes' (Dettmers et al., "8-bit Optimizers via Block-wise Quantization", 2022): every block of
a moment is scaled by its absolute maximum and each value is stored as the index of the nearest entry of a
256-entry *dynamic* code whose entries are spaced logarithmically (decades 1e-6 .. 1 with more linear steps in the
larger decades), so small values keep their relative precision. The first moment uses a signed code, the second
(non-negative) an unsigned one with twice the resolution. Tensors with fewer than :data:`MIN_8BIT_NUMEL` values
keep fp32 moments. This is our own implementation of that scheme in plain PyTorch (no CUDA extension): each step
dequantises one parameter's moments, applies the exact AdamW update of :class:`torch.optim.AdamW` in fp32
(decoupled weight decay, bias corrections), and quantises them again.

State per parameter (the keys the training state stores): ``step`` and either ``exp_avg`` / ``exp_avg_sq``
(fp32, small tensors) or ``exp_avg_q`` (uint8) + ``exp_avg_absmax`` (fp32 per block) and ``exp_avg_sq_q`` +
``exp_avg_sq_absmax``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import Any

import torch

from .distributed import local_tensor

__all__ = ["BLOCK_SIZE", "MIN_8BIT_NUMEL", "AdamW8bit", "dequantize_blockwise", "dynamic_code",
           "quantize_blockwise"]

BLOCK_SIZE = 256
MIN_8BIT_NUMEL = 4096
_DECADES = 7  # code entries span 1e-6 .. 1 of the block's absolute maximum


@functools.cache
def _code_cpu(signed: bool) -> torch.Tensor:
    values: list[float] = [0.0, 1.0]
    for decade in range(_DECADES):
        steps = 2 ** decade if signed else 2 ** (decade + 1)
        edges = torch.linspace(0.1, 1.0, steps + 1, dtype=torch.float64)
        mids = ((edges[:-1] + edges[1:]) / 2 * 10.0 ** (decade - (_DECADES - 1))).tolist()
        values += mids + ([-v for v in mids] if signed else [])
    code = torch.tensor(sorted(values), dtype=torch.float32)
    assert code.numel() == 256, code.numel()
    return code


def dynamic_code(signed: bool, device: torch.device | str = "cpu") -> torch.Tensor:
    """The 256 sorted code values in [-1, 1] (signed) or [0, 1] (unsigned)."""
    return _code_cpu(signed).to(device)


@functools.cache
def _midpoints_cpu(signed: bool) -> torch.Tensor:
    code = _code_cpu(signed)
    return (code[1:] + code[:-1]) / 2


def quantize_blockwise(x: torch.Tensor, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (any shape, float) -> (uint8 indices [numel], float32 absmax per block [ceil(numel / BLOCK_SIZE)])."""
    flat = x.detach().reshape(-1).float()
    pad = (-flat.numel()) % BLOCK_SIZE
    blocks = torch.nn.functional.pad(flat, (0, pad)).view(-1, BLOCK_SIZE)
    absmax = blocks.abs().amax(dim=1)
    scaled = blocks / absmax.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    index = torch.bucketize(scaled, _midpoints_cpu(signed).to(x.device))
    return index.reshape(-1)[: flat.numel()].to(torch.uint8), absmax


def dequantize_blockwise(index: torch.Tensor, absmax: torch.Tensor, signed: bool, like: torch.Tensor
                         ) -> torch.Tensor:
    """Inverse of :func:`quantize_blockwise`: float32 values shaped like ``like``."""
    values = dynamic_code(signed, index.device)[index.long()]
    pad = (-values.numel()) % BLOCK_SIZE
    blocks = torch.nn.functional.pad(values, (0, pad)).view(-1, BLOCK_SIZE) * absmax[:, None]
    return blocks.reshape(-1)[: like.numel()].view(like.shape)


class AdamW8bit(torch.optim.Optimizer):
    """AdamW (same arguments and update as :class:`torch.optim.AdamW`) with 8-bit moments."""

    LOCAL_STATE = True  # state tensors are plain local tensors, also for FSDP2 (DTensor) parameters

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        if not lr > 0 or not eps >= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"AdamW8bit: invalid lr {lr}, eps {eps} or betas {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self._update(param, group)
        return loss

    def _update(self, param: torch.Tensor, group: dict[str, Any]) -> None:
        assert param.grad is not None
        local, grad = local_tensor(param), local_tensor(param.grad).float()  # FSDP2 shards update locally
        state = self.state[param]
        small = local.numel() < MIN_8BIT_NUMEL
        if not state:
            state["step"] = torch.tensor(0.0)
            if small:
                state["exp_avg"] = torch.zeros_like(local, dtype=torch.float32)
                state["exp_avg_sq"] = torch.zeros_like(local, dtype=torch.float32)
            else:
                zeros = torch.zeros_like(local, dtype=torch.float32)
                state["exp_avg_q"], state["exp_avg_absmax"] = quantize_blockwise(zeros, True)
                state["exp_avg_sq_q"], state["exp_avg_sq_absmax"] = quantize_blockwise(zeros, False)
        if small:
            avg, avg_sq = state["exp_avg"], state["exp_avg_sq"]
        else:
            avg = dequantize_blockwise(state["exp_avg_q"], state["exp_avg_absmax"], True, local)
            avg_sq = dequantize_blockwise(state["exp_avg_sq_q"], state["exp_avg_sq_absmax"], False, local)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = float(state["step"])
        master = local.float()
        master.mul_(1.0 - group["lr"] * group["weight_decay"])
        avg.lerp_(grad, 1.0 - beta1)
        avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        bias1, bias2 = 1.0 - beta1 ** step, 1.0 - beta2 ** step
        denom = (avg_sq.sqrt() / math.sqrt(bias2)).add_(group["eps"])
        master.addcdiv_(avg, denom, value=-group["lr"] / bias1)
        local.copy_(master)
        if not small:
            state["exp_avg_q"], state["exp_avg_absmax"] = quantize_blockwise(avg, True)
            state["exp_avg_sq_q"], state["exp_avg_sq_absmax"] = quantize_blockwise(avg_sq, False)


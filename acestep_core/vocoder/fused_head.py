"""The HiFi-GAN head of the vocoder on CUDA: channels-last activations and fused convolutions.

Same layers, weights and rounding points as :meth:`acestep_core.vocoder.model.HiFiGANGenerator.forward`, run as
``[B, L, C]`` tensors through :func:`acestep_core.kernels.conv1d_nlc`:

* every residual-block convolution is one kernel: the SiLU that follows it, the residual add, the running sum
  over the stage's residual blocks and their mean are its epilogue, and it stores the SiLU of its output when
  that is the only way the next layer reads it (``conv1`` outputs, stage outputs);
* the transposed convolutions stay on cuDNN (channels-last), followed by one SiLU pass per stage.

Upstream (and the plain path) run ~470 convolutions as cuDNN NCHW kernels with layout transposes around each,
plus a separate pass for every bias add, SiLU and residual add: most of the decode time of a long song.
The fused path differs from the plain one only in the summation order inside each convolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F

from ..kernels.conv1d_nlc import Epilogue, conv1d_nlc, use_triton

if TYPE_CHECKING:
    from .blocks import ResBlock1, WeightNormConv1d, WeightNormConvTranspose1d
    from .model import HiFiGANGenerator

SILU_ONLY = Epilogue(write_plain=False, write_silu=True)
PLAIN_AND_SILU = Epilogue(write_plain=True, write_silu=True)


def fused_head_supported(x: torch.Tensor) -> bool:
    """Whether :func:`hifigan_forward_fused` runs for ``x`` (CUDA bf16/fp16 with Triton)."""
    return use_triton(x)


def _conv(conv: WeightNormConv1d, x: torch.Tensor, epilogue: Epilogue, residual: torch.Tensor | None = None,
          acc: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    weight, bias = conv.effective_weight(x)
    if conv.padding != conv.dilation * (weight.shape[-1] - 1) // 2:
        raise ValueError(f"fused vocoder head: conv with padding {conv.padding} is not 'same' padding")
    return conv1d_nlc(x, weight, bias, conv.dilation, epilogue, residual, acc)


def _silu_of(conv: WeightNormConv1d, x: torch.Tensor) -> torch.Tensor:
    """SiLU of the convolution (the only way the next layer reads it)."""
    _, silu = _conv(conv, x, SILU_ONLY)
    assert silu is not None
    return silu


def _conv_transpose(up: WeightNormConvTranspose1d, s: torch.Tensor) -> torch.Tensor:
    """``[B, L, C_in]`` -> ``[B, L·stride, C_out]`` via cuDNN's channels-last 2-D transposed convolution."""
    weight, bias = up.effective_weight(s)  # [C_in, C_out, K]
    x4 = s.transpose(1, 2).unsqueeze(2)  # [B, C_in, 1, L]: a channels-last view, no copy
    w4 = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    y = F.conv_transpose2d(x4, w4, bias, stride=(1, up.stride), padding=(0, up.padding))
    return y.squeeze(2).transpose(1, 2).contiguous()


def _stage(blocks: list[ResBlock1], x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Mean of the residual blocks on ``x`` (``s`` = SiLU(x)); returns SiLU of the mean."""
    count, acc = len(blocks), None
    for index, block in enumerate(blocks):
        y, sy = x, s
        pairs = list(zip(cast("list[WeightNormConv1d]", block.convs1), cast("list[WeightNormConv1d]", block.convs2),
                         strict=True))
        for depth, (conv1, conv2) in enumerate(pairs):
            t = _silu_of(conv1, sy)
            if depth < len(pairs) - 1:
                plain, silu = _conv(conv2, t, PLAIN_AND_SILU, residual=y)
                assert plain is not None and silu is not None
                y, sy = plain, silu
                continue
            last = index == count - 1
            epilogue = Epilogue(scale=1.0 / count if last else 1.0, write_plain=not last, write_silu=last)
            acc, out = _conv(conv2, t, epilogue, residual=y, acc=acc)
            if last:
                assert out is not None
                return out
    raise ValueError("fused vocoder head: a stage needs at least one residual block with one dilation")


def hifigan_forward_fused(head: HiFiGANGenerator, x: torch.Tensor) -> torch.Tensor:
    """``[B, num_mels, F]`` -> ``[B, 1, F·prod(upsample_rates)]``, the fused equivalent of ``head(x)``."""
    count = head.num_kernels
    s = _silu_of(cast("WeightNormConv1d", head.conv_pre), x.transpose(1, 2))
    for i, up in enumerate(cast("list[WeightNormConvTranspose1d]", head.ups)):
        x = _conv_transpose(up, s)
        s = _stage(cast("list[ResBlock1]", list(head.resblocks[i * count:(i + 1) * count])), x, F.silu(x))
    out, _ = _conv(cast("WeightNormConv1d", head.conv_post), s, Epilogue(tanh=True))
    assert out is not None
    return out.transpose(1, 2)  # [B, 1, N]: C = 1, already contiguous

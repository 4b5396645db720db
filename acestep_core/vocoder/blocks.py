"""Layers of the ACE-Step music vocoder: ConvNeXt blocks, weight-normalised convs, HiFi-GAN residual block.

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_vocoder.py (Apache-2.0; itself derived from
Fish-Audio's "universal music vocoder", ConvNeXt (Liu et al. 2022) and HiFi-GAN (Kong et al. 2020)).

Attribute names are checkpoint keys (``dwconv``, ``pwconv1``, ``gamma``, ``weight_g``/``weight_v``,
``convs1``/``convs2``) and keep the upstream names.

Deliberate divergences:
* Weight norm is not a ``torch.nn.utils`` hook/parametrization: ``weight_g`` and ``weight_v`` are plain
  Parameters and the effective weight ``g · v / ‖v‖`` (norm over all dims but 0) is formed in ``forward``,
  so the modules build on the meta device and load the legacy ``weight_g``/``weight_v`` keys unchanged.
* No DropPath (inference only; ``drop_path_rate`` is 0 in every ACE-Step config).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import Ops, cast_like

LAYER_NORM_EPS = 1e-6  # upstream ConvNeXt LayerNorm
LAYER_SCALE_INIT = 1e-6  # upstream ConvNeXtBlock layer_scale_init_value
CONVNEXT_MLP_RATIO = 4


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel dim of ``[B, C, L]`` (upstream ``LayerNorm(data_format="channels_first")``).

    Computed explicitly as ``(x - mean) / sqrt(var + eps)`` (biased variance) like upstream.
    """

    def __init__(self, channels: int, eps: float = LAYER_NORM_EPS, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(channels, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return cast_like(self.weight, x)[:, None] * x + cast_like(self.bias, x)[:, None]


class ConvNeXtBlock(nn.Module):
    """``x + gamma · pwconv2(GELU(pwconv1(LayerNorm(dwconv(x)))))`` on ``[B, C, L]`` (1-D ConvNeXt block)."""

    def __init__(self, dim: int, kernel_size: int = 7, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        hidden = CONVNEXT_MLP_RATIO * dim
        self.dwconv = ops.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim,
                                 dtype=dtype, device=device)
        self.norm = ops.LayerNorm(dim, eps=LAYER_NORM_EPS, dtype=dtype, device=device)
        self.pwconv1 = ops.Linear(dim, hidden, dtype=dtype, device=device)
        self.pwconv2 = ops.Linear(hidden, dim, dtype=dtype, device=device)
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 1)  # [B, L, C]
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h))))
        h = (cast_like(self.gamma, h) * h).permute(0, 2, 1)  # [B, C, L]
        return x + h


def _weight_norm(weight_v: torch.Tensor, weight_g: torch.Tensor) -> torch.Tensor:
    """``g · v / ‖v‖`` with the L2 norm over every dim except 0 (legacy ``weight_norm(dim=0)``).

    ``torch._weight_norm`` is the kernel behind both ``torch.nn.utils.weight_norm`` (used upstream) and
    ``parametrizations.weight_norm``; using it keeps the waveform bit-identical to the reference on the same
    machine (the explicit ``v * (g / vector_norm(v))`` rounds differently: ~4e-5 on the tiny vocoder output).
    """
    return torch._weight_norm(weight_v, weight_g, 0)


class _WeightNormConvBase(nn.Module):
    """Holds ``weight_v`` (full kernel), ``weight_g`` ([dim0, 1, 1]) and ``bias`` as bare Parameters."""

    def __init__(self, kernel_shape: tuple[int, int, int], out_channels: int, *, dtype: torch.dtype | None,
                 device: torch.device | str | None) -> None:
        super().__init__()
        weight_v = torch.empty(kernel_shape, dtype=dtype, device=device)
        if not weight_v.is_meta:
            nn.init.normal_(weight_v, 0.0, 0.01)  # upstream HiFi-GAN init_weights; replaced on load
        self.weight_v = nn.Parameter(weight_v)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(weight_v.detach().flatten(1), dim=1)
                                     .view(-1, 1, 1))  # g = ‖v‖ so the initial weight equals v
        self.bias = nn.Parameter(torch.zeros(out_channels, dtype=dtype, device=device))

    def effective_weight(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias in the dtype/device of ``x``."""
        return _weight_norm(cast_like(self.weight_v, x), cast_like(self.weight_g, x)), cast_like(self.bias, x)


class WeightNormConv1d(_WeightNormConvBase):
    """Weight-normalised ``Conv1d`` (stride 1); ``weight_v`` is ``[out, in, k]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1,
                 padding: int = 0, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__((out_channels, in_channels, kernel_size), out_channels, dtype=dtype, device=device)
        self.dilation, self.padding = dilation, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.effective_weight(x)
        return F.conv1d(x, weight, bias, padding=self.padding, dilation=self.dilation)


class WeightNormConvTranspose1d(_WeightNormConvBase):
    """Weight-normalised ``ConvTranspose1d``; ``weight_v`` is ``[in, out, k]`` so the norm is per *input* channel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__((in_channels, out_channels, kernel_size), out_channels, dtype=dtype, device=device)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.effective_weight(x)
        return F.conv_transpose1d(x, weight, bias, stride=self.stride, padding=self.padding)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 conv: ``(k·d - d) / 2``."""
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1 with SiLU: for each dilation d, ``x += c2(SiLU(c1_d(SiLU(x))))``.

    ``convs1`` are dilated by ``dilations``; ``convs2`` are undilated; all keep the length.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d),
                             dtype=dtype, device=device) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            WeightNormConv1d(channels, channels, kernel_size, padding=same_padding(kernel_size),
                             dtype=dtype, device=device) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            x = conv2(F.silu(conv1(F.silu(x)))) + x
        return x

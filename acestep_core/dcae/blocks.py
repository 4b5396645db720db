"""Building blocks of the Music-DCAE (a deep-compression autoencoder on stereo log-mel "images").

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_dcae_pipeline.py (Apache-2.0), which
instantiates diffusers' ``AutoencoderDC`` (diffusers 0.33.1, Apache-2.0: ``models/autoencoders/autoencoder_dc.py``,
``SanaMultiscaleLinearAttention`` in ``models/attention_processor.py``, ``GLUMBConv`` in
``models/transformers/sana_transformer.py`` and ``RMSNorm`` in ``models/normalization.py``).
DC-AE: Chen et al., "Deep Compression Autoencoder for Efficient High-Resolution Diffusion Models", 2024.

Feature maps are channels-first ``[B, C, H, W]`` with H = mel bins (downsampled) and W = time frames.
Attribute names map to checkpoint keys and keep the diffusers names (``conv1``, ``to_qkv_multiscale``,
``conv_inverted`` ...): they are an external contract.

Deliberate divergences from diffusers:
* Only what the ACE-Step config uses is built: RMS norms with bias, SiLU, ``downsample_block_type="Conv"``
  (stride-2 conv + pixel-unshuffle shortcut) and ``upsample_block_type="interpolate"`` (nearest x2 + conv,
  pixel-shuffle shortcut); no batch-norm / pixel-shuffle-conv variants.
* No attention-processor indirection: linear and quadratic ReLU attention are plain functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import Ops, cast_like

RMS_EPS = 1e-5  # diffusers get_normalization / GLUMBConv / Decoder.norm_out
ATTENTION_EPS = 1e-15  # SanaMultiscaleLinearAttention default
GLU_EXPAND_RATIO = 4  # GLUMBConv default expand_ratio


class ChannelRMSNorm(nn.Module):
    """RMS normalisation over the channel dim of ``[B, C, H, W]`` with a learned weight **and bias**.

    Statistics are computed in float32 on the channels-last view (as diffusers' ``RMSNorm`` applied after
    ``movedim(1, -1)``); the result is cast back to the input dtype before the affine part.
    ``weight``/``bias`` are checkpoint keys.
    """

    def __init__(self, channels: int, eps: float = RMS_EPS, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.zeros(channels, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.movedim(1, -1)  # [B, H, W, C]
        variance = h.to(torch.float32).pow(2).mean(-1, keepdim=True)
        h = (h * torch.rsqrt(variance + self.eps)).to(x.dtype)
        h = h * cast_like(self.weight, x) + cast_like(self.bias, x)
        return h.movedim(-1, 1)


class ResBlock(nn.Module):
    """``x + RMSNorm(conv2(SiLU(conv1(x))))`` with 3x3 convs (conv2 without bias)."""

    def __init__(self, channels: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.conv1 = ops.Conv2d(channels, channels, 3, 1, 1, dtype=dtype, device=device)
        self.conv2 = ops.Conv2d(channels, channels, 3, 1, 1, bias=False, dtype=dtype, device=device)
        self.norm = ChannelRMSNorm(channels, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv2(F.silu(self.conv1(x)))) + x


class DownBlock(nn.Module):
    """Halve H and W: stride-2 3x3 conv plus a space-to-channel shortcut averaged over channel groups.

    The shortcut ``pixel_unshuffle(x, 2)`` has ``4 * in_channels`` channels; consecutive groups of
    ``4 * in_channels / out_channels`` of them are averaged. H and W must be even.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.group_size = in_channels * 4 // out_channels
        self.conv = ops.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.pixel_unshuffle(x, 2).unflatten(1, (-1, self.group_size)).mean(dim=2)  # [B, Cout, H/2, W/2]
        return self.conv(x) + shortcut


class UpBlock(nn.Module):
    """Double H and W: nearest upsampling + 3x3 conv, plus a channel-to-space shortcut.

    The shortcut repeats every channel ``4 * out_channels / in_channels`` times and pixel-shuffles by 2.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.repeats = out_channels * 4 // in_channels
        self.conv = ops.Conv2d(in_channels, out_channels, 3, 1, 1, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        upsampled = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))  # [B, Cout, 2H, 2W]
        shortcut = F.pixel_shuffle(x.repeat_interleave(self.repeats, dim=1), 2)
        return upsampled + shortcut


class MultiscaleProjection(nn.Module):
    """Depthwise ``k x k`` conv then a per-head grouped 1x1 conv over the concatenated q/k/v channels."""

    def __init__(self, channels: int, num_heads: int, kernel_size: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.proj_in = ops.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels,
                                  bias=False, dtype=dtype, device=device)
        self.proj_out = ops.Conv2d(channels, channels, 1, 1, 0, groups=3 * num_heads, bias=False,
                                   dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.proj_in(x))


def relu_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """O(N) ReLU attention: ``out = (v kᵀ) q / (1ᵀ kᵀ q)`` per head; q, k, v are ``[B, heads, d, N]``.

    The normaliser is obtained by appending a row of ones to ``v`` (as diffusers does), the division is in fp32.
    """
    v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1.0)  # [B, heads, d + 1, N]
    out = torch.matmul(torch.matmul(v, k.transpose(-1, -2)), q).to(torch.float32)  # [B, heads, d + 1, N]
    return out[:, :, :-1] / (out[:, :, -1:] + eps)


def relu_quadratic_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """O(N²) form of the same attention (used by diffusers when H·W <= head_dim); shapes as above."""
    scores = torch.matmul(k.transpose(-1, -2), q).to(torch.float32)  # [B, heads, N_k, N_q]
    scores = scores / (scores.sum(dim=2, keepdim=True) + eps)
    return torch.matmul(v, scores.to(v.dtype))


class SanaMultiscaleLinearAttention(nn.Module):
    """Multi-scale ReLU linear attention of Sana / DC-AE (residual, RMS-normalised output).

    Args:
        channels: input = output channels C.
        head_dim: channels per head d; there are ``C // d`` heads.
        kernel_sizes: one extra "scale" (depthwise conv branch on q/k/v) per kernel size.

    The concatenated ``[q | k | v | branches]`` channels are regrouped into ``3 * d`` **consecutive**
    channels per head (the layout the converted weights expect). Linear attention (computed in fp32)
    is used when H·W > d, quadratic attention otherwise, as in diffusers.
    """

    def __init__(self, channels: int, head_dim: int, kernel_sizes: tuple[int, ...], *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.head_dim = head_dim
        num_heads = channels // head_dim
        inner = num_heads * head_dim
        self.to_q = ops.Linear(channels, inner, bias=False, dtype=dtype, device=device)
        self.to_k = ops.Linear(channels, inner, bias=False, dtype=dtype, device=device)
        self.to_v = ops.Linear(channels, inner, bias=False, dtype=dtype, device=device)
        self.to_qkv_multiscale = nn.ModuleList(
            MultiscaleProjection(3 * inner, num_heads, k, dtype=dtype, device=device, ops=ops) for k in kernel_sizes
        )
        self.to_out = ops.Linear(inner * (1 + len(kernel_sizes)), channels, bias=False, dtype=dtype, device=device)
        self.norm_out = ChannelRMSNorm(channels, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        h = x.movedim(1, -1)  # [B, H, W, C]
        qkv = torch.cat([self.to_q(h), self.to_k(h), self.to_v(h)], dim=3).movedim(-1, 1)  # [B, 3*inner, H, W]
        qkv = torch.cat([qkv, *(branch(qkv) for branch in self.to_qkv_multiscale)], dim=1)
        use_linear = height * width > self.head_dim
        if use_linear:
            qkv = qkv.to(torch.float32)
        qkv = qkv.reshape(batch, -1, 3 * self.head_dim, height * width)  # [B, heads*(1+scales), 3d, N]
        q, k, v = qkv.chunk(3, dim=2)
        q, k = F.relu(q), F.relu(k)
        if use_linear:
            out = relu_linear_attention(q, k, v, ATTENTION_EPS).to(x.dtype)
        else:
            out = relu_quadratic_attention(q, k, v, ATTENTION_EPS)
        out = out.reshape(batch, -1, height, width)
        out = self.to_out(out.movedim(1, -1)).movedim(-1, 1)  # [B, C, H, W]
        return self.norm_out(out) + x


class GLUMBConv(nn.Module):
    """Gated inverted-bottleneck conv (Sana): 1x1 expand -> SiLU -> depthwise 3x3 -> GLU(SiLU) -> 1x1 -> RMSNorm.

    Residual. ``conv_inverted`` expands C to ``2 * 4C`` (value and gate halves).
    """

    def __init__(self, channels: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        hidden = GLU_EXPAND_RATIO * channels
        self.conv_inverted = ops.Conv2d(channels, 2 * hidden, 1, 1, 0, dtype=dtype, device=device)
        self.conv_depth = ops.Conv2d(2 * hidden, 2 * hidden, 3, 1, 1, groups=2 * hidden, dtype=dtype, device=device)
        self.conv_point = ops.Conv2d(hidden, channels, 1, 1, 0, bias=False, dtype=dtype, device=device)
        self.norm = ChannelRMSNorm(channels, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_depth(F.silu(self.conv_inverted(x)))  # [B, 8C, H, W]
        value, gate = h.chunk(2, dim=1)
        h = self.conv_point(value * F.silu(gate))  # [B, C, H, W]
        return self.norm(h) + x


class EfficientViTBlock(nn.Module):
    """``attn`` (multi-scale linear attention) then ``conv_out`` (GLUMBConv), both residual."""

    def __init__(self, channels: int, head_dim: int, qkv_multiscales: tuple[int, ...], *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.attn = SanaMultiscaleLinearAttention(channels, head_dim, qkv_multiscales,
                                                  dtype=dtype, device=device, ops=ops)
        self.conv_out = GLUMBConv(channels, dtype=dtype, device=device, ops=ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.attn(x))


def build_block(block_type: str, channels: int, head_dim: int, qkv_multiscales: tuple[int, ...], *,
                dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                ops: Ops = nn) -> nn.Module:
    """One ``"ResBlock"`` or ``"EfficientViTBlock"`` (the two types ``DCAEConfig`` accepts)."""
    if block_type == "ResBlock":
        return ResBlock(channels, dtype=dtype, device=device, ops=ops)
    if block_type == "EfficientViTBlock":
        return EfficientViTBlock(channels, head_dim, qkv_multiscales, dtype=dtype, device=device, ops=ops)
    raise ValueError(f"unsupported DCAE block type {block_type!r}; expected 'ResBlock' or 'EfficientViTBlock'")

"""Building blocks of the ACE-Step DiT: timestep embedding, patch embedding, Sana block, final layer.

Ported from ace-step/ACE-Step@d612523 acestep/models/attention.py (``LinearTransformerBlock``,
``GLUMBConv``, ``ConvLayer``, ``t2i_modulate``) and acestep/models/ace_step_transformer.py (``PatchEmbed``,
``T2IFinalLayer``), plus the diffusers 0.33 pieces they use (``Timesteps``, ``TimestepEmbedding``,
``RMSNorm``) (Apache-2.0).

Deliberate divergences:
- Inference only: no dropout modules, no gradient checkpointing, no ControlNet input.
- The parameter-free norms (``norm1``, ``norm2``, ``final_layer.norm_final``) are functions, not modules.
- ``scale_shift_table`` parameters are created with ``torch.empty`` (then initialised like upstream) and
  read through :func:`acestep_core.ops.cast_like`, so they follow the activation dtype/device.
- ERG is a ``query_scale`` argument of :meth:`LinearTransformerBlock.forward` instead of a forward hook.
- ``GLUMBConv`` runs channels-last: its 1x1 convs are matrix products on ``[B, T, C]`` (same weights and keys;
  upstream's ``[B, C, T]`` layout made the GPU pick slow unaligned kernels for odd frame counts).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..kernels import silu_depthwise_glu
from ..ops import Ops, cast_like
from .attention import CrossAttention, LinearSelfAttention, QueryScale
from .rope import RopeTables

RMS_NORM_EPS = 1e-6  # upstream RMSNorm(..., eps=1e-6) in the blocks and the final layer
TIMESTEP_CHANNELS = 256  # diffusers Timesteps(num_channels=256) in upstream ACEStepTransformer2DModel
TIMESTEP_MAX_PERIOD = 10000.0  # diffusers get_timestep_embedding default
PATCH_HIDDEN_PER_CHANNEL = 256  # PatchEmbed widens in_channels * 256 before the 1x1 projection
PATCH_GROUP_NORM_GROUPS = 32
PATCH_GROUP_NORM_EPS = 1e-6


def rms_norm(x: torch.Tensor, eps: float = RMS_NORM_EPS) -> torch.Tensor:
    """Parameter-free RMS normalisation over the last axis, computed in fp32 (diffusers ``RMSNorm``), one
    fused kernel where torch has one."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN modulation ``x * (1 + scale) + shift`` (upstream ``t2i_modulate``, same op order: a fused
    multiply-add rounds differently, which measurably moved fp32 results through the 24 blocks)."""
    return x * (1 + scale) + shift


def timestep_features(timestep: torch.Tensor, channels: int = TIMESTEP_CHANNELS) -> torch.Tensor:
    """Sinusoidal features ``[cos(t f), sin(t f)]`` of a [B] timestep, fp32 -> [B, channels].

    ``f_k = exp(-ln(10000) k / (channels/2))``; same op order as diffusers ``get_timestep_embedding`` with
    ``flip_sin_to_cos=True, downscale_freq_shift=0``.
    """
    half = channels // 2
    exponent = -math.log(TIMESTEP_MAX_PERIOD) * torch.arange(0, half, dtype=torch.float32, device=timestep.device)
    frequencies = torch.exp(exponent / half)  # [half]
    angles = timestep[:, None].float() * frequencies[None, :]  # [B, half]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # [B, channels]


class Timesteps(nn.Module):
    """Parameter-free module wrapper of :func:`timestep_features` (upstream attribute ``time_proj``)."""

    def __init__(self, channels: int = TIMESTEP_CHANNELS) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, timestep: torch.Tensor) -> torch.Tensor:
        return timestep_features(timestep, self.channels)


class TimestepEmbedding(nn.Module):
    """``linear_2(SiLU(linear_1(features)))`` (diffusers ``TimestepEmbedding``, checkpoint names kept)."""

    def __init__(self, in_channels: int, dim: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.linear_1 = ops.Linear(in_channels, dim, bias=True, dtype=dtype, device=device)
        self.linear_2 = ops.Linear(dim, dim, bias=True, dtype=dtype, device=device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(features)))


class PatchEmbed(nn.Module):
    """Latent [B, C, 16, T] -> tokens [B, T, D]: Conv2d (16x1 patches) -> GroupNorm -> 1x1 Conv2d.

    The 16 latent rows are folded into channels, so there is one token per latent frame.
    ``early_conv_layers`` is the checkpoint name.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: tuple[int, int], *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        hidden = in_channels * PATCH_HIDDEN_PER_CHANNEL
        self.early_conv_layers = nn.Sequential(
            ops.Conv2d(in_channels, hidden, kernel_size=patch_size, stride=patch_size, padding=0, bias=True,
                       dtype=dtype, device=device),
            ops.GroupNorm(PATCH_GROUP_NORM_GROUPS, hidden, eps=PATCH_GROUP_NORM_EPS, affine=True,
                          dtype=dtype, device=device),
            ops.Conv2d(hidden, dim, kernel_size=1, stride=1, padding=0, bias=True, dtype=dtype, device=device),
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        tokens = self.early_conv_layers(latents)  # [B, D, 1, T]
        return tokens.flatten(2).transpose(1, 2).contiguous()  # [B, T, D], channels-last in memory too


class _ConvLayer(nn.Module):
    """Holds one Conv1d under the checkpoint name ``conv`` (upstream ``ConvLayer`` without norm/act)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


_CHANNELS_LAST_CLASSES: dict[tuple[type, str], type] = {}


def _channels_last_conv1d(conv_cls: type, kind: str) -> type:
    """A subclass of ``conv_cls`` (``torch.nn.Conv1d`` or an injected ops' Conv1d) working on channels-last
    ``[B, T, C]`` activations:

    * ``kind="pointwise"`` (kernel 1): a matrix product over the channels, ``[B, T, C_in] -> [B, T, C_out]``;
    * ``kind="depthwise_glu"``: the GLUMBConv middle ``SiLU -> depthwise conv -> GLU(SiLU)``,
      ``[B, T, 2H] -> [B, T, H]`` (:func:`acestep_core.kernels.silu_depthwise_glu`, one fused kernel on CUDA).

    Only ``_conv_forward(input, weight, bias)`` is replaced; torch's and ComfyUI's Conv1d ``forward`` both
    route through it after their weight casting, and parameters / checkpoint keys stay the Conv1d's.
    """
    key = (conv_cls, kind)
    if key not in _CHANNELS_LAST_CLASSES:
        if kind == "pointwise":
            def conv_forward(self: nn.Conv1d, input: torch.Tensor, weight: torch.Tensor,
                             bias: torch.Tensor | None) -> torch.Tensor:
                return F.linear(input, weight[..., 0], bias)  # [B, T, C_in] -> [B, T, C_out]
        else:
            def conv_forward(self: nn.Conv1d, input: torch.Tensor, weight: torch.Tensor,
                             bias: torch.Tensor | None) -> torch.Tensor:
                return silu_depthwise_glu(input, weight, bias)
        name = "".join(part.title() for part in kind.split("_"))
        _CHANNELS_LAST_CLASSES[key] = type(f"ChannelsLast{name}{conv_cls.__name__}", (conv_cls,),
                                           {"_conv_forward": conv_forward, "__module__": __name__})
    return _CHANNELS_LAST_CLASSES[key]


class GLUMBConv(nn.Module):
    """Gated 1-D conv feed-forward of Sana: 1x1 expand -> SiLU -> depthwise k=3 -> GLU(SiLU) -> 1x1.

    Runs channels-last (``[B, T, C]`` throughout): the 1x1 convs are matrix products over the channels, so
    the matmul kernels see the model width as their leading dimension whatever the number of frames, and
    ``depth_conv`` applies SiLU, the depthwise conv and the gating in one step (see
    :func:`_channels_last_conv1d`).

    Args:
        dim: input/output width.
        hidden: gated hidden width (the expand conv produces ``2 * hidden`` channels).
    """

    def __init__(self, dim: int, hidden: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        pointwise, depthwise = (_channels_last_conv1d(ops.Conv1d, kind) for kind in ("pointwise", "depthwise_glu"))
        self.inverted_conv = _ConvLayer(pointwise(dim, 2 * hidden, 1, bias=True, dtype=dtype, device=device))
        self.depth_conv = _ConvLayer(depthwise(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=True,
                                               dtype=dtype, device=device))
        self.point_conv = _ConvLayer(pointwise(hidden, dim, 1, bias=False, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]; the depthwise conv mixes frames t-1, t, t+1 (zero padded)."""
        gated = self.depth_conv(self.inverted_conv(x))  # [B, T, 2 * hidden] -> [B, T, hidden]
        return self.point_conv(gated)  # [B, T, D]


class LinearTransformerBlock(nn.Module):
    """Sana block with shared AdaLN-single modulation, linear self-attention and cross-attention.

    ``h += gate_msa * attn(modulate(rms(h)))``; ``h += cross_attn(h, C)`` (no norm, no gate);
    ``h += gate_mlp * ff(modulate(rms(h)))``. Checkpoint names: ``attn``, ``cross_attn``, ``ff``,
    ``scale_shift_table`` (Xie et al. 2024, "SANA", arXiv:2410.10629; Chen et al. 2023, "PixArt-alpha").

    Args:
        dim: model width.
        heads: attention heads.
        head_dim: channels per head.
        mlp_ratio: GLUMBConv hidden width is ``int(dim * mlp_ratio)``.
        keep_unused: declare the cross-attention's unused checkpoint layers (see :class:`CrossAttention`).
    """

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: float, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn, keep_unused: bool = False) -> None:
        super().__init__()
        self.attn = LinearSelfAttention(dim, heads, head_dim, dtype=dtype, device=device, ops=ops)
        self.cross_attn = CrossAttention(dim, heads, head_dim, dtype=dtype, device=device, ops=ops,
                                         keep_unused=keep_unused)
        self.ff = GLUMBConv(dim, int(dim * mlp_ratio), dtype=dtype, device=device, ops=ops)
        self.scale_shift_table = nn.Parameter(torch.empty(6, dim, dtype=dtype, device=device))
        nn.init.normal_(self.scale_shift_table, std=dim**-0.5)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None,
                cross_bias: torch.Tensor, rope: RopeTables, context_rope: RopeTables, *,
                query_scale: QueryScale = 1.0) -> torch.Tensor:
        """``x`` [B, T, D], ``temb`` [B, 6D], ``context`` [B, S, D], frame ``mask`` [B, T] (``None`` = all
        valid), ``cross_bias`` from :func:`~acestep_core.nn.attention.cross_attention_bias` -> [B, T, D]."""
        table = cast_like(self.scale_shift_table, x)[None] + temb.reshape(x.shape[0], 6, -1)  # [B, 6, D]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = table.chunk(6, dim=1)  # [B, 1, D] each

        attn_in = modulate(rms_norm(x), shift_msa, scale_msa)
        x = torch.addcmul(x, gate_msa, self.attn(attn_in, mask, rope, query_scale=query_scale))
        x = x + self.cross_attn(x, context, cross_bias, rope, context_rope, query_scale=query_scale)
        ff_in = modulate(rms_norm(x), shift_mlp, scale_mlp)
        return torch.addcmul(x, gate_mlp, self.ff(ff_in))


class FinalLayer(nn.Module):
    """Sana/PixArt final layer: modulated RMSNorm + linear, then unpatchify to [B, C, 16, T].

    Modulated by the timestep embedding (not ``temb``): ``shift, scale = table + e``.
    Checkpoint names: ``linear``, ``scale_shift_table``.
    """

    def __init__(self, dim: int, patch_size: tuple[int, int], out_channels: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.linear = ops.Linear(dim, patch_size[0] * patch_size[1] * out_channels, bias=True,
                                 dtype=dtype, device=device)
        self.scale_shift_table = nn.Parameter(torch.empty(2, dim, dtype=dtype, device=device))
        nn.init.normal_(self.scale_shift_table, std=dim**-0.5)

    def forward(self, x: torch.Tensor, embedded_timestep: torch.Tensor, output_length: int) -> torch.Tensor:
        """``x`` [B, T, D], ``embedded_timestep`` [B, D] -> [B, C, 16, output_length] (zero pad or crop)."""
        table = cast_like(self.scale_shift_table, x)[None] + embedded_timestep[:, None]  # [B, 2, D]
        shift, scale = table.chunk(2, dim=1)  # [B, 1, D] each
        x = modulate(rms_norm(x), shift, scale)
        x = self.linear(x)  # [B, T, 16 * 1 * C]
        out = rearrange(x, "b w (p q c) -> b c p (w q)", p=self.patch_size[0], q=self.patch_size[1])
        frames = out.shape[-1]
        if output_length > frames:
            out = F.pad(out, (0, output_length - frames), mode="constant", value=0.0)
        elif output_length < frames:
            out = out[..., :output_length]
        return out.contiguous()

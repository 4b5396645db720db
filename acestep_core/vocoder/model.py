"""The ACE-Step music vocoder ``ADaMoSHiFiGANV1``: log-mel ``[B, 128, F]`` -> waveform ``[B, 1, 512·F]`` (44.1 kHz).

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_vocoder.py (Apache-2.0): a ConvNeXt encoder
(``backbone``) over mel frames followed by a HiFi-GAN generator (``head``) with SiLU activations and
weight-normalised convolutions; ``mel_transform`` is the matching log-mel front-end (:mod:`acestep_core.audio.mel`).
The vocoder is mono: ACE-Step runs it once per stereo channel.

Deliberate divergences:
* Only ``use_template=False`` (no ``noise_convs``) and a single ConvNeXt kernel size are supported — the
  released configuration; other values raise at construction.
* No DropPath, no ``remove_weight_norm`` (weight norm is computed in forward, see :mod:`.vocoder_blocks`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.mel import LogMelSpectrogram
from ..config import VocoderConfig
from ..errors import AceStepInputError
from ..ops import Ops
from .blocks import (
    ChannelsFirstLayerNorm,
    ConvNeXtBlock,
    ResBlock1,
    WeightNormConv1d,
    WeightNormConvTranspose1d,
    same_padding,
)
from .fused_head import fused_head_supported, hifigan_forward_fused

STEM_KERNEL_SIZE = 7  # upstream ConvNeXtEncoder stem (replicate padding)


class ConvNeXtEncoder(nn.Module):
    """1-D ConvNeXt over mel frames: ``[B, input_channels, F] -> [B, dims[-1], F]``.

    ``channel_layers[0]`` = [Conv1d k7 (replicate padding), LayerNorm_cf]; ``channel_layers[s]`` =
    [LayerNorm_cf, Conv1d 1x1] for s >= 1; each followed by ``stages[s]`` (``depths[s]`` ConvNeXt blocks);
    final ``norm``. Attribute names are checkpoint keys.
    """

    def __init__(self, cfg: VocoderConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        if len(cfg.kernel_sizes) != 1:
            raise ValueError(f"VocoderConfig.kernel_sizes must have one entry (ACE-Step: (7,)), got {cfg.kernel_sizes}")
        dims = cfg.dims
        kw: dict[str, Any] = {"dtype": dtype, "device": device}
        stem = nn.Sequential(
            ops.Conv1d(cfg.input_channels, dims[0], STEM_KERNEL_SIZE, padding=STEM_KERNEL_SIZE // 2,
                       padding_mode="replicate", **kw),
            ChannelsFirstLayerNorm(dims[0], **kw),
        )
        transitions = [nn.Sequential(ChannelsFirstLayerNorm(dims[i], **kw), ops.Conv1d(dims[i], dims[i + 1], 1, **kw))
                       for i in range(len(dims) - 1)]
        self.channel_layers = nn.ModuleList([stem, *transitions])
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim, cfg.kernel_sizes[0], ops=ops, **kw) for _ in range(depth)))
            for dim, depth in zip(dims, cfg.depths, strict=True)
        )
        self.norm = ChannelsFirstLayerNorm(dims[-1], **kw)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel
        for channel_layer, stage in zip(self.channel_layers, self.stages, strict=True):
            x = stage(channel_layer(x))
        return self.norm(x)


class HiFiGANGenerator(nn.Module):
    """HiFi-GAN generator: ``[B, num_mels, F] -> [B, 1, F·prod(upsample_rates)]`` in (-1, 1).

    ``conv_pre`` -> for each rate: SiLU, transposed conv (``ups[i]``), mean of the ``len(resblock_kernel_sizes)``
    residual blocks ``resblocks[i·K + j]`` -> SiLU -> ``conv_post`` -> tanh. Attribute names are checkpoint keys.
    """

    def __init__(self, cfg: VocoderConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        kw: dict[str, Any] = {"dtype": dtype, "device": device}
        base = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = WeightNormConv1d(cfg.num_mels, base, cfg.pre_conv_kernel_size,
                                         padding=same_padding(cfg.pre_conv_kernel_size), **kw)
        self.ups = nn.ModuleList(
            WeightNormConvTranspose1d(base // 2**i, base // 2 ** (i + 1), k, u, (k - u) // 2, **kw)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True))
        )
        self.resblocks = nn.ModuleList(
            ResBlock1(base // 2 ** (i + 1), k, tuple(d), **kw)
            for i in range(len(cfg.upsample_rates))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True)
        )
        last = base // 2 ** len(cfg.upsample_rates)
        self.conv_post = WeightNormConv1d(last, 1, cfg.post_conv_kernel_size,
                                          padding=same_padding(cfg.post_conv_kernel_size), **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fused_head_supported(x):  # CUDA bf16/fp16: same layers and rounding points, fused kernels
            return hifigan_forward_fused(self, x)
        x = self.conv_pre(x)  # [B, base, F]
        for i, up in enumerate(self.ups):
            x = up(F.silu(x))  # [B, base / 2^(i+1), F · rates[:i+1]]
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / self.num_kernels
        return torch.tanh(self.conv_post(F.silu(x)))  # [B, 1, N]


class Vocoder(nn.Module):
    """``ADaMoSHiFiGANV1``: mono log-mel (natural log, 44.1 kHz, hop 512) <-> waveform.

    Args:
        cfg: ``music_vocoder/config.json`` as :class:`VocoderConfig`.
        dtype, device, ops: layer construction (``ops`` defaults to :mod:`torch.nn`).

    ``backbone``/``head``/``mel_transform`` are checkpoint prefixes; ``state_dict()`` matches the upstream
    file exactly (711 parameters + the 2 buffers ``mel_transform.spectrogram.window``/``.mel_scale.fb``).
    """

    def __init__(self, cfg: VocoderConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = ConvNeXtEncoder(cfg, dtype=dtype, device=device, ops=ops)
        self.head = HiFiGANGenerator(cfg, dtype=dtype, device=device)
        self.mel_transform = LogMelSpectrogram(cfg, dtype=dtype, device=device)

    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, n_mels, F]`` -> waveform ``[B, 1, hop_length·F]``."""
        n_mels = self.cfg.n_mels
        if not isinstance(mel, torch.Tensor) or mel.ndim != 3 or mel.shape[1] != n_mels or 0 in mel.shape:
            shape = list(mel.shape) if isinstance(mel, torch.Tensor) else type(mel).__name__
            raise AceStepInputError(
                f"Vocoder.decode: expected a mono log-mel [B, {n_mels}, F] with B, F >= 1, got {shape}; "
                "decode each stereo channel separately (mel[:, c]) and add a batch dim for a single item"
            )
        return self.head(self.backbone(mel))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.decode(mel)

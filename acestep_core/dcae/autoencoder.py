"""Music-DCAE ``f8c8``: stereo log-mel ``[B, 2, 128, F]`` <-> latent ``[B, 8, 16, F/8]``.

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_dcae_pipeline.py (Apache-2.0), whose
``self.dcae`` is diffusers' ``AutoencoderDC`` (diffusers 0.33.1, Apache-2.0,
``models/autoencoders/autoencoder_dc.py``) configured by ``music_dcae_f8c8/config.json``.

``encode``/``decode`` are the raw encoder/decoder: the ACE-Step latent shift/scale and the mel
normalisation live in :mod:`acestep_core.audio.codec`; the DCAE's own ``scaling_factor`` is unused.

Deliberate divergences from diffusers:
* No tiling/slicing, no ``DecoderOutput``/``EncoderOutput`` wrappers, no distribution.
* Only ``layers_per_block[0] > 0`` configurations (plain ``conv_in``/``conv_out``), as in every ACE-Step DCAE.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DCAEConfig
from ..errors import AceStepInputError
from ..ops import Ops
from .blocks import ChannelRMSNorm, DownBlock, UpBlock, build_block


def _check_first_stage(layers_per_block: tuple[int, ...], name: str) -> None:
    if not layers_per_block or layers_per_block[0] <= 0:
        raise ValueError(f"DCAEConfig.{name}[0] must be > 0 (ACE-Step uses 2/3), got {layers_per_block!r}")


class Encoder(nn.Module):
    """DC-AE encoder: ``conv_in`` -> ``down_blocks`` (blocks + stride-2 down block) -> ``conv_out`` + shortcut.

    The output shortcut averages consecutive groups of ``C_last / latent_channels`` channels.
    Attribute names are checkpoint keys (``encoder.down_blocks.{i}.{j}...``).
    """

    def __init__(self, cfg: DCAEConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        _check_first_stage(cfg.encoder_layers_per_block, "encoder_layers_per_block")
        channels = cfg.encoder_block_out_channels
        kw: dict[str, Any] = {"dtype": dtype, "device": device, "ops": ops}
        self.conv_in = ops.Conv2d(cfg.in_channels, channels[0], 3, 1, 1, dtype=dtype, device=device)
        stages = []
        for i, (width, depth) in enumerate(zip(channels, cfg.encoder_layers_per_block, strict=True)):
            layers = [build_block(cfg.encoder_block_types[i], width, cfg.attention_head_dim,
                                  cfg.encoder_qkv_multiscales[i], **kw) for _ in range(depth)]
            if i < len(channels) - 1 and depth > 0:
                layers.append(DownBlock(width, channels[i + 1], **kw))
            stages.append(nn.Sequential(*layers))
        self.down_blocks = nn.ModuleList(stages)
        self.conv_out = ops.Conv2d(channels[-1], cfg.latent_channels, 3, 1, 1, dtype=dtype, device=device)
        self.out_group_size = channels[-1] // cfg.latent_channels

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(mel)  # [B, C0, H, F]
        for stage in self.down_blocks:
            h = stage(h)  # ... -> [B, C_last, H/8, F/8]
        shortcut = h.unflatten(1, (-1, self.out_group_size)).mean(dim=2)  # [B, latent, H/8, F/8]
        return self.conv_out(h) + shortcut


class Decoder(nn.Module):
    """DC-AE decoder: ``conv_in`` + repeat shortcut -> ``up_blocks`` (run last to first) -> RMSNorm -> ReLU -> conv.

    ``up_blocks[i]`` = [UpBlock(C_{i+1} -> C_i) (for i < last), blocks of width C_i]; they are stored in
    encoder order and executed in reverse, as in diffusers. Attribute names are checkpoint keys.
    """

    def __init__(self, cfg: DCAEConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        _check_first_stage(cfg.decoder_layers_per_block, "decoder_layers_per_block")
        channels = cfg.decoder_block_out_channels
        kw: dict[str, Any] = {"dtype": dtype, "device": device, "ops": ops}
        self.conv_in = ops.Conv2d(cfg.latent_channels, channels[-1], 3, 1, 1, dtype=dtype, device=device)
        self.in_repeats = channels[-1] // cfg.latent_channels
        stages = []
        for i, (width, depth) in enumerate(zip(channels, cfg.decoder_layers_per_block, strict=True)):
            layers: list[nn.Module] = []
            if i < len(channels) - 1 and depth > 0:
                layers.append(UpBlock(channels[i + 1], width, **kw))
            layers += [build_block(cfg.decoder_block_types[i], width, cfg.attention_head_dim,
                                   cfg.decoder_qkv_multiscales[i], **kw) for _ in range(depth)]
            stages.append(nn.Sequential(*layers))
        self.up_blocks = nn.ModuleList(stages)
        self.norm_out = ChannelRMSNorm(channels[0], dtype=dtype, device=device)
        self.conv_out = ops.Conv2d(channels[0], cfg.in_channels, 3, 1, 1, dtype=dtype, device=device)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z) + z.repeat_interleave(self.in_repeats, dim=1)  # [B, C_last, 16, T]
        for stage in reversed(self.up_blocks):
            h = stage(h)  # ... -> [B, C0, 128, 8T]
        return self.conv_out(F.relu(self.norm_out(h)))  # [B, in_channels, 128, 8T]


class MusicDCAE(nn.Module):
    """The ACE-Step v1 music DC-AE (``music_dcae_f8c8``): 8x compression in mel height and time.

    Args:
        cfg: ``music_dcae_f8c8/config.json`` as :class:`DCAEConfig`.
        dtype, device, ops: layer construction (``ops`` defaults to :mod:`torch.nn`).

    ``encoder``/``decoder`` are checkpoint prefixes; ``state_dict()`` matches the diffusers file exactly.
    """

    def __init__(self, cfg: DCAEConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.cfg = cfg
        self.compression = 2 ** (len(cfg.encoder_block_out_channels) - 1)  # 8 for f8c8
        self.encoder = Encoder(cfg, dtype=dtype, device=device, ops=ops)
        self.decoder = Decoder(cfg, dtype=dtype, device=device, ops=ops)

    def encode(self, mel_normalised: torch.Tensor) -> torch.Tensor:
        """Normalised mel ``[B, 2, H, F]`` (H, F multiples of 8) -> raw encoder output ``[B, 8, H/8, F/8]``."""
        self._check_mel(mel_normalised)
        return self.encoder(mel_normalised)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw (unscaled) latent ``[B, 8, H, T]`` -> normalised mel ``[B, 2, 8H, 8T]``."""
        channels = self.cfg.latent_channels
        if not isinstance(z, torch.Tensor) or z.ndim != 4 or z.shape[1] != channels or 0 in z.shape:
            shape = list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise AceStepInputError(
                f"MusicDCAE.decode: expected a latent [B, {channels}, H, T] with B, H, T >= 1, got {shape}; "
                "pass the DCAE latent with a batch dimension (z[None] for a single item)"
            )
        return self.decoder(z)

    def _check_mel(self, mel: torch.Tensor) -> None:
        c, f = self.cfg.in_channels, self.compression
        ok = isinstance(mel, torch.Tensor) and mel.ndim == 4 and mel.shape[1] == c and mel.shape[0] >= 1
        if not ok or mel.shape[2] % f or mel.shape[3] % f or mel.shape[2] == 0 or mel.shape[3] == 0:
            shape = list(mel.shape) if isinstance(mel, torch.Tensor) else type(mel).__name__
            raise AceStepInputError(
                f"MusicDCAE.encode: expected a normalised mel [B, {c}, H, F] with H and F positive multiples of "
                f"{f} (the DCAE downsamples both by {f}), got {shape}; pad the audio to a multiple of "
                f"{f} mel frames (AudioCodec.encode does this)"
            )

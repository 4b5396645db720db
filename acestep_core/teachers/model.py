"""HuBERT-family audio encoder (eval only): the REPA teachers MERT-v1-330M and mHuBERT-147.

Re-implements the architecture of transformers' ``models/hubert/modeling_hubert.py`` (``HubertModel``,
Apache-2.0; itself after fairseq's wav2vec 2.0 / HuBERT, MIT), which MERT-v1-330M's own model code builds
when ``do_stable_layer_norm`` is true and ``deepnorm``/``feature_extractor_cqt`` are false. No code copied.

    input_values [B, N] (raw samples at the teacher's rate)
    -> feature_extractor: 7 x Conv1d (no padding) + GELU; GroupNorm(C, C) after conv 0 ("group" mode) or a
       LayerNorm over channels after every conv ("layer" mode)                       # [B, C, T]
    -> feature_projection: LayerNorm(C) (``feat_proj_layer_norm``) + Linear(C -> H)    # [B, T, H]
    -> encoder: x + GELU(drop_last(weight-normed grouped Conv1d(H, H, k 128, pad 64, 16 groups)(x)))
       post-LN (HuBERT base): LayerNorm, then per layer x = LN(x + Attn(x)); x = LN(x + FF(x))
       pre-LN ("stable layer norm", MERT): per layer x = x + Attn(LN(x)); x = x + FF(LN(x)); final LayerNorm
    -> last_hidden_state [B, T, H]

Attributes keep the upstream names (``feature_extractor.conv_layers.0.layer_norm``, ``encoder.layers.3
.attention.q_proj``, ...): they are the checkpoint's key names, an external contract. The positional conv holds
a plain ``weight``; the checkpoint's weight-norm pair is baked into it at load (:mod:`.weights`). No attention
mask (the trainer passes none); dropout, LayerDrop and SpecAugment masking are training-only and absent.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AceStepInputError
from .config import HubertConfig

__all__ = ["HubertEncoder"]


class _ConvLayer(nn.Module):
    """Conv1d + optional norm + GELU; ``norm`` is "group" (GroupNorm, one group per channel), "layer" or None."""

    def __init__(self, cfg: HubertConfig, index: int, norm: str | None, *, dtype: torch.dtype | None,
                 device: Any, ops: Any) -> None:
        super().__init__()
        in_channels = cfg.conv_dim[index - 1] if index > 0 else 1
        out_channels = cfg.conv_dim[index]
        self.conv = ops.Conv1d(in_channels, out_channels, cfg.conv_kernel[index], stride=cfg.conv_stride[index],
                               bias=cfg.conv_bias, dtype=dtype, device=device)
        self.norm = norm
        if norm == "group":
            self.layer_norm = ops.GroupNorm(out_channels, out_channels, affine=True, dtype=dtype, device=device)
        elif norm == "layer":  # upstream builds it with the default eps (1e-5), not layer_norm_eps
            self.layer_norm = ops.LayerNorm(out_channels, elementwise_affine=True, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, L] -> [B, C_out, L']
        x = self.conv(x)
        if self.norm == "group":
            x = self.layer_norm(x)
        elif self.norm == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return F.gelu(x)


class _FeatureEncoder(nn.Module):
    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        if cfg.feat_extract_norm == "group":
            norms: list[str | None] = ["group"] + [None] * (len(cfg.conv_dim) - 1)
        else:
            norms = ["layer"] * len(cfg.conv_dim)
        self.conv_layers = nn.ModuleList(
            _ConvLayer(cfg, i, norm, dtype=dtype, device=device, ops=ops) for i, norm in enumerate(norms))

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:  # [B, N] -> [B, C, T]
        x = input_values[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class _FeatureProjection(nn.Module):
    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        channels = cfg.conv_dim[-1]
        self.layer_norm = (ops.LayerNorm(channels, eps=cfg.layer_norm_eps, dtype=dtype, device=device)
                           if cfg.feat_proj_layer_norm else None)
        self.projection = ops.Linear(channels, cfg.hidden_size, dtype=dtype, device=device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, T, C] -> [B, T, H]
        if self.layer_norm is not None:
            features = self.layer_norm(features)
        return self.projection(features)


class _PositionalConv(nn.Module):
    """Grouped Conv1d (k, padding k // 2) whose extra last frame (even k) is dropped, then GELU."""

    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        kernel = cfg.num_conv_pos_embeddings
        self.conv = ops.Conv1d(cfg.hidden_size, cfg.hidden_size, kernel, padding=kernel // 2,
                               groups=cfg.num_conv_pos_embedding_groups, dtype=dtype, device=device)
        self.drop_last = kernel % 2 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, H] -> [B, T, H]
        y = self.conv(x.transpose(1, 2))
        if self.drop_last:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


class _Attention(nn.Module):
    """Multi-head self-attention with biases, scale head_dim^-0.5 (SDPA), no mask."""

    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        hidden = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.q_proj = ops.Linear(hidden, hidden, dtype=dtype, device=device)
        self.k_proj = ops.Linear(hidden, hidden, dtype=dtype, device=device)
        self.v_proj = ops.Linear(hidden, hidden, dtype=dtype, device=device)
        self.out_proj = ops.Linear(hidden, hidden, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, H]
        batch, frames, hidden = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, T, H] -> [B, heads, T, H / heads]
            return t.view(batch, frames, self.heads, hidden // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, hidden))


class _FeedForward(nn.Module):
    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        self.intermediate_dense = ops.Linear(cfg.hidden_size, cfg.intermediate_size, dtype=dtype, device=device)
        self.output_dense = ops.Linear(cfg.intermediate_size, cfg.hidden_size, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        self.pre_norm = cfg.do_stable_layer_norm
        self.attention = _Attention(cfg, dtype=dtype, device=device, ops=ops)
        self.layer_norm = ops.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, dtype=dtype, device=device)
        self.feed_forward = _FeedForward(cfg, dtype=dtype, device=device, ops=ops)
        self.final_layer_norm = ops.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attention(self.layer_norm(x))
            return x + self.feed_forward(self.final_layer_norm(x))
        x = self.layer_norm(x + self.attention(x))
        return self.final_layer_norm(x + self.feed_forward(x))


class _Encoder(nn.Module):
    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None, device: Any, ops: Any) -> None:
        super().__init__()
        self.pre_norm = cfg.do_stable_layer_norm
        self.pos_conv_embed = _PositionalConv(cfg, dtype=dtype, device=device, ops=ops)
        self.layer_norm = ops.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, dtype=dtype, device=device)
        self.layers = nn.ModuleList(
            _EncoderLayer(cfg, dtype=dtype, device=device, ops=ops) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, H]
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x) if self.pre_norm else x


class HubertEncoder(nn.Module):
    """transformers' ``HubertModel`` forward in eval mode, returning ``last_hidden_state`` only.

    Args:
        cfg: the teacher's :class:`HubertConfig` (from its ``config.json``).
        dtype, device, ops: parameter dtype/device and the layer namespace (``torch.nn`` by default), as every
            core module takes them.
    """

    def __init__(self, cfg: HubertConfig, *, dtype: torch.dtype | None = None, device: Any = None,
                 ops: Any = nn) -> None:
        super().__init__()
        self.config = cfg
        self.feature_extractor = _FeatureEncoder(cfg, dtype=dtype, device=device, ops=ops)
        self.feature_projection = _FeatureProjection(cfg, dtype=dtype, device=device, ops=ops)
        self.encoder = _Encoder(cfg, dtype=dtype, device=device, ops=ops)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` raw samples (at the teacher's rate, normalised by the caller) -> ``[B, T, hidden_size]``."""
        if not isinstance(input_values, torch.Tensor) or input_values.ndim != 2:
            shape = list(input_values.shape) if isinstance(input_values, torch.Tensor) else type(input_values)
            raise AceStepInputError(f"teacher input_values: expected a [B, N] tensor of samples, got {shape}")
        if self.config.frames_for_samples(input_values.shape[1]) < 1:
            raise AceStepInputError(f"teacher input_values: {input_values.shape[1]} samples are too few for one "
                                    f"frame of the conv front-end (kernels {self.config.conv_kernel})")
        features = self.feature_extractor(input_values).transpose(1, 2)  # [B, T, C]
        return self.encoder(self.feature_projection(features))

    def checkpoint_parameter_count(self) -> int:
        """Parameters of transformers' ``HubertModel`` of this config: ours, plus the weight-norm gain ``weight_g``
        [1, 1, k] that we bake into the positional conv, plus ``masked_spec_embed`` [hidden_size] when the config
        has masking probabilities (in the released files, unused in eval)."""
        own = sum(p.numel() for p in self.parameters())
        masked = self.config.hidden_size if self.config.has_masked_spec_embed else 0
        return own + self.config.num_conv_pos_embeddings + masked

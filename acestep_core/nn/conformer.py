"""Lyric encoder of ACE-Step: a Conformer (CosyVoice/SongGen flavour) with ESPnet relative positions.

Ported from ace-step/ACE-Step@d612523 acestep/models/lyrics_utils/lyric_encoder.py (Apache-2.0), for the
configuration ACE-Step v1 instantiates: ``input_layer="linear"``, ``pos_enc_layer_type="rel_pos_espnet"``,
``normalize_before=True``, no macaron feed-forward, no convolution module, ``static_chunk_size=0`` and no
dynamic chunks (full, non-causal attention with a key-padding mask), SiLU ("swish") activation.

Deliberate divergences:
- No dropout modules: training passes a ``dropout(tensor, site)`` function (keyed per sample, see
  :mod:`acestep_core.training.draws`) applied at upstream's six kinds of dropout sites (embedding output,
  positional encoding of the input and of the relative table, attention output, feed-forward hidden and output);
  inference passes none. The relative table then gets one mask per item (upstream: one per batch).
- No gradient checkpointing, no streaming caches or chunk masks.
- No registered buffer for the relative position table: it is computed per call for the needed length
  (same values as upstream's 5000-row table sliced around its centre).
- ERG is a ``query_scale`` argument (multiplies the ``linear_q`` output of the selected layers) instead
  of a forward hook on ``linear_q``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..ops import Ops, cast_like

Dropout = Callable[[torch.Tensor, str], torch.Tensor]  # (activations, site name) -> activations
LAYER_NORM_EPS = 1e-5  # upstream nn.LayerNorm(size, eps=1e-5)
REL_POS_BASE = 10000.0  # ESPnet sinusoid base


def relative_position_table(length: int, dim: int, *, device: torch.device | None = None) -> torch.Tensor:
    """ESPnet relative sinusoids for offsets ``length-1, ..., 0, ..., -(length-1)`` -> fp32 [1, 2L-1, dim].

    Row ``r`` (offset ``o``) holds ``sin(o w_k)`` at even and ``cos(o w_k)`` at odd channels,
    ``w_k = exp(-2k ln(10000) / dim)``; same op order as upstream ``EspnetRelPositionalEncoding.extend_pe``.
    """
    position = torch.arange(0, length, dtype=torch.float32, device=device).unsqueeze(1)  # [L, 1]
    div_term = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(REL_POS_BASE) / dim)
    )  # [dim / 2]
    positive = torch.zeros(length, dim, device=device)
    negative = torch.zeros(length, dim, device=device)
    positive[:, 0::2] = torch.sin(position * div_term)
    positive[:, 1::2] = torch.cos(position * div_term)
    negative[:, 0::2] = torch.sin(-1 * position * div_term)
    negative[:, 1::2] = torch.cos(-1 * position * div_term)
    table = torch.cat([torch.flip(positive, [0]), negative[1:]], dim=0)  # [2L - 1, dim]
    return table.unsqueeze(0)


def relative_shift(scores: torch.Tensor) -> torch.Tensor:
    """Transformer-XL shift: [B, H, L, 2L-1] scores indexed by offset column -> [B, H, L, L] by key.

    Output ``[..., i, j]`` is input ``[..., i, (L - 1) - (i - j)]``, i.e. the score for offset ``i - j``.
    """
    batch, heads, length, width = scores.shape
    padded = torch.cat([scores.new_zeros(batch, heads, length, 1), scores], dim=-1)  # [B, H, L, 2L]
    padded = padded.view(batch, heads, width + 1, length)
    return padded[:, :, 1:].view_as(scores)[:, :, :, : width // 2 + 1]


class RelPositionAttention(nn.Module):
    """Multi-head self-attention with Transformer-XL relative positions (Dai et al. 2019, arXiv:1901.02860).

    ``score[i, j] = ((q_i + u) . k_j + (q_i + v) . p_(i-j)) / sqrt(d_k)``. Checkpoint names: ``linear_q``,
    ``linear_k``, ``linear_v``, ``linear_out``, ``linear_pos``, ``pos_bias_u``, ``pos_bias_v``.

    Args:
        heads: number of heads.
        dim: model width (``heads * d_k``).
    """

    def __init__(self, heads: int, dim: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.linear_q = ops.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.linear_k = ops.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.linear_v = ops.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.linear_out = ops.Linear(dim, dim, bias=True, dtype=dtype, device=device)
        self.linear_pos = ops.Linear(dim, dim, bias=False, dtype=dtype, device=device)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, self.head_dim, dtype=dtype, device=device))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, self.head_dim, dtype=dtype, device=device))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, pos_table: torch.Tensor, *,
                query_scale: float = 1.0) -> torch.Tensor:
        """``x`` [B, L, D], ``key_mask`` bool [B, L] (True = valid), ``pos_table`` [1 or B, 2L-1, D] -> [B, L, D]."""
        batch, length, _ = x.shape
        query = self.linear_q(x)
        if query_scale != 1.0:
            query = query * query_scale
        query = query.view(batch, length, self.heads, self.head_dim)  # [B, L, H, d]
        key = self.linear_k(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # [B, H, L, d]
        value = self.linear_v(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        pos = self.linear_pos(pos_table).view(pos_table.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)

        query_u = (query + cast_like(self.pos_bias_u, query)).transpose(1, 2)  # [B, H, L, d]
        query_v = (query + cast_like(self.pos_bias_v, query)).transpose(1, 2)
        content = torch.matmul(query_u, key.transpose(-2, -1))  # [B, H, L, L]
        position = relative_shift(torch.matmul(query_v, pos.transpose(-2, -1)))  # [B, H, L, L]
        scores = (content + position) / math.sqrt(self.head_dim)

        masked = ~key_mask[:, None, None, :]  # [B, 1, 1, L]
        scores = scores.masked_fill(masked, -float("inf"))
        # A fully masked row gives NaN after softmax; zeroing masked keys turns it into zeros (as upstream).
        weights = torch.softmax(scores, dim=-1).masked_fill(masked, 0.0)
        out = torch.matmul(weights, value)  # [B, H, L, d]
        out = out.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
        return self.linear_out(out)


class FeedForward(nn.Module):
    """Position-wise ``w_2(SiLU(w_1(x)))`` (checkpoint names ``w_1``, ``w_2``)."""

    def __init__(self, dim: int, hidden: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.w_1 = ops.Linear(dim, hidden, bias=True, dtype=dtype, device=device)
        self.w_2 = ops.Linear(hidden, dim, bias=True, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, dropout: Dropout | None = None, site: str = "ff") -> torch.Tensor:
        hidden = torch.nn.functional.silu(self.w_1(x))
        return self.w_2(hidden if dropout is None else dropout(hidden, site))


class ConformerLayer(nn.Module):
    """Pre-LN layer: ``x += attn(norm_mha(x))``; ``x += ff(norm_ff(x))`` (no macaron, no conv module)."""

    def __init__(self, dim: int, heads: int, hidden: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.self_attn = RelPositionAttention(heads, dim, dtype=dtype, device=device, ops=ops)
        self.feed_forward = FeedForward(dim, hidden, dtype=dtype, device=device, ops=ops)
        self.norm_ff = ops.LayerNorm(dim, eps=LAYER_NORM_EPS, dtype=dtype, device=device)
        self.norm_mha = ops.LayerNorm(dim, eps=LAYER_NORM_EPS, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, pos_table: torch.Tensor, *,
                query_scale: float = 1.0, dropout: Dropout | None = None, site: str = "layer") -> torch.Tensor:
        attended = self.self_attn(self.norm_mha(x), key_mask, pos_table, query_scale=query_scale)
        x = x + (attended if dropout is None else dropout(attended, f"{site}.attn"))
        fed = self.feed_forward(self.norm_ff(x), dropout, f"{site}.ff_hidden")
        return x + (fed if dropout is None else dropout(fed, f"{site}.ff"))


class LinearEmbed(nn.Module):
    """Input layer ``out = Sequential(Linear, LayerNorm)`` (checkpoint names ``out.0``, ``out.1``)."""

    def __init__(self, in_dim: int, dim: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.out = nn.Sequential(
            ops.Linear(in_dim, dim, bias=True, dtype=dtype, device=device),
            ops.LayerNorm(dim, eps=LAYER_NORM_EPS, dtype=dtype, device=device),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x)


class LyricConformerEncoder(nn.Module):
    """Conformer encoder over lyric token embeddings (Gulati et al. 2020, arXiv:2005.08100).

    Checkpoint names: ``embed``, ``encoders``, ``after_norm`` (upstream ``ConformerEncoder``).

    Args:
        in_dim: width of the token embeddings.
        dim: encoder width (``output_size`` upstream).
        heads: attention heads.
        hidden: feed-forward hidden width (``linear_units`` upstream).
        num_blocks: number of layers.
    """

    def __init__(self, in_dim: int, dim: int, heads: int, hidden: int, num_blocks: int, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.dim = dim
        self.embed = LinearEmbed(in_dim, dim, dtype=dtype, device=device, ops=ops)
        self.encoders = nn.ModuleList(
            [ConformerLayer(dim, heads, hidden, dtype=dtype, device=device, ops=ops) for _ in range(num_blocks)]
        )
        self.after_norm = ops.LayerNorm(dim, eps=LAYER_NORM_EPS, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, *, query_scale: float = 1.0,
                scaled_layers: Sequence[int] = (), dropout: Dropout | None = None) -> torch.Tensor:
        """``x`` [B, L, in_dim], ``mask`` [B, L] (nonzero = valid) -> [B, L, dim].

        ``query_scale`` multiplies the ``linear_q`` output of the layers listed in ``scaled_layers``; ``dropout``
        (training) is applied at upstream's dropout sites, named for the keyed masks.
        """
        key_mask = mask.to(torch.bool)  # [B, L]
        x = self.embed(x)
        if dropout is not None:
            x = dropout(x, "embed")
        x = x * math.sqrt(self.dim)
        pos_table = relative_position_table(x.shape[1], self.dim, device=x.device).to(x.dtype)  # [1, 2L-1, D]
        if dropout is not None:
            x = dropout(x, "position.input")
            pos_table = dropout(pos_table.expand(x.shape[0], -1, -1), "position.table")  # [B, 2L-1, D]
        for index, layer in enumerate(self.encoders):
            scale = query_scale if index in scaled_layers else 1.0
            x = layer(x, key_mask, pos_table, query_scale=scale, dropout=dropout, site=f"layer{index}")
        return self.after_norm(x)

"""Attention layers of the ACE-Step DiT: ReLU linear self-attention and masked cross-attention.

Ported from ace-step/ACE-Step@d612523 acestep/models/customer_attention_processor.py
(``CustomLiteLAProcessor2_0``, ``CustomerAttnProcessor2_0``) and the diffusers 0.33 ``Attention``
module layout they run in (Apache-2.0).

Deliberate divergences:
- One module per attention type instead of diffusers' ``Attention`` + processor objects; only the code
  paths ACE-Step v1 uses are kept (no group norm, no qk-norm, no residual connection, no 4-D inputs).
- ERG ("Entropy Rectifying Guidance") is a ``query_scale`` argument that multiplies the ``to_q`` output,
  instead of upstream's forward hooks that modify it in place.
- ``to_out`` holds only the Linear (upstream's index-1 Dropout has no parameters and is inactive at inference).
- The fp16 output clip of the linear attention (only active under fp16 autocast upstream) is not reproduced.
- The cross-attention bias is built once per denoiser pass (:func:`cross_attention_bias`), not per block; with
  every frame valid (the pipeline's case) it is a broadcast view of one ``[B, S]`` row. A frame whose mask is
  0 attends nothing (upstream: an all ``-inf`` softmax row); the pipeline never masks frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import Ops
from .rope import RopeTables, apply_rope

LINEAR_ATTENTION_EPS = 1e-15  # upstream CustomLiteLAProcessor2_0.eps


QueryScale = float | torch.Tensor  # a number, or one factor per batch item ([B] tensor)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, S, heads * d] -> [B, heads, S, d] (heads are contiguous channel slices; a view)."""
    batch, length, _ = x.shape
    return x.view(batch, length, heads, -1).transpose(1, 2)


def scale_query(query: torch.Tensor, query_scale: QueryScale) -> torch.Tensor:
    """``query * query_scale`` as upstream's ERG hook computes it (fp32 product, rounded to the query dtype).

    ``query_scale`` is a number or a [B] tensor (one factor per batch item, e.g. 1 for the conditional half
    and ``ERG_TEMPERATURE`` for the unconditional half of a batched guidance pass).
    """
    if isinstance(query_scale, torch.Tensor):
        factors = query_scale.to(device=query.device, dtype=torch.float32).view(-1, *([1] * (query.ndim - 1)))
        return (query * factors).to(query.dtype)
    return query * query_scale if query_scale != 1.0 else query


def cross_attention_bias(mask: torch.Tensor | None, context_mask: torch.Tensor, heads: int, length: int,
                         dtype: torch.dtype) -> torch.Tensor:
    """Additive SDPA bias ``[B, heads, T, S]`` (a broadcast view): 0 where frame ``i`` may attend token ``j``
    (``mask[b, i] * context_mask[b, j] == 1``), ``-inf`` elsewhere. ``mask=None`` means every frame is valid,
    so the bias depends on the token only (``[B, 1, 1, S]`` expanded, no ``[B, H, T, S]`` tensor is made).
    """
    keys = context_mask.to(torch.float32)[:, None, :]  # [B, 1, S]
    pair = keys if mask is None else mask.to(torch.float32)[:, :, None] * keys  # [B, 1 or T, S]
    bias = torch.zeros(pair.shape, dtype=dtype, device=pair.device).masked_fill_(pair != 1, -torch.inf)
    return bias[:, None].expand(-1, heads, length, -1)


class LinearSelfAttention(nn.Module):
    """Non-causal ReLU linear attention ("LiteLA", Sana) with RoPE on queries and keys.

    ``O_i = sum_j V_j (phi(K_j) . phi(Q_i)) / (sum_j phi(K_j) . phi(Q_i) + 1e-15)`` with ``phi = ReLU``,
    no ``1/sqrt(d)`` scale; the products run in fp32 (Xie et al. 2024, "SANA", arXiv:2410.10629).
    Computed as ``Q (K^T V)`` and ``Q (sum_j K_j)`` (upstream appends a row of ones to ``V^T`` to get both
    from one product; same sums, but its ``d + 1``-row operand defeats aligned GEMM kernels).

    Attribute names (``to_q``, ``to_k``, ``to_v``, ``to_out``) are the upstream checkpoint keys.

    Args:
        dim: model width (``heads * head_dim``).
        heads: number of attention heads.
        head_dim: channels per head.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = ops.Linear(dim, inner, bias=True, dtype=dtype, device=device)
        self.to_k = ops.Linear(dim, inner, bias=True, dtype=dtype, device=device)
        self.to_v = ops.Linear(dim, inner, bias=True, dtype=dtype, device=device)
        self.to_out = nn.ModuleList([ops.Linear(inner, dim, bias=True, dtype=dtype, device=device)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rope: RopeTables, *,
                query_scale: QueryScale = 1.0) -> torch.Tensor:
        """``x`` [B, T, D], ``mask`` [B, T] (1 = valid frame; ``None`` = all valid), ``rope`` tables for T
        positions -> [B, T, D]."""
        query = apply_rope(_split_heads(scale_query(self.to_q(x), query_scale), self.heads), rope)  # [B, H, T, d]
        key = apply_rope(_split_heads(self.to_k(x), self.heads), rope)  # [B, H, T, d]
        value = _split_heads(self.to_v(x), self.heads)  # [B, H, T, d]
        if mask is not None:
            frame_mask = mask[:, None, :, None].to(key.dtype)  # [B, 1, T, 1]
            query, key, value = query * frame_mask, key * frame_mask, value * frame_mask
        query, key, value = torch.relu(query).float(), torch.relu(key).float(), value.float()

        key_value = torch.matmul(key.transpose(-1, -2), value)  # [B, H, d, d]
        key_sum = key.sum(dim=-2, keepdim=True).transpose(-1, -2)  # [B, H, d, 1]
        out = torch.matmul(query, key_value) / (torch.matmul(query, key_sum) + LINEAR_ATTENTION_EPS)  # [B, H, T, d]
        batch, heads, length, head_dim = out.shape
        out = out.to(x.dtype).transpose(1, 2).reshape(batch, length, heads * head_dim)  # [B, T, D]
        return self.to_out[0](out)


class CrossAttention(nn.Module):
    """Softmax cross-attention from latent frames to the condition sequence, with RoPE on Q and K.

    Queries use latent positions 0..T-1, keys use condition positions 0..S-1. A (frame, token) pair is
    attended only when ``mask[b, i] * condition_mask[b, j] == 1``.

    The released checkpoint also stores ``add_q_proj``, ``add_k_proj``, ``add_v_proj`` and ``to_add_out``
    (diffusers builds them for ``added_kv_proj_dim``); they are never used, so they are only declared with
    ``keep_unused=True`` (the loader checks their shapes and drops them otherwise).

    Args:
        dim: model width (queries and condition states both have this width).
        heads: number of attention heads.
        head_dim: channels per head.
        keep_unused: also declare the unused ``add_*``/``to_add_out`` projections.
    """

    UNUSED_LAYERS: tuple[str, ...] = ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")

    def __init__(self, dim: int, heads: int, head_dim: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn, keep_unused: bool = False) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads

        def linear(in_features: int, out_features: int) -> nn.Module:
            return ops.Linear(in_features, out_features, bias=True, dtype=dtype, device=device)

        self.to_q = linear(dim, inner)
        self.to_k = linear(dim, inner)
        self.to_v = linear(dim, inner)
        self.to_out = nn.ModuleList([linear(inner, dim)])
        if keep_unused:
            self.add_q_proj = linear(dim, inner)
            self.add_k_proj = linear(dim, inner)
            self.add_v_proj = linear(dim, inner)
            self.to_add_out = linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, bias: torch.Tensor, rope: RopeTables,
                context_rope: RopeTables, *, query_scale: QueryScale = 1.0) -> torch.Tensor:
        """``x`` [B, T, D], ``context`` [B, S, D], ``bias`` from :func:`cross_attention_bias` -> [B, T, D]."""
        query = apply_rope(_split_heads(scale_query(self.to_q(x), query_scale), self.heads), rope)  # [B, H, T, d]
        key = apply_rope(_split_heads(self.to_k(context), self.heads), context_rope)  # [B, H, S, d]
        value = _split_heads(self.to_v(context), self.heads)  # [B, H, S, d]
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, dropout_p=0.0, is_causal=False)
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, -1).to(query.dtype)  # [B, T, D]
        return self.to_out[0](out)

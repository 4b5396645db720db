"""Rotary position embedding of the ACE-Step DiT, including its pairing quirk.

Ported from ace-step/ACE-Step@d612523 acestep/models/ace_step_transformer.py (``Qwen2RotaryEmbedding``) and
acestep/models/customer_attention_processor.py (``apply_rotary_emb``) (Apache-2.0).

The frequency table uses the "half-split" layout (``cat(freqs, freqs)``: channel ``j`` turns at
``inv_freq[j mod head_dim/2]``) while the rotation pairs *adjacent* channels ``(2k, 2k+1)``. The two
channels of a pair therefore turn at different frequencies; this is not a true rotation, but it is what
the checkpoint was trained with, so it is reproduced exactly (spec 2.6, quirk 8.3).

Deliberate divergences:
- No module and no buffers: the cos/sin tables are a pure function of (length, head_dim, theta) and are
  built on demand (the loader builds models on the meta device and assigns only checkpoint tensors).
- Tables are computed in fp32 and rounded to the activation dtype, which gives the same values as upstream's
  fp32 cache converted by ``model.to(dtype)``; they are handed out as fp32 tensors holding those values so the
  products run in fp32 without extra casts.
- The sine table is stored with the rotation's signs folded in (``-sin`` on even channels) and the rotation
  is ``x * cos + swap_pairs(x) * signed_sin``: the same products as upstream, in fewer kernels.
"""

from __future__ import annotations

import torch

RopeTables = tuple[torch.Tensor, torch.Tensor]  # (cos, signed sin), each [S, head_dim], fp32


def rope_inverse_frequencies(head_dim: int, theta: float, *, device: torch.device | None = None) -> torch.Tensor:
    """``1 / theta^(2k / head_dim)`` for k = 0 .. head_dim/2 - 1, in fp32 (same expression as upstream)."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (theta**exponents)  # [head_dim / 2]


def rope_tables(
    length: int,
    head_dim: int,
    theta: float,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> RopeTables:
    """Cos/sin tables for positions 0 .. length-1, computed in fp32 and rounded to ``dtype``.

    Returns ``(cos, signed_sin)``, each ``[length, head_dim]`` fp32 with the half-split layout
    ``angle[p, j] = p * inv_freq[j mod head_dim/2]``; ``signed_sin[p, j] = -sin`` for even ``j``, ``+sin`` for
    odd ``j`` (see :func:`apply_rope`).
    """
    if head_dim % 2:
        raise ValueError(f"rotary embedding needs an even head_dim, got {head_dim}")
    inv_freq = rope_inverse_frequencies(head_dim, theta, device=device)
    positions = torch.arange(length, dtype=torch.int64, device=device).type_as(inv_freq)
    freqs = torch.outer(positions, inv_freq)  # [S, head_dim / 2]
    angles = torch.cat((freqs, freqs), dim=-1)  # [S, head_dim]
    sign = 1.0 - 2.0 * ((torch.arange(head_dim, device=device) + 1) % 2).float()  # [head_dim]: -1, +1, -1, ...
    return angles.cos().to(dtype).float(), (angles.sin().to(dtype).float() * sign)


def apply_rope(x: torch.Tensor, tables: RopeTables) -> torch.Tensor:
    """Apply the ACE-Step rotary embedding to ``x`` of shape ``[B, H, S, head_dim]``.

    For each channel pair (2k, 2k+1) with angles ``a = angle[p, 2k]`` and ``b = angle[p, 2k+1]``::

        out[2k]   = x[2k]   * cos(a) - x[2k+1] * sin(a)
        out[2k+1] = x[2k+1] * cos(b) + x[2k]   * sin(b)

    computed as ``x * cos + swap_pairs(x) * signed_sin`` with the products in fp32 (the tables are fp32, so
    ``x * cos`` promotes) and the result cast back to ``x.dtype``. Works for any memory layout of ``x``.
    """
    cos, signed_sin = tables  # [S, head_dim] fp32
    cos, signed_sin = cos.to(x.device, torch.float32), signed_sin.to(x.device, torch.float32)
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # channel 2k <-> 2k+1
    return torch.addcmul(x * cos, swapped, signed_sin).to(x.dtype)

"""The REPA loss of the original trainer: block outputs through the checkpoint's projector heads, pulled towards
the frozen SSL teachers' features (MERT and mHuBERT), as in ``ACEStepTransformer2DModel.decode``.

Per teacher ``k`` and item ``i``: ``z~ = projectors[k](h_i)`` ([T, D] -> [T, d_k]) is linearly interpolated along
time (``align_corners=False``) to the teacher's length, both are L2-normalised, and the cosine embedding loss
with target 1 (``mean_t(1 - cos)``) is summed over items and divided by the batch size. The block is
``ssl_encoder_depths[k]`` (index 8 for both teachers in ACE-Step v1: the output of the 9th of 24 blocks).

Ported from ace-step/ACE-Step@d612523 acestep/models/ace_step_transformer.py (Apache-2.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["repa_losses"]


def _item_loss(features: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """``features`` [F, d] (teacher), ``estimate`` [T, d] (projected block output) -> scalar mean(1 - cos)."""
    estimate = F.interpolate(estimate.unsqueeze(0).transpose(1, 2), size=len(features), mode="linear",
                             align_corners=False).transpose(1, 2).squeeze(0)  # [F, d]
    estimate = F.normalize(estimate, dim=-1)
    features = F.normalize(features, dim=-1)
    target = torch.ones(features.shape[0], device=features.device)
    return F.cosine_embedding_loss(features, estimate, target, margin=0.0, reduction="mean")


def repa_losses(projectors: nn.ModuleList, names: Sequence[str], depths: Sequence[int],
                block_outputs: Mapping[int, torch.Tensor],
                features: Mapping[str, Sequence[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{teacher name: loss}`` for every teacher with features (a teacher without features is skipped).

    Args:
        projectors: the transformer's ``projectors`` (one head per teacher, checkpoint order).
        names: teacher names in head order (``TransformerConfig.ssl_names``: mert, m-hubert).
        depths: block index per head (``ssl_encoder_depths``).
        block_outputs: block index -> hidden states [B, T, D] captured during the forward.
        features: teacher name -> per-item features [F_i, d_k] (each item's own length).
    """
    losses: dict[str, torch.Tensor] = {}
    for projector, name, depth in zip(projectors, names, depths, strict=True):
        items = features.get(name)
        if items is None:
            continue
        hidden = block_outputs[depth]
        if len(items) != hidden.shape[0]:
            raise ValueError(f"REPA: {len(items)} {name} feature sequences for a batch of {hidden.shape[0]}")
        estimates = projector(hidden).float()  # [B, T, d_k]; the loss in fp32 (a no-op for fp32 weights)
        total = sum((_item_loss(z.to(estimates), z_tilde) for z, z_tilde in zip(items, estimates, strict=True)),
                    estimates.new_zeros(()))
        losses[name] = total / hidden.shape[0]
    return losses

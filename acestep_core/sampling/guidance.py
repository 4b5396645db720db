"""Guidance rules of ACE-Step v1: CFG, APG (+ momentum), CFG-Zero*, double-condition CFG, window / decay.

Ported from ace-step/ACE-Step@d612523 acestep/apg_guidance.py and the guidance part of
acestep/pipeline_ace_step.py (Apache-2.0). Velocities are ``[B, C, H, W]`` = ``[B, 8, 16, T]``.

Divergence (spec 8 item 14): :func:`guidance_scale_at` with a decay over a one-step window returns the full
scale instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

APG_MOMENTUM = -0.75  # upstream MomentumBuffer default
APG_NORM_THRESHOLD = 2.5  # upstream apg_forward default
APG_ETA = 0.0  # upstream apg_forward default
APG_DIMS: tuple[int, ...] = (-1, -2)  # norms/projections per (item, channel) over (H, W)
CFG_STAR_ZERO_STEPS = 1  # upstream text2music_diffusion_process(zero_steps=1, use_zero_init=True)


class MomentumBuffer:
    """Running average of guidance differences for APG: ``R <- diff + momentum * R`` (starts at 0)."""

    def __init__(self, momentum: float = APG_MOMENTUM) -> None:
        self.momentum = momentum
        self.running_average: torch.Tensor | float = 0.0

    def update(self, update_value: torch.Tensor) -> torch.Tensor:
        self.running_average = update_value + self.momentum * self.running_average
        return self.running_average


def cfg(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Implements classifier-free guidance (Ho & Salimans 2022): ``u + g (c - u)``."""
    return uncond + scale * (cond - uncond)


def _project(v0: torch.Tensor, v1: torch.Tensor, dims: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``v0`` into parts parallel / orthogonal to ``v1`` (per item and channel), in float64."""
    dtype = v0.dtype
    v0, v1 = v0.double(), v1.double()
    v1 = F.normalize(v1, dim=list(dims))  # type: ignore[arg-type]  # torch accepts a list of dims
    parallel = (v0 * v1).sum(dim=list(dims), keepdim=True) * v1
    return parallel.to(dtype), (v0 - parallel).to(dtype)


def apg(cond: torch.Tensor, uncond: torch.Tensor, scale: float, momentum: MomentumBuffer | None = None, *,
        eta: float = APG_ETA, norm_threshold: float = APG_NORM_THRESHOLD,
        dims: Sequence[int] = APG_DIMS) -> torch.Tensor:
    """Implements Adaptive Projected Guidance (Sadat et al. 2024, arXiv 2410.02416).

    ``diff = c - u`` (optionally replaced by its momentum average), clipped to L2 norm ``norm_threshold``
    per (item, channel), split against ``c``; ``c + (g - 1) * (diff_orth + eta * diff_par)``.
    ``norm_threshold <= 0`` disables clipping.
    """
    diff = cond - uncond
    if momentum is not None:
        diff = momentum.update(diff)
    if norm_threshold > 0:
        norm = diff.norm(p=2, dim=list(dims), keepdim=True)
        diff = diff * torch.minimum(torch.ones_like(diff), norm_threshold / norm)
    parallel, orthogonal = _project(diff, cond, dims)
    return cond + (scale - 1) * (orthogonal + eta * parallel)


def cfg_star(cond: torch.Tensor, uncond: torch.Tensor, scale: float, step_index: int, *,
             zero_steps: int = CFG_STAR_ZERO_STEPS, use_zero_init: bool = True) -> torch.Tensor:
    """Implements CFG-Zero* (Fan et al. 2025, arXiv 2503.18886): per-item optimised scale ``alpha`` of the
    unconditional branch, and a zero velocity for loop indices ``<= zero_steps`` (upstream uses the global
    loop index, so with a guidance window starting later the zero-init never fires)."""
    batch = cond.shape[0]
    flat_c, flat_u = cond.reshape(batch, -1), uncond.reshape(batch, -1)
    dot = torch.sum(flat_c * flat_u, dim=1, keepdim=True)
    alpha = (dot / (torch.sum(flat_u**2, dim=1, keepdim=True) + 1e-8)).view(batch, 1, 1, 1)
    if step_index <= zero_steps and use_zero_init:
        return cond * 0.0
    return uncond * alpha + scale * (cond - uncond * alpha)


def cfg_double(cond: torch.Tensor, uncond: torch.Tensor, only_text: torch.Tensor, scale_text: float,
               scale_lyric: float) -> torch.Tensor:
    """Double-condition CFG: ``(1 - g_t) u + (g_t - g_l) v_text + g_l c`` (text and lyric scales separately)."""
    return (1 - scale_text) * uncond + (scale_text - scale_lyric) * only_text + scale_lyric * cond


def guidance_scale_at(step_index: int, window: tuple[int, int], scale: float, min_scale: float,
                      decay: float) -> float:
    """Scale at loop index ``step_index`` inside the window: linear decay from ``scale`` at the first guided
    step toward ``min_scale`` (reached at the last one when ``decay`` = 1); constant when ``decay`` <= 0."""
    if decay <= 0:
        return scale
    start, end = window
    span = end - start - 1
    progress = (step_index - start) / span if span > 0 else 0.0  # upstream divides by zero for span 0
    return scale - (scale - min_scale) * progress * decay


def uses_guidance(guidance_scale: float) -> bool:
    """Upstream's ``do_classifier_free_guidance``: any scale except exactly 0 or 1."""
    return not (guidance_scale == 0.0 or guidance_scale == 1.0)


def uses_double_condition(guidance_scale_text: float | None, guidance_scale_lyric: float | None) -> bool:
    """Double-condition guidance replaces ``cfg_type`` when both text and lyric scales are above 1."""
    return (guidance_scale_text is not None and guidance_scale_text > 1.0
            and guidance_scale_lyric is not None and guidance_scale_lyric > 1.0)

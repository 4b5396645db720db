"""Start latents of the non-edit tasks: text2music, retake, repaint, extend, audio2audio (spec 6.1-6.4, 6.6).

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py ``text2music_diffusion_process`` and
``add_latents_noise`` (Apache-2.0).

Divergences (all in paths the goldens do not reach; see ``acestep_core.sampling.pipeline`` DIVERGENCES):

- extend past 240 s: the frames cut off to fit the 2583-frame window are taken from the source *before*
  truncation and re-attached on the correct side along time (upstream duplicates retained frames, and
  concatenates the left part on the batch axis);
- extend requests upstream cannot run (both sides beyond 240 s in total, a side longer than the source, or a
  right end inside the left-extended audio) raise :class:`AceStepInputError` instead of an ``AssertionError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import AceStepInputError
from ..timing import LATENT_FRAME_RATE_HZ, MAX_DURATION_S, MAX_FRAMES, seconds_to_frames
from .loop import RepaintPlan


@dataclass(frozen=True)
class ExtendPlan:
    """Frames cut off to fit :data:`MAX_FRAMES`, re-attached after sampling (``None`` = nothing cut)."""

    head: torch.Tensor | None = None  # [B, 8, 16, n] goes before the generated window
    tail: torch.Tensor | None = None  # [B, 8, 16, n] goes after it

    def attach(self, latents: torch.Tensor) -> torch.Tensor:
        parts = [p for p in (self.head, latents, self.tail) if p is not None]
        return torch.cat(parts, dim=-1) if len(parts) > 1 else latents


def retake_mix(noise: torch.Tensor, retake_noise: torch.Tensor, retake_variance: float) -> torch.Tensor:
    """Variance-preserving mix ``cos(phi) z + sin(phi) z'`` with ``phi = variance * pi / 2`` in the latent dtype."""
    phi = torch.tensor(retake_variance * math.pi / 2).to(noise.device).to(noise.dtype)
    return torch.cos(phi) * noise + torch.sin(phi) * retake_noise


def repaint_frames(repaint_start: float, repaint_end: float) -> tuple[int, int]:
    """Start / end latent frames of a repaint window in seconds (truncated toward zero like upstream)."""
    return seconds_to_frames(repaint_start), seconds_to_frames(repaint_end)


def repaint_plan(src_latents: torch.Tensor, noise: torch.Tensor, retake_noise: torch.Tensor, *,
                 start_frame: int, end_frame: int, retake_variance: float, n_min: int) -> RepaintPlan:
    """Repaint frames ``[start_frame, end_frame)`` of the source (spec 6.3)."""
    mask = torch.zeros_like(noise)
    mask[..., start_frame:end_frame] = 1.0
    region_noise = torch.where(mask == 1.0, retake_mix(noise, retake_noise, retake_variance), noise)
    return RepaintPlan(x0=src_latents, z0=region_noise, mask=mask, n_min=n_min)


def check_extend(src_frames: int, start_frame: int, end_frame: int) -> tuple[int, int]:
    """Left / right frames an extend adds, or :class:`AceStepInputError` for what upstream cannot run.

    Upstream convention (pinned by the goldens): with a left extension of L frames, ``repaint_end`` is measured
    on the left-extended timeline, so the right extension is ``end_frame - (L + src_frames)``.
    """
    left = -start_frame if start_frame < 0 else 0
    padded = left + src_frames
    right = end_frame - padded if end_frame > src_frames else 0
    if end_frame > src_frames and right < 0:
        raise AceStepInputError(
            f"extend: repaint_end is frame {end_frame}, inside the left-extended audio ({left} new frames + "
            f"{src_frames} source frames = {padded}). With a left extension, repaint_end counts from the new "
            f"start (upstream convention): use repaint_end >= {padded / LATENT_FRAME_RATE_HZ:.3f} s to also extend "
            f"on the right, or repaint_end <= the source duration to extend only on the left")
    if left > src_frames or right > src_frames:
        raise AceStepInputError(
            f"extend: one call can add at most the source length on each side ({src_frames} frames = "
            f"{src_frames / LATENT_FRAME_RATE_HZ:.2f} s); got left {left} and right {right} frames. "
            "Extend in several calls")
    if left > 0 and right > 0 and padded + right > MAX_FRAMES:
        raise AceStepInputError(
            f"extend: extending both sides beyond {MAX_DURATION_S:g} s ({padded + right} frames > {MAX_FRAMES}) is not "
            "supported; extend one side per call")
    return left, right


def extend_plan(src_latents: torch.Tensor, noise: torch.Tensor, retake_noise: torch.Tensor, *,
                start_frame: int, end_frame: int, n_min: int) -> tuple[RepaintPlan, ExtendPlan]:
    """Outpainting (spec 6.4): pad the source with zeros, regenerate the padded frames from the retake noise
    (no cos/sin mix), keep the source path elsewhere. ``noise``/``retake_noise`` have the source length."""
    src_frames = src_latents.shape[-1]
    left, right = check_extend(src_frames, start_frame, end_frame)
    padded = F.pad(src_latents, (left, right))
    head = tail = None
    left_trim = right_trim = 0
    if padded.shape[-1] > MAX_FRAMES and left > 0:  # keep the start, cut the source's end
        right_trim = padded.shape[-1] - MAX_FRAMES
        tail, padded = padded[..., MAX_FRAMES:], padded[..., :MAX_FRAMES]
    elif padded.shape[-1] > MAX_FRAMES:  # right only: keep the end, cut the source's start
        left_trim = padded.shape[-1] - MAX_FRAMES
        head, padded = padded[..., :left_trim], padded[..., left_trim:]
    mask = torch.zeros_like(padded)
    if left > 0:
        mask[..., :left] = 1.0
    if right > 0:
        mask[..., -right:] = 1.0
    parts = [retake_noise[..., :left]] if left > 0 else []
    parts.append(noise[..., left_trim:src_frames - right_trim])
    if right > 0:
        parts.append(retake_noise[..., -right:])
    z0 = torch.cat(parts, dim=-1)
    return RepaintPlan(x0=padded, z0=z0, mask=mask, n_min=n_min), ExtendPlan(head=head, tail=tail)


def audio2audio_start(ref_latents: torch.Tensor, noise: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Noise the reference to the once-shifted ``sigma_max`` of the truncated schedule (spec 6.6 quirk)."""
    return ref_latents * (1 - sigma_max) + noise * sigma_max

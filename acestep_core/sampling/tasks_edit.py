"""FlowEdit lyric / style editing of ACE-Step v1 (spec 6.5; Kulikov et al. 2024, arXiv 2412.08629).

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py ``flowedit_diffusion_process`` and
``calc_v`` (Apache-2.0).

Always an Euler shift-3 schedule of N steps, APG at every step for both branches (no window, no ERG, no
omega); all noise comes from the retake generators. Edit phase ``int(N n_min) <= i < int(N n_max)``: the
edited latent follows the averaged difference of target and source velocities; afterwards plain target
sampling from the edited latent re-noised to that level.

Fixed upstream bug: with the PingPong scheduler upstream computes the edit-phase update but never applies it,
so the edit phase is a no-op. Here the edit phase always applies its (Euler, FlowEdit) update; the PingPong step
noise is still drawn so the random stream of the target phase stays upstream's. ``EditConfig.upstream_pingpong_bug``
reproduces the bug (the ``edit_remix_pingpong`` golden was recorded with it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..runtime.accel import Denoiser
from .conditions import ConditionSet
from .guidance import MomentumBuffer, apg
from .loop import Progress
from .noise import randn_per_item
from .schedule import Schedule
from .schedulers import draw_normal


@dataclass(frozen=True)
class EditConfig:
    """FlowEdit settings: ``n_min`` / ``n_max`` are fractions of the N steps, ``n_avg`` noise draws per step."""

    guidance_scale: float
    n_min: float
    n_max: float
    n_avg: int
    do_cfg: bool
    pingpong: bool
    upstream_pingpong_bug: bool = False  # True: PingPong edit phase computes but discards its update (upstream)


def edit_phase_bounds(num_steps: int, config: EditConfig) -> tuple[int, int]:
    """Loop indices ``(a, b)``: skip ``i < a``, edit phase ``a <= i < b``, target sampling ``i >= b``."""
    return int(num_steps * config.n_min), int(num_steps * config.n_max)


class EditVelocity:
    """APG-guided velocity of one branch, decoding ``[x; x]`` against ``[cond; uncond]`` in one batch."""

    def __init__(self, denoiser: Denoiser, conditions: ConditionSet, config: EditConfig) -> None:
        self.denoiser, self.conditions, self.config = denoiser, conditions, config

    def __call__(self, x: torch.Tensor, t: torch.Tensor, momentum: MomentumBuffer | None) -> torch.Tensor:
        x = x.to(self.conditions.cond.dtype)  # upstream feeds float32 here with PingPong (a crash in bf16)
        model_input = torch.cat([x, x]) if self.config.do_cfg else x
        out = self.denoiser(model_input, self.conditions.cond, self.conditions.mask, t.reshape(1))
        if not self.config.do_cfg:
            return out
        v_cond, v_uncond = out.chunk(2)
        return apg(v_cond, v_uncond, self.config.guidance_scale, momentum)


@torch.no_grad()
def run_flowedit(denoiser: Denoiser, source: ConditionSet, target: ConditionSet, src_latents: torch.Tensor,
                 schedule: Schedule, config: EditConfig, generators: Sequence[torch.Generator], *,
                 progress: Progress, trace: Callable[[int, str, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Edit ``src_latents`` [B, 8, 16, T] from the source condition toward the target condition;
    ``trace(-1, "noise.k", tensor)`` sees the k-th Gaussian draw."""
    dtype, device = src_latents.dtype, src_latents.device
    v_source = EditVelocity(denoiser, source, config)
    v_target = EditVelocity(denoiser, target, config)
    momentum_src, momentum_tar = MomentumBuffer(), MomentumBuffer()
    timesteps = schedule.timesteps.to(device)
    first, last = edit_phase_bounds(len(timesteps), config)
    z_edit, x_tar = src_latents.clone(), None

    draws = 0

    def draw() -> torch.Tensor:
        nonlocal draws
        noise = randn_per_item(src_latents.shape, generators, device=device, dtype=dtype)
        if trace is not None:
            trace(-1, f"noise.{draws}", noise)
        draws += 1
        return noise

    for index, t in enumerate(timesteps):
        if index < first:
            continue
        progress.before_step()
        sigma = t / 1000
        sigma_next = timesteps[index + 1] / 1000 if index + 1 < len(timesteps) else torch.zeros_like(sigma)
        if index < last:
            delta = torch.zeros_like(src_latents)
            for _ in range(config.n_avg):
                z_src = (1 - sigma) * src_latents + sigma * draw()
                z_tar = z_edit + z_src - src_latents
                v_src = v_source(z_src, t, momentum_src)
                delta += (1 / config.n_avg) * (v_target(z_tar, t, None) - v_src)
            z_edit = z_edit.to(torch.float32)
            if config.pingpong:  # upstream draws a PingPong step noise here (and, as a bug, drops the update)
                draw_normal(z_edit, generators[0], dtype=z_edit.dtype)
            if not (config.pingpong and config.upstream_pingpong_bug):
                z_edit = (z_edit + (sigma_next - sigma) * delta).to(dtype)
        else:
            if index == last:
                level = schedule.sigmas[index]
                x_tar = z_edit + (level * draw() + (1.0 - level) * src_latents) - src_latents
            assert x_tar is not None
            velocity = v_target(x_tar, t, momentum_tar)
            x_tar = x_tar.to(torch.float32)
            if config.pingpong:
                denoised = x_tar - sigma * velocity
                noise = draw_normal(z_edit, generators[0], dtype=z_edit.dtype)
                x_tar = (1 - sigma_next) * denoised + sigma_next * noise
            else:
                x_tar = (x_tar + (sigma_next - sigma) * velocity).to(dtype)
        progress.after_step(z_edit if x_tar is None else x_tar)
    return z_edit if x_tar is None else x_tar

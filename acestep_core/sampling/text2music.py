"""Orchestration of the non-edit tasks: schedule, start latents, conditions, loop (spec 5.9, 6.1-6.4, 6.6).

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py ``text2music_diffusion_process``
(Apache-2.0). Noise draw order as upstream: initial noise (manual-seed generators), then retake noise
(retake generators) for retake / repaint / extend, then one PingPong draw per step from generator 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..errors import AceStepInputError
from ..runtime.accel import Acceleration, Denoiser
from ..timing import seconds_to_frames
from .conditions import LyricTokens, PromptStates, build_conditions
from .guidance import uses_double_condition, uses_guidance
from .loop import GuidanceConfig, GuidedVelocity, Progress, RepaintPlan, count_steps, run_loop
from .noise import randn_per_item
from .schedule import (
    Schedule,
    audio2audio_schedule,
    flow_schedule,
    guidance_window,
    oss_schedule,
)
from .schedulers import make_stepper
from .tasks import ExtendPlan, audio2audio_start, extend_plan, repaint_frames, repaint_plan, retake_mix

if TYPE_CHECKING:
    from .params import GenerationParams

RETAKE_TASKS = ("retake", "repaint", "extend")


@dataclass(frozen=True)
class Text2MusicInputs:
    """Resolved inputs of one non-edit generation (latents already on the device, batch B)."""

    task: str
    batch_size: int
    frames: int
    params: GenerationParams
    oss_steps: list[int]
    src_latents: torch.Tensor | None = None
    ref_latents: torch.Tensor | None = None


def build_schedule(inputs: Text2MusicInputs, dtype: torch.dtype) -> tuple[Schedule, int]:
    """The sampling schedule and the step count upstream uses for ``n_min`` / audio2audio (``max(oss)``
    with ``oss_steps``)."""
    p = inputs.params
    if inputs.oss_steps:
        return oss_schedule(inputs.oss_steps, p.scheduler_type, timestep_dtype=dtype), max(inputs.oss_steps)
    return flow_schedule(p.infer_step, p.scheduler_type), p.infer_step


def _retake_start(inputs: Text2MusicInputs, noise: torch.Tensor, retake_noise: torch.Tensor, n_min: int
                  ) -> tuple[torch.Tensor, RepaintPlan | None, ExtendPlan | None]:
    """Retake mix, or the repaint / extend plans (spec 6.2-6.4)."""
    p = inputs.params
    end = p.audio_duration if inputs.task == "retake" else p.repaint_end
    start = 0 if inputs.task == "retake" else p.repaint_start
    start_frame, end_frame = repaint_frames(start, end)
    is_extend = start_frame < 0 or end_frame > inputs.frames
    if not is_extend and end_frame - start_frame == inputs.frames:  # whole track: a retake (upstream quirk)
        return retake_mix(noise, retake_noise, p.retake_variance), None, None
    if inputs.src_latents is None:
        raise AceStepInputError(f"task '{inputs.task}': src_latents are required for a repaint/extend window")
    if is_extend:
        plan, extend = extend_plan(inputs.src_latents, noise, retake_noise, start_frame=start_frame,
                                   end_frame=end_frame, n_min=n_min)
        return noise, plan, extend
    plan = repaint_plan(inputs.src_latents, noise, retake_noise, start_frame=start_frame, end_frame=end_frame,
                        retake_variance=p.retake_variance, n_min=n_min)
    return noise, plan, None


def guidance_config(params: GenerationParams, schedule: Schedule) -> GuidanceConfig:
    """Guidance settings of a text2music-style loop."""
    return GuidanceConfig(
        guidance_scale=params.guidance_scale, cfg_type=params.cfg_type,
        window=guidance_window(schedule.num_inference_steps, params.guidance_interval),
        do_cfg=uses_guidance(params.guidance_scale),
        double_condition=uses_double_condition(params.guidance_scale_text, params.guidance_scale_lyric),
        guidance_scale_text=params.guidance_scale_text, guidance_scale_lyric=params.guidance_scale_lyric,
        decay=params.guidance_interval_decay, min_guidance_scale=params.min_guidance_scale,
        erg_diffusion=params.use_erg_diffusion)


@torch.no_grad()
def run_text2music(transformer: Any, inputs: Text2MusicInputs, prompt: PromptStates, lyrics: LyricTokens, *,
                   generators: Sequence[torch.Generator], retake_generators: Sequence[torch.Generator],
                   device: torch.device, dtype: torch.dtype, callback: Callable[..., None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   trace: Callable[[int, str, torch.Tensor], None] | None = None,
                   acceleration: Acceleration | None = None) -> torch.Tensor:
    """Sample latents [B, 8, 16, T] for text2music / retake / repaint / extend / audio2audio; ``acceleration``
    says how the transformer passes run (:mod:`acestep_core.runtime.accel`)."""
    p = inputs.params
    schedule, infer_steps = build_schedule(inputs, dtype)
    shape = (inputs.batch_size, 8, 16, inputs.frames)
    x = randn_per_item(shape, generators, device=device, dtype=dtype)
    if trace is not None:
        trace(-1, "noise.0", x)
    repaint: RepaintPlan | None = None
    extend: ExtendPlan | None = None
    if inputs.task in RETAKE_TASKS:
        n_min = int(infer_steps * (1 - p.retake_variance))
        retake_noise = randn_per_item(shape, retake_generators, device=device, dtype=dtype)
        if trace is not None:
            trace(-1, "noise.1", retake_noise)
        x, repaint, extend = _retake_start(inputs, x, retake_noise, n_min)
    if inputs.task == "audio2audio":
        assert inputs.ref_latents is not None
        schedule = audio2audio_schedule(p.ref_audio_strength, infer_steps, p.scheduler_type)
        x = audio2audio_start(inputs.ref_latents, x, schedule.sigma_max)
    config = guidance_config(p, schedule)
    conditions = build_conditions(transformer, prompt, lyrics, use_erg_lyric=p.use_erg_lyric,
                                  with_uncond=config.do_cfg, with_only_text=config.do_cfg and config.double_condition)
    velocity = GuidedVelocity(Denoiser(transformer, acceleration), conditions, config)
    stepper = make_stepper(schedule, omega_scale=p.omega_scale, generator=generators[0])
    progress = Progress(count_steps(schedule, repaint), callback, should_stop)
    x = run_loop(x, schedule, velocity, stepper, repaint=repaint, progress=progress, trace=trace)
    return extend.attach(x) if extend is not None else x


def frames_for(task: str, duration_s: float, src: torch.Tensor | None, ref: torch.Tensor | None) -> int:
    """Latent length: the reference's (audio2audio), else the source's, else from the duration."""
    if ref is not None:
        return int(ref.shape[-1])
    if src is not None:
        return int(src.shape[-1])
    return seconds_to_frames(duration_s)

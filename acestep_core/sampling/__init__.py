"""Sampling engine of ACE-Step v1: schedules, update rules, guidance, seeds/noise, conditions and tasks.

Small pure pieces (k-diffusion style) composed by :func:`acestep_core.sampling.pipeline.generate`:

* :mod:`.schedule` - sigma / timestep schedules (double / triple shift, ``oss_steps``, audio2audio);
* :mod:`.schedulers` - Euler + omega, Heun, PingPong with one ``step(x, v, index)`` signature;
* :mod:`.guidance` - CFG, APG + momentum, CFG-Zero*, double-condition CFG, window / decay;
* :mod:`.noise` - seed parsing and per-item generators in upstream's draw order;
* :mod:`.conditions` - cond / uncond / only-text condition sets with ERG as explicit query scales;
* :mod:`.loop`, :mod:`.text2music`, :mod:`.tasks`, :mod:`.tasks_edit` - the sampling loops of every task;
* :mod:`.validation` - parameter / latent checks run before any model work.
"""

from __future__ import annotations

from .guidance import MomentumBuffer, apg, cfg, cfg_double, cfg_star, guidance_scale_at
from .loop import GenerationInterrupted, StepInfo
from .noise import make_generators, randn_per_item, resolve_seeds
from .schedule import (
    Schedule,
    audio2audio_schedule,
    custom_sigma_schedule,
    flow_schedule,
    guidance_window,
    oss_schedule,
    parse_oss_steps,
    training_sigmas,
)
from .schedulers import HeunStepper, euler_step, make_stepper, omega_rescale, pingpong_step

__all__ = [
    "GenerationInterrupted",
    "HeunStepper",
    "MomentumBuffer",
    "Schedule",
    "StepInfo",
    "apg",
    "audio2audio_schedule",
    "cfg",
    "cfg_double",
    "cfg_star",
    "custom_sigma_schedule",
    "euler_step",
    "flow_schedule",
    "guidance_scale_at",
    "guidance_window",
    "make_generators",
    "make_stepper",
    "omega_rescale",
    "oss_schedule",
    "parse_oss_steps",
    "pingpong_step",
    "randn_per_item",
    "resolve_seeds",
    "training_sigmas",
]

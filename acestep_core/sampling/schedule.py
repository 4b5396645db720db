"""Flow-matching sigma / timestep schedules of ACE-Step v1 (spec 5.2, 5.4, 5.6, 6.6).

Ported from ace-step/ACE-Step@d612523 acestep/schedulers/scheduling_flow_match_{euler_discrete,heun_discrete,
pingpong}.py and the schedule parts of acestep/pipeline_ace_step.py (Apache-2.0).

The numbers reproduce upstream bit for bit, quirks included:

- the *double shift*: the training grid is shifted once to get ``[sigma_max, sigma_min]``, and
  ``set_timesteps`` shifts the linear ramp between them again (last sigma 0.00893 instead of 0.00299);
- the *triple shift* of ``oss_steps``: the picked timesteps, rounded to the model dtype, are divided by 1000
  and shifted a third time;
- audio2audio builds the schedule from ``sigma_max = 1 - strength`` (so its first sigma is shifted twice)
  while the reference latent is noised at the once-shifted level :attr:`Schedule.sigma_max`.

numpy's ``linspace`` (used upstream) is re-created with float64 torch ops in the same order, so every value
is identical without importing numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .choices import SchedulerName

SHIFT = 3.0  # upstream FlowMatch*Scheduler(shift=3.0)
NUM_TRAIN_TIMESTEPS = 1000  # upstream num_train_timesteps


@dataclass(frozen=True)
class Schedule:
    """What the sampling loop iterates over.

    Attributes:
        timesteps: [K] float32 model timesteps ``t = 1000 * sigma`` (K = N, or 2N - 1 for Heun).
        sigmas: [K + 1] float32 noise levels, ending with 0 (Heun: inner values repeated).
        num_inference_steps: the step count upstream's ``retrieve_timesteps`` reports (N for Heun, not
            2N - 1); the guidance window is computed from it.
        sigma_max: the once-shifted top of the training grid (audio2audio noises the reference at it).
        sigma_min: the once-shifted bottom of the training grid (``shift(0.001)``).
        scheduler: which update rule the schedule is laid out for.
    """

    timesteps: torch.Tensor
    sigmas: torch.Tensor
    num_inference_steps: int
    sigma_max: float
    sigma_min: float
    scheduler: SchedulerName


def shift_sigmas(sigmas: torch.Tensor, shift: float = SHIFT) -> torch.Tensor:
    """SD3-style time shift ``shift * s / (1 + (shift - 1) * s)``, in the dtype of ``sigmas``."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def np_linspace(start: float, stop: float, num: int) -> torch.Tensor:
    """float64 ``numpy.linspace(start, stop, num)`` with numpy's exact arithmetic (step multiply, exact end)."""
    values = torch.arange(num, dtype=torch.float64)
    div = num - 1
    if div > 0:
        step = (stop - start) / div
        values = values / div * (stop - start) if step == 0 else values * step
    else:
        values = values * (stop - start)
    values = values + start
    if num > 1:
        values[-1] = stop
    return values


def training_sigmas(sigma_max: float = 1.0, shift: float = SHIFT) -> torch.Tensor:
    """[1000] float32 shifted training grid, descending (upstream scheduler ``__init__``; the trainer's
    ``--shift``)."""
    grid = np_linspace(1.0, sigma_max * NUM_TRAIN_TIMESTEPS, NUM_TRAIN_TIMESTEPS).to(torch.float32).flip(0)
    return shift_sigmas(grid / NUM_TRAIN_TIMESTEPS, shift)


def sigma_range(sigma_max: float = 1.0) -> tuple[float, float]:
    """``(sigma_max, sigma_min)`` attributes of a freshly built scheduler (python floats of float32 values)."""
    sigmas = training_sigmas(sigma_max)
    return float(sigmas[0].item()), float(sigmas[-1].item())


def _ramp_sigmas(num_steps: int, sigma_max: float, sigma_min: float) -> torch.Tensor:
    """``set_timesteps(N)``: linear ramp between the (already shifted) range, shifted again -> [N] float32."""
    ramp = np_linspace(sigma_max * NUM_TRAIN_TIMESTEPS, sigma_min * NUM_TRAIN_TIMESTEPS, num_steps)
    return shift_sigmas(ramp / NUM_TRAIN_TIMESTEPS).to(torch.float32)


def _from_sigmas(sigmas: torch.Tensor, *, steps: int, top: float, bottom: float,
                 scheduler: SchedulerName) -> Schedule:
    timesteps = sigmas * NUM_TRAIN_TIMESTEPS
    full = torch.cat([sigmas, sigmas.new_zeros(1)])
    if scheduler == "heun":  # every inner timestep/sigma twice: predictor + corrector
        timesteps = torch.cat([timesteps[:1], timesteps[1:].repeat_interleave(2)])
        full = torch.cat([full[:1], full[1:-1].repeat_interleave(2), full[-1:]])
    return Schedule(timesteps, full, steps, top, bottom, scheduler)


def flow_schedule(num_steps: int, scheduler: SchedulerName = "euler", *, sigma_max: float = 1.0) -> Schedule:
    """The schedule of ``retrieve_timesteps(scheduler(shift=3, sigma_max=...), num_steps)`` (spec 5.2, 5.4)."""
    top, bottom = sigma_range(sigma_max)
    sigmas = _ramp_sigmas(num_steps, top, bottom)
    return _from_sigmas(sigmas, steps=num_steps, top=top, bottom=bottom, scheduler=scheduler)


def custom_sigma_schedule(sigmas: torch.Tensor, scheduler: SchedulerName = "euler") -> Schedule:
    """``set_timesteps(sigmas=...)`` of the Euler/PingPong schedulers: float32 shift of the given sigmas.

    Heun has no custom-sigma schedule upstream (callers reject it before getting here)."""
    if scheduler == "heun":
        raise ValueError("the Heun scheduler has no custom-sigma schedule (upstream raises as well)")
    top, bottom = sigma_range(1.0)
    shifted = shift_sigmas(sigmas.to(torch.float32))
    return _from_sigmas(shifted, steps=len(shifted), top=top, bottom=bottom, scheduler=scheduler)


def parse_oss_steps(oss_steps: str | list[int] | tuple[int, ...] | None) -> list[int]:
    """Upstream's ``oss_steps`` string ``"16, 29, 52"`` (or a list) -> list of 1-based step indices ([] = off)."""
    if oss_steps is None:
        return []
    if isinstance(oss_steps, str):
        return [int(item) for item in oss_steps.split(",")] if oss_steps.strip() else []
    return [int(item) for item in oss_steps]


def oss_schedule(oss_steps: list[int], scheduler: SchedulerName = "euler", *,
                 timestep_dtype: torch.dtype = torch.float32) -> Schedule:
    """Optimal-step subset (spec 5.6): pick ``t[o - 1]`` of a ``max(oss_steps)``-step schedule, round them to
    ``timestep_dtype`` (upstream stores them in the model dtype, bf16 on GPU), divide by 1000 and shift again."""
    base = flow_schedule(max(oss_steps), scheduler)
    picked = torch.stack([base.timesteps[index - 1] for index in oss_steps]).to(timestep_dtype)
    return custom_sigma_schedule((picked / NUM_TRAIN_TIMESTEPS).float(), scheduler)


def audio2audio_schedule(ref_audio_strength: float, num_steps: int,
                         scheduler: SchedulerName = "euler") -> Schedule:
    """Truncated schedule of audio2audio (spec 6.6): ``sigma_max = 1 - strength``, ``int(sigma_max * N)`` steps."""
    sigma_max = 1 - ref_audio_strength
    return flow_schedule(int(sigma_max * num_steps), scheduler, sigma_max=sigma_max)


def guidance_window(num_inference_steps: int, guidance_interval: float) -> tuple[int, int]:
    """``[start, end)`` loop indices that get guidance (spec 5.7), upstream's exact float expressions."""
    start = int(num_inference_steps * ((1 - guidance_interval) / 2))
    end = int(num_inference_steps * (guidance_interval / 2 + 0.5))
    return start, end



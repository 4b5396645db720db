"""Update rules of the three ACE-Step v1 samplers: Euler + omega, Heun, PingPong (spec 5.3-5.5).

Ported from ace-step/ACE-Step@d612523 acestep/schedulers/*.py (Apache-2.0), k-diffusion style: each rule is a
small function of ``(x, v, sigma, sigma_next)``; :func:`make_stepper` binds one to a :class:`Schedule` and gives
every sampler the same signature ``step(x, velocity, index) -> x_next``.

dtype handling follows upstream exactly: ``x`` goes to float32, ``sigma`` / ``sigma_next`` are 0-d float32 CPU
tensors (so ``(sigma_next - sigma) * v`` keeps the velocity's dtype, bf16 on GPU), and the new sample is cast
back to the velocity's dtype.

Divergences: none (Heun's stochastic churn, always off upstream, is not ported).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .schedule import Schedule

Stepper = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def omega_rescale(omega_scale: float) -> float:
    """Logistic map of ``omega_scale`` ("granularity") into (0.9, 1.1); 10 -> 1.046212, 0 -> 1."""
    return 0.9 + (1.1 - 0.9) / (1 + math.exp(-0.1 * omega_scale))


def omega_update(delta: torch.Tensor, omega: float) -> torch.Tensor:
    """Scale the deviation of an update from its mean over the WHOLE tensor (all batch items) by ``omega``."""
    mean = delta.mean()
    return (delta - mean) * omega + mean


def euler_step(x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
               omega: float) -> torch.Tensor:
    """Implements the ACE-Step Euler step ``x + omega_update((sigma_next - sigma) * v)`` (spec 5.3)."""
    return (x.to(torch.float32) + omega_update((sigma_next - sigma) * velocity, omega)).to(velocity.dtype)


def pingpong_step(x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                  noise: torch.Tensor) -> torch.Tensor:
    """Implements the PingPong SDE step of Stable Audio Open Small: re-noise the x0 estimate to ``sigma_next``."""
    denoised = x.to(torch.float32) - sigma * velocity
    return ((1 - sigma_next) * denoised + sigma_next * noise).to(velocity.dtype)


def draw_normal(like: torch.Tensor, generator: torch.Generator | None, *,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``torch.empty_like(like).normal_(generator)`` drawn on the generator's device, moved to ``like``'s.

    The memory layout of ``like`` is kept on purpose: CPU ``normal_`` fills contiguous tensors with a
    vectorised sampler and strided ones (e.g. channels-last latents from the DCAE encoder) element by element
    with another one, so the layout decides the values, exactly as upstream's ``empty_like(sample)``."""
    gen_device = generator.device if generator is not None else like.device
    noise = torch.empty_like(like, dtype=dtype, device=gen_device).normal_(generator=generator)
    return noise.to(like.device)


class HeunStepper:
    """Implements Heun's 2nd-order method (Karras et al. 2022, Alg. 1 without churn) as upstream lays it out.

    Even loop indices are predictors (store ``x``, ``d`` and ``dt``), odd ones correctors evaluated at
    ``sigma_next`` on the predicted sample; the last index is a plain predictor to sigma 0.
    """

    def __init__(self, schedule: Schedule, omega: float) -> None:
        self.sigmas = schedule.sigmas
        self.omega = omega
        self._saved: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # x, d, dt

    def __call__(self, x: torch.Tensor, velocity: torch.Tensor, index: int) -> torch.Tensor:
        x = x.to(torch.float32)
        if self._saved is None:
            sigma, sigma_next = self.sigmas[index], self.sigmas[index + 1]
            sigma_hat = sigma * 1.0  # upstream: sigma * (gamma + 1) with churn gamma = 0
            derivative = (x - (x - velocity * sigma)) / sigma_hat
            dt = sigma_next - sigma_hat
            self._saved = (x, derivative, dt)
        else:
            sigma_next = self.sigmas[index]
            corrected = (x - (x - velocity * sigma_next)) / sigma_next
            x, first, dt = self._saved
            derivative = 0.5 * (first + corrected)
            self._saved = None
        return (x + omega_update(derivative * dt, self.omega)).to(velocity.dtype)


def make_stepper(schedule: Schedule, *, omega_scale: float = 10.0,
                 generator: torch.Generator | None = None) -> Stepper:
    """Bind the update rule of ``schedule.scheduler`` to its sigmas.

    Args:
        schedule: from :mod:`acestep_core.sampling.schedule`.
        omega_scale: upstream ``omega_scale`` (Euler and Heun; PingPong ignores it).
        generator: PingPong's noise source (upstream: the first batch item's generator, one draw per step
            for the whole batch).
    """
    omega = omega_rescale(omega_scale)
    sigmas = schedule.sigmas
    if schedule.scheduler == "heun":
        return HeunStepper(schedule, omega)
    if schedule.scheduler == "pingpong":
        def pingpong(x: torch.Tensor, velocity: torch.Tensor, index: int) -> torch.Tensor:
            noise = draw_normal(x.to(torch.float32), generator)
            return pingpong_step(x, velocity, sigmas[index], sigmas[index + 1], noise)
        return pingpong

    def euler(x: torch.Tensor, velocity: torch.Tensor, index: int) -> torch.Tensor:
        return euler_step(x, velocity, sigmas[index], sigmas[index + 1], omega)
    return euler

"""The text2music denoising loop (also retake, repaint, extend and audio2audio) and its guided velocity.

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py ``text2music_diffusion_process``
(Apache-2.0); order of operations as spec 5.9 / 6.3.

Divergence: progress reporting (``callback``) and interruption (``should_stop``) hooks; the loop is otherwise
upstream's, including the Heun guidance-window quirk (the window is computed from N but indexes the 2N - 1
Heun iterations, pinned by the goldens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..transformer import ERG_TEMPERATURE
from .conditions import ConditionSet
from .guidance import MomentumBuffer, apg, cfg, cfg_double, cfg_star, guidance_scale_at
from .schedule import Schedule
from .schedulers import Stepper

CfgType = Literal["apg", "cfg", "cfg_star"]
CFG_TYPES: tuple[CfgType, ...] = ("apg", "cfg", "cfg_star")


class GenerationInterrupted(RuntimeError):  # noqa: N818 - public name fixed by the pipeline contract
    """Raised when ``should_stop()`` returns True before a sampling step."""


@dataclass(frozen=True)
class StepInfo:
    """Progress after a sampling step: ``step`` (1-based) of ``total`` and the current ``latents``."""

    step: int
    total: int
    latents: torch.Tensor


@dataclass
class Progress:
    """Optional progress callback and stop check, counted over the steps that actually run."""

    total: int
    callback: Callable[[StepInfo], None] | None = None
    should_stop: Callable[[], bool] | None = None
    done: int = 0

    def before_step(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise GenerationInterrupted(f"generation stopped by should_stop() before step {self.done + 1}"
                                        f" of {self.total}")

    def after_step(self, latents: torch.Tensor) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(StepInfo(self.done, self.total, latents))


@dataclass(frozen=True)
class GuidanceConfig:
    """Everything that decides how a step's velocity is guided (spec 5.7)."""

    guidance_scale: float
    cfg_type: CfgType
    window: tuple[int, int]
    do_cfg: bool
    double_condition: bool = False
    guidance_scale_text: float = 0.0
    guidance_scale_lyric: float = 0.0
    decay: float = 0.0
    min_guidance_scale: float = 3.0
    erg_diffusion: bool = False


class GuidedVelocity:
    """``v(x, t, i)``: conditional decode, plus uncond / only-text decodes and guidance inside the window."""

    def __init__(self, transformer: Any, conditions: ConditionSet, config: GuidanceConfig) -> None:
        self.transformer = transformer
        self.conditions = conditions
        self.config = config
        self.momentum = MomentumBuffer()

    def _decode(self, x: torch.Tensor, states: torch.Tensor, timestep: torch.Tensor,
                query_scale: float = 1.0) -> torch.Tensor:
        frame_mask = x.new_ones(x.shape[0], x.shape[-1])
        return self.transformer.decode(x, frame_mask, states, self.conditions.mask, timestep,
                                       output_length=x.shape[-1], query_scale=query_scale)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, index: int) -> torch.Tensor:
        cfg_conf, conds = self.config, self.conditions
        timestep = t.expand(x.shape[0])
        start, end = cfg_conf.window
        if not (cfg_conf.do_cfg and start <= index < end):
            return self._decode(x, conds.cond, timestep)
        assert conds.uncond is not None  # built whenever do_cfg
        scale = guidance_scale_at(index, cfg_conf.window, cfg_conf.guidance_scale, cfg_conf.min_guidance_scale,
                                  cfg_conf.decay)
        v_cond = self._decode(x, conds.cond, timestep)
        v_text = None
        if cfg_conf.double_condition and conds.only_text is not None:
            v_text = self._decode(x, conds.only_text, timestep)
        erg = ERG_TEMPERATURE if cfg_conf.erg_diffusion else 1.0
        v_uncond = self._decode(x, conds.uncond, timestep, query_scale=erg)
        if v_text is not None:
            return cfg_double(v_cond, v_uncond, v_text, cfg_conf.guidance_scale_text, cfg_conf.guidance_scale_lyric)
        if cfg_conf.cfg_type == "apg":
            return apg(v_cond, v_uncond, scale, self.momentum)
        if cfg_conf.cfg_type == "cfg":
            return cfg(v_cond, v_uncond, scale)
        return cfg_star(v_cond, v_uncond, scale, index)


@dataclass(frozen=True)
class RepaintPlan:
    """Masked re-generation (spec 6.3): start at loop index ``n_min`` from the source noised to that level,
    then keep the region outside ``mask`` on the re-noised source path."""

    x0: torch.Tensor  # [B, 8, 16, T] source latents (extend: zero-padded)
    z0: torch.Tensor  # [B, 8, 16, T] noise of the source path
    mask: torch.Tensor  # [B, 8, 16, T] 1 = regenerate
    n_min: int


def _sigma_pair(timesteps: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t_i / 1000, t_{i+1} / 1000)`` as 0-d float32 tensors (0 after the last step), as upstream."""
    sigma = timesteps[index] / 1000
    sigma_next = timesteps[index + 1] / 1000 if index + 1 < len(timesteps) else torch.zeros_like(sigma)
    return sigma, sigma_next


def _repaint_start(plan: RepaintPlan, sigma: torch.Tensor) -> torch.Tensor:
    source_path = (1 - sigma) * plan.x0 + sigma * plan.z0
    return plan.x0.clone() + source_path - plan.x0  # FlowEdit form of upstream (z_edit = x0), not just y


def _repaint_update(x: torch.Tensor, velocity: torch.Tensor, plan: RepaintPlan, sigma: torch.Tensor,
                    sigma_next: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    x = (x.to(torch.float32) + (sigma_next - sigma) * velocity).to(dtype)
    source_path = (1 - sigma_next) * plan.x0 + sigma_next * plan.z0
    return torch.where(plan.mask == 1.0, x, source_path)


def count_steps(schedule: Schedule, repaint: RepaintPlan | None) -> int:
    """Loop iterations that run (repaint skips the first ``n_min``)."""
    skipped = min(repaint.n_min, len(schedule.timesteps)) if repaint is not None else 0
    return len(schedule.timesteps) - skipped


@torch.no_grad()
def run_loop(x: torch.Tensor, schedule: Schedule, velocity: GuidedVelocity, stepper: Stepper, *,
             repaint: RepaintPlan | None, progress: Progress,
             trace: Callable[[int, str, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Iterate the schedule; ``trace(i, name, tensor)`` (tests) sees ``sample_in``, ``model_output``,
    ``prev_sample`` of each scheduler step."""
    timesteps = schedule.timesteps.to(x.device)
    for index, t in enumerate(timesteps):
        if repaint is not None and index < repaint.n_min:
            continue
        progress.before_step()
        if repaint is not None and index == repaint.n_min:
            x = _repaint_start(repaint, t / 1000)
        v = velocity(x, t, index)
        if repaint is not None:
            x = _repaint_update(x, v, repaint, *_sigma_pair(timesteps, index))
        else:
            if trace is not None:
                trace(index, "sample_in", x)
                trace(index, "model_output", v)
            x = stepper(x, v, index)
            if trace is not None:
                trace(index, "prev_sample", x)
        progress.after_step(x)
    return x

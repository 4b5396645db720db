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

import torch

from ..runtime.accel import Denoiser
from ..transformer import ERG_TEMPERATURE
from .choices import CfgType
from .conditions import ConditionSet
from .guidance import MomentumBuffer, apg, cfg, cfg_double, cfg_star, guidance_scale_at
from .schedule import Schedule
from .schedulers import Stepper


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
    """``v(x, t, i)``: conditional decode, plus uncond / only-text decodes and guidance inside the window.

    With ``denoiser.batch_guidance`` (the default) the passes of a guided step run as one batch
    ``[cond; (only_text;) uncond]``, ERG-diffusion as the per-item query scale of the unconditional items.
    """

    def __init__(self, denoiser: Denoiser, conditions: ConditionSet, config: GuidanceConfig) -> None:
        self.denoiser = denoiser
        self.conditions = conditions
        self.config = config
        self.momentum = MomentumBuffer()
        self._batched: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def _uncond_query_scale(self) -> float:
        """ERG-diffusion factor of the unconditional pass (1 = off)."""
        return ERG_TEMPERATURE if self.config.erg_diffusion else 1.0

    def _guided_batch(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """States, mask and per-item query scales of the batched guided pass (built once)."""
        if self._batched is None:
            conds = self.conditions
            branches = [conds.cond]
            if self.config.double_condition and conds.only_text is not None:
                branches.append(conds.only_text)
            assert conds.uncond is not None  # built whenever do_cfg
            branches.append(conds.uncond)
            scales = torch.ones(batch * len(branches), dtype=torch.float32, device=conds.cond.device)
            scales[-batch:] = self._uncond_query_scale
            self._batched = (torch.cat(branches), conds.mask.repeat(len(branches), 1), scales)
        return self._batched

    def _guided_passes(self, x: torch.Tensor, timestep: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """``(v_cond, v_text or None, v_uncond)`` of one guided step."""
        conds = self.conditions
        with_text = self.config.double_condition and conds.only_text is not None
        if self.denoiser.batch_guidance:
            states, mask, scales = self._guided_batch(x.shape[0])
            branches = 3 if with_text else 2
            out = self.denoiser(torch.cat([x] * branches), states, mask, timestep, scales).chunk(branches)
            return out[0], out[1] if with_text else None, out[-1]
        assert conds.uncond is not None
        v_cond = self.denoiser(x, conds.cond, conds.mask, timestep)
        v_text = None
        if with_text and conds.only_text is not None:
            v_text = self.denoiser(x, conds.only_text, conds.mask, timestep)
        return v_cond, v_text, self.denoiser(x, conds.uncond, conds.mask, timestep, self._uncond_query_scale)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, index: int) -> torch.Tensor:
        cfg_conf, conds = self.config, self.conditions
        timestep = t.reshape(1)
        start, end = cfg_conf.window
        if not (cfg_conf.do_cfg and start <= index < end):
            return self.denoiser(x, conds.cond, conds.mask, timestep)
        scale = guidance_scale_at(index, cfg_conf.window, cfg_conf.guidance_scale, cfg_conf.min_guidance_scale,
                                  cfg_conf.decay)
        v_cond, v_text, v_uncond = self._guided_passes(x, timestep)
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

"""``GenerationParams``: the original app's generation arguments (names, defaults), validated before any work."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ..errors import AceStepInputError
from .choices import CfgType, SchedulerName, TaskName
from .noise import SeedSpec
from .validation import validate_params

__all__ = ["UPSTREAM_ONLY_KWARGS", "GenerationParams"]

# Arguments of upstream ``__call__`` that belong to other layers (files, LoRA, logging): accepted and ignored by
# :meth:`GenerationParams.from_kwargs` so a recorded call can be replayed.
UPSTREAM_ONLY_KWARGS = frozenset({"format", "save_path", "debug", "lora_name_or_path", "lora_weight",
                                  "src_audio_path", "ref_audio_input"})


@dataclass(frozen=True)
class GenerationParams:
    """Upstream ``ACEStepPipeline.__call__`` arguments (same names and defaults) that shape the sampling.

    Seconds are used for ``audio_duration`` / ``repaint_start`` / ``repaint_end``; ``task`` is one of
    text2music, retake, repaint, extend, edit (audio2audio is ``audio2audio_enable`` + ``ref_latents``).
    Call :meth:`validate` (``generate`` does) to get every bad value as an :class:`AceStepInputError`.
    """

    prompt: str | None = None
    lyrics: str | None = None
    audio_duration: float = 60.0
    infer_step: int = 60
    guidance_scale: float = 15.0
    scheduler_type: SchedulerName = "euler"
    cfg_type: CfgType = "apg"
    omega_scale: float = 10.0
    manual_seeds: SeedSpec = None
    guidance_interval: float = 0.5
    guidance_interval_decay: float = 0.0
    min_guidance_scale: float = 3.0
    use_erg_tag: bool = True
    use_erg_lyric: bool = True
    use_erg_diffusion: bool = True
    oss_steps: str | list[int] | None = None
    guidance_scale_text: float = 0.0
    guidance_scale_lyric: float = 0.0
    audio2audio_enable: bool = False
    ref_audio_strength: float = 0.5
    retake_seeds: SeedSpec = None
    retake_variance: float = 0.5
    task: TaskName = "text2music"
    repaint_start: float = 0
    repaint_end: float = 0
    edit_target_prompt: str | None = None
    edit_target_lyrics: str | None = None
    edit_n_min: float = 0.0
    edit_n_max: float = 1.0
    edit_n_avg: int = 1
    batch_size: int = 1

    def validate(self) -> None:
        """Raise :class:`AceStepInputError` (what, why, how to fix) for the first bad value."""
        validate_params(self)

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any]) -> GenerationParams:
        """Build from upstream ``__call__`` keyword arguments (file / LoRA / logging ones are ignored)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names - UPSTREAM_ONLY_KWARGS)
        if unknown:
            raise AceStepInputError(f"unknown generation parameters {unknown}; known: {sorted(names)}")
        return cls(**{k: v for k, v in kwargs.items() if k in names})

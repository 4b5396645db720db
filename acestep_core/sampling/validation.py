"""Checks of generation parameters and latents, run before any model work (what / why / how to fix).

Upstream ``ACEStepPipeline.__call__`` checks almost nothing; every check here is listed under DIVERGENCES
in :mod:`acestep_core.sampling.pipeline`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ..errors import AceStepInputError, NonFiniteResultError, check_latent_shape
from ..timing import LATENT_FRAME_RATE_HZ, MAX_DURATION_S, MAX_FRAMES, seconds_to_frames
from .choices import CFG_TYPES, SCHEDULERS, SOURCE_TASKS, TASKS
from .noise import parse_seeds
from .schedule import parse_oss_steps
from .tasks import check_extend

if TYPE_CHECKING:
    from .params import GenerationParams


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AceStepInputError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _in_unit(name: str, value: Any, meaning: str) -> None:
    if not 0.0 <= _number(name, value) <= 1.0:
        raise AceStepInputError(f"{name}: expected a value in [0, 1] ({meaning}), got {value!r}")


def _int_at_least(name: str, value: Any, low: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise AceStepInputError(f"{name}: expected an integer >= {low} ({meaning}), got {value!r}")


def _check_seeds(name: str, seeds: Any, batch_size: int) -> None:
    try:
        parsed = parse_seeds(seeds)
    except ValueError as err:
        raise AceStepInputError(f"{name}: cannot read {seeds!r} as seeds ({err}); use an int, a list of ints "
                                "or a string like '12,34'") from err
    if parsed is None and seeds is not None and not (isinstance(seeds, (list, tuple)) and len(seeds) == 0):
        raise AceStepInputError(f"{name}: cannot read {seeds!r} as seeds; use an int, a list of ints, a string "
                                "like '12,34', or None for random seeds")
    values = parsed if isinstance(parsed, list) else [] if parsed is None else [parsed]
    for seed in values:
        if not 0 <= seed < 2**64:
            raise AceStepInputError(f"{name}: seed {seed} is outside [0, 2**64)")
    if isinstance(parsed, list) and len(parsed) != batch_size:
        raise AceStepInputError(f"{name}: {len(parsed)} seeds for batch_size {batch_size}; give one seed per "
                                "batch item, or a single int for all items")


def _check_names(p: GenerationParams) -> None:
    if p.scheduler_type not in SCHEDULERS:
        raise AceStepInputError(f"scheduler_type: unknown {p.scheduler_type!r}; choose one of {list(SCHEDULERS)}")
    if p.cfg_type not in CFG_TYPES:
        raise AceStepInputError(f"cfg_type: unknown {p.cfg_type!r}; choose one of {list(CFG_TYPES)}")
    if p.task not in TASKS:
        raise AceStepInputError(f"task: unknown {p.task!r}; choose one of {list(TASKS)}")
    if not isinstance(p.prompt, str):
        raise AceStepInputError(f"prompt: expected a string (may be empty), got {type(p.prompt).__name__}")
    for name in ("lyrics", "edit_target_prompt", "edit_target_lyrics"):
        if getattr(p, name) is not None and not isinstance(getattr(p, name), str):
            raise AceStepInputError(f"{name}: expected a string or None, got {type(getattr(p, name)).__name__}")


def _check_duration(p: GenerationParams) -> None:
    duration = _number("audio_duration", p.audio_duration)
    if duration <= 0:
        raise AceStepInputError(f"audio_duration: {duration} s; pass a length in seconds in (0, 240] "
                                "(upstream would pick a random 30-240 s for values <= 0; here pick one yourself)")
    if duration > MAX_DURATION_S:
        raise AceStepInputError(f"audio_duration: {duration} s is longer than the model's 240 s window; generate "
                                "<= 240 s and lengthen it with task='extend'")
    if seconds_to_frames(duration) < 1:
        raise AceStepInputError(f"audio_duration: {duration} s is shorter than one latent frame (0.093 s)")


def _check_oss(p: GenerationParams) -> None:
    try:
        oss = parse_oss_steps(p.oss_steps)
    except (TypeError, ValueError) as err:
        raise AceStepInputError(f"oss_steps: cannot read {p.oss_steps!r}; expected 1-based step numbers like "
                                "'16, 29, 52'") from err
    if any(step < 1 for step in oss):
        raise AceStepInputError(f"oss_steps: step numbers are 1-based and must be >= 1, got {oss}")
    if oss and p.scheduler_type == "heun":
        raise AceStepInputError("oss_steps cannot be used with scheduler_type='heun' (Heun has no custom-sigma "
                                "schedule); use 'euler' or 'pingpong', or clear oss_steps")


def _check_windows(p: GenerationParams) -> None:
    start, end = _number("repaint_start", p.repaint_start), _number("repaint_end", p.repaint_end)
    if p.task == "repaint" and start < 0:
        raise AceStepInputError(f"repaint_start {start} s is before the start of the source; use 0 or more (to add "
                                "audio before the song, use task='extend')")
    if p.task == "repaint" and end <= start:
        raise AceStepInputError(f"repaint window: repaint_end ({end} s) must be after repaint_start ({start} s); "
                                "set repaint_end larger than repaint_start")
    if p.task == "extend" and start > 0:
        raise AceStepInputError(f"extend: repaint_start = {start} s means a negative left extension; use "
                                "repaint_start = -(seconds to add on the left) or 0")
    if p.task == "edit":
        _in_unit("edit_n_min", p.edit_n_min, "fraction of the steps where editing starts")
        _in_unit("edit_n_max", p.edit_n_max, "fraction of the steps where editing stops")
        if p.edit_n_min > p.edit_n_max:
            raise AceStepInputError(f"edit_n_min ({p.edit_n_min}) must not exceed edit_n_max ({p.edit_n_max})")
        _int_at_least("edit_n_avg", p.edit_n_avg, 1, "noise draws averaged per edit step")


def validate_params(p: GenerationParams) -> None:
    """Raise :class:`AceStepInputError` for the first bad value of a ``GenerationParams``."""
    _check_names(p)
    _check_duration(p)
    _int_at_least("infer_step", p.infer_step, 1, "number of sampling steps")
    _int_at_least("batch_size", p.batch_size, 1, "items generated at once")
    for name in ("guidance_scale", "omega_scale", "min_guidance_scale", "guidance_scale_text",
                 "guidance_scale_lyric"):
        _number(name, getattr(p, name))
    _in_unit("guidance_interval", p.guidance_interval, "fraction of the steps that get guidance")
    _in_unit("guidance_interval_decay", p.guidance_interval_decay, "how far the scale decays toward the minimum")
    _in_unit("retake_variance", p.retake_variance, "0 = keep, 1 = new noise")
    _in_unit("ref_audio_strength", p.ref_audio_strength, "1 = stay at the reference")
    for name in ("use_erg_tag", "use_erg_lyric", "use_erg_diffusion", "audio2audio_enable"):
        if not isinstance(getattr(p, name), bool):
            raise AceStepInputError(f"{name}: expected True or False, got {getattr(p, name)!r}")
    _check_seeds("manual_seeds", p.manual_seeds, p.batch_size)
    _check_seeds("retake_seeds", p.retake_seeds, p.batch_size)
    _check_oss(p)
    _check_windows(p)


def _steps_that_run(p: GenerationParams) -> tuple[int, int]:
    """(n_min, loop length) of a repaint / extend loop."""
    oss = parse_oss_steps(p.oss_steps)
    base = max(oss) if oss else p.infer_step
    length = len(oss) if oss else (2 * p.infer_step - 1 if p.scheduler_type == "heun" else p.infer_step)
    return int(base * (1 - p.retake_variance)), length


def _check_source_window(p: GenerationParams, task: str, src_frames: int) -> None:
    start_frame, end_frame = seconds_to_frames(p.repaint_start), seconds_to_frames(p.repaint_end)
    if task == "repaint":
        if end_frame > src_frames:
            raise AceStepInputError(f"repaint_end {p.repaint_end} s is past the end of the source "
                                    f"({src_frames} frames); to add audio after it, use task='extend'")
        if end_frame <= start_frame:
            raise AceStepInputError(f"repaint window [{p.repaint_start}, {p.repaint_end}] s is shorter than one "
                                    "latent frame (0.093 s); widen it")
    else:
        if start_frame >= 0 and end_frame <= src_frames:
            raise AceStepInputError(f"extend: [{p.repaint_start}, {p.repaint_end}] s extends nothing (source "
                                    f"{src_frames} frames); use repaint_start < 0 and/or repaint_end past the end")
        check_extend(src_frames, start_frame, end_frame)
    whole = task == "repaint" and end_frame - start_frame == src_frames
    n_min, length = _steps_that_run(p)
    if not whole and n_min >= length:
        raise AceStepInputError(f"retake_variance {p.retake_variance}: no sampling step would run "
                                f"(first step {n_min} of {length}); use a larger retake_variance")


def check_source_frames(p: GenerationParams, task: str, src_frames: int | None, ref_frames: int | None) -> None:
    """What can be checked from the source / reference lengths alone (their file headers, before any model work):
    the model's 240 s window for the tasks that process the whole source, and the repaint / extend windows."""
    for name, frames, tasks in (("src_latents", src_frames, ("repaint", "edit")),
                                ("ref_latents", ref_frames, ("audio2audio",))):
        if frames is not None and task in tasks and frames > MAX_FRAMES:
            raise AceStepInputError(
                f"{name}: the source is {frames / LATENT_FRAME_RATE_HZ:.1f} s long; task '{task}' processes the "
                f"whole source in the model's {MAX_DURATION_S:g} s window, so longer sources are refused (the "
                f"result would go past what the model was trained for). Cut the part to change to at most "
                f"{MAX_DURATION_S:g} s first (e.g. ffmpeg -ss START -t {MAX_DURATION_S:g} -i in.wav part.wav)")
    if task in ("repaint", "extend") and src_frames is not None:
        _check_source_window(p, task, src_frames)


def check_tensors(p: GenerationParams, task: str, src: torch.Tensor | None, ref: torch.Tensor | None) -> None:
    """Which latents each task needs, their lengths, and the repaint / extend windows against the source."""
    if task in SOURCE_TASKS and src is None:
        raise AceStepInputError(f"task '{task}' needs src_latents (encode the source audio with AudioCodec.encode)")
    if src is not None and task not in SOURCE_TASKS:
        raise AceStepInputError(f"src_latents are only used by tasks {list(SOURCE_TASKS)}, not '{task}'")
    if task == "audio2audio" and ref is None:
        raise AceStepInputError("audio2audio needs ref_latents (encode the reference audio with AudioCodec.encode)")
    if ref is not None and not p.audio2audio_enable:
        raise AceStepInputError("ref_latents given but audio2audio_enable is False; set it to True or drop them")
    for name, latents in (("src_latents", src), ("ref_latents", ref)):
        if latents is not None:
            check_latent_shape(latents, channels=8, height=16, name=name)
    check_source_frames(p, task, None if src is None else int(src.shape[-1]),
                        None if ref is None else int(ref.shape[-1]))


USUAL_MAX_GUIDANCE = 200.0  # the original app's UI slider limit for the guidance scales
USUAL_MAX_OMEGA = 100.0


def likely_nonfinite_causes(p: GenerationParams, dtype: torch.dtype | None = None) -> str:
    """The settings that most likely made a generation overflow to NaN / inf, as one sentence."""
    causes = []
    for name in ("guidance_scale", "guidance_scale_text", "guidance_scale_lyric", "min_guidance_scale"):
        value = getattr(p, name)
        if abs(value) > USUAL_MAX_GUIDANCE:
            causes.append(f"{name} {value:g} is far outside the usual range (15 by default, at most "
                          f"{USUAL_MAX_GUIDANCE:g} in the original app)")
    if abs(p.omega_scale) > USUAL_MAX_OMEGA:
        causes.append(f"omega_scale {p.omega_scale:g} is far outside the usual range (10 by default)")
    if dtype == torch.float16:
        causes.append("float16 overflows in this model: use bfloat16 or float32")
    if not causes:
        causes.append("no setting looks unusual: try float32 weights, and report the run if it happens again")
    return "likely cause: " + "; ".join(causes)


def check_finite_result(tensor: torch.Tensor, what: str, p: GenerationParams, dtype: torch.dtype | None = None) -> None:
    """Raise :class:`NonFiniteResultError` (naming the likely cause) if ``tensor`` holds NaN or infinite values."""
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int(finite.numel() - int(finite.sum()))
        raise NonFiniteResultError(f"the generated {what} contain {bad} NaN or infinite values out of "
                                   f"{finite.numel()}, so nothing was saved; {likely_nonfinite_causes(p, dtype)}")

"""The command line's words for the core's names: every message a CLI user sees names the flag to change.

The core raises :class:`~acestep_core.errors.AceStepInputError` in ``GenerationParams`` field names (the
original app's argument names); :func:`in_cli_words` rewrites them into flags (``audio_duration`` ->
``--duration``, ``task='extend'`` -> ``--task extend``, ``src_latents`` -> ``--src-audio``).
"""

from __future__ import annotations

from ..errors import reword
from ..sampling.choices import TASKS

__all__ = ["FLAG_WORDS", "in_cli_words"]

_TASK_WORDS = {f"task='{task}'": f"--task {task}" for task in (*TASKS, "audio2audio")}
_TASK_WORDS.update({f"task '{task}'": f"--task {task}" for task in (*TASKS, "audio2audio")})

FLAG_WORDS: dict[str, str] = {
    **_TASK_WORDS,
    "prompt": "--tags", "lyrics": "--lyrics", "audio_duration": "--duration", "manual_seeds": "--seed",
    "retake_seeds": "--retake-seeds", "infer_step": "--infer-step", "guidance_scale": "--guidance-scale",
    "scheduler_type": "--scheduler-type", "cfg_type": "--cfg-type", "omega_scale": "--omega-scale",
    "guidance_interval": "--guidance-interval", "guidance_interval_decay": "--guidance-interval-decay",
    "min_guidance_scale": "--min-guidance-scale", "oss_steps": "--oss-steps",
    "guidance_scale_text": "--guidance-scale-text", "guidance_scale_lyric": "--guidance-scale-lyric",
    "retake_variance": "--retake-variance", "repaint_start": "--repaint-start", "repaint_end": "--repaint-end",
    "edit_target_prompt": "--edit-target-tags", "edit_target_lyrics": "--edit-target-lyrics",
    "edit_n_min": "--edit-n-min", "edit_n_max": "--edit-n-max", "edit_n_avg": "--edit-n-avg",
    "ref_audio_strength": "--ref-audio-strength", "batch_size": "--batch-size", "audio2audio_enable": "--ref-audio",
    "use_erg_tag": "--use-erg-tag", "use_erg_lyric": "--use-erg-lyric", "use_erg_diffusion": "--use-erg-diffusion",
    "src_latents": "--src-audio", "ref_latents": "--ref-audio", "task": "--task",
}


def in_cli_words(message: str) -> str:
    """``message`` in the command line's words (see the module docstring)."""
    return reword(message, FLAG_WORDS)

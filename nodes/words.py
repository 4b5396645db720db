"""The node graph's words for the core's names: every message a ComfyUI user sees names the widget or node to
change (``infer_step`` -> ``steps``, ``audio_duration`` -> the latent's length, ``task='extend'`` -> the Extend Latent
node), via :func:`acestep_core.errors.reword`."""

from __future__ import annotations

from acestep_core.errors import reword

__all__ = ["NODE_WORDS", "in_node_words"]

NODE_WORDS: dict[str, str] = {
    "task='extend'": "the Extend Latent node", "task='repaint'": "the Repaint Window node",
    "task='retake'": "retake_variance > 0", "task 'repaint'": "repaint", "task 'extend'": "extend",
    "task 'edit'": "flow edit", "task 'audio2audio'": "audio2audio",
    "prompt": "tags", "lyrics": "lyrics", "audio_duration": "the latent's length (Empty Latent seconds)",
    "manual_seeds": "seed / seeds", "retake_seeds": "retake_seeds", "infer_step": "steps",
    "scheduler_type": "scheduler", "ref_audio_strength": "audio2audio_strength", "batch_size": "batch_size",
    "repaint_start": "start_s", "repaint_end": "end_s", "retake_variance": "variance / retake_variance",
    "edit_target_prompt": "the target_conditioning tags", "edit_target_lyrics": "the target_conditioning lyrics",
    "src_latents": "the source latent", "ref_latents": "the latent holding audio",
    "omega_scale": "omega_scale", "guidance_scale": "guidance_scale", "oss_steps": "oss_steps",
}


def in_node_words(message: str) -> str:
    """``message`` in the node graph's words (see the module docstring)."""
    return reword(message, NODE_WORDS)

"""Latent nodes: empty latent, repaint window, extend; plus the LATENT checks every node uses.

Task markers (``latent["acestep_task"]``, read by the sampler; see :mod:`nodes.sampling` for the mapping):

* repaint window: ``{"task": "repaint", "start_s", "end_s", "variance"}`` and a ``noise_mask`` ``[1, 16, T]``
  (1 inside the window, linear ramps of ``feather_s`` outside it for other samplers; the ACE-Step sampler uses
  the hard window, as the original app);
* extend: the samples are zero-padded to the final length, ``noise_mask`` is 1 on the new frames, and the
  marker is ``{"task": "extend", "left_frames", "right_frames", "left_s", "right_s", "variance"}``; the
  sampler takes the source back out of the padding.

Both window nodes also return a UI output (:data:`nodes.web_events.WINDOW_KEY`: the source length and the window
they ran with) and carry :func:`nodes.web_events.timeline_info` in their first seconds widget's options, for the
frontend's waveform region picker (``web/acestep_region_picker.js``).
"""

from __future__ import annotations

from typing import Any

import torch

from acestep_core.timing import frames_to_seconds, seconds_to_frames

from . import comfy_adapter as adapter
from .types import CATEGORY, LATENT, LATENT_CHANNELS, LATENT_HEIGHT, LATENT_TYPE, MAX_SECONDS, TASK_KEY
from .web_events import TIMELINE_OPTION, WINDOW_KEY, timeline_info, window_info


def read_latent(latent: Any, name: str = "latent") -> torch.Tensor:
    """The ``[B, 8, 16, T]`` samples of an ACE-Step audio LATENT, or a ValueError saying what is wrong."""
    if not isinstance(latent, dict) or not isinstance(latent.get("samples"), torch.Tensor):
        raise ValueError(f"{name}: expected a LATENT dict with a 'samples' tensor, got {type(latent).__name__}")
    kind = latent.get("type")
    samples = latent["samples"]
    if kind not in (None, LATENT_TYPE):
        raise ValueError(f"{name}: latent type {kind!r} is not an audio latent; ACE-Step v1 needs "
                         "{'type': 'audio'} latents from an ACE-Step empty latent or audio encode node")
    if samples.ndim != 4 or samples.shape[1] != LATENT_CHANNELS or samples.shape[2] != LATENT_HEIGHT:
        raise ValueError(f"{name}: expected ACE-Step v1 latents [B, {LATENT_CHANNELS}, {LATENT_HEIGHT}, T], got "
                         f"{list(samples.shape)} (a latent of another model? an image latent?)")
    if samples.shape[0] < 1 or samples.shape[-1] < 1:
        raise ValueError(f"{name}: empty latent {list(samples.shape)}")
    return samples


def latent_seconds(samples: torch.Tensor) -> float:
    return frames_to_seconds(samples.shape[-1])


def has_audio(samples: torch.Tensor) -> bool:
    """A latent holding audio (encoded or generated), as opposed to an empty (all-zero) one."""
    return bool(samples.abs().amax() > 0)


def _require_source(latent: Any, what: str) -> torch.Tensor:
    samples = read_latent(latent)
    if not has_audio(samples):
        raise ValueError(f"{what} needs a latent holding audio (from 'ACE-Step v1 Audio To Latent' or a sampler), "
                         "got an empty latent; encode the source song first")
    if latent.get(TASK_KEY) is not None:
        raise ValueError(f"{what}: the latent is already marked for {latent[TASK_KEY]['task']}; use the unmarked "
                         "source latent")
    return samples


class AceStepV1EmptyLatent:
    """An empty ACE-Step v1 audio latent of a given duration and batch size (text2music / retake)."""

    TITLE = "ACE-Step v1 Empty Latent"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Audio LATENT [B, 8, 16, T], about 10.77 frames per second.",)
    FUNCTION = "build"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "seconds": ("FLOAT", {"default": 60.0, "min": 1.0, "max": MAX_SECONDS, "step": 0.1,
                                  "tooltip": ("Duration of the song in seconds (at most 240; longer with extend). The "
                                              "model works in latent frames of 0.093 s, rounded down as the "
                                              "original app: 60 s gives 59.91 s.")}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                   "tooltip": "Songs generated at once (one seed each)."}),
        }}

    def build(self, seconds: float, batch_size: int) -> tuple[dict[str, Any]]:
        from acestep_core.audio.codec import latent_frames_for_duration

        if not 0 < seconds <= MAX_SECONDS:
            raise ValueError(f"seconds: {seconds} is outside (0, {MAX_SECONDS}]; extend longer songs afterwards")
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size}; use 1 or more")
        frames = latent_frames_for_duration(seconds)
        if frames < 1:
            raise ValueError(f"seconds: {seconds} s is shorter than one latent frame")
        samples = torch.zeros([batch_size, LATENT_CHANNELS, LATENT_HEIGHT, frames],
                              device=adapter.intermediate_device())
        return ({"samples": samples, "type": LATENT_TYPE},)


def _window_mask(frames: int, start: int, end: int, feather: int) -> torch.Tensor:
    mask = torch.zeros(frames)
    mask[start:end] = 1.0
    for i in range(1, feather + 1):
        weight = 1.0 - i / (feather + 1)
        if start - i >= 0:
            mask[start - i] = weight
        if end - 1 + i < frames:
            mask[end - 1 + i] = weight
    return mask.view(1, 1, frames).expand(1, LATENT_HEIGHT, frames).contiguous()


class AceStepV1RepaintWindow:
    """Mark a time window of a source latent for repainting (regenerated; the rest of the song is kept)."""

    TITLE = "ACE-Step v1 Repaint Window"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The source latent with a noise_mask and the repaint window for the sampler.",)
    FUNCTION = "mark"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        seconds = {"min": 0.0, "max": MAX_SECONDS, "step": 0.1}
        return {"required": {
            "latent": (LATENT, {"tooltip": "Latent of the song to repaint (from Audio To Latent or a sampler)."}),
            "start_s": ("FLOAT", {"default": 0.0, **seconds, TIMELINE_OPTION: timeline_info(),
                                  "tooltip": "Window start, seconds from the song start."}),
            "end_s": ("FLOAT", {"default": 10.0, **seconds, "tooltip": "Window end, seconds (inside the song)."}),
            "variance": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
                "How much new noise the window gets: small = close to the original, 1 = fully new.")}),
        }, "optional": {
            "feather_s": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.1, "tooltip": (
                "Soft edge of the noise_mask for other samplers (KSampler); the ACE-Step sampler repaints the hard "
                "window like the original app.")}),
        }}

    def mark(self, latent: dict[str, Any], start_s: float, end_s: float, variance: float,
             feather_s: float = 0.0) -> dict[str, Any]:
        samples = _require_source(latent, "repaint window")
        duration = latent_seconds(samples)
        start, end = seconds_to_frames(start_s), seconds_to_frames(end_s)
        if start_s < 0 or end_s <= start_s:
            raise ValueError(f"repaint window: end_s ({end_s} s) must be after start_s ({start_s} s), and start_s "
                             "at least 0; set end_s larger than start_s")
        if end > samples.shape[-1]:
            raise ValueError(f"repaint window: end_s {end_s} s is past the end of the song ({duration:.2f} s); use "
                             "end_s <= the song length (to add audio after it, use the Extend Latent node)")
        if end <= start:
            raise ValueError(f"repaint window [{start_s}, {end_s}] s is shorter than one latent frame (0.093 s)")
        if not 0 < variance <= 1:
            raise ValueError(f"variance {variance}: use a value in (0, 1]")
        mask = _window_mask(samples.shape[-1], start, end, seconds_to_frames(feather_s))
        out = {**latent, "noise_mask": mask.to(samples.device),
               TASK_KEY: {"task": "repaint", "start_s": float(start_s), "end_s": float(end_s),
                          "variance": float(variance)}}
        ui = window_info(samples.shape[-1], start_s=float(start_s), end_s=float(end_s), start_frame=start,
                         end_frame=end)
        return {"ui": {WINDOW_KEY: [ui]}, "result": (out,)}


class AceStepV1ExtendLatent:
    """Extend a source latent on the left and/or right (outpainting): the new frames are generated to fit."""

    TITLE = "ACE-Step v1 Extend Latent"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The source zero-padded to the new length, with a noise_mask on the new frames.",)
    FUNCTION = "extend"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        seconds = {"min": 0.0, "max": MAX_SECONDS, "step": 0.1}
        return {"required": {
            "latent": (LATENT, {"tooltip": "Latent of the song to extend (from Audio To Latent or a sampler)."}),
            "left_s": ("FLOAT", {"default": 0.0, **seconds, TIMELINE_OPTION: timeline_info(),
                                 "tooltip": "Seconds to add before the song."}),
            "right_s": ("FLOAT", {"default": 10.0, **seconds, "tooltip": "Seconds to add after the song."}),
        }, "optional": {
            "variance": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": (
                "Noise level the new frames start from (1 = the original app's extend).")}),
        }}

    def extend(self, latent: dict[str, Any], left_s: float, right_s: float,
               variance: float = 1.0) -> dict[str, Any]:
        from acestep_core.sampling.windows import extend_window_for_frames

        samples = _require_source(latent, "extend")
        try:
            extend_window_for_frames(samples.shape[-1], left_s, right_s)
        except ValueError as e:
            raise ValueError(str(e)) from e
        left, right = seconds_to_frames(left_s), seconds_to_frames(right_s)
        padded = torch.nn.functional.pad(samples, (left, right))
        mask = torch.zeros(padded.shape[-1])
        mask[:left] = 1.0
        if right:
            mask[-right:] = 1.0
        mask = mask.view(1, 1, -1).expand(1, LATENT_HEIGHT, -1).contiguous().to(samples.device)
        marker = {"task": "extend", "left_frames": left, "right_frames": right, "left_s": float(left_s),
                  "right_s": float(right_s), "variance": float(variance)}
        out = {k: v for k, v in latent.items() if k != "noise_mask"}
        out.update(samples=padded, type=LATENT_TYPE, noise_mask=mask, **{TASK_KEY: marker})
        ui = window_info(samples.shape[-1], left_s=float(left_s), right_s=float(right_s), left_frames=left,
                         right_frames=right)
        return {"ui": {WINDOW_KEY: [ui]}, "result": (out,)}

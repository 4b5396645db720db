"""AUDIO <-> LATENT with the ACE-Step v1 codec, and saving audio with the generation parameters embedded.

AUDIO is ComfyUI's ``{"waveform": [B, C, N] float32, "sample_rate": int}`` (core LoadAudio / SaveAudio /
PreviewAudio / trims work with it); decoded AUDIO also carries the generation record (``acestep_params``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from . import comfy_adapter as adapter
from .latent import read_latent
from .types import AUDIO, CATEGORY, EDIT_SOURCE_KEY, LATENT, LATENT_TYPE, LORA_KEY, LORA_WEIGHT_KEY, MODEL, PARAMS_KEY

SAMPLE_RATES = ["48000", "44100"]
OVERLAP_CHOICES = ["off", "auto", "on"]
SAVE_FORMATS = ["flac", "wav", "mp3", "ogg"]


def read_audio(audio: Any) -> tuple[torch.Tensor, int]:
    """The waveform ``[B, C, N]`` and sample rate of an AUDIO dict, or a ValueError saying what is wrong."""
    if not isinstance(audio, dict) or not isinstance(audio.get("waveform"), torch.Tensor):
        raise ValueError(f"audio: expected an AUDIO dict with a 'waveform' tensor, got {type(audio).__name__}")
    waveform, sample_rate = audio["waveform"], audio.get("sample_rate")
    if waveform.ndim != 3 or waveform.shape[-1] < 1:
        raise ValueError(f"audio: expected a waveform [B, C, N], got {list(waveform.shape)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"audio: sample_rate must be a positive integer, got {sample_rate!r}")
    return waveform, sample_rate


class AceStepV1AudioToLatent:
    """Encode audio (any rate, mono or stereo) into an ACE-Step v1 latent (source for repaint / extend / edit /
    audio2audio)."""

    TITLE = "ACE-Step v1 Audio To Latent"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Audio LATENT [B, 8, 16, T].",)
    FUNCTION = "encode"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model (its audio codec is used)."}),
            "audio": (AUDIO, {"tooltip": "Audio to encode, e.g. from Load Audio (resampled to 44.1 kHz)."}),
        }}

    def encode(self, model: Any, audio: Any) -> tuple[dict[str, Any]]:
        waveform, sample_rate = read_audio(audio)
        with adapter.models_loaded([model.codec]):
            latents = model.codec.module.encode(waveform.to(model.codec.device, torch.float32), sample_rate)
        return ({"samples": latents.to(adapter.intermediate_device(), torch.float32), "type": LATENT_TYPE},)


class AceStepV1LatentToAudio:
    """Decode an ACE-Step v1 latent to audio at 48 kHz (the original app) or 44.1 kHz (the model's rate)."""

    TITLE = "ACE-Step v1 Latent To Audio"
    CATEGORY = CATEGORY
    RETURN_TYPES = (AUDIO,)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Stereo AUDIO (works with core Preview/Save Audio).",)
    FUNCTION = "decode"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model (its audio codec is used)."}),
            "latent": (LATENT, {"tooltip": "Audio LATENT from the sampler (or any ACE-Step latent)."}),
            "sample_rate": (SAMPLE_RATES, {"default": "48000", "tooltip": (
                "Output rate: 48000 = the original app, 44100 = the model's native rate.")}),
            "overlapped_decode": (OVERLAP_CHOICES, {"default": "off", "tooltip": (
                "Windowed decode with lower peak memory: auto = only above 48 s (slightly different sound).")}),
        }}

    def decode(self, model: Any, latent: Any, sample_rate: str, overlapped_decode: str) -> tuple[dict[str, Any]]:
        samples = read_latent(latent)
        if str(sample_rate) not in SAMPLE_RATES or overlapped_decode not in OVERLAP_CHOICES:
            raise ValueError(f"sample_rate must be one of {SAMPLE_RATES} and overlapped_decode one of "
                             f"{OVERLAP_CHOICES}, got {sample_rate!r}, {overlapped_decode!r}")
        overlapped = {"off": False, "auto": None, "on": True}[overlapped_decode]
        with adapter.models_loaded([model.codec], decode_memory_required(model.codec.module, samples, overlapped)):
            waveform = model.codec.module.decode(samples.to(model.codec.device), sample_rate=int(sample_rate),
                                                 overlapped=overlapped)
        if not bool(torch.isfinite(waveform).all()):
            from acestep_core.errors import NonFiniteResultError

            raise NonFiniteResultError("the decoded audio contains NaN or infinite samples; the latent holds values "
                                       "the decoder cannot turn into sound (check the sampler's settings)")
        audio = {"waveform": waveform.to(adapter.intermediate_device(), torch.float32),
                 "sample_rate": int(sample_rate)}
        if PARAMS_KEY in latent:
            audio[PARAMS_KEY] = latent[PARAMS_KEY]
        return (audio,)


def decode_memory_required(codec: Any, samples: torch.Tensor, overlapped: bool | None) -> int:
    """Bytes the decode needs beyond the codec weights, for ``load_models_gpu(memory_required=...)``."""
    from acestep_core.runtime.offload import decode_memory_bytes

    if overlapped is None:
        overlapped = codec.auto_overlapped(samples.shape[-1])
    dtype = next(codec.parameters()).dtype
    return decode_memory_bytes(tuple(samples.shape), dtype, overlapped=overlapped,
                               window_frames=codec.codec_cfg.overlap_window_frames)


def safe_output_folder(output_dir: Path, filename_prefix: str) -> tuple[Path, str]:
    """``(folder, base name)`` for a prefix like ``audio/ACE-Step`` inside ``output_dir``; refuses escapes."""
    prefix = (filename_prefix or "").strip().replace("\\", "/")
    if not prefix or prefix.endswith("/"):
        raise ValueError(f"filename_prefix {filename_prefix!r}: give a file name prefix like 'audio/ACE-Step'")
    if prefix.startswith("/") or re.match(r"^[A-Za-z]:", prefix) or ".." in prefix.split("/"):
        raise ValueError(f"filename_prefix {filename_prefix!r} points outside the output folder; use a relative "
                         "prefix without '..' such as 'audio/ACE-Step'")
    root = output_dir.resolve()
    target = (root / prefix).resolve()
    if root != target and root not in target.parents:
        raise ValueError(f"filename_prefix {filename_prefix!r} resolves outside the output folder {root}")
    return target.parent, target.name


def _next_counter(folder: Path, base: str) -> int:
    pattern = re.compile(re.escape(base) + r"_(\d{5})_")
    found = [int(m.group(1)) for p in folder.glob(f"{base}_*") if (m := pattern.match(p.name))]
    return max(found, default=0) + 1


def _record(audio: dict[str, Any], fmt: str, relative_path: str) -> dict[str, Any] | None:
    """The original app's record of the generation (``None`` for audio that does not come from our sampler):
    paths relative to ComfyUI's folders (``audio_path`` to the output folder, a LoRA to the models folder)."""
    params = audio.get(PARAMS_KEY)
    if not isinstance(params, dict):
        return None
    from acestep_core.cli.params_io import LORA_NONE, record_from_params

    return record_from_params(params, audio_format=fmt, actual_seeds=params.get("actual_seeds", []),
                              retake_seeds=params.get("retake_seeds"), timecosts=params.get("timecosts"),
                              audio_path=relative_path, lora_name_or_path=params.get(LORA_KEY, LORA_NONE),
                              lora_weight=params.get(LORA_WEIGHT_KEY, 1.0), edit_source=params.get(EDIT_SOURCE_KEY))


def comfyui_tags(prompt: Any, extra_pnginfo: Any) -> dict[str, str]:
    """The tags ComfyUI's core audio nodes write and its frontend reads back on drop: ``prompt`` and each
    ``extra_pnginfo`` entry (``workflow``) as JSON; ASCII, since the frontend decodes bytes as Latin-1."""
    tags: dict[str, str] = {}
    if prompt is not None:
        tags["prompt"] = json.dumps(prompt, ensure_ascii=True)
    if isinstance(extra_pnginfo, dict):
        tags.update({str(k): json.dumps(v, ensure_ascii=True) for k, v in extra_pnginfo.items()})
    return tags


class AceStepV1SaveAudio:
    """Save audio (flac / mp3 / ogg / wav) into ComfyUI's output folder with the workflow embedded (drag the file
    back onto the canvas to restore it; not for wav, which ComfyUI cannot read back), the generation parameters
    embedded as the comment, and the original app's _input_params.json next to it. Existing files are never
    replaced: each save takes the next free counter."""

    TITLE = "ACE-Step v1 Save Audio"
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "audio": (AUDIO, {"tooltip": "Audio to save (from Latent To Audio or any AUDIO node)."}),
            "filename_prefix": ("STRING", {"default": "audio/ACE-Step", "tooltip": (
                "File name prefix inside the output folder; may contain sub-folders, never '..'.")}),
            "format": (SAVE_FORMATS, {"default": "flac", "tooltip": (
                "File format. flac, mp3 and ogg carry the workflow (drop the file on the canvas to restore it); "
                "wav (32-bit float) cannot be read back by ComfyUI.")}),
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, audio: Any, filename_prefix: str, format: str, prompt: Any = None,  # noqa: A002 - widget name
             extra_pnginfo: Any = None) -> dict[str, Any]:
        from acestep_core.audio.files import check_finite_waveform

        waveform, sample_rate = read_audio(audio)
        if format not in SAVE_FORMATS:
            raise ValueError(f"format {format!r} is not supported; choose one of {SAVE_FORMATS}")
        check_finite_waveform(waveform, "audio")
        root = adapter.output_directory().resolve()
        folder, base = safe_output_folder(root, filename_prefix)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create the output folder {folder}: {e.strerror or e}; check that ComfyUI's "
                             "output folder (--output-directory) is writable") from e
        counter = _next_counter(folder, base)
        tags = comfyui_tags(prompt, extra_pnginfo)
        results = []
        for item in range(waveform.shape[0]):
            path = _save_item(audio, waveform[item].cpu(), sample_rate, format, folder, base, counter, root, tags)
            counter = int(re.findall(r"_(\d+)_\.", path.name)[-1]) + 1
            subfolder = path.parent.relative_to(root).as_posix()
            results.append({"filename": path.name, "subfolder": "" if subfolder == "." else subfolder,
                            "type": "output"})
        return {"ui": {"audio": results}, "result": ()}


def _save_item(audio: dict[str, Any], waveform: torch.Tensor, sample_rate: int, fmt: str, folder: Path, base: str,
               counter: int, root: Path, tags: dict[str, str]) -> Path:
    """One file + its sidecar under the first free counter from ``counter`` on (exclusive creation: concurrent
    saves never share a name); written through temporary files, so a failure leaves nothing half-written."""
    from acestep_core.audio.files import audio_tags, encode_audio_file, sidecar_path, sidecar_text
    from acestep_core.safe_write import OutputGroup, OutputPathError

    def names(n: int) -> list[Path]:
        path = folder / f"{base}_{counter + n:05}_.{fmt}"
        return [path, sidecar_path(path)] if audio.get(PARAMS_KEY) is not None else [path]

    try:
        with OutputGroup() as group:
            reserved = group.reserve(names)
            path = reserved[0]
            record = _record(audio, fmt, path.relative_to(root).as_posix())
            encode_audio_file(group.stage(path), fmt, waveform, sample_rate, tags=audio_tags(record, tags))
            if record is not None:
                group.stage(reserved[1]).write_text(sidecar_text(record), encoding="utf-8")
            group.commit()
    except (OSError, OutputPathError) as e:
        raise ValueError(f"cannot write {folder / base}_*.{fmt}: {e}; check that ComfyUI's output folder "
                         "(--output-directory) is writable") from e
    return path


def embedded_metadata(path: str | Path) -> dict[str, Any] | None:
    """The generation record embedded by :class:`AceStepV1SaveAudio` (tests / tools)."""
    from acestep_core.audio.files import read_embedded_params

    return read_embedded_params(path)

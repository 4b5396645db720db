"""LoRA loader node: ``ACESTEP_MODEL`` in, the same model with a LoRA on its transformer out (chainable).

Choices listed (stable names, workflows store them):

* ``<name>.safetensors``: files in ComfyUI's ``loras`` folders (official ``pytorch_lora_weights.safetensors`` in a
  sub-folder reads the ``adapter_config.json`` beside it; ComfyUI-layout files work as they are);
* ``ace_step/<folder>``: official-layout LoRA folders (``pytorch_lora_weights.safetensors`` +
  ``adapter_config.json``) in the ``ace_step`` model folders.

Strength 1.0 = the LoRA as trained: scale alpha / r (alpha / sqrt(r) with rsLoRA; see
:mod:`acestep_core.lora.merge`). The original ACE-Step app ignores alpha (scale = its lora_weight w), so its w
equals strength ``w / (alpha / r)`` here (``w / (alpha / sqrt(r))`` with rsLoRA). RapMachine (r 256, alpha 32,
rsLoRA: trained scale 32 / 16 = 2): the app's w = 1.0 is strength 0.5. The scale used, and why, is logged and shown
on the node (a LoRA without ``adapter_config.json`` beside it gets alpha = r, with a warning).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from . import comfy_adapter as adapter
from .types import CATEGORY, MODEL

logger = logging.getLogger(__name__)

FOLDER_PREFIX = "ace_step/"
FROM_INPUT_CHOICE = "(from the lora_path input)"  # listed last: lets a workflow load a LoRA trained in the same run
PEFT_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
_CACHE_SIZE = 4
_lora_cache: dict[tuple[str, float, int], Any] = {}


def list_loras() -> list[str]:
    """The node's choices: ``loras`` folder files, then ``ace_step/<folder>`` official LoRA folders."""
    files = adapter.folder_files(adapter.LORAS_FOLDER)
    folders = []
    for root in adapter.model_folders(adapter.ACE_STEP_FOLDER):
        if root.is_dir():
            folders += [FOLDER_PREFIX + p.name for p in sorted(root.iterdir())
                        if p.is_dir() and (p / PEFT_WEIGHTS_FILE).is_file()]
    return [*files, *sorted(set(folders))]


def resolve_lora(name: str) -> Path:
    """A choice -> the LoRA file or folder; a clear error naming the available ones when it is missing."""
    if name.startswith(FOLDER_PREFIX):
        for root in adapter.model_folders(adapter.ACE_STEP_FOLDER):
            if (root / name[len(FOLDER_PREFIX):] / PEFT_WEIGHTS_FILE).is_file():
                return root / name[len(FOLDER_PREFIX):]
    else:
        path = adapter.folder_file_path(adapter.LORAS_FOLDER, name)
        if path is not None:
            return path
    from acestep_core.errors import CheckpointError

    raise CheckpointError(
        f"lora_name {name!r}: LoRA not found. Available: {list_loras() or 'none'}. Put the LoRA file into "
        "models/loras, or the official LoRA folder (pytorch_lora_weights.safetensors + adapter_config.json) "
        "into models/ace_step/")


def read_lora_cached(path: Path) -> Any:
    """``acestep_core.lora.merge.read_lora`` with a small cache keyed by path, mtime and size."""
    from acestep_core.lora.merge import read_lora

    weights = path / PEFT_WEIGHTS_FILE if path.is_dir() else path
    stat = weights.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key not in _lora_cache:
        while len(_lora_cache) >= _CACHE_SIZE:
            _lora_cache.pop(next(iter(_lora_cache)))
        _lora_cache[key] = read_lora(path)
    return _lora_cache[key]


class AceStepV1LoraLoader:
    """Apply an ACE-Step v1 LoRA (official PEFT folder/file or ComfyUI layout) to the model; chain several to
    stack them. Strength 1.0 = as trained. The input model is left unchanged."""

    TITLE = "ACE-Step v1 LoRA Loader"
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with this LoRA added to its transformer (the input model is not changed).",)
    FUNCTION = "apply"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        from acestep_core.lora.merge import STRENGTH_RANGE  # the original app's UI range (lazy import)

        low, high = STRENGTH_RANGE
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The ACE-Step v1 model (from the checkpoint loader or another "
                                             "LoRA loader)."}),
                "lora_name": ([*list_loras(), FROM_INPUT_CHOICE], {"tooltip": (
                    "LoRA file from models/loras, or an official ACE-Step LoRA folder (pytorch_lora_weights."
                    "safetensors + adapter_config.json) from models/ace_step/. LoRAs for other models (SDXL, "
                    f"Flux, ACE-Step 1.5) are refused. {FROM_INPUT_CHOICE}: the LoRA named by the connected "
                    "lora_path input (e.g. one trained by Train LoRA in the same run).")}),
                "strength": ("FLOAT", {"default": 1.0, "min": low, "max": high, "step": 0.01, "tooltip": (
                    "1.0 = the LoRA as trained (scale alpha/r, alpha/sqrt(r) with rsLoRA); 0 = off; negative values "
                    "invert it. The original ACE-Step app ignores alpha: its lora_weight w = strength w / (alpha/r) "
                    "here (RapMachine, alpha/sqrt(r) = 2: w 1.0 = strength 0.5).")}),
            },
            "optional": {
                "lora_path": ("STRING", {"forceInput": True, "tooltip": (
                    "A LoRA name from another node (e.g. Train LoRA's lora_path); when connected it is used "
                    "instead of lora_name.")}),
            },
        }

    def apply(self, model: Any, lora_name: str, strength: float, lora_path: str | None = None) -> dict[str, Any]:
        from acestep_core.lora.merge import LoraError, LoraSpec, check_strength, scale_note

        try:
            check_strength(strength, "strength")
        except LoraError as e:
            raise ValueError(str(e)) from e
        if lora_path and lora_path.strip():
            lora_name = lora_path.strip()
        elif lora_name == FROM_INPUT_CHOICE:
            raise ValueError(f"lora_name {FROM_INPUT_CHOICE!r} needs the lora_path input connected (e.g. to Train "
                             "LoRA's lora_path output); or pick a LoRA from the list")
        lora = read_lora_cached(resolve_lora(lora_name))
        spec = LoraSpec(lora, float(strength), "trained")
        handle = adapter.add_loras(model.transformer, (spec,))
        note, assumed = scale_note(spec)
        (logger.warning if assumed else logger.info)("ACE-Step: %s (%d modules)", note, len(lora.modules))
        recorded = lora_name if lora_name.startswith(FOLDER_PREFIX) else f"{adapter.LORAS_FOLDER}/{lora_name}"
        out = dataclasses.replace(model, transformer=handle, loras=(*model.loras, (recorded, spec)))
        return {"ui": {"text": [("warning: " if assumed else "") + note]}, "result": (out,)}

"""LoRA loader node: ``ACESTEP_MODEL`` in, the same model with a LoRA on its transformer out (chainable).

Choices listed (stable names, workflows store them):

* ``<name>.safetensors``: files in ComfyUI's ``loras`` folders (official ``pytorch_lora_weights.safetensors`` in a
  sub-folder reads the ``adapter_config.json`` beside it; ComfyUI-layout files work as they are);
* ``ace_step/<folder>``: official-layout LoRA folders (``pytorch_lora_weights.safetensors`` +
  ``adapter_config.json``) in the ``ace_step`` model folders.

Strength 1.0 = the LoRA as trained (alpha / r, alpha / sqrt(r) with rsLoRA; see :mod:`acestep_core.lora.merge`). The
original ACE-Step app applies LoRAs at ``lora_weight * r / alpha`` of that (RapMachine: its UI weight 1.0 =
strength 0.5 here).
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
STRENGTH_RANGE = (-3.0, 3.0)  # the original app's UI range
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
                    "1.0 = the LoRA as trained (alpha/r, alpha/sqrt(r) with rsLoRA); 0 = off; negative values "
                    "invert it. The original ACE-Step app's lora_weight w equals strength w*r/alpha (RapMachine: "
                    "w/2).")}),
            },
            "optional": {
                "lora_path": ("STRING", {"forceInput": True, "tooltip": (
                    "A LoRA name from another node (e.g. Train LoRA's lora_path); when connected it is used "
                    "instead of lora_name.")}),
            },
        }

    def apply(self, model: Any, lora_name: str, strength: float, lora_path: str | None = None) -> tuple[Any]:
        from acestep_core.lora.merge import LoraSpec

        low, high = STRENGTH_RANGE
        if not low <= strength <= high:
            raise ValueError(f"strength {strength}: must be between {low} and {high}")
        if lora_path and lora_path.strip():
            lora_name = lora_path.strip()
        elif lora_name == FROM_INPUT_CHOICE:
            raise ValueError(f"lora_name {FROM_INPUT_CHOICE!r} needs the lora_path input connected (e.g. to Train "
                             "LoRA's lora_path output); or pick a LoRA from the list")
        lora = read_lora_cached(resolve_lora(lora_name))
        handle = adapter.add_loras(model.transformer, (LoraSpec(lora, float(strength), "trained"),))
        logger.info("ACE-Step: LoRA %s at strength %g (%d modules)", lora_name, strength, len(lora.modules))
        return (dataclasses.replace(model, transformer=handle),)

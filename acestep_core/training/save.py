"""Writing what training produces: LoRA folders in the official layout, atomically.

A LoRA folder holds ``pytorch_lora_weights.safetensors`` (keys ``<module>.lora_A.weight`` [r, in] and
``<module>.lora_B.weight`` [out, r], float32, header metadata ``{"format": "pt"}``: what the original's
``save_lora_adapter`` writes, and what the original app and ComfyUI load) and ``adapter_config.json`` (rank,
alpha, rsLoRA, targets; our loader reads it, so strength 1.0 is the LoRA as trained). When alpha differs from the
rank, a ComfyUI-format copy with ``.alpha`` tensors is written too (``pytorch_lora_weights_comfyui.safetensors``),
because ComfyUI and the original app ignore ``adapter_config.json``. Every file is written to a temporary file in
the same folder and renamed into place: an interrupted or failed save never leaves a corrupt LoRA.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from .lora import ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, LoraAdapter

__all__ = ["COMFYUI_WEIGHTS_FILE", "atomic_write", "atomic_write_bytes", "atomic_write_text", "save_lora"]

COMFYUI_WEIGHTS_FILE = "pytorch_lora_weights_comfyui.safetensors"


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary path)`` beside ``path``, then moved over it (:func:`acestep_core.safe_write.atomic_write`:
    Ctrl-C cannot land between the write and the move); a run replaces its own files."""
    from ..safe_write import atomic_write as safe_atomic_write

    return safe_atomic_write(path, write, overwrite=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)
    return atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    data = {k: v.detach().to(device="cpu", dtype=torch.float32).contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(data, str(tmp), metadata={"format": "pt"}))


def save_lora(adapter: LoraAdapter, folder: str | Path) -> Path:
    """Write ``adapter`` as a LoRA folder (official layout; see the module docstring); returns the folder."""
    folder = Path(folder)
    tensors = adapter.state_dict()
    _save_tensors(folder / PEFT_WEIGHTS_FILE, tensors)
    text = json.dumps(adapter.config.adapter_config(), indent=2) + "\n"
    atomic_write_text(folder / ADAPTER_CONFIG_FILE, text)
    config = adapter.config
    if float(config.lora_alpha or config.r) != float(config.r) or config.use_rslora:
        # ComfyUI scales by alpha / r; rsLoRA's alpha / sqrt(r) becomes the equivalent alpha' = alpha * sqrt(r).
        alpha = config.scaling * config.r
        comfy = {key.replace(".lora_A.weight", ".lora_down.weight").replace(".lora_B.weight", ".lora_up.weight"): v
                 for key, v in tensors.items()}
        comfy |= {f"{name}.alpha": torch.tensor(alpha) for name, _ in adapter.pairs()}
        _save_tensors(folder / COMFYUI_WEIGHTS_FILE, comfy)
    else:
        (folder / COMFYUI_WEIGHTS_FILE).unlink(missing_ok=True)
    return folder

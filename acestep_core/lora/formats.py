"""Reading LoRA files: the official ACE-Step / diffusers PEFT layout and ComfyUI's layouts -> :class:`LoraFile`.

Accepted (see :mod:`acestep_core.lora.merge` for matching, scaling and merging):

* official PEFT/diffusers layout (what the ACE-Step trainer's ``save_lora_adapter`` writes): a folder with
  ``pytorch_lora_weights.safetensors`` (+ optional ``adapter_config.json``: ``r``, ``lora_alpha``,
  ``use_rslora``, ``target_modules``), or the bare ``.safetensors`` file (an ``adapter_config.json`` next to it
  is read too). Keys ``<module>.lora_A.weight`` [r, in] / ``<module>.lora_B.weight`` [out, r], optionally
  prefixed by PEFT's ``base_model.model.`` or diffusers' ``transformer.``;
* ComfyUI's layout: ``diffusion_model.<module>.lora_down.weight`` / ``.lora_up.weight`` (+ optional
  ``.alpha``), the same keys without prefix, and kohya-style ``lora_unet_<module with _ for .>`` (ComfyUI's
  generic ``lora_unet_*`` map applies to ACE-Step, ``comfy/lora.py:175-192``).

Module names are kept as they appear in the file (prefix removed); kohya names are resolved against the
model's module names by :func:`acestep_core.lora.merge.match_lora`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..errors import CheckpointError, CheckpointMismatchError
from ..loading.checkpoint import read_safetensors

logger = logging.getLogger(__name__)

__all__ = ["LoraError", "LoraFile", "LoraModule", "looks_like", "read_lora"]

PEFT_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
KOHYA_PREFIX = "lora_unet_"
# Key prefixes stripped before matching (PEFT's wrapper, diffusers' pipeline component, ComfyUI's model).
PREFIXES = ("base_model.model.", "transformer.", "model.diffusion_model.", "diffusion_model.")
# Tensor-name suffix -> role. "down" = A [r, in], "up" = B [out, r].
SUFFIXES: dict[str, str] = {
    ".lora_A.weight": "down", ".lora_B.weight": "up",
    ".lora_A.default.weight": "down", ".lora_B.default.weight": "up",
    ".lora_down.weight": "down", ".lora_up.weight": "up",
    ".lora.down.weight": "down", ".lora.up.weight": "up",
    ".alpha": "alpha",
}
# (substring of a key, what a LoRA with such keys is for): used to name the model a refused LoRA belongs to.
FOREIGN_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("lora_unet_down_blocks", "a Stable Diffusion 1.x/2.x/SDXL UNet LoRA (diffusers block names)"),
    ("lora_unet_input_blocks", "a Stable Diffusion 1.x/2.x/SDXL UNet LoRA"),
    ("lora_unet_up_blocks", "a Stable Diffusion 1.x/2.x/SDXL UNet LoRA"),
    ("down_blocks.", "a Stable Diffusion / SDXL UNet LoRA (diffusers layout)"),
    ("lora_te", "a Stable Diffusion text-encoder (CLIP) LoRA"),
    ("double_blocks", "a Flux LoRA"),
    ("single_blocks", "a Flux LoRA"),
    ("single_transformer_blocks", "a Flux LoRA (diffusers layout)"),
    ("joint_blocks", "a Stable Diffusion 3 LoRA"),
    ("decoder.layers.", "an ACE-Step 1.5 LoRA (Qwen-style decoder.layers.N.self_attn/mlp names)"),
    ("timbre_encoder", "an ACE-Step 1.5 LoRA"),
    ("self_attn.q_proj", "an ACE-Step 1.5 (or other Qwen/LLaMA-style transformer) LoRA"),
    ("mlp.gate_proj", "an ACE-Step 1.5 (or other Qwen/LLaMA-style transformer) LoRA"),
)


class LoraError(CheckpointMismatchError):
    """A LoRA file cannot be used with this model (unreadable, another model's LoRA, missing/extra keys)."""


@dataclass(frozen=True)
class LoraModule:
    """One low-rank update ``delta W = up @ down`` (times the scale) of the module's ``.weight``."""

    down: torch.Tensor  # A [r, in]
    up: torch.Tensor  # B [out, r]
    alpha: float | None = None  # per-module alpha (ComfyUI ``.alpha`` tensor), None if the file has none

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])


@dataclass(frozen=True)
class LoraFile:
    """A LoRA as read from disk, module names as in the file (prefixes removed).

    Args:
        source: the file read.
        layout: ``peft`` (``lora_A``/``lora_B``) or ``comfyui`` (``lora_down``/``lora_up``, kohya names).
        modules: file module name -> matrices.
        config_alpha / config_rank / use_rslora / target_modules: from ``adapter_config.json`` (None/False/() if
            absent).
        stray_keys: tensors that are no LoRA matrix (unknown suffix).
        missing_keys: modules with only half a pair (``"<module> (up/lora_B missing)"``).
    """

    source: Path
    layout: Literal["peft", "comfyui"]
    modules: dict[str, LoraModule]
    config_alpha: float | None = None
    config_rank: int | None = None
    use_rslora: bool = False
    target_modules: tuple[str, ...] = ()
    stray_keys: tuple[str, ...] = field(default=())
    missing_keys: tuple[str, ...] = field(default=())


def _strip_prefix(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _split_key(key: str) -> tuple[str, str] | None:
    """``<module><suffix>`` -> (module, role), or None for keys that are not LoRA tensors."""
    for suffix, role in SUFFIXES.items():
        if key.endswith(suffix):
            return _strip_prefix(key[: -len(suffix)]), role
    return None


def _read_config(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoraError(f"{path}: not a readable adapter_config.json ({e}); fix or delete it") from e
    if not isinstance(data, dict):
        raise LoraError(f"{path}: adapter_config.json must hold a JSON object")
    return data


def _resolve_files(path: Path) -> tuple[Path, Path | None]:
    """(weights file, adapter_config.json or None) of a LoRA folder or file."""
    if path.is_dir():
        weights = path / PEFT_WEIGHTS_FILE
        if not weights.is_file():
            found = sorted(p.name for p in path.glob("*.safetensors"))
            if len(found) != 1:
                raise CheckpointError(
                    f"{path}: not a LoRA folder: expected {PEFT_WEIGHTS_FILE} (the official ACE-Step LoRA layout), "
                    f"found {found or 'no .safetensors file'}; pass the LoRA file itself")
            weights = path / found[0]
        config = path / ADAPTER_CONFIG_FILE
        return weights, config if config.is_file() else None
    if path.is_file():
        config = path.parent / ADAPTER_CONFIG_FILE
        return path, config if config.is_file() else None
    raise CheckpointError(f"LoRA not found: {path} (give a LoRA .safetensors file or a folder holding "
                          f"{PEFT_WEIGHTS_FILE} and adapter_config.json)")


def _pairs(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    stray: list[str] = []
    for key, tensor in tensors.items():
        split = _split_key(key)
        if split is None:
            stray.append(key)
            continue
        grouped.setdefault(split[0], {})[split[1]] = tensor
    return grouped, stray


def read_lora(path: str | Path) -> LoraFile:
    """Read a LoRA (folder or file; official PEFT or ComfyUI layout) into a :class:`LoraFile` (float32, CPU).

    Raises :class:`~acestep_core.errors.CheckpointError` for missing / unreadable / pickle files and
    :class:`LoraError` for files holding no LoRA tensors.
    """
    weights, config_path = _resolve_files(Path(path).expanduser())
    tensors = read_safetensors(weights, dtype=torch.float32)
    grouped, stray = _pairs(tensors)
    if not grouped:
        raise LoraError(f"{weights}: no LoRA tensors found (expected keys ending in .lora_A.weight/.lora_B.weight "
                        f"or .lora_down.weight/.lora_up.weight); first keys: {sorted(tensors)[:5]}")
    modules: dict[str, LoraModule] = {}
    missing: list[str] = []
    for name, parts in grouped.items():
        if "down" not in parts or "up" not in parts:
            missing.append(f"{name} ({'up/lora_B' if 'down' in parts else 'down/lora_A'} missing)")
            continue
        alpha = float(parts["alpha"].reshape(-1)[0]) if "alpha" in parts else None
        modules[name] = LoraModule(parts["down"], parts["up"], alpha)
    layout: Literal["peft", "comfyui"] = "peft" if any(".lora_A" in k for k in tensors) else "comfyui"
    config = _read_config(config_path) if config_path is not None else {}
    config_alpha, config_rank = config.get("lora_alpha"), config.get("r")
    targets = config.get("target_modules") or ()
    return LoraFile(
        source=weights, layout=layout, modules=modules,
        config_alpha=float(config_alpha) if isinstance(config_alpha, (int, float)) else None,
        config_rank=int(config_rank) if isinstance(config_rank, int) else None,
        use_rslora=bool(config.get("use_rslora", False)),
        target_modules=tuple(targets) if isinstance(targets, (list, tuple)) else (str(targets),),
        stray_keys=tuple(sorted(stray)), missing_keys=tuple(sorted(missing)))


def looks_like(names: list[str]) -> str:
    """A guess of which model a LoRA with these module/key names is for (for refusal messages)."""
    for needle, what in FOREIGN_SIGNATURES:
        if any(needle in name for name in names):
            return what
    return "a LoRA for another model"

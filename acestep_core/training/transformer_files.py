"""The transformer folder a full fine-tune writes: ``ace_step_transformer/`` in the official Hugging Face layout.

``config.json`` (the base folder's, or the config of a ComfyUI single file with its class name) and
``diffusion_pytorch_model.safetensors``, or above :data:`MAX_SHARD_BYTES` the shards
``diffusion_pytorch_model-00001-of-0000N.safetensors`` with ``diffusion_pytorch_model.safetensors.index.json``
(``{"metadata": {"total_size"}, "weight_map": {key: shard}}``; diffusers' layout and default limit, 10 GB). The
file holds every key of the base checkpoint's transformer: the trained tensors, plus the ones training does not
declare (the unused cross-attention layers and, without REPA, the REPA heads) copied from the base, so the
original app, our loader and ComfyUI read it like the released file. The folder is written under a temporary
name and swapped in: an interrupted save leaves the previous folder.

:func:`complete_checkpoint` makes a run's output a whole checkpoint folder (the base folder's other three
components linked beside it), which ``--checkpoint``, the original app and ComfyUI's ``models/ace_step/`` load.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..loading.checkpoint import read_safetensors, read_weights
from ..loading.components import COMPONENTS, TRANSFORMER
from ..safe_write import default_file_mode

logger = logging.getLogger(__name__)

__all__ = ["MAX_SHARD_BYTES", "TRANSFORMER_FOLDER", "complete_checkpoint", "read_transformer_folder",
           "write_transformer_folder"]

TRANSFORMER_FOLDER = TRANSFORMER.folder
WEIGHTS_FILE = TRANSFORMER.weights_file
MAX_SHARD_BYTES = 10 * 10**9
CLASS_NAME = "ACEStepTransformer2DModel"  # the original's diffusers class


def _base_folder(base: Path) -> Path | None:
    if not base.is_dir():
        return None
    from ..loading.loader import resolve_folder

    return resolve_folder(base)


def base_transformer_tensors(base: Path, keep: Callable[[str], bool]) -> dict[str, torch.Tensor]:
    """The base checkpoint's transformer tensors that ``keep`` selects (official folder or ComfyUI single file)."""
    folder = _base_folder(base)
    if folder is not None:
        return read_weights(folder / TRANSFORMER_FOLDER, WEIGHTS_FILE, keep=keep)
    prefix = TRANSFORMER.comfy_prefix
    raw = read_safetensors(base, keep=lambda key: key.startswith(prefix) and keep(key[len(prefix):]))
    return {key[len(prefix):]: value for key, value in raw.items()}


def _config_text(base: Path, cfg: Any) -> str:
    folder = _base_folder(base)
    if folder is not None:
        return (folder / TRANSFORMER_FOLDER / "config.json").read_text(encoding="utf-8")
    return json.dumps({"_class_name": CLASS_NAME, **asdict(cfg)}, indent=2) + "\n"


def _shards(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensors[key]
        size += nbytes
    return shards


def write_transformer_folder(target: Path, trained: dict[str, torch.Tensor], *, base: Path, cfg: Any,
                             max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Write ``target`` (an ``ace_step_transformer/`` folder): the trained tensors + the base's other keys."""
    extra = base_transformer_tensors(base, keep=lambda key: key not in trained)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in {**extra, **trained}.items()}
    temporary, previous = target.with_name(f".{target.name}.tmp"), target.with_name(f".{target.name}.old")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    shards = _shards(tensors, max_shard_bytes)
    if len(shards) == 1:
        save_file(shards[0], str(temporary / WEIGHTS_FILE), metadata={"format": "pt"})
    else:
        stem = WEIGHTS_FILE.removesuffix(".safetensors")
        weight_map: dict[str, str] = {}
        for number, shard in enumerate(shards, start=1):
            name = f"{stem}-{number:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(temporary / name), metadata={"format": "pt"})
            weight_map |= dict.fromkeys(shard, name)
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (temporary / f"{WEIGHTS_FILE}.index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    (temporary / "config.json").write_text(_config_text(base, cfg), encoding="utf-8")
    mode = default_file_mode()
    for path in temporary.iterdir():  # safetensors writes 0600; give the usual permissions
        os.chmod(path, mode)
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        os.replace(target, previous)
    os.replace(temporary, target)
    shutil.rmtree(previous, ignore_errors=True)
    logger.info("transformer saved in %s (%d tensors, %d file(s))", target, len(tensors), len(shards))
    return target


def read_transformer_folder(folder: Path, keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a folder written by :func:`write_transformer_folder` (sharded or not)."""
    return read_weights(folder, WEIGHTS_FILE, keep=keep)


def complete_checkpoint(root: Path, base: Path) -> bool:
    """Link the base folder's other components beside ``root/ace_step_transformer`` (True when ``root`` is now a
    whole checkpoint folder). A ComfyUI single-file base has no folders to link: False, with a log line."""
    folder = _base_folder(base)
    if folder is None:
        logger.info("%s holds the fine-tuned ace_step_transformer/; the base %s is a single file, so put that "
                    "folder into a copy of the official ACE-Step-v1-3.5B folder to use it", root, base.name)
        return False
    for component in COMPONENTS:
        if component.folder == TRANSFORMER_FOLDER:
            continue
        link = root / component.folder
        if not link.exists() and not link.is_symlink():
            os.symlink((folder / component.folder).resolve(), link, target_is_directory=True)
    return True

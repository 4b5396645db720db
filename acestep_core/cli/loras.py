"""LoRAs of a ``generate`` run, planned and checked before any model work.

``--params`` files name one LoRA (``lora_name_or_path`` / ``lora_weight``, applied by the original app's rule:
scale = lora_weight); ``--lora PATH[:STRENGTH]`` adds more (strength 1.0 = as trained). Local LoRA files are read
and matched against the checkpoint's transformer built from its config on the ``meta`` device (no weights are
read), so a LoRA for another model, a damaged file or a bad strength exits 2 before the model is loaded; the scale
each LoRA gets, and why, is logged (a warning when alpha had to be assumed). Hub repo ids are fetched when run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from .errors import UsageError
from .params_io import LORA_NONE, ParamsFile

logger = logging.getLogger("acestep_core.cli")

__all__ = ["LoraRequest", "check_loras", "plan_loras"]

COMFY_MODEL_FOLDERS = ("loras/", "ace_step/")  # how the Save Audio node records a LoRA (nodes/lora.py)


@dataclass(frozen=True)
class LoraRequest:
    """A LoRA to apply: a local file/folder (``path``) or a Hugging Face repo id (``repo``, fetched when run).

    ``rule`` is ``trained`` for ``--lora`` (strength 1.0 = as trained) and ``original_app`` for a ``--params``
    file's ``lora_weight`` (scale = lora_weight, as the original app); ``label`` is what the sidecar records;
    ``lora`` is the file as read while planning (local LoRAs), reused when run.
    """

    strength: float
    rule: str
    label: str
    path: Path | None = None
    repo: str | None = None
    lora: Any = None  # acestep_core.lora.formats.LoraFile


def _params_lora(base: ParamsFile, params_path: Path | None) -> LoraRequest | None:
    """The ``--params`` file's LoRA: a local path (as written, or relative to the JSON) or a Hub repo id."""
    name = base.lora_name_or_path
    if name == LORA_NONE:
        return None
    where = f"--params {params_path}: lora_name_or_path {name!r}"
    from ..hub import models_dir

    candidates = [Path(name).expanduser()]
    if params_path is not None and not candidates[0].is_absolute():
        candidates.append(params_path.expanduser().resolve().parent / name)
    if name.startswith(COMFY_MODEL_FOLDERS):  # a ComfyUI record: relative to ComfyUI's models folder
        candidates.append(models_dir() / name)
    for path in candidates:
        if path.exists():
            return LoraRequest(base.lora_weight, "original_app", name, path=path)
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) and not name.endswith(".safetensors"):
        return LoraRequest(base.lora_weight, "original_app", name, repo=name)  # the original app downloads it
    comfy = (" It is a ComfyUI record (a name inside ComfyUI's models folder): set ACESTEP_MODELS_DIR to ComfyUI's "
             "models folder, or give the full path." if name.startswith(COMFY_MODEL_FOLDERS) else "")
    raise UsageError(f"{where}: not found (neither a local LoRA folder/file nor a Hugging Face repo id).{comfy} Point "
                     "it at the LoRA folder (e.g. a download of ACE-Step/ACE-Step-v1-chinese-rap-LoRA) or its repo "
                     "id, or set \"lora_name_or_path\": \"none\" to run without it")


def plan_loras(params_file: ParamsFile, params_path: Path | None, flags: list[str],
               checkpoint: Path | None) -> tuple[LoraRequest, ...]:
    """``--params`` LoRA (original app's scale) first, then every ``--lora PATH[:STRENGTH]`` (as trained); local
    ones are read and checked against the checkpoint (:func:`check_loras`)."""
    from ..lora.merge import LoraError, check_strength, parse_lora_arg

    requests = []
    from_params = _params_lora(params_file, params_path)
    if from_params is not None:
        try:
            check_strength(from_params.strength, f"--params {params_path}: lora_weight")
        except LoraError as e:
            raise UsageError(str(e)) from e
        requests.append(from_params)
    for text in flags:
        try:
            path, strength = parse_lora_arg(text)
            check_strength(strength, f"--lora {text}")
        except LoraError as e:
            raise UsageError(f"--lora {e}" if not str(e).startswith("--lora") else str(e)) from e
        if not path.exists():
            raise UsageError(f"--lora {text}: {path} not found (give a LoRA .safetensors file or a folder with "
                             "pytorch_lora_weights.safetensors, optionally followed by :STRENGTH)")
        requests.append(LoraRequest(strength, "trained", str(path), path=path))
    return check_loras(tuple(requests), checkpoint)


def check_loras(requests: tuple[LoraRequest, ...], checkpoint: Path | None) -> tuple[LoraRequest, ...]:
    """Read every local LoRA and match it to the checkpoint's transformer (meta device: shapes only); logs the
    scale each gets. Returns the requests with their files attached; raises UsageError for unusable LoRAs."""
    local = [r for r in requests if r.path is not None]
    if not local:
        return requests
    from ..loading.loader import transformer_skeleton
    from ..lora.merge import LoraSpec, match_lora, read_lora, scale_note

    skeleton = transformer_skeleton(checkpoint)
    checked = []
    for request in requests:
        if request.path is None:
            checked.append(request)
            continue
        flag = "--lora" if request.rule == "trained" else "--params lora_name_or_path"
        try:
            lora = read_lora(request.path)
            match_lora(lora, skeleton)
        except CheckpointError as e:  # LoraError is a CheckpointError
            raise UsageError(f"{flag} {request.label}: {e}") from e
        note, assumed = scale_note(LoraSpec(lora, request.strength, request.rule))  # type: ignore[arg-type]
        (logger.warning if assumed else logger.info)("%s", note)
        checked.append(replace(request, lora=lora))
    return tuple(checked)

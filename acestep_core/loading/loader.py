"""``load_checkpoint``: the public entry point that turns checkpoint files into modules.

Two real formats are accepted:

* the official Hugging Face folder layout (``ACE-Step/ACE-Step-v1-3.5B``): a folder with
  ``ace_step_transformer/``, ``music_dcae_f8c8/``, ``music_vocoder/`` and ``umt5-base/``,
  each with its ``config.json`` (a Hugging Face cache folder holding
  ``models--ACE-Step--ACE-Step-v1-3.5B/snapshots/<rev>/`` is resolved to the snapshot);
* ComfyUI's single-file repackage ``ace_step_v1_3.5b.safetensors`` (prefixes in
  :mod:`acestep_core.loading.components`); it carries no config, so ``spec`` (default: the released
  3.5B model) supplies the architecture.

Modules are built on the ``meta`` device and the checkpoint tensors are assigned to
them (no double allocation), strictly: see :func:`acestep_core.loading.checkpoint.load_strict`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..config import MODEL_SPECS, DCAEConfig, ModelSpec, TransformerConfig, UMT5Config, VocoderConfig
from ..errors import CheckpointError, CheckpointMismatchError
from ..ops import DEFAULT_OPS, Ops
from .checkpoint import checkpoint_shapes, load_strict, read_safetensors, read_safetensors_keys, read_weights
from .components import COMFY_IGNORED_KEYS, COMFY_SPIECE_KEY, COMPONENTS, COMPONENTS_BY_NAME, Component, detect

logger = logging.getLogger(__name__)

__all__ = ["ALL_COMPONENTS", "LoadedCheckpoint", "TokenizerSource", "checkpoint_shapes", "load_checkpoint"]

ComponentName = Literal["transformer", "dcae", "vocoder", "text_encoder"]
ALL_COMPONENTS: tuple[ComponentName, ...] = ("transformer", "dcae", "vocoder", "text_encoder")
HF_REPO_CACHE_DIR = "models--ACE-Step--ACE-Step-v1-3.5B"


@dataclass(frozen=True)
class TokenizerSource:
    """Where the UMT5 prompt tokenizer of a checkpoint lives (consumed by the text front-end)."""

    kind: Literal["tokenizer_json", "sentencepiece"]
    path: Path | None = None  # tokenizer.json of the folder layout
    data: bytes | None = None  # serialized SentencePiece model of ComfyUI's single file


@dataclass
class LoadedCheckpoint:
    """The components of one ACE-Step v1 checkpoint (``None`` for components not requested)."""

    spec: ModelSpec
    source: Path
    layout: Literal["folder", "comfyui_single_file"]
    transformer: Any = None  # AceStepTransformer
    codec: Any = None  # AudioCodec (dcae + vocoder), when both were requested
    dcae: Any = None  # MusicDCAE
    vocoder: Any = None  # Vocoder
    text_encoder: Any = None  # UMT5Encoder
    tokenizer: TokenizerSource | None = None


def _build(name: ComponentName, spec: ModelSpec, *, dtype: torch.dtype, ops: Ops,
           repa_heads: bool = False) -> nn.Module:
    """Instantiate one component on the meta device."""
    with torch.device("meta"):
        if name == "transformer":
            from ..transformer import AceStepTransformer

            return AceStepTransformer(spec.transformer, dtype=dtype, ops=ops, repa_heads=repa_heads)
        if name == "dcae":
            from ..dcae import MusicDCAE

            return MusicDCAE(spec.dcae, dtype=dtype, ops=ops)
        if name == "vocoder":
            from ..vocoder.model import Vocoder

            return Vocoder(spec.vocoder, dtype=dtype, ops=ops)
        from ..text.encoder import UMT5Encoder

        return UMT5Encoder(spec.umt5, dtype=dtype, ops=ops)


def _prepare_state_dict(component: Component, raw: dict[str, torch.Tensor], *, source: str) -> dict[str, torch.Tensor]:
    """Apply documented renames, drop documented ignored keys."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        new_key = component.rename(key)
        if component.is_ignored(new_key):
            logger.debug("%s: ignoring documented unused key %s", source, key)
            continue
        if new_key in out:
            raise CheckpointMismatchError(f"{source}: keys {key!r} and another key both map to {new_key!r}")
        out[new_key] = tensor
    return out


def _load_component(
    name: ComponentName, raw: dict[str, torch.Tensor], spec: ModelSpec, *, source: str, dtype: torch.dtype, ops: Ops,
    repa_heads: bool = False,
) -> nn.Module:
    component = COMPONENTS_BY_NAME[name]
    state_dict = _prepare_state_dict(component, raw, source=source)
    module = _build(name, spec, dtype=dtype, ops=ops, repa_heads=repa_heads)
    return load_strict(module, state_dict, source=source, component=name)


def resolve_folder(path: Path) -> Path:
    """Return the folder holding the four component sub-folders (HF cache layouts resolved)."""
    if all((path / c.folder).is_dir() for c in COMPONENTS):
        return path
    snapshots = sorted((path / HF_REPO_CACHE_DIR / "snapshots").glob("*"))
    for snap in reversed(snapshots):
        if all((snap / c.folder).is_dir() for c in COMPONENTS):
            return snap
    present = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    missing = [c.folder for c in COMPONENTS if not (path / c.folder).is_dir()]
    raise CheckpointError(
        f"{path}: not an ACE-Step v1 checkpoint folder; missing sub-folder(s) {missing} (found: {present[:10]}). "
        "Download the whole ACE-Step/ACE-Step-v1-3.5B repository (all four folders), or pass ComfyUI's "
        "single-file ace_step_v1_3.5b.safetensors instead."
    )


def _folder_spec(root: Path, wanted: Collection[str]) -> ModelSpec:
    spec = MODEL_SPECS["ace-step-v1-3.5b"]
    readers: dict[str, tuple[str, Any, str]] = {
        "transformer": ("ace_step_transformer", TransformerConfig, "transformer"),
        "dcae": ("music_dcae_f8c8", DCAEConfig, "dcae"),
        "vocoder": ("music_vocoder", VocoderConfig, "vocoder"),
        "text_encoder": ("umt5-base", UMT5Config, "umt5"),
    }
    changes = {}
    for name, (folder, cls, field_name) in readers.items():
        if name in wanted:
            changes[field_name] = cls.from_json(root / folder / "config.json")
    return replace(spec, name=f"folder:{root.name}", **changes)


def _load_folder(root: Path, wanted: Collection[ComponentName], *, device: torch.device, dtype: torch.dtype,
                 ops: Ops, repa_heads: bool) -> LoadedCheckpoint:
    spec = _folder_spec(root, wanted)
    result = LoadedCheckpoint(spec=spec, source=root, layout="folder")
    for name in wanted:
        component = COMPONENTS_BY_NAME[name]
        file = root / component.folder / component.weights_file
        raw = read_weights(root / component.folder, component.weights_file, device=device, dtype=dtype)
        setattr(result, name, _load_component(name, raw, spec, source=str(file), dtype=dtype, ops=ops,
                                              repa_heads=repa_heads))
    if "text_encoder" in wanted:
        result.tokenizer = TokenizerSource(kind="tokenizer_json", path=root / "umt5-base" / "tokenizer.json")
    return result


def _split_single_file(path: Path) -> dict[str, str]:
    """Map every key of a ComfyUI single file to its component name (or raise on strangers)."""
    import re

    owners: dict[str, str] = {}
    strangers = []
    for key in read_safetensors_keys(path):
        owner = next((c.name for c in COMPONENTS if key.startswith(c.comfy_prefix)), None)
        if owner is not None:
            owners[key] = owner
        elif key == COMFY_SPIECE_KEY or any(re.fullmatch(p, key) for p in COMFY_IGNORED_KEYS):
            owners[key] = "_other"
        else:
            strangers.append(key)
    if strangers:
        _refuse_component_file(path, strangers)
        raise CheckpointMismatchError(
            f"{path}: {len(strangers)} key(s) belong to no ACE-Step v1 component: {sorted(strangers)[:10]}. "
            "Expected ComfyUI's ace_step_v1_3.5b.safetensors (prefixes model.diffusion_model., vae.dcae., "
            "vae.vocoder., text_encoders.umt5base.transformer.); this looks like a checkpoint of another model."
        )
    return owners


def _refuse_component_file(path: Path, keys: list[str]) -> None:
    """Raise a helpful error when ``path`` is one component file of the official folder layout, given alone."""
    try:
        component = detect(keys, source=str(path))
    except CheckpointError:
        return  # not an ACE-Step component: the caller's generic error applies
    root = path.parent.parent if path.parent.name == component.folder else None
    fix = (f"pass the folder that holds it, {root}" if root is not None and (root / component.folder).is_dir()
           else "pass the whole ACE-Step-v1-3.5B folder (with ace_step_transformer/, music_dcae_f8c8/, "
                "music_vocoder/ and umt5-base/) or ComfyUI's all-in-one ace_step_v1_3.5b.safetensors")
    raise CheckpointMismatchError(
        f"{path}: this is the {component.name} alone ({component.folder}/{component.weights_file} of the official "
        f"folder layout), not a whole checkpoint; the other components and its config.json are needed too: {fix}."
    )


def _owned_by(owners: dict[str, str], name: str) -> Callable[[str], bool]:
    return lambda key: owners.get(key) == name


def _load_single_file(path: Path, wanted: Collection[ComponentName], *, spec: ModelSpec, device: torch.device,
                      dtype: torch.dtype, ops: Ops, repa_heads: bool) -> LoadedCheckpoint:
    owners = _split_single_file(path)
    missing = [n for n in wanted if n not in owners.values()]
    if missing:
        prefixes = [COMPONENTS_BY_NAME[n].comfy_prefix for n in missing]
        raise CheckpointMismatchError(
            f"{path}: no weights for component(s) {missing} (no keys starting with {prefixes}). "
            "Use the all-in-one ace_step_v1_3.5b.safetensors, or the official folder layout."
        )
    result = LoadedCheckpoint(spec=spec, source=path, layout="comfyui_single_file")
    for name in wanted:
        prefix = COMPONENTS_BY_NAME[name].comfy_prefix
        raw = read_safetensors(path, device=device, dtype=dtype, keep=_owned_by(owners, name))
        raw = {k[len(prefix):]: v for k, v in raw.items()}
        setattr(result, name, _load_component(name, raw, spec, source=f"{path} [{prefix}*]", dtype=dtype, ops=ops,
                                              repa_heads=repa_heads))
    if "text_encoder" in wanted and COMFY_SPIECE_KEY in owners:
        blob = read_safetensors(path, keep=lambda k: k == COMFY_SPIECE_KEY)[COMFY_SPIECE_KEY]
        result.tokenizer = TokenizerSource(kind="sentencepiece", data=blob.to(torch.uint8).numpy().tobytes())
    return result


def transformer_skeleton(path: str | Path | None) -> nn.Module:
    """The transformer of checkpoint ``path`` built on the ``meta`` device from its config alone (no weights read):
    module names and weight shapes, e.g. to check a LoRA before loading anything. ``None``, a single file or an
    unreadable folder give the released 3.5B architecture."""
    spec = MODEL_SPECS["ace-step-v1-3.5b"]
    if path is not None and Path(path).expanduser().is_dir():
        with contextlib.suppress(CheckpointError, OSError, ValueError):
            spec = _folder_spec(resolve_folder(Path(path).expanduser()), ["transformer"])
    return _build("transformer", spec, dtype=torch.float32, ops=DEFAULT_OPS)


def load_checkpoint(
    path: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    components: Collection[ComponentName] = ALL_COMPONENTS,
    spec: ModelSpec | None = None,
    ops: Ops = DEFAULT_OPS,
    repa_heads: bool = False,
) -> LoadedCheckpoint:
    """Load an ACE-Step v1 checkpoint (official folder or ComfyUI single file) strictly.

    Args:
        path: the checkpoint folder, or a ``.safetensors`` single file.
        device: where the weights are placed.
        dtype: floating-point dtype of all weights (the reference pipeline runs in bfloat16 on GPU).
        components: which of ``transformer``, ``dcae``, ``vocoder``, ``text_encoder`` to load.
        spec: architecture for single files (default: the released 3.5B model); folders read their
            ``config.json`` files and must not be given one.
        ops: layer namespace (``torch.nn`` or e.g. ComfyUI's ``comfy.ops.manual_cast``).
        repa_heads: keep the transformer's REPA projector heads (training); inference drops them.
    Returns:
        :class:`LoadedCheckpoint`; ``codec`` is set when both dcae and vocoder are loaded.
    """
    unknown = sorted(set(components) - set(ALL_COMPONENTS))
    if unknown or not components:
        raise ValueError(f"components must be a non-empty subset of {list(ALL_COMPONENTS)}, got {list(components)}")
    wanted = [n for n in ALL_COMPONENTS if n in components]
    path = Path(path).expanduser()
    device = torch.device(device)
    if path.is_dir():
        if spec is not None:
            raise ValueError(
                "spec is only used for single files; a checkpoint folder is described by its config.json files"
            )
        result = _load_folder(resolve_folder(path), wanted, device=device, dtype=dtype, ops=ops, repa_heads=repa_heads)
    elif path.is_file():
        result = _load_single_file(path, wanted, spec=spec or MODEL_SPECS["ace-step-v1-3.5b"], device=device,
                                   dtype=dtype, ops=ops, repa_heads=repa_heads)
    else:
        raise CheckpointError(
            f"checkpoint not found: {path}. Pass the ACE-Step-v1-3.5B folder (with ace_step_transformer/, "
            "music_dcae_f8c8/, music_vocoder/, umt5-base/) or ComfyUI's ace_step_v1_3.5b.safetensors."
        )
    if result.dcae is not None and result.vocoder is not None:
        from ..audio.codec import AudioCodec

        result.codec = AudioCodec(result.dcae, result.vocoder, result.spec.codec)
    return result

"""Strict loading of a teacher folder (``config.json`` + ``model.safetensors``, the Hugging Face layout).

Checkpoint spellings accepted for the positional conv of ``encoder.pos_conv_embed.conv``:

* ``weight_g`` [1, 1, k] / ``weight_v`` [H, H / groups, k]: ``torch.nn.utils.weight_norm(dim=2)``, as in the
  released MERT-v1-330M and mHuBERT-147 files;
* ``parametrizations.weight.original0`` / ``original1``: the same pair from ``nn.utils.parametrizations``;
* a plain ``weight`` (weight norm already removed).

The pair is baked once at load, ``weight = g * v / ||v||`` with the norm over dims 0 and 1 (all but the
kernel dim 2), in float32. ``masked_spec_embed`` (the SpecAugment mask vector, training only) is accepted
when present, shape-checked and dropped. Everything else must match the model exactly: missing, unexpected
and wrongly shaped keys are listed in one :class:`~acestep_core.errors.CheckpointMismatchError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..errors import CheckpointMismatchError
from ..loading.checkpoint import check_state_dict, checkpoint_shapes, load_strict, read_safetensors
from .config import HubertConfig
from .model import HubertEncoder

__all__ = [
    "CONFIG_FILE",
    "POS_CONV_PREFIX",
    "WEIGHTS_FILE",
    "bake_weight_norm",
    "canonical_state_dict",
    "load_teacher",
    "load_teacher_state_dict",
    "save_teacher_folder",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
POS_CONV_PREFIX = "encoder.pos_conv_embed.conv."
MASKED_SPEC_EMBED = "masked_spec_embed"
# nn.utils.parametrizations.weight_norm spelling -> legacy nn.utils.weight_norm spelling (same tensors).
WEIGHT_NORM_RENAMES = {
    POS_CONV_PREFIX + "parametrizations.weight.original0": POS_CONV_PREFIX + "weight_g",
    POS_CONV_PREFIX + "parametrizations.weight.original1": POS_CONV_PREFIX + "weight_v",
}
_WEIGHT, _G, _V = POS_CONV_PREFIX + "weight", POS_CONV_PREFIX + "weight_g", POS_CONV_PREFIX + "weight_v"


def canonical_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the parametrizations spelling to ``weight_g``/``weight_v`` (a key whose target already exists is
    kept as is, so a file with both spellings fails the strict check instead of losing a tensor)."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        target = WEIGHT_NORM_RENAMES.get(key, key)
        out[key if target in state_dict else target] = tensor
    return out


def _expected_shapes(module: HubertEncoder, state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """The key -> shape map the (canonical) file must have, in the file's spelling of the positional conv."""
    expected = checkpoint_shapes(module)
    weight_shape = expected[_WEIGHT]
    if _WEIGHT not in state_dict or _G in state_dict or _V in state_dict:
        del expected[_WEIGHT]
        expected[_G] = (1, 1, weight_shape[2])
        expected[_V] = weight_shape
    if MASKED_SPEC_EMBED in state_dict:
        expected[MASKED_SPEC_EMBED] = (module.config.hidden_size,)
    return expected


def bake_weight_norm(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``g * v / ||v||`` with the norm over every dim but 2 (``weight_norm(dim=2)``), computed in float32."""
    v32 = v.to(torch.float32)
    norm = torch.linalg.vector_norm(v32, dim=(0, 1), keepdim=True)
    return v32 * (g.to(torch.float32) / norm)


def load_teacher_state_dict(module: HubertEncoder, state_dict: Mapping[str, torch.Tensor], *,
                            source: str, name: str) -> HubertEncoder:
    """Check ``state_dict`` strictly against ``module`` (built on any device, meta included) and assign it."""
    sd = canonical_state_dict(state_dict)
    try:
        check_state_dict(_expected_shapes(module, sd), sd, source=source, component=f"{name} teacher")
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(
            f"{e} Expected the Hugging Face weights of the {name} teacher with the config.json next to them "
            "(conv front-end, feature_projection, encoder.*); the config's sizes decide the expected shapes.") from e
    sd.pop(MASKED_SPEC_EMBED, None)
    if _G in sd:
        sd[_WEIGHT] = bake_weight_norm(sd.pop(_G), sd.pop(_V))
    return load_strict(module, sd, source=source, component=f"{name} teacher")  # type: ignore[return-value]


def load_teacher(folder: str | Path, *, name: str = "HuBERT", device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> HubertEncoder:
    """Build the encoder of ``folder/config.json`` on the meta device and fill it from ``folder/model.safetensors``
    (strict; eval mode, no gradients). ``name`` appears in error messages."""
    folder = Path(folder)
    cfg = HubertConfig.from_json(folder / CONFIG_FILE)
    with torch.device("meta"):
        module = HubertEncoder(cfg, dtype=dtype)
    state_dict = read_safetensors(folder / WEIGHTS_FILE)
    load_teacher_state_dict(module, state_dict, source=str(folder / WEIGHTS_FILE), name=name)
    return module.to(device)


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_teacher_folder(folder: str | Path, config: HubertConfig | str, state_dict: Mapping[str, torch.Tensor], *,
                        overwrite: bool = False) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder``, each atomically (temp file + rename).

    ``config`` is a :class:`HubertConfig` or the text of a ``config.json`` (kept verbatim). Refuses to replace
    an existing ``model.safetensors``, or a ``config.json`` with other content, unless ``overwrite``. Returns
    the weights path.
    """
    folder = Path(folder)
    weights, config_path = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    text = config if isinstance(config, str) else json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n"
    same_config = config_path.is_file() and config_path.read_text(encoding="utf-8") == text
    for path, exists in ((weights, weights.exists()), (config_path, config_path.exists() and not same_config)):
        if exists and not overwrite:
            raise FileExistsError(f"{path} already exists; refusing to overwrite it (pass overwrite=True / "
                                  "--overwrite to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    _atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    if not same_config:
        _atomic_write(config_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return weights

"""Safe, strict checkpoint reading and loading.

* Only safetensors are read; pickle-based files (``.ckpt/.pt/.pth/.bin``, or any file
  whose first bytes are a zip/pickle signature) are refused: unpickling runs code.
* :func:`load_strict` assigns a state dict into a module built on the ``meta``
  device (no double allocation) after checking keys and shapes; any missing,
  unexpected or mis-shaped key raises one :class:`CheckpointMismatchError` naming
  the file, up to 10 keys of each kind and the likely cause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..errors import CheckpointError, CheckpointMismatchError

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
_PICKLE_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
MAX_LISTED_KEYS = 10

TensorFilter = Callable[[str], bool]


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: refusing to load a '{path.suffix}' file. Pickle-based checkpoints can run arbitrary code "
            "when opened, so this pack only reads .safetensors. Download the .safetensors version of the "
            "checkpoint (the official ACE-Step/ACE-Step-v1-3.5B repository and ComfyUI's repackaged "
            "ace_step_v1_3.5b.safetensors both are)."
        )
    with path.open("rb") as fh:
        head = fh.read(4)
    if any(head.startswith(m[: len(head)]) and len(head) >= len(m) for m in _PICKLE_MAGICS):
        raise CheckpointError(
            f"{path}: this file is a PyTorch pickle/zip archive despite its name, not safetensors. "
            "Refusing to unpickle it; use a real .safetensors checkpoint."
        )


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"{path}: not a readable safetensors file ({error}). The file is corrupt or truncated (an interrupted "
        "download is the usual cause): delete it and download it again, and compare its size with the "
        "size listed on the model page."
    )


def read_safetensors(
    path: str | Path,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    keep: TensorFilter | None = None,
) -> dict[str, torch.Tensor]:
    """Read a safetensors file into a dict, casting floating tensors to ``dtype``.

    Tensors are read one at a time and cast immediately, so peak memory is the
    result plus one tensor. ``keep`` selects keys (all by default). Raises
    :class:`CheckpointError` with the path and the fix for missing, pickle,
    corrupt or truncated files.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    _refuse_pickle(path)
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a Mapping
                if keep is not None and not keep(key):
                    continue
                tensor = fh.get_tensor(key)
                if dtype is not None and tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                out[key] = tensor.to(device)
    except SafetensorError as e:
        raise _unreadable(path, e) from e
    return out


def weight_files(folder: Path, weights_file: str) -> list[Path]:
    """The file(s) of a component folder: ``weights_file``, or the shards its ``<weights_file>.index.json``
    names (Hugging Face's sharded layout, ``{"weight_map": {key: shard file}}``)."""
    single, index = folder / weights_file, folder / f"{weights_file}.index.json"
    if single.is_file() or not index.is_file():
        return [single]
    import json

    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{index}: not a readable shard index ({e}); the save was interrupted or the file is "
                              "corrupt: save or download the folder again") from e
    if any("/" in name or "\\" in name or name.startswith(".") for name in names):
        raise CheckpointError(f"{index}: shard names must be files beside the index, got {names[:3]}")
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{index}: shard(s) {missing[:3]} not found beside it; the save or the download is "
                              "incomplete")
    return [folder / name for name in names]


def read_weights(folder: Path, weights_file: str, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, keep: TensorFilter | None = None) -> dict[str, torch.Tensor]:
    """:func:`read_safetensors` over every file of a (possibly sharded) component folder."""
    out: dict[str, torch.Tensor] = {}
    for path in weight_files(folder, weights_file):
        out.update(read_safetensors(path, device=device, dtype=dtype, keep=keep))
    return out


def read_safetensors_keys(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Key -> shape map of a safetensors file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except SafetensorError as e:
        raise _unreadable(path, e) from e


def format_key_list(keys: Iterable[str]) -> str:
    """Sorted, comma-separated keys, at most ``MAX_LISTED_KEYS`` of them plus a "(+N more)" count."""
    keys = sorted(keys)
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else ""
    return shown + more


def mismatch_lines(missing: Sequence[str], unexpected: Sequence[str], wrong: Sequence[str], *,
                   unexpected_label: str = "Unexpected", unexpected_note: str = "",
                   wrong_unit: str = "key(s)") -> list[str]:
    """One sentence per non-empty kind of mismatch, each listing up to ``MAX_LISTED_KEYS`` names."""
    lines = []
    if missing:
        lines.append(f"Missing {len(missing)} key(s): {format_key_list(missing)}.")
    if unexpected:
        lines.append(f"{unexpected_label} {len(unexpected)} key(s){unexpected_note}: {format_key_list(unexpected)}.")
    if wrong:
        lines.append(f"Wrong shape for {len(wrong)} {wrong_unit}: {format_key_list(wrong)}.")
    return lines


def _likely_cause(n_expected: int, missing: int, unexpected: int, shape_errors: int, component: str) -> str:
    if missing and not unexpected and not shape_errors and missing < n_expected:
        return "the file looks truncated or partially saved: re-download it"
    if missing == n_expected or (unexpected and missing > n_expected // 2):
        return f"this does not look like an ACE-Step v1 {component} checkpoint: check that you picked the right file"
    if shape_errors and not missing and not unexpected:
        return (f"the keys match but the sizes do not: the {component} config does not match the weights "
                "(a different model size, or a wrong config.json next to the weights)")
    return f"the file does not match the ACE-Step v1 {component} architecture"


def checkpoint_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    """Key -> shape map a checkpoint for ``module`` must have.

    That is the module's state dict plus, when the module defines
    ``unused_checkpoint_shapes()``, the documented upstream tensors that released files
    contain but inference never uses (checked, then dropped, by :func:`load_strict`).
    """
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    unused = getattr(module, "unused_checkpoint_shapes", None)
    if unused is not None:
        shapes.update(unused())
    return shapes


def check_state_dict(
    expected: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, torch.Tensor], *, source: str, component: str
) -> None:
    """Raise :class:`CheckpointMismatchError` unless keys and shapes equal ``expected`` exactly."""
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [
        f"{k} (file {list(got[k])}, model {list(expected[k])})"
        for k in expected
        if k in got and got[k] != expected[k]
    ]
    if not (missing or unexpected or wrong):
        return
    parts = [f"{source}: the {component} weights do not match the model.",
             *mismatch_lines(missing, unexpected, wrong)]
    cause = _likely_cause(len(expected), len(missing), len(unexpected), len(wrong), component)
    parts.append(f"Likely cause: {cause}.")
    raise CheckpointMismatchError(" ".join(parts))


def load_strict(
    module: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str, component: str
) -> nn.Module:
    """Check ``state_dict`` against ``module`` and assign its tensors (module may live on ``meta``).

    Documented unused upstream tensors (see :func:`checkpoint_shapes`) must be present with
    the right shape and are then dropped. Floating tensors are cast to the dtype the module
    declares. After assignment no parameter or buffer may remain
    on the meta device.
    """
    expected = checkpoint_shapes(module)
    check_state_dict(expected, state_dict, source=source, component=component)
    own = module.state_dict()
    # The module's declared dtype wins (assign=True would otherwise adopt the file's dtype).
    assigned = {
        k: v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v
        for k, v in state_dict.items()
        if k in own
    }
    module.load_state_dict(assigned, strict=True, assign=True)
    leftovers = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointMismatchError(
            f"{source}: {component} tensors were not filled by the checkpoint: {format_key_list(leftovers)} "
            "(internal error: the module registers state that is not in the file)."
        )
    return module.eval().requires_grad_(False)

"""Find a teacher folder on disk, or download it (only when the caller allows it, after the licence notice).

A teacher folder holds ``config.json`` + ``model.safetensors`` (the Hugging Face layout). Places tried, first
usable one wins (every place tried is listed when none is):

1. an explicit path (a folder, or its ``model.safetensors``); if given it must be usable;
2. ``<dir>/<repo name>`` for each caller-supplied search folder (ComfyUI ``models/`` folders come from the node
   layer), e.g. ``<dir>/MERT-v1-330M``, ``<dir>/mHuBERT-147``;
3. our cache, ``$ACESTEP_CACHE_DIR/teachers/<repo name>`` (default ``~/.cache/acestep``);
4. only with ``allow_download=True``: ``huggingface_hub`` downloads ``config.json`` + ``model.safetensors`` of the
   registry revision into the cache (MERT-v1-330M: ``refs/pr/7``, the only revision with safetensors). Into a
   plain folder (``hf_hub_download(local_dir=...)``), not the Hub cache layout of :func:`acestep_core.hub.snapshot`:
   the cached teacher is then the same kind of folder as everywhere else, found without ``huggingface_hub`` and
   replaceable by hand (or by a converted copy).

A folder with ``pytorch_model.bin`` but no ``model.safetensors`` stops the search with
:class:`TeacherNeedsConversionError` naming the one-time ``convert-teacher`` command: pickles are never opened
here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, CheckpointMismatchError
from ..hub import cache_root
from .config import HubertConfig
from .registry import TeacherSpec, licence_notice, teacher_spec
from .weights import CONFIG_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

__all__ = [
    "PICKLE_WEIGHTS_FILE",
    "TeacherMismatchError",
    "TeacherNeedsConversionError",
    "TeacherNotFoundError",
    "check_teacher_config",
    "convert_command",
    "default_teacher_dir",
    "default_teacher_root",
    "download_teacher",
    "find_teacher",
    "how_to_get",
]

PICKLE_WEIGHTS_FILE = "pytorch_model.bin"
TEACHER_CACHE_SUBDIR = "teachers"  # acestep_core.hub: every cache folder derives from the cache root


class TeacherNotFoundError(CheckpointError):
    """No usable folder of a teacher was found (and downloading was not allowed or failed)."""


class TeacherNeedsConversionError(CheckpointError):
    """A teacher folder has only the pickle ``pytorch_model.bin``: it needs the one-time convert step."""


class TeacherMismatchError(CheckpointMismatchError):
    """A teacher folder holds another architecture or size than the trainer needs."""


def default_teacher_root() -> Path:
    """Our teacher cache: ``<cache root>/teachers`` (:func:`acestep_core.hub.cache_root`: ``$ACESTEP_CACHE_DIR``,
    default ``~/.cache/acestep``)."""
    return cache_root() / TEACHER_CACHE_SUBDIR


def default_teacher_dir(name: str, root: str | Path | None = None) -> Path:
    """The cache folder of one teacher: ``<root>/<repo name>`` (``root`` default :func:`default_teacher_root`)."""
    base = Path(root).expanduser() if root is not None else default_teacher_root()
    return base / teacher_spec(name).folder_name


def convert_command(folder: Path) -> str:
    return f'python -m acestep_core convert-teacher "{folder}"'


def how_to_get(spec: TeacherSpec) -> str:
    """One paragraph: where to get the teacher, its licence, and where we look for it."""
    return (f"{spec.display_name} is {spec.model_url} ({spec.licence}, {spec.licence_url}; non-commercial). Get "
            f"'{CONFIG_FILE}' and '{WEIGHTS_FILE}' from revision '{spec.revision}' into "
            f"{default_teacher_dir(spec.name)} (or a folder named '{spec.folder_name}' in a models folder), let the "
            "trainer download them (--repa on), or convert a downloaded pytorch_model.bin once with "
            f"{convert_command(Path('<folder>'))}.")


def _folder_of(path: Path) -> Path:
    return path.parent if path.is_file() else path


def _usable(folder: Path, spec: TeacherSpec) -> bool:
    """True for a complete folder; raises for a pickle-only or half-complete one; False when absent."""
    has_weights, has_config = (folder / WEIGHTS_FILE).is_file(), (folder / CONFIG_FILE).is_file()
    if has_weights and has_config:
        return True
    if not has_weights and (folder / PICKLE_WEIGHTS_FILE).is_file():
        raise TeacherNeedsConversionError(
            f"{folder}: the {spec.display_name} teacher is there only as '{PICKLE_WEIGHTS_FILE}', a pickle this pack "
            f"never opens at run time. Convert it once to '{WEIGHTS_FILE}' with: {convert_command(folder)} "
            f"(reads the pickle with torch.load(weights_only=True)), or download '{WEIGHTS_FILE}' from "
            f"{spec.model_url} revision '{spec.revision}'.")
    if has_weights:
        raise TeacherNotFoundError(f"{folder}: '{WEIGHTS_FILE}' has no '{CONFIG_FILE}' next to it; download "
                                   f"'{CONFIG_FILE}' from {spec.model_url} (revision '{spec.revision}').")
    return False


def _local_candidates(spec: TeacherSpec, search_dirs: Iterable[str | Path], cache_root: str | Path | None
                      ) -> list[Path]:
    candidates = [Path(d).expanduser() / spec.folder_name for d in search_dirs]
    candidates.append(default_teacher_dir(spec.name, cache_root))
    return candidates


def find_teacher(name: str, *, path: str | Path | None = None, search_dirs: Iterable[str | Path] = (),
                 cache_root: str | Path | None = None, allow_download: bool = False,
                 tqdm_class: Any = None) -> Path:
    """The folder of teacher ``name`` ("mert" / "m-hubert"); order and errors in the module docstring.

    ``cache_root`` replaces our teacher cache root (default :func:`default_teacher_root`); downloads go there.
    """
    spec = teacher_spec(name)
    if path is not None and str(path) != "":
        folder = _folder_of(Path(path).expanduser())
        if not _usable(folder, spec):
            raise TeacherNotFoundError(f"{folder}: no '{CONFIG_FILE}' + '{WEIGHTS_FILE}' of the {spec.display_name} "
                                       f"teacher there. {how_to_get(spec)}")
        return folder
    candidates = _local_candidates(spec, search_dirs, cache_root)
    for folder in candidates:
        if _usable(folder, spec):
            return folder
    if allow_download:
        return download_teacher(name, dest=candidates[-1], tqdm_class=tqdm_class)
    tried = ", ".join(str(c) for c in candidates)
    raise TeacherNotFoundError(f"the {spec.display_name} teacher was not found (tried {tried}); downloading was not "
                               f"allowed. {how_to_get(spec)}")


def download_teacher(name: str, *, dest: str | Path | None = None, tqdm_class: Any = None) -> Path:
    """Log the licence notice, then download ``config.json`` + ``model.safetensors`` into ``dest`` (default: our
    cache) with ``huggingface_hub`` (resumable; files land complete or not at all). Returns the folder."""
    spec = teacher_spec(name)
    folder = Path(dest).expanduser() if dest is not None else default_teacher_dir(name)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise TeacherNotFoundError(f"downloading {spec.display_name} needs huggingface_hub (pip install "
                                   f"huggingface_hub). {how_to_get(spec)}") from e
    logger.warning("%s", licence_notice([name]))
    logger.info("downloading %s (revision %s) into %s", spec.repo_id, spec.revision, folder)
    extra = {} if tqdm_class is None else {"tqdm_class": tqdm_class}
    try:
        for filename in (CONFIG_FILE, WEIGHTS_FILE):
            hf_hub_download(spec.repo_id, filename, revision=spec.revision, local_dir=str(folder), **extra)
    except Exception as e:  # noqa: BLE001 - offline, proxy, auth, disk: all end in the same advice
        raise TeacherNotFoundError(f"could not download {spec.repo_id} (revision {spec.revision}) into {folder} "
                                   f"({type(e).__name__}: {e}). {how_to_get(spec)}") from e
    return folder


def check_teacher_config(name: str, cfg: HubertConfig, *, source: str, feature_dim: int | None = None) -> None:
    """Refuse a config of another architecture or size than teacher ``name`` needs.

    ``feature_dim`` is the width the trainer's projector head produces for this teacher (default: the
    full-size teacher's, 1024 / 768); the teacher's ``hidden_size`` must equal it.
    """
    spec = teacher_spec(name)
    expected_dim = spec.feature_dim if feature_dim is None else feature_dim
    problems = []
    if cfg.do_stable_layer_norm != spec.config.do_stable_layer_norm:
        kind = "pre-LN (do_stable_layer_norm true)" if spec.config.do_stable_layer_norm else "post-LN"
        problems.append(f"{spec.display_name} is a {kind} encoder but this config says do_stable_layer_norm "
                        f"{str(cfg.do_stable_layer_norm).lower()} (is it the other teacher?)")
    if cfg.sample_rate is not None and cfg.sample_rate != spec.sample_rate:
        problems.append(f"sample_rate {cfg.sample_rate} Hz, expected {spec.sample_rate} Hz")
    if cfg.samples_per_frame != 320:
        problems.append(f"the conv front-end hops {cfg.samples_per_frame} samples per frame; the trainer's "
                        "frame count (chunk_samples + 319) // 320 needs 320")
    if cfg.hidden_size != expected_dim:
        problems.append(f"hidden_size {cfg.hidden_size}, but the REPA projector head for '{name}' produces "
                        f"{expected_dim} features (a different model size?)")
    if problems:
        raise TeacherMismatchError(f"{source}: not a usable {spec.display_name} teacher: " + "; ".join(problems)
                                   + f". {how_to_get(spec)}")

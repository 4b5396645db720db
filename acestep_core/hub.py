"""Downloads from the Hugging Face Hub and the cache folders, in one place.

Every cache folder derives from one root, ``$ACESTEP_CACHE_DIR`` (default ``~/.cache/acestep``):

* ``checkpoints/`` (or ``$ACESTEP_CHECKPOINT_DIR``): the ACE-Step checkpoint and LoRAs given as Hub repo ids;
* ``lyrics_vocab.json``: the downloaded lyric vocabulary;
* ``models/`` (or ``$ACESTEP_MODELS_DIR``): the model folders of the ComfyUI nodes when they run without ComfyUI;
* ``teachers/``, ``training/``: REPA teacher encoders and training caches.

Messages are neutral: the caller says in its own words (a CLI flag, a ComfyUI folder) how to avoid a download,
through ``offline_hint``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from .errors import CheckpointError

logger = logging.getLogger(__name__)

__all__ = ["CACHE_DIR_ENV", "CHECKPOINT_DIR_ENV", "CHECKPOINT_REPO_ID", "MODELS_DIR_ENV", "cache_root",
           "checkpoint_cache_dir", "download_checkpoint", "models_dir", "snapshot"]

CACHE_DIR_ENV = "ACESTEP_CACHE_DIR"
CHECKPOINT_DIR_ENV = "ACESTEP_CHECKPOINT_DIR"
MODELS_DIR_ENV = "ACESTEP_MODELS_DIR"
CHECKPOINT_REPO_ID = "ACE-Step/ACE-Step-v1-3.5B"
CHECKPOINT_DOWNLOAD_GB = 8.3  # the four components of the official repository


def cache_root() -> Path:
    """``$ACESTEP_CACHE_DIR`` or ``~/.cache/acestep``: the root every cache folder of the pack derives from."""
    return Path(os.environ.get(CACHE_DIR_ENV) or "~/.cache/acestep").expanduser()


def checkpoint_cache_dir() -> Path:
    """Where checkpoints and Hub LoRAs are downloaded: ``$ACESTEP_CHECKPOINT_DIR`` or ``<cache root>/checkpoints``."""
    override = os.environ.get(CHECKPOINT_DIR_ENV)
    return Path(override).expanduser() if override else cache_root() / "checkpoints"


def models_dir() -> Path:
    """Model folders of the nodes outside ComfyUI: ``$ACESTEP_MODELS_DIR`` or ``<cache root>/models``."""
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override).expanduser() if override else cache_root() / "models"


def snapshot(repo_id: str, cache_dir: Path, *, what: str, offline_hint: str, size_note: str = "",
             revision: str | None = None, allow_patterns: list[str] | None = None, tqdm_class: Any = None) -> Path:
    """A local snapshot of ``repo_id``: the cached copy when complete (no network), else a resumable download.

    Raises :class:`CheckpointError` naming ``what``, the repository and ``offline_hint`` (how the user avoids
    the download, in the words of their interface).
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise CheckpointError(f"downloading {what} needs huggingface_hub (pip install huggingface_hub); or "
                              f"{offline_hint}") from e
    options: dict[str, Any] = {"cache_dir": str(cache_dir)}
    if revision is not None:
        options["revision"] = revision
    if allow_patterns is not None:
        options["allow_patterns"] = allow_patterns
    try:  # a complete cached copy needs no network (the original asks the Hub on every run)
        return Path(snapshot_download(repo_id, local_files_only=True, **options))
    except Exception:  # noqa: BLE001 - any miss means "not cached yet"
        pass
    logger.info("downloading %s (%s%s) into %s", what, repo_id, f", {size_note}" if size_note else "", cache_dir)
    if tqdm_class is not None:
        options["tqdm_class"] = tqdm_class
    try:
        return Path(snapshot_download(repo_id, **options))
    except Exception as e:  # noqa: BLE001 - offline, proxy, auth, disk: all end in the same advice
        raise CheckpointError(f"could not download {what} ({repo_id}) into {cache_dir} ({type(e).__name__}: {e}); "
                              f"check the network connection, or {offline_hint}") from e


def download_checkpoint(cache_dir: Path | None = None, *, offline_hint: str, tqdm_class: Any = None) -> Path:
    """``ACE-Step/ACE-Step-v1-3.5B`` (about 8.3 GB) into ``cache_dir`` (default :func:`checkpoint_cache_dir`)."""
    return snapshot(CHECKPOINT_REPO_ID, cache_dir or checkpoint_cache_dir(), what="the ACE-Step v1 checkpoint",
                    offline_hint=offline_hint, size_note=f"~{CHECKPOINT_DOWNLOAD_GB} GB", tqdm_class=tqdm_class)

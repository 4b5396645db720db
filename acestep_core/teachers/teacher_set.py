"""The trainer's entry points: decide whether REPA runs (:func:`resolve_repa`) and run both teachers
(:class:`TeacherSet`)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from ..errors import AceStepInputError
from .config import HubertConfig
from .find import (
    TeacherNeedsConversionError,
    TeacherNotFoundError,
    check_teacher_config,
    find_teacher,
)
from .model import HubertEncoder
from .registry import TEACHER_NAMES, teacher_spec
from .ssl import ssl_features
from .weights import CONFIG_FILE, WEIGHTS_FILE, load_teacher

logger = logging.getLogger(__name__)

__all__ = ["REPA_MODES", "RepaMode", "TeacherSet", "resolve_repa"]

RepaMode = Literal["on", "off", "auto"]
REPA_MODES: tuple[str, ...] = ("on", "off", "auto")
_HASH_BLOCK_BYTES = 16 * 1024 * 1024


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


class TeacherSet:
    """Loaded, frozen REPA teachers in the original's order ("mert", then "m-hubert").

    Build it with :meth:`load`; :meth:`features` is the trainer's ``infer_mert_ssl`` + ``infer_mhubert_ssl``.
    """

    def __init__(self, encoders: Mapping[str, HubertEncoder], folders: Mapping[str, Path]) -> None:
        self.encoders = dict(encoders)
        self.folders = dict(folders)
        self._fingerprint: str | None = None

    @classmethod
    def load(cls, *, names: Iterable[str] = TEACHER_NAMES, paths: Mapping[str, str | Path] | None = None,
             search_dirs: Iterable[str | Path] = (), cache_root: str | Path | None = None,
             allow_download: bool = False, feature_dims: Mapping[str, int] | None = None,
             device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
             tqdm_class: Any = None) -> TeacherSet:
        """Find (see :func:`~acestep_core.teachers.find.find_teacher`), check and strictly load each teacher.

        Args:
            paths: explicit folder per teacher name (optional per teacher).
            search_dirs: folders holding ``MERT-v1-330M/`` / ``mHuBERT-147/`` sub-folders (e.g. ComfyUI models).
            cache_root: our teacher cache (default ``$ACESTEP_CACHE_DIR/teachers``); downloads go there.
            allow_download: download a missing teacher (after logging its licence).
            feature_dims: the width the transformer's projector head produces per teacher (its config's
                ``dict(zip(ssl_names, ssl_latent_dims))``); default the full-size 1024 / 768.
            device, dtype: where the weights live and their dtype (fp32 unless memory is short; see ``features``).
        """
        paths = dict(paths or {})
        search_dirs = tuple(search_dirs)
        encoders, folders = {}, {}
        for name in names:
            spec = teacher_spec(name)
            folder = find_teacher(name, path=paths.get(name), search_dirs=search_dirs, cache_root=cache_root,
                                  allow_download=allow_download, tqdm_class=tqdm_class)
            cfg = HubertConfig.from_json(folder / CONFIG_FILE)
            check_teacher_config(name, cfg, source=str(folder / CONFIG_FILE),
                                 feature_dim=None if feature_dims is None else feature_dims.get(name))
            encoders[name] = load_teacher(folder, name=spec.display_name, device=device, dtype=dtype)
            folders[name] = folder
            logger.info("REPA teacher %s loaded from %s (%s)", spec.display_name, folder, spec.licence)
        return cls(encoders, folders)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    @property
    def feature_dims(self) -> dict[str, int]:
        return {name: enc.config.hidden_size for name, enc in self.encoders.items()}

    def to(self, device: torch.device | str) -> TeacherSet:
        for encoder in self.encoders.values():
            encoder.to(device)
        return self

    def fingerprint(self) -> str:
        """sha256 over each teacher's name, ``config.json`` and ``model.safetensors`` (computed once; part of the
        feature-cache key, so other teacher weights never reuse cached features)."""
        if self._fingerprint is None:
            logger.info("hashing the REPA teacher files for the feature cache key")
            parts = [f"{name}:{_file_sha256(self.folders[name] / CONFIG_FILE)}:"
                     f"{_file_sha256(self.folders[name] / WEIGHTS_FILE)}" for name in self.names]
            self._fingerprint = hashlib.sha256(";".join(parts).encode()).hexdigest()
        return self._fingerprint

    def features(self, wavs_48k: torch.Tensor, wav_lengths: torch.Tensor, *, max_chunks_per_call: int | None = None,
                 autocast_dtype: torch.dtype | None = None) -> dict[str, list[torch.Tensor]]:
        """Per teacher, the per-item features ``[frames, dim]`` of a padded 48 kHz batch ``[B, 2, N]``.

        ``max_chunks_per_call`` bounds memory (chunks per encoder call; None = all at once, as the original;
        the result is the same up to float32 rounding). ``autocast_dtype=torch.bfloat16`` runs the encoders
        under autocast (resampling and normalisation stay float32).
        """
        out = {}
        for name, encoder in self.encoders.items():
            spec = teacher_spec(name)
            out[name] = ssl_features(encoder, wavs_48k, wav_lengths, sample_rate=spec.sample_rate,
                                     chunk_seconds=spec.chunk_seconds, max_chunks_per_call=max_chunks_per_call,
                                     autocast_dtype=autocast_dtype)
        return out


def _repa_line(mode: str, enabled: bool, why: str) -> str:
    return f"REPA {'on' if enabled else 'off'} (--repa {mode}): {why}"


def resolve_repa(mode: RepaMode, *, paths: Mapping[str, str | Path] | None = None,
                 search_dirs: Iterable[str | Path] = (), cache_root: str | Path | None = None,
                 allow_download: bool = True, tqdm_class: Any = None) -> tuple[bool, str]:
    """Decide whether the REPA loss runs; returns ``(enabled, reason)``, ``reason`` one line for the log.

    * ``off``: never (nothing is looked up).
    * ``auto``: on when both teachers are available locally (nothing is downloaded), off otherwise, saying what
      was missing. An explicitly given path that is unusable still raises.
    * ``on``: both teachers are required: a missing one is downloaded when ``allow_download`` (after the licence
      notice is logged), else :class:`~acestep_core.teachers.find.TeacherNotFoundError` says how to get it and
      names the licence; a pickle-only folder raises with the convert command.
    """
    if mode not in REPA_MODES:
        raise AceStepInputError(f"--repa {mode!r}: expected one of {list(REPA_MODES)}")
    if mode == "off":
        return False, _repa_line(mode, False, "switched off; the teachers are not loaded")
    paths = dict(paths or {})
    search_dirs = tuple(search_dirs)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in TEACHER_NAMES:
        spec = teacher_spec(name)
        try:
            found[name] = find_teacher(name, path=paths.get(name), search_dirs=search_dirs, cache_root=cache_root,
                                       allow_download=allow_download and mode == "on", tqdm_class=tqdm_class)
        except TeacherNeedsConversionError as e:
            if mode == "on" or name in paths:
                raise
            missing.append(f"{spec.display_name} needs the convert step ({e})")
        except TeacherNotFoundError:
            if mode == "on" or name in paths:
                raise
            missing.append(f"{spec.display_name} ({spec.licence}) not found locally")
    if missing:
        return False, _repa_line(mode, False, "; ".join(missing) + "; --repa on downloads the missing teachers")
    where = ", ".join(f"{teacher_spec(n).display_name} from {folder}" for n, folder in found.items())
    licences = ", ".join(f"{teacher_spec(n).display_name} {teacher_spec(n).licence}" for n in found)
    return True, _repa_line(mode, True, f"{where} (non-commercial licences: {licences})")

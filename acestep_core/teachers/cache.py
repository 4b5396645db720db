"""Per-song cache of the REPA teacher features, so the teachers run once per song instead of every step.

A song's features are those of its first 240 s (what training sees: the dataset cuts longer songs there),
computed alone (its own length, no batch padding: identical to the batched features since padding is zeros
and items do not interact). One safetensors file per song, ``<root>/<key[:2]>/<key>.safetensors``, holding one
``[frames, dim]`` tensor per teacher in ``storage_dtype`` (fp16 halves the size: 240 s is 17,952 x 1024 MERT +
11,992 x 768 mHuBERT frames, 55 MB in fp16). The key is the sha256 of:

* the audio: the 48 kHz float32 samples of the song's first ``min(length, 240 s)`` and their shape;
* the teachers: :meth:`TeacherSet.fingerprint` (sha256 of each teacher's config.json and weights);
* the settings: cache format version, encoder precision (fp32 / bf16 autocast) and weight dtype, storage dtype.

Writes are atomic (temp file + rename). A file that cannot be read, or whose key, teachers or shapes do not
match, is recomputed and overwritten with a warning. Features served from the cache and fresh ones are the
same numbers (fresh ones are rounded to ``storage_dtype`` too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .registry import TRAINER_SAMPLE_RATE, teacher_spec
from .ssl import chunk_frames
from .teacher_set import TeacherSet

logger = logging.getLogger(__name__)

__all__ = ["CACHE_FORMAT_VERSION", "MAX_CACHED_SECONDS", "CacheStats", "FeatureCache", "expected_frames"]

CACHE_FORMAT_VERSION = 1
MAX_CACHED_SECONDS = 240  # the dataset's cut (Text2MusicDataset: first 240 s)
_STORAGE = {"fp16": torch.float16, "fp32": torch.float32}
_PRECISION_NAMES = {None: "fp32", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    rebuilt: int = 0  # misses caused by an unreadable or mismatching file
    bytes_written: int = 0


def expected_frames(teachers: TeacherSet, name: str, num_samples_48k: int) -> int:
    """Feature frames of teacher ``name`` for a song of ``num_samples_48k`` samples (the trainer's trim rule)."""
    spec = teacher_spec(name)
    length = num_samples_48k // spec.downsample
    full = teachers.encoders[name].config.frames_for_samples(spec.chunk_samples)
    starts = range(0, length, spec.chunk_samples)
    return sum(min(chunk_frames(min(spec.chunk_samples, length - s)), full) for s in starts)


class FeatureCache:
    """Cached :meth:`TeacherSet.features` for training batches (see the module docstring).

    Args:
        root: the cache folder (created on first write).
        storage: ``"fp16"`` (default, half the size) or ``"fp32"``.
    """

    def __init__(self, root: str | Path, *, storage: str = "fp16") -> None:
        if storage not in _STORAGE:
            raise ValueError(f"storage {storage!r}: expected one of {list(_STORAGE)}")
        self.root = Path(root).expanduser()
        self.storage = storage
        self.stats = CacheStats()
        self._logged_hit = False

    def key(self, teachers: TeacherSet, wav_48k: torch.Tensor, *, precision: str = "fp32") -> str:
        """Cache key of one song ``[C, n]`` (already cut to its length and to 240 s)."""
        weight_dtypes = [str(next(enc.parameters()).dtype) for enc in teachers.encoders.values()]
        settings = {"version": CACHE_FORMAT_VERSION, "teachers": teachers.fingerprint(), "names": teachers.names,
                    "precision": precision, "weights": weight_dtypes, "storage": self.storage,
                    "sample_rate": TRAINER_SAMPLE_RATE, "shape": list(wav_48k.shape)}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        digest.update(wav_48k.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def size_bytes(self) -> int:
        """Bytes of all cached feature files under ``root``."""
        return sum(p.stat().st_size for p in self.root.glob("*/*.safetensors")) if self.root.is_dir() else 0

    def summary(self) -> str:
        """One log line: hits, computed, rebuilt, size on disk."""
        s = self.stats
        return (f"REPA feature cache {self.root}: {s.hits} read, {s.misses} computed ({s.rebuilt} rebuilt), "
                f"{s.bytes_written / 1e6:.1f} MB written, {self.size_bytes() / 1e6:.1f} MB on disk")

    def _read(self, path: Path, key: str, teachers: TeacherSet, num_samples: int) -> dict[str, torch.Tensor] | None:
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                meta = fh.metadata() or {}
                tensors = {name: fh.get_tensor(name) for name in teachers.names}
        except (SafetensorError, OSError, KeyError, ValueError) as e:
            problem = f"unreadable ({type(e).__name__}: {e})"
        else:
            mismatch = self._mismatch(meta, tensors, key, teachers, num_samples)
            if mismatch is None:
                return tensors
            problem = mismatch
        logger.warning("REPA feature cache file %s is %s; recomputing it", path, problem)
        self.stats.rebuilt += 1
        return None

    def _mismatch(self, meta: dict[str, str], tensors: dict[str, torch.Tensor], key: str, teachers: TeacherSet,
                  num_samples: int) -> str | None:
        if meta.get("key") != key:
            return f"for another key ({meta.get('key')!r})"
        for name, tensor in tensors.items():
            shape = (expected_frames(teachers, name, num_samples), teachers.feature_dims[name])
            if tuple(tensor.shape) != shape or tensor.dtype != _STORAGE[self.storage]:
                return f"wrong: '{name}' is {list(tensor.shape)} {tensor.dtype}, expected {list(shape)} {self.storage}"
        return None

    def _write(self, path: Path, key: str, feats: dict[str, torch.Tensor]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            save_file(feats, str(tmp), metadata={"key": key, "version": str(CACHE_FORMAT_VERSION)})
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        size = path.stat().st_size
        self.stats.bytes_written += size
        shapes = ", ".join(f"{n} {list(t.shape)}" for n, t in feats.items())
        logger.debug("cached REPA features (%s, %s): %.1f MB -> %s", shapes, self.storage, size / 1e6, path)

    def features(self, teachers: TeacherSet, wavs_48k: torch.Tensor, wav_lengths: torch.Tensor, *,
                 max_chunks_per_call: int | None = None,
                 autocast_dtype: torch.dtype | None = None) -> dict[str, list[torch.Tensor]]:
        """:meth:`TeacherSet.features` of a padded batch ``[B, C, N]`` through the cache: float32 tensors on the
        batch's device, per teacher one ``[frames, dim]`` per item. Missing songs are computed in one call."""
        cap = MAX_CACHED_SECONDS * TRAINER_SAMPLE_RATE
        lengths = [min(int(n), cap) for n in torch.as_tensor(wav_lengths).reshape(-1).tolist()]
        precision = _PRECISION_NAMES.get(autocast_dtype, str(autocast_dtype))
        songs = [wavs_48k[i, :, :n] for i, n in enumerate(lengths)]
        keys = [self.key(teachers, song, precision=precision) for song in songs]
        found = [self._read(self.path(k), k, teachers, n) for k, n in zip(keys, lengths, strict=True)]
        todo = [i for i, f in enumerate(found) if f is None]
        self.stats.hits += len(found) - len(todo)
        self.stats.misses += len(todo)
        if len(todo) < len(found) and not self._logged_hit:
            logger.info("REPA teacher features read from the cache %s", self.root)
            self._logged_hit = True
        if todo:
            width = max(lengths[i] for i in todo)
            batch = torch.stack([torch.nn.functional.pad(songs[i], (0, width - lengths[i])) for i in todo])
            fresh = teachers.features(batch, torch.tensor([lengths[i] for i in todo]),
                                      max_chunks_per_call=max_chunks_per_call, autocast_dtype=autocast_dtype)
            for j, i in enumerate(todo):
                feats = {n: fresh[n][j].to("cpu", _STORAGE[self.storage]).contiguous() for n in teachers.names}
                self._write(self.path(keys[i]), keys[i], feats)
                found[i] = feats
        device = wavs_48k.device
        return {n: [f[n].to(device, torch.float32) for f in found if f is not None] for n in teachers.names}

"""What is computed once per song before the steps: the DCAE latents of its first 240 s (exact to cache: the
original encodes the same audio every step) and, with REPA, the teachers' features (cached by
:class:`acestep_core.teachers.FeatureCache`). Text states are not cached: the original redraws each step's
prompt (tag shuffle, recaption pick), so they are computed per step.

Latents are kept on disk under ``<cache root>/training/latents/<key>.safetensors``, the key hashing the prepared
waveform, the DCAE's weights and the encode settings, so a second run (or a resumed one) reads them back.
A corrupt cache file is recomputed with a warning.

Divergence: with more than one clip per batch the original encodes the zero-padded batch, so a shorter clip's
last latent frames see the padding; here each clip is encoded alone and its latents are zero-padded (the same
for batch 1, the original's default).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .audio import TRAIN_SAMPLE_RATE, PreparedAudio
from .save import atomic_write

logger = logging.getLogger(__name__)

__all__ = ["LATENT_CACHE_VERSION", "LatentCache", "PreparedSong", "prepare_songs"]

LATENT_CACHE_VERSION = "1"
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class PreparedSong:
    """One dataset row's cached inputs: ``latents`` [8, 16, T] float32 (CPU); ``ssl`` teacher -> [F, d]."""

    latents: torch.Tensor
    wav_length: int
    ssl: dict[str, torch.Tensor] | None = None


def module_fingerprint(module: torch.nn.Module) -> str:
    """A content hash of a module's weights (a strided sample of every tensor; cheap on the full DCAE)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)].to(device="cpu", dtype=torch.float64)
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


class LatentCache:
    """Per-song DCAE latents on disk (see the module docstring)."""

    def __init__(self, root: str | Path, codec: Any) -> None:
        self.root = Path(root)
        self.codec = codec
        self.codec_fingerprint = module_fingerprint(codec)
        self.hits = self.misses = self.rebuilt = 0

    def key(self, waveform: torch.Tensor) -> str:
        digest = hashlib.sha256(waveform.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        digest.update(f"{self.codec_fingerprint}/{TRAIN_SAMPLE_RATE}/v{LATENT_CACHE_VERSION}".encode())
        return digest.hexdigest()[:32]

    def latents(self, waveform: torch.Tensor, *, device: torch.device) -> torch.Tensor:
        """``[2, N]`` 48 kHz waveform -> ``[8, 16, T]`` float32 latents (from the cache when present)."""
        key = self.key(waveform)
        path = self.root / f"{key}.safetensors"
        if path.is_file():
            try:
                stored = load_file(str(path))["latents"]
                self.hits += 1
                return stored
            except (SafetensorError, OSError, KeyError) as e:
                logger.warning("latent cache file %s is unreadable (%s); recomputing it", path, e)
                self.rebuilt += 1
        self.misses += 1
        with torch.no_grad():
            latents = self.codec.encode(waveform.to(device)[None], TRAIN_SAMPLE_RATE)[0].float().cpu()
        atomic_write(path, lambda tmp: save_file({"latents": latents.contiguous()}, str(tmp),
                                                 metadata={"key": key, "version": LATENT_CACHE_VERSION}))
        return latents

    def summary(self) -> str:
        size = sum(p.stat().st_size for p in self.root.glob("*.safetensors")) if self.root.is_dir() else 0
        return (f"latent cache {self.root}: {self.hits} read, {self.misses} computed, {self.rebuilt} rebuilt, "
                f"{size / 2**20:.1f} MiB")


def prepare_songs(load_audio: Callable[[int], PreparedAudio], count: int, cache: LatentCache, *,
                  device: torch.device, features: Callable[[Sequence[PreparedAudio]], list[dict[str, torch.Tensor]]]
                  | None = None, progress: ProgressCallback | None = None) -> list[PreparedSong]:
    """Latents (and teacher features when ``features`` is given) of dataset rows ``0 .. count - 1``."""
    songs: list[PreparedSong] = []
    for index in range(count):
        audio = load_audio(index)
        latents = cache.latents(audio.waveform, device=device)
        ssl = features([audio])[0] if features is not None else None
        songs.append(PreparedSong(latents=latents, wav_length=audio.num_samples, ssl=ssl))
        if progress is not None:
            progress(index + 1, count)
    logger.info("%s", cache.summary())
    return songs

"""Audio preparation for training, as the original trainer's dataset does it (``Text2MusicDataset.get_audio``).

One song becomes a ``[2, N]`` float32 waveform at 48 kHz: the file is decoded; mono is duplicated to two
channels and only the first two channels of a wider file are kept; other rates are resampled to 48 kHz with
torchaudio's default sinc resampler (:func:`acestep_core.audio.mel.sinc_resample`, bit-identical to
``torchaudio.transforms.Resample(sr, 48000)``); samples are clamped to [-1, 1]; a clip shorter than 3 s is
zero-padded at the end to 3 s; the song is discarded when more than 95 % of its samples are exactly zero on
every channel; finally only the first 240 s are kept (no random crop), as the original's ``process`` does.

Decoding uses ``soundfile`` (libsndfile): for wav/flac/ogg it gives the same floats as ``torchaudio.load``
(16-bit PCM is scaled by 1/32768), as the golden files confirm. For mp3, decoders can differ in how they trim
the encoder delay; parity with the original's decoder (FFmpeg through torchaudio/TorchCodec) is not verified.

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).

Divergences:
- A file with NaN samples (a broken float wav) is discarded with a reason; the original would train on NaN.
- A file that cannot be read is reported with the reason instead of silently replaced by another random song.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..audio.mel import sinc_resample
from ..errors import AceStepInputError
from ..timing import MAX_DURATION_S

__all__ = [
    "MIN_DURATION_S",
    "SILENT_FRACTION_LIMIT",
    "TRAIN_CHANNELS",
    "TRAIN_SAMPLE_RATE",
    "PreparedAudio",
    "TrainingAudioError",
    "prepare_training_audio",
    "prepare_waveform",
    "read_training_audio",
]

TRAIN_SAMPLE_RATE = 48000  # the original trains on 48 kHz waveforms (the DCAE resamples them to 44.1 kHz)
TRAIN_CHANNELS = 2
MIN_DURATION_S = 3.0  # shorter clips are zero-padded at the end to this length
SILENT_FRACTION_LIMIT = 0.95  # discarded when more than this fraction of the samples is zero on all channels
MAX_TRAIN_SAMPLES = int(MAX_DURATION_S * TRAIN_SAMPLE_RATE)  # the first 240 s, 11,520,000 samples
MIN_TRAIN_SAMPLES = int(MIN_DURATION_S * TRAIN_SAMPLE_RATE)


class TrainingAudioError(AceStepInputError):
    """A training song's audio file cannot be used at all (missing, not a file, not decodable)."""


@dataclass(frozen=True, eq=False)
class PreparedAudio:
    """One song's audio as the original trainer feeds it, and what preparing it did.

    ``waveform`` is ``[2, N]`` float32 at 48 kHz after the 240 s crop (also for a discarded song, so a report
    can still show it). ``discard_reason`` is set when the original would not train on the song.
    """

    waveform: torch.Tensor  # [2, N] float32 @ 48 kHz
    source_sample_rate: int
    source_channels: int
    source_frames: int
    padded: bool  # shorter than 3 s: zeros were appended
    cropped: bool  # longer than 240 s: only the first 240 s are kept
    clamped_samples: int  # samples outside [-1, 1] before the clamp (after resampling)
    silent_fraction: float  # fraction of time steps that are zero on every channel (after padding)
    discard_reason: str | None = None
    path: Path | None = None

    @property
    def usable(self) -> bool:
        return self.discard_reason is None

    @property
    def clamped(self) -> bool:
        return self.clamped_samples > 0

    @property
    def num_samples(self) -> int:
        """``wav_length``: samples per channel after the crop."""
        return int(self.waveform.shape[-1])

    @property
    def duration_s(self) -> float:
        """Seconds trained on (after padding and the 240 s crop)."""
        return self.num_samples / TRAIN_SAMPLE_RATE

    @property
    def source_duration_s(self) -> float:
        return self.source_frames / self.source_sample_rate if self.source_sample_rate else 0.0


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as e:  # pragma: no cover - soundfile is a declared dependency
        raise TrainingAudioError("reading training audio needs the 'soundfile' package: pip install soundfile") from e
    return soundfile


def read_training_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Decode ``path`` to float32 ``[C, N]`` at its own rate (any channel count, unlike inference's reader).

    Raises :class:`TrainingAudioError` naming the file when it is missing, a folder, or not decodable.
    """
    sf = _soundfile()
    path = Path(path).expanduser()
    if not path.exists():
        raise TrainingAudioError(f"training audio {path}: file not found")
    if path.is_dir():
        raise TrainingAudioError(f"training audio {path}: is a folder, expected a wav, flac, mp3 or ogg file")
    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [N, C]
    except (RuntimeError, OSError, ValueError, TypeError) as e:  # soundfile.LibsndfileError is a RuntimeError
        raise TrainingAudioError(
            f"training audio {path}: cannot decode it ({e}); it may be corrupt or truncated, or in a format "
            "libsndfile does not read. Re-export it as wav or flac, e.g. `ffmpeg -i song.m4a song.wav`"
        ) from e
    if sample_rate <= 0:
        raise TrainingAudioError(f"training audio {path}: invalid sample rate {sample_rate}")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sample_rate)


def _discard_reason(waveform: torch.Tensor, source_duration_s: float, padded: bool, silent_fraction: float
                    ) -> str | None:
    if source_duration_s == 0:
        return "the file contains no audio samples"
    nan_samples = int(torch.isnan(waveform).sum())
    if nan_samples:
        return f"{nan_samples} samples are NaN (a broken float file?); re-export the audio"
    if silent_fraction <= SILENT_FRACTION_LIMIT:
        return None
    limit = f"more than {SILENT_FRACTION_LIMIT:.0%}, the original trainer's limit"
    if padded:
        return (f"too short or silent: {source_duration_s:.2f} s zero-padded to {MIN_DURATION_S:g} s is "
                f"{silent_fraction:.1%} zeros ({limit}); use clips of at least {MIN_DURATION_S:g} s of sound")
    return f"silent: {silent_fraction:.1%} of the samples are exactly zero ({limit}); check the file or remove the song"


def prepare_waveform(audio: torch.Tensor, sample_rate: int, *, path: Path | None = None) -> PreparedAudio:
    """The original's ``get_audio`` on a decoded ``[C, N]`` waveform, then the 240 s crop of ``process``."""
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise TrainingAudioError(f"training audio{f' {path}' if path else ''}: expected a [channels, samples] "
                                 f"waveform, got shape {list(audio.shape)}")
    if sample_rate <= 0:
        raise TrainingAudioError(f"training audio{f' {path}' if path else ''}: invalid sample rate {sample_rate}")
    source_channels, source_frames = int(audio.shape[0]), int(audio.shape[1])
    waveform = audio.to(torch.float32)
    if source_channels == 1:
        waveform = torch.cat([waveform, waveform], dim=0)
    waveform = waveform[:TRAIN_CHANNELS]
    if sample_rate != TRAIN_SAMPLE_RATE:
        waveform = sinc_resample(waveform, sample_rate, TRAIN_SAMPLE_RATE)
    clamped_samples = int((waveform.abs() > 1.0).sum())
    waveform = torch.clamp(waveform, -1.0, 1.0)
    padded = waveform.shape[-1] < MIN_TRAIN_SAMPLES
    if padded:
        waveform = F.pad(waveform, (0, MIN_TRAIN_SAMPLES - waveform.shape[-1]), "constant", 0.0)
    # the original's is_silent_audio: float32 mean of the all-channels-zero flags
    silent_fraction = float(torch.all(waveform == 0, dim=0).float().mean())
    reason = _discard_reason(waveform, source_frames / sample_rate, padded, silent_fraction)
    cropped = waveform.shape[-1] > MAX_TRAIN_SAMPLES
    waveform = waveform[:, :MAX_TRAIN_SAMPLES].contiguous()
    return PreparedAudio(waveform=waveform, source_sample_rate=int(sample_rate), source_channels=source_channels,
                         source_frames=source_frames, padded=padded, cropped=cropped, clamped_samples=clamped_samples,
                         silent_fraction=silent_fraction, discard_reason=reason, path=path)


def prepare_training_audio(path: str | Path) -> PreparedAudio:
    """Decode and prepare one training song (see the module docstring); raises :class:`TrainingAudioError` only
    when the file cannot be read, and returns a record with ``discard_reason`` for a silent or broken one."""
    path = Path(path).expanduser()
    audio, sample_rate = read_training_audio(path)
    return prepare_waveform(audio, sample_rate, path=path)

"""Audio files in and out: wav/flac/mp3/ogg through ``soundfile`` (libsndfile), with the generation
parameters embedded in the file and written next to it as the original app's ``_input_params.json``.

Reading mirrors upstream ``MusicDCAE.load_audio`` (``torchaudio.load`` + mono duplicated to stereo);
resampling to 44.1 kHz happens in :meth:`acestep_core.audio.codec.AudioCodec.encode`, as upstream.
Files with more than two channels are refused (upstream would break inside the DCAE).

Writing mirrors upstream ``save_wav_file`` (48 kHz float waveform, format from the extension); WAV stays
32-bit float and unclipped like upstream.

Divergences from upstream's writing:

* the parameters JSON is embedded as the file's comment, and other tags (ComfyUI's ``prompt`` / ``workflow``)
  get tags of their own (:mod:`acestep_core.audio.tags`);
* integer/lossy formats are clipped to [-1, 1] (libsndfile does not clip when converting floats);
* non-finite samples are refused (upstream writes NaN audio);
* every file goes through a temporary file and never replaces an existing one unless asked
  (:mod:`acestep_core.safe_write`; upstream overwrites).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AceStepInputError
from ..safe_write import atomic_write, variant_path
from .tags import COMMENT, SOFTWARE, TITLE, TagError, read_tags, write_tags

__all__ = [
    "SUPPORTED_FORMATS",
    "AudioFileError",
    "AudioInfo",
    "audio_tags",
    "check_finite_waveform",
    "encode_audio_file",
    "format_from_path",
    "is_folder_target",
    "output_paths",
    "probe_audio",
    "read_audio",
    "read_embedded_params",
    "sidecar_path",
    "sidecar_text",
    "write_audio",
    "write_sidecar",
]

SUPPORTED_FORMATS = ("wav", "flac", "mp3", "ogg")
# extension -> (libsndfile major format, subtype)
_WRITE_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "FLOAT"),
    "flac": ("FLAC", "PCM_24"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
METADATA_TITLE = "ACE-Step v1 generation"
METADATA_SOFTWARE = "acestep_core"
SIDECAR_SUFFIX = "_input_params.json"


class AudioFileError(AceStepInputError):
    """An audio file cannot be read or written (missing, unreadable, unsupported format or layout)."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file (no samples decoded)."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError as e:  # pragma: no cover - soundfile is a declared dependency
        raise AudioFileError("audio I/O needs the 'soundfile' package: pip install soundfile") from e
    return soundfile


def format_from_path(path: str | Path) -> str:
    """The output format named by a file extension (``.wav``/``.flac``/``.mp3``/``.ogg``), else an error."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in SUPPORTED_FORMATS:
        raise AudioFileError(
            f"output {str(path)!r}: unsupported audio format {ext or '(no extension)'!r}; "
            f"use one of {', '.join('.' + f for f in SUPPORTED_FORMATS)}"
        )
    return ext


def is_folder_target(output: str | Path) -> bool:
    """``--output`` names a folder: an existing one, or a path written with a trailing ``/``."""
    text = str(output)
    return text.endswith(("/", os.sep)) or Path(text).expanduser().is_dir()


def output_paths(output: str | Path | None, *, batch_size: int = 1, default_format: str = "wav",
                 variant: int = 0, stamp: str | None = None) -> list[Path]:
    """Audio paths for a run: ``output`` itself (a folder, existing or written with a trailing ``/``, gets
    ``output_<YYYYmmddHHMMSS>.<fmt>`` inside, ``None`` the same under ``outputs/``, as upstream); batches get
    ``_0``, ``_1``... before the extension. ``variant`` n > 0 names the n-th alternative when those names are
    taken (``song-1.wav``, ``song-1_0.wav``; :func:`acestep_core.safe_write.variant_path`)."""
    fmt = default_format if default_format in SUPPORTED_FORMATS else "wav"
    target = Path("outputs/") if output is None else Path(output).expanduser()
    if output is None or is_folder_target(output):
        target = target / f"output_{stamp or time.strftime('%Y%m%d%H%M%S')}.{fmt}"
    format_from_path(target)
    target = variant_path(target, variant)
    if batch_size == 1:
        return [target]
    return [target.with_name(f"{target.stem}_{index}{target.suffix}") for index in range(batch_size)]


def _check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise AudioFileError(f"{what}: file not found: {path}")
    if path.is_dir():
        raise AudioFileError(f"{what}: {path} is a folder, expected an audio file (wav, flac, mp3 or ogg)")


def probe_audio(path: str | Path, *, what: str = "audio") -> AudioInfo:
    """Read only the header of ``path``; raise :class:`AudioFileError` unless it is a 1- or 2-channel,
    non-empty audio file libsndfile can decode. Cheap: used to validate inputs before loading a model."""
    sf = _soundfile()
    path = Path(path).expanduser()
    _check_readable(path, what)
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as e:  # soundfile.LibsndfileError derives from RuntimeError
        raise AudioFileError(
            f"{what}: cannot read {path}: {e}. Expected a wav, flac, mp3 or ogg file "
            "(convert other formats first, e.g. `ffmpeg -i input.m4a output.wav`)"
        ) from e
    if info.channels not in (1, 2):
        raise AudioFileError(
            f"{what}: {path} has {info.channels} channels; ACE-Step takes mono or stereo audio. "
            f"Downmix it first, e.g. `ffmpeg -i {path.name} -ac 2 stereo.wav`"
        )
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioFileError(f"{what}: {path} contains no audio samples")
    return AudioInfo(path=path, sample_rate=int(info.samplerate), channels=int(info.channels),
                     frames=int(info.frames), format=str(info.format))


def read_audio(path: str | Path, *, stereo: bool = True, what: str = "audio") -> tuple[torch.Tensor, int]:
    """Decode an audio file to float32 ``[C, N]`` at its own sample rate.

    Args:
        path: wav/flac/mp3/ogg (anything libsndfile decodes).
        stereo: duplicate a mono file to two channels (upstream ``load_audio``).
        what: the input's name, used in error messages (e.g. ``"--src-audio"``).
    Returns:
        ``(audio [C, N] float32, sample_rate)`` with C = 2 when ``stereo`` else 1 or 2.
    """
    sf = _soundfile()
    info = probe_audio(path, what=what)
    try:
        data, sample_rate = sf.read(str(info.path), dtype="float32", always_2d=True)  # [N, C]
    except (RuntimeError, OSError) as e:
        raise AudioFileError(f"{what}: cannot decode {info.path}: {e}") from e
    audio = torch.from_numpy(np.ascontiguousarray(data.T))  # [C, N]
    if stereo and audio.shape[0] == 1:
        audio = audio.repeat(2, 1)
    return audio, int(sample_rate)


def _as_channels_last(audio: torch.Tensor | np.ndarray) -> np.ndarray:
    array = audio.detach().to("cpu", torch.float32).numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] not in (1, 2) or array.shape[1] == 0:
        raise AudioFileError(f"audio to write: expected a [C, N] waveform with C = 1 or 2 and N > 0, "
                             f"got shape {list(array.shape)}")
    return np.ascontiguousarray(array.T.astype(np.float32))  # [N, C]


def _metadata_text(metadata: dict[str, Any] | str | None) -> str | None:
    if metadata is None or isinstance(metadata, str):
        return metadata
    return json.dumps(metadata, ensure_ascii=False)


def check_finite_waveform(audio: torch.Tensor | np.ndarray, what: str) -> None:
    """Raise :class:`AudioFileError` if a waveform holds NaN or infinite samples (nothing is written then)."""
    array = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise AudioFileError(f"{what}: {bad} of {array.size} samples are NaN or infinite; nothing was written")


def encode_audio_file(target: str | Path, fmt: str, audio: torch.Tensor | np.ndarray, sample_rate: int, *,
                      tags: dict[str, str] | None = None) -> None:
    """Encode ``audio`` ``[C, N]`` (or ``[N]``) as ``fmt`` into the file ``target`` (any name, e.g. a temporary
    one) and give it the text ``tags`` (:mod:`acestep_core.audio.tags`). Refuses non-finite samples."""
    sf = _soundfile()
    major, subtype = _WRITE_FORMATS[fmt]
    if major not in sf.available_formats():
        raise AudioFileError(
            f"output .{fmt}: this soundfile/libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}; "
            "write .wav or .flac instead (or upgrade soundfile, whose wheels bundle libsndfile >= 1.1 with MP3)"
        )
    frames = _as_channels_last(audio)
    check_finite_waveform(frames, "audio to write")
    if subtype != "FLOAT":
        frames = np.clip(frames, -1.0, 1.0)
    try:
        with sf.SoundFile(str(target), "w", samplerate=int(sample_rate), channels=frames.shape[1],
                          format=major, subtype=subtype) as handle:
            handle.write(frames)
        if tags:
            write_tags(target, fmt, tags)
    except (RuntimeError, OSError, TagError) as e:
        raise AudioFileError(f"cannot write {fmt} audio: {e}") from e


def audio_tags(metadata: dict[str, Any] | str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The tags of a file we write: ``extra`` first (e.g. ComfyUI's ``prompt`` / ``workflow``), then title,
    software and the parameter record (JSON) as the comment."""
    text = _metadata_text(metadata)
    tags = dict(extra or {})
    if text is not None or tags:
        tags.update({TITLE: METADATA_TITLE, SOFTWARE: METADATA_SOFTWARE})
    if text is not None:
        tags[COMMENT] = text
    return tags


def write_audio(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int, *,
                metadata: dict[str, Any] | str | None = None, extra_tags: dict[str, str] | None = None,
                overwrite: bool = False, unique: bool = False) -> Path:
    """Write ``audio`` ``[C, N]`` (or ``[N]``) at ``sample_rate`` to ``path``; the format comes from the extension.

    ``metadata`` (a dict is stored as JSON) goes into the file's comment, ``extra_tags`` into tags of their own.
    The file is written to a temporary name and moved into place (:mod:`acestep_core.safe_write`): an existing
    file is kept unless ``overwrite`` (``unique``: the next free name is used). Returns the path written.
    """
    path = Path(path).expanduser()
    fmt = format_from_path(path)
    tags = audio_tags(metadata, extra_tags)
    return atomic_write(path, lambda tmp: encode_audio_file(tmp, fmt, audio, sample_rate, tags=tags),
                        overwrite=overwrite, unique=unique)


def read_embedded_params(path: str | Path) -> dict[str, Any] | None:
    """The parameters JSON embedded by :func:`write_audio` (``None`` if the file has none or it is not JSON)."""
    path = Path(path).expanduser()
    _check_readable(path, "audio")
    fmt = path.suffix.lower().lstrip(".")
    try:
        text = read_tags(path, fmt).get(COMMENT) if fmt in SUPPORTED_FORMATS else None
    except (OSError, TagError) as e:
        raise AudioFileError(f"audio: cannot read the tags of {path}: {e}") from e
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def sidecar_path(audio_path: str | Path) -> Path:
    """``outputs/song.wav`` -> ``outputs/song_input_params.json`` (the original app's naming)."""
    audio_path = Path(audio_path)
    return audio_path.with_name(audio_path.stem + SIDECAR_SUFFIX)


def sidecar_text(record: dict[str, Any]) -> str:
    """A record as the original app writes its ``_input_params.json`` (indent 4, non-ASCII kept)."""
    return json.dumps(record, indent=4, ensure_ascii=False)


def write_sidecar(audio_path: str | Path, record: dict[str, Any], *, overwrite: bool = False,
                  unique: bool = False) -> Path:
    """Write ``record`` as ``<stem>_input_params.json`` next to ``audio_path`` (UTF-8, like upstream), through a
    temporary file (see :func:`write_audio` for ``overwrite`` / ``unique``)."""
    text = sidecar_text(record)
    return atomic_write(sidecar_path(audio_path), lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        overwrite=overwrite, unique=unique)

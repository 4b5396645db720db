"""Audio files in and out: wav/flac/mp3/ogg through ``soundfile`` (libsndfile), with the generation
parameters embedded in the file and written next to it as the original app's ``_input_params.json``.

Reading mirrors upstream ``MusicDCAE.load_audio`` (``torchaudio.load`` + mono duplicated to stereo);
resampling to 44.1 kHz happens in :meth:`acestep_core.audio.codec.AudioCodec.encode`, as upstream.
Files with more than two channels are refused (upstream would break inside the DCAE).

Writing mirrors upstream ``save_wav_file`` (48 kHz float waveform, format from the extension) with two
deliberate additions: the parameters JSON is embedded as the ``comment`` text field (Vorbis comment in
flac/ogg, ID3 comment in mp3, a ``LIST/INFO/ICMT`` chunk in wav) and integer/lossy formats are clipped
to [-1, 1] (libsndfile does not clip when converting floats). WAV stays 32-bit float and unclipped like
upstream. libsndfile keeps at most ~2 KB of WAV text, so WAV metadata is written by this module itself.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AceStepInputError

__all__ = [
    "SUPPORTED_FORMATS",
    "AudioFileError",
    "AudioInfo",
    "format_from_path",
    "output_paths",
    "probe_audio",
    "read_audio",
    "read_embedded_params",
    "sidecar_path",
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
_WAV_INFO_IDS = {"comment": b"ICMT", "title": b"INAM", "software": b"ISFT"}


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


def output_paths(output: str | Path | None, *, batch_size: int = 1, default_format: str = "wav") -> list[Path]:
    """Audio paths for a run: ``output`` itself (an existing folder gets ``output_<YYYYmmddHHMMSS>.<fmt>`` inside,
    ``None`` the same under ``outputs/``, as upstream); batches get ``_0``, ``_1``... before the extension."""
    fmt = default_format if default_format in SUPPORTED_FORMATS else "wav"
    target = Path("outputs") if output is None else Path(output).expanduser()
    if output is None or target.is_dir():
        target = target / f"output_{time.strftime('%Y%m%d%H%M%S')}.{fmt}"
    format_from_path(target)
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


def _metadata_text(metadata: dict[str, Any] | str | None, fmt: str) -> str | None:
    if metadata is None or isinstance(metadata, str):
        return metadata
    # libsndfile stores MP3 (ID3) text as Latin-1: keep the JSON pure ASCII there (\uXXXX escapes).
    return json.dumps(metadata, ensure_ascii=fmt == "mp3")


def write_audio(path: str | Path, audio: torch.Tensor | np.ndarray, sample_rate: int, *,
                metadata: dict[str, Any] | str | None = None) -> Path:
    """Write ``audio`` ``[C, N]`` (or ``[N]``) at ``sample_rate`` to ``path``; the format comes from the extension.

    ``metadata`` (a dict is stored as JSON) goes into the file's ``comment`` text field. Parent folders are
    created. Returns the path written.
    """
    sf = _soundfile()
    path = Path(path).expanduser()
    fmt = format_from_path(path)
    major, subtype = _WRITE_FORMATS[fmt]
    if major not in sf.available_formats():
        raise AudioFileError(
            f"output {path}: this soundfile/libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}; "
            "write .wav or .flac instead (or upgrade soundfile, whose wheels bundle libsndfile >= 1.1 with MP3)"
        )
    frames = _as_channels_last(audio)
    if subtype != "FLOAT":
        frames = np.clip(frames, -1.0, 1.0)
    text = _metadata_text(metadata, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sf.SoundFile(str(path), "w", samplerate=int(sample_rate), channels=frames.shape[1],
                          format=major, subtype=subtype) as handle:
            if text is not None and fmt != "wav":
                handle.title = METADATA_TITLE
                handle.software = METADATA_SOFTWARE
                handle.comment = text
            handle.write(frames)
    except (RuntimeError, OSError) as e:
        raise AudioFileError(f"output {path}: cannot write {fmt}: {e}") from e
    if text is not None and fmt == "wav":
        _append_wav_info(path, {"title": METADATA_TITLE, "software": METADATA_SOFTWARE, "comment": text})
    return path


def _append_wav_info(path: Path, fields: dict[str, str]) -> None:
    """Append a ``LIST/INFO`` chunk (ICMT/INAM/ISFT, NUL-terminated UTF-8) and fix the RIFF size."""
    body = b"INFO"
    for name, value in fields.items():
        data = value.encode("utf-8") + b"\0"
        body += _WAV_INFO_IDS[name] + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    chunk = b"LIST" + struct.pack("<I", len(body)) + body
    with open(path, "r+b") as fh:
        header = fh.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise AudioFileError(f"output {path}: not a RIFF/WAVE file, cannot embed metadata")
        fh.seek(0, 2)
        size = fh.tell()
        if size % 2:
            fh.write(b"\0")
            size += 1
        new_riff_size = size + len(chunk) - 8
        if new_riff_size >= 2**32:
            raise AudioFileError(f"output {path}: WAV larger than 4 GiB; write .flac instead")
        fh.write(chunk)
        fh.seek(4)
        fh.write(struct.pack("<I", new_riff_size))


def _read_wav_comment(path: Path) -> str | None:
    """The ``ICMT`` text of a WAV file's ``LIST/INFO`` chunk (``None`` if absent)."""
    with open(path, "rb") as fh:
        header = fh.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return None
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id == b"LIST":
                body = fh.read(size)
                if body[:4] == b"INFO":
                    found = _find_info_field(body[4:], _WAV_INFO_IDS["comment"])
                    if found is not None:
                        return found
                if size % 2:
                    fh.read(1)
            else:
                fh.seek(size + (size % 2), 1)


def _find_info_field(body: bytes, field_id: bytes) -> str | None:
    offset = 0
    while offset + 8 <= len(body):
        sub_id, size = body[offset:offset + 4], struct.unpack("<I", body[offset + 4:offset + 8])[0]
        if sub_id == field_id:
            return body[offset + 8:offset + 8 + size].rstrip(b"\0").decode("utf-8", errors="replace")
        offset += 8 + size + (size % 2)
    return None


def read_embedded_params(path: str | Path) -> dict[str, Any] | None:
    """The parameters JSON embedded by :func:`write_audio` (``None`` if the file has none or it is not JSON)."""
    path = Path(path).expanduser()
    _check_readable(path, "audio")
    if path.suffix.lower() == ".wav":
        text = _read_wav_comment(path)
    else:
        sf = _soundfile()
        try:
            with sf.SoundFile(str(path)) as handle:
                text = handle.comment or None
        except (RuntimeError, OSError) as e:
            raise AudioFileError(f"audio: cannot read {path}: {e}") from e
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


def write_sidecar(audio_path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``<stem>_input_params.json`` next to ``audio_path`` (indent 4, UTF-8, like upstream)."""
    target = sidecar_path(audio_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=4, ensure_ascii=False)
    return target

"""Helpers for the training-data tests: synthetic songs on disk, the parity lyric tokenizer."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

from acestep_core.lyrics import LyricTokenizer
from tests.parity import PARITY_DIR, require_parity

TRAINING_DIR = PARITY_DIR / "training"
SUBTYPES = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}


@cache
def _tokenizer() -> LyricTokenizer:
    return LyricTokenizer.from_vocab(PARITY_DIR / "tokenizer" / "vocab.json")


def parity_tokenizer() -> LyricTokenizer:
    """The lyric tokenizer of the golden data (skips without it)."""
    require_parity()
    return _tokenizer()


def tone(duration_s: float, sample_rate: int = 48000, channels: int = 2, *, amplitude: float = 0.5,
         freq_hz: float = 440.0) -> np.ndarray:
    """A sine ``[N, C]`` (soundfile's layout), each channel a little different."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    columns = [amplitude * np.sin(2 * math.pi * freq_hz * (1 + 0.1 * c) * t) for c in range(channels)]
    return np.stack(columns, axis=1).astype(np.float32)


def write_audio(path: Path, data: np.ndarray, sample_rate: int = 48000, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower()
    sf.write(str(path), data, sample_rate, subtype=subtype or SUBTYPES[fmt])
    return path


def write_song(folder: Path, name: str, *, tags: str | None = "pop, upbeat", lyrics: str | None = "[verse]\nhello",
               recaption: dict[str, object] | str | None = None, data: np.ndarray | None = None,
               sample_rate: int = 48000, ext: str = "wav") -> Path:
    """``<name>.<ext>`` plus the text files that are not ``None``; returns the audio path."""
    audio = write_audio(folder / f"{name}.{ext}", tone(3.5, sample_rate) if data is None else data, sample_rate)
    if tags is not None:
        (folder / f"{name}_prompt.txt").write_text(tags, encoding="utf-8")
    if lyrics is not None:
        (folder / f"{name}_lyrics.txt").write_text(lyrics, encoding="utf-8")
    if recaption is not None:
        text = recaption if isinstance(recaption, str) else json.dumps(recaption)
        (folder / f"{name}_recaption.json").write_text(text, encoding="utf-8")
    return audio


def write_hf_dataset(folder: Path, rows: list[dict[str, object]], *, schema: object | None = None) -> Path:
    """A ``save_to_disk``-shaped folder (one Arrow IPC stream + state.json + dataset_info.json) from ``rows``."""
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)  # type: ignore[arg-type]
    name = "data-00000-of-00001.arrow"
    with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": name}], "_fingerprint": "test"}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {}}))
    return folder


def hf_row(key: str, filename: str, **fields: object) -> dict[str, object]:
    """One row of the original trainer's dataset (converter defaults for the fields not given)."""
    row: dict[str, object] = {"keys": key, "filename": filename, "tags": ["pop", "upbeat"], "speaker_emb_path": "",
                              "norm_lyrics": "[verse]\nhello", "recaption": "{}"}
    row.update(fields)
    return row

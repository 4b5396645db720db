"""The songs of a training dataset as records, before any audio is read: what both dataset formats
(:mod:`.dataset_folder`, :mod:`.dataset_hf`) produce, and the parsing rules they share.

A :class:`TrainingSong` holds exactly the fields of one row of the original trainer's Hugging Face dataset
(``keys``, ``filename``, ``tags``, ``norm_lyrics``, ``recaption``, ``speaker_emb_path``). A song that cannot be
used as written (no prompt file, a broken recaption, a missing audio file) becomes a :class:`SongProblem`, so
the dataset report lists it with the reason instead of dropping it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import AceStepInputError

__all__ = [
    "DatasetError",
    "DatasetFormat",
    "DatasetWarning",
    "SongFormatError",
    "SongListing",
    "SongProblem",
    "TrainingSong",
    "parse_recaption",
    "parse_tags",
]

DatasetFormat = Literal["folder", "hf"]
_TAG_SPLIT = re.compile(r"[,\n]")
ORIGINAL_TAG_SEPARATOR = ", "  # convert2hf_dataset.py: prompt.split(", ")


class DatasetError(AceStepInputError):
    """The training dataset as a whole cannot be used (missing, empty, broken, or no usable song)."""


class SongFormatError(AceStepInputError):
    """One song's files or row cannot be used as written (the message is the report's reason)."""


@dataclass(frozen=True)
class DatasetWarning:
    """One finding about a song; ``code`` is stable (for nodes and tests), ``message`` is for people."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class TrainingSong:
    """One song (one dataset row) as the original trainer reads it.

    ``recaption`` keeps the string-valued captions as ``(name, text)`` pairs in their stored order (the order
    matters to the prompt draw); ``source`` says where the song was found and is not part of equality, so the
    repeated rows of a Hugging Face dataset (its converter's ``repeat_count``) compare equal.
    """

    key: str
    audio_path: Path
    tags: tuple[str, ...]
    lyrics: str = ""
    recaption: tuple[tuple[str, str], ...] = ()
    speaker_emb_path: str = ""
    notes: tuple[DatasetWarning, ...] = ()
    source: str = field(default="", compare=False)

    def recaption_dict(self) -> dict[str, str]:
        return dict(self.recaption)


@dataclass(frozen=True)
class SongProblem:
    """A song that was found but cannot be used as written; ``reason`` says why and how to fix it."""

    key: str
    reason: str
    audio_path: Path | None = None
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class SongListing:
    """Every song a dataset names, in dataset order (repeated rows kept): a :class:`TrainingSong`, or a
    :class:`SongProblem` where it cannot be used as written."""

    path: Path
    format: DatasetFormat
    entries: tuple[TrainingSong | SongProblem, ...]

    @property
    def songs(self) -> tuple[TrainingSong, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, TrainingSong))

    @property
    def problems(self) -> tuple[SongProblem, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, SongProblem))


def parse_tags(text: str) -> tuple[tuple[str, ...], tuple[DatasetWarning, ...]]:
    """Tags of a ``<song>_prompt.txt``: split on commas (and newlines), each stripped, empty pieces dropped.

    The original's converter splits on ", " exactly; where that reads the text differently (``"a,b"`` is one
    tag there, two here) a warning says so. An empty file gives no tags, so the prompt becomes "music".
    """
    stripped = text.strip()
    tags = tuple(piece.strip() for piece in _TAG_SPLIT.split(stripped) if piece.strip())
    if not tags:
        return (), (DatasetWarning("no_tags", "the prompt file has no tags: the song trains with the prompt "
                                   "'music' (unless it has recaptions); write its comma-separated tags into it"),)
    original = stripped.split(ORIGINAL_TAG_SEPARATOR)
    if list(tags) == original:
        return tags, ()
    return tags, (DatasetWarning("tags_split", f"read {len(tags)} tags {list(tags)} (split on commas, spaces "
                                 f"stripped); the original's converter splits on ', ' only and would read "
                                 f"{original}. Separate tags with ', ' to make both agree"),)


def _recaption_pairs(value: dict[object, object], where: str) -> tuple[tuple[tuple[str, str], ...],
                                                                        tuple[DatasetWarning, ...]]:
    pairs: list[tuple[str, str]] = []
    ignored: list[str] = []
    for name, text in value.items():
        if isinstance(text, str):
            pairs.append((str(name), text))
        elif text is not None:  # None: a key other rows have (Hugging Face unifies the struct's fields)
            ignored.append(f"{name!s} ({type(text).__name__})")
    notes: tuple[DatasetWarning, ...] = ()
    if ignored:
        notes = (DatasetWarning("recaption_ignored", f"{where}: {', '.join(ignored)} not a string: the original "
                                "trainer only picks string captions, and so do we"),)
    return tuple(pairs), notes


def parse_recaption(value: object, where: str) -> tuple[tuple[tuple[str, str], ...], tuple[DatasetWarning, ...]]:
    """Recaptions from a dict, a JSON object string, or nothing (``None``, ``""``); raise
    :class:`SongFormatError` for anything else. ``where`` names the file or column in messages."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return (), ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise SongFormatError(f"{where} is not valid JSON ({e}); it must be an object of captions, e.g. "
                                  '{"simplified": "pop", "descriptive": "a bright synth pop song"}') from e
    if not isinstance(value, dict):
        raise SongFormatError(f"{where} must be a JSON object (name -> caption), got {type(value).__name__}")
    return _recaption_pairs(value, where)

"""The training dataset: one entry point for both formats, the report of every song, and the samples.

:func:`load_training_dataset` finds the songs (a folder of ``<song>.wav`` + ``<song>_prompt.txt`` +
``<song>_lyrics.txt``, see :mod:`.dataset_folder`, or the original trainer's Hugging Face dataset, see
:mod:`.dataset_hf`), prepares each distinct song's audio and lyrics once as the original would, and returns a
:class:`TrainingDataset` of the usable rows (in dataset order, repeated rows kept, so dataset indices and the
length of an epoch are the original's) with a :class:`~.dataset_report.DatasetReport` listing every song.
:meth:`TrainingDataset.item` builds one sample cheaply (a prompt draw and small tensors; the audio comes from
the caller's cache or is loaded on demand).

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).

Divergences:
- A song the original cannot use (unreadable or silent audio, a lyric language without a token, a speaker
  embedding path) is not silently replaced by another random song at every draw: it is listed in the report and
  left out (or, for the language and the speaker path, kept with a warning), and a dataset with no usable song
  is an error instead of an endless retry loop.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ..lyrics import LyricTokenizer
from .audio import PreparedAudio, TrainingAudioError, prepare_training_audio
from .batch import TrainingItem, make_training_item
from .dataset_folder import list_folder_songs
from .dataset_hf import is_hf_dataset, list_hf_songs
from .dataset_report import DatasetReport, SongAnalysis, analyse_problem, analyse_song
from .songs import DatasetError, DatasetFormat, SongListing, SongProblem, TrainingSong

logger = logging.getLogger(__name__)

__all__ = ["TrainingDataset", "detect_dataset_format", "list_training_songs", "load_training_dataset"]

ProgressCallback = Callable[[int, int], None]  # (songs analysed, distinct songs)
MAX_REASONS_SHOWN = 20


@dataclass(frozen=True, eq=False)
class TrainingDataset:
    """The usable rows of a training dataset; ``songs[i]`` is dataset index ``i``."""

    path: Path
    format: DatasetFormat
    songs: tuple[TrainingSong, ...]
    lyric_ids: tuple[tuple[int, ...], ...]  # per row, cut to 4096
    wav_lengths: tuple[int, ...]  # per row, samples at 48 kHz after the 240 s crop
    report: DatasetReport
    audio_cache: MutableMapping[Path, PreparedAudio] | None = None

    def __len__(self) -> int:
        return len(self.songs)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.songs):
            raise IndexError(f"dataset index {index} out of range: the dataset has {len(self.songs)} usable rows")

    def load_audio(self, index: int) -> PreparedAudio:
        """The prepared audio of row ``index`` (from :attr:`audio_cache` when it holds it)."""
        self._check_index(index)
        path = self.songs[index].audio_path
        if self.audio_cache is not None and path in self.audio_cache:
            return self.audio_cache[path]
        audio = prepare_training_audio(path)
        if not audio.usable or audio.num_samples != self.wav_lengths[index]:
            raise TrainingAudioError(f"training audio {path} changed since the dataset was loaded "
                                     f"({audio.discard_reason or f'{audio.num_samples} samples'}); load the dataset "
                                     "again")
        if self.audio_cache is not None:
            self.audio_cache[path] = audio
        return audio

    def item(self, index: int, rng: random.Random, *, audio: PreparedAudio | None = None,
             with_audio: bool = True) -> TrainingItem:
        """Sample ``index`` with its prompt drawn from ``rng``.

        ``audio`` is the row's prepared audio if the caller holds it; otherwise it is loaded (see
        :meth:`load_audio`) unless ``with_audio`` is false (the item then has no waveform).
        """
        self._check_index(index)
        if audio is None and with_audio:
            audio = self.load_audio(index)
        return make_training_item(index, self.songs[index], self.lyric_ids[index], self.wav_lengths[index], rng,
                                  waveform=None if audio is None else audio.waveform)


def detect_dataset_format(path: str | Path) -> DatasetFormat:
    """``"hf"`` for a ``save_to_disk`` folder, ``"folder"`` for any other folder; a clear error otherwise."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"training data {path}: no such file or folder; pass the folder holding the songs "
                           "(<song>.wav + <song>_prompt.txt + <song>_lyrics.txt) or a Hugging Face dataset folder")
    if not path.is_dir():
        hint = (" (an .arrow file: pass the folder that holds it and its state.json)" if path.suffix == ".arrow"
                else "")
        raise DatasetError(f"training data {path}: is a file, expected a folder{hint}")
    return "hf" if is_hf_dataset(path) else "folder"


def list_training_songs(path: str | Path, *, working_dir: str | Path | None = None) -> SongListing:
    """Every song named by the dataset at ``path`` (either format), before any audio is read."""
    if detect_dataset_format(path) == "hf":
        return list_hf_songs(path, working_dir=working_dir)
    return list_folder_songs(path)


def _analyse(listing: SongListing, tokenizer: LyricTokenizer, audio_cache: MutableMapping[Path, PreparedAudio] | None,
             progress: ProgressCallback | None) -> dict[TrainingSong | SongProblem, SongAnalysis]:
    """Each distinct entry analysed once (a repeated row shares its song's analysis)."""
    rows: dict[TrainingSong | SongProblem, int] = {}
    for entry in listing.entries:
        rows[entry] = rows.get(entry, 0) + 1
    found: dict[TrainingSong | SongProblem, SongAnalysis] = {}
    for done, (entry, count) in enumerate(rows.items(), start=1):
        if isinstance(entry, SongProblem):
            found[entry] = analyse_problem(entry, rows=count)
        else:
            found[entry] = analyse_song(entry, tokenizer, rows=count, audio_cache=audio_cache)
        if progress is not None:
            progress(done, len(rows))
    return found


def _no_usable_song_error(report: DatasetReport) -> DatasetError:
    reasons = [f"  {song.key}: {song.reason}" for song in report.unusable[:MAX_REASONS_SHOWN]]
    more = len(report.unusable) - MAX_REASONS_SHOWN
    if more > 0:
        reasons.append(f"  ... and {more} more")
    return DatasetError(f"training data {report.path}: none of its {len(report.songs)} songs can be used:\n"
                        + "\n".join(reasons))


def load_training_dataset(path: str | Path, tokenizer: LyricTokenizer, *, working_dir: str | Path | None = None,
                          audio_cache: MutableMapping[Path, PreparedAudio] | None = None,
                          progress: ProgressCallback | None = None, require_usable: bool = True
                          ) -> TrainingDataset:
    """Load the training dataset at ``path`` (format detected) and report on every song.

    Args:
        path: a folder of songs, or the original trainer's Hugging Face ``save_to_disk`` folder.
        tokenizer: the lyric tokenizer (``LyricTokenizer.from_vocab(resolve_lyric_vocab(...))``).
        working_dir: where relative Hugging Face file names resolve after the dataset folder's parent
            (default: the current directory).
        audio_cache: a mapping (e.g. a dict) that receives every usable song's prepared audio, so the caller need not
            decode the files again; ``None`` keeps nothing (the report needs every file read once).
        progress: called as ``progress(done, total)`` after each distinct song.
        require_usable: raise :class:`~.songs.DatasetError` (listing every reason) when no song is usable;
            with ``False`` an empty dataset is returned (for showing the report).
    """
    listing = list_training_songs(path, working_dir=working_dir)
    analyses = _analyse(listing, tokenizer, audio_cache, progress)
    seen: set[TrainingSong | SongProblem] = set()
    reports = []
    for entry in listing.entries:
        if entry not in seen:
            seen.add(entry)
            reports.append(analyses[entry].report)
    report = DatasetReport(path=str(listing.path), format=listing.format, songs=tuple(reports))
    usable = [entry for entry in listing.songs if analyses[entry].report.usable]
    if require_usable and not usable:
        raise _no_usable_song_error(report)
    for song in report.unusable:
        logger.warning("training song %s left out: %s", song.key, song.reason)
    return TrainingDataset(path=listing.path, format=listing.format, songs=tuple(usable),
                           lyric_ids=tuple(analyses[song].lyric_ids for song in usable),
                           wav_lengths=tuple(analyses[song].wav_length for song in usable), report=report,
                           audio_cache=audio_cache)

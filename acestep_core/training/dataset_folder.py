"""The folder dataset: audio files with their text files beside them, searched recursively.

For each ``<song>.{wav,flac,mp3,ogg}``:

* ``<song>_prompt.txt`` (required): comma-separated tags (see :func:`.songs.parse_tags` for how "a,b" and
  "a, b" are read);
* ``<song>_lyrics.txt`` (optional): the lyrics, stripped as the original's converter does; without it the song
  trains as instrumental, with a warning;
* ``<song>_recaption.json`` (optional): an object of alternative captions (the original's ``recaption``).

This is the original's ``data/`` convention (``convert2hf_dataset.py``), widened from a flat folder of mp3
files to a recursive search over four formats. The key is the path below the dataset folder without the
extension (``album/song``; the file stem in a flat folder, as the original). Files and folders whose name
starts with "." are skipped (macOS ``._song.wav`` resource forks, ``.cache``).

Ported from ace-step/ACE-Step@d612523 convert2hf_dataset.py (Apache-2.0).

Divergences:
- Tags are split on commas with spaces stripped (the original's converter splits on ", " only); an empty
  prompt file gives no tags (the prompt "music") instead of the empty prompt ""; the report flags both.
- A song without a lyrics file trains as instrumental (the converter skips it silently); a song without a
  prompt file is listed as unusable instead of skipped silently. Text files may start with a UTF-8 BOM.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .songs import (
    DatasetError,
    DatasetWarning,
    SongFormatError,
    SongListing,
    SongProblem,
    TrainingSong,
    parse_recaption,
    parse_tags,
)

__all__ = ["AUDIO_EXTENSIONS", "LYRICS_SUFFIX", "PROMPT_SUFFIX", "RECAPTION_SUFFIX", "list_folder_songs"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
PROMPT_SUFFIX = "_prompt.txt"
LYRICS_SUFFIX = "_lyrics.txt"
RECAPTION_SUFFIX = "_recaption.json"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SongFormatError(f"{path.name} is not UTF-8 text ({e}); save it as UTF-8") from e
    except OSError as e:
        raise SongFormatError(f"cannot read {path.name}: {e}") from e


def _is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _audio_files(root: Path) -> list[Path]:
    found = [p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not _is_hidden(p, root)]
    return sorted(p for p in found if p.is_file())


def _song_key(audio: Path, root: Path) -> str:
    return audio.relative_to(root).with_suffix("").as_posix()


def _sidecar(audio: Path, suffix: str) -> Path:
    return audio.with_name(audio.stem + suffix)


def _read_song(audio: Path, root: Path) -> TrainingSong:
    """One song from its files; raises :class:`SongFormatError` with the report's reason."""
    prompt_path = _sidecar(audio, PROMPT_SUFFIX)
    if not prompt_path.is_file():
        raise SongFormatError(f"no prompt file: create {prompt_path.name} beside {audio.name} with the song's "
                              "comma-separated tags, e.g. 'pop, female vocals, upbeat'")
    tags, notes = parse_tags(_read_text(prompt_path))
    lyrics_path = _sidecar(audio, LYRICS_SUFFIX)
    lyrics = ""
    if lyrics_path.is_file():
        lyrics = _read_text(lyrics_path).strip()
    else:
        notes += (DatasetWarning("no_lyrics_file", f"no {lyrics_path.name}: the song trains as instrumental "
                                 "(the original's converter skips it); add the lyrics file, or an empty one for "
                                 "an instrumental song"),)
    recaption: tuple[tuple[str, str], ...] = ()
    recaption_path = _sidecar(audio, RECAPTION_SUFFIX)
    if recaption_path.is_file():
        recaption, more = parse_recaption(_read_text(recaption_path), recaption_path.name)
        notes += more
    return TrainingSong(key=_song_key(audio, root), audio_path=audio, tags=tags, lyrics=lyrics, recaption=recaption,
                        notes=notes, source=audio.relative_to(root).as_posix())


def _empty_folder_error(root: Path) -> DatasetError:
    prompts = [p for p in root.rglob(f"*{PROMPT_SUFFIX}") if not _is_hidden(p, root)]
    hint = (f" ({len(prompts)} prompt files found, e.g. {prompts[0].relative_to(root)}, but no audio beside them)"
            if prompts else "")
    return DatasetError(f"training data {root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in it or its "
                        f"subfolders{hint}. Put each song as <song>.wav with <song>_prompt.txt (tags) and "
                        "<song>_lyrics.txt beside it, or point to the original trainer's Hugging Face dataset folder")


def list_folder_songs(root: str | Path) -> SongListing:
    """Every song under ``root`` (sorted by path), with a :class:`SongProblem` for each that cannot be used."""
    root = Path(root).expanduser()
    audio_files = _audio_files(root)
    if not audio_files:
        raise _empty_folder_error(root)
    by_stem: dict[Path, list[Path]] = defaultdict(list)
    for audio in audio_files:
        by_stem[audio.with_suffix("")].append(audio)
    entries: list[TrainingSong | SongProblem] = []
    for audio in audio_files:
        key, source = _song_key(audio, root), audio.relative_to(root).as_posix()
        twins = by_stem[audio.with_suffix("")]
        if len(twins) > 1:
            names = ", ".join(p.name for p in twins)
            entries.append(SongProblem(key=key, audio_path=audio, source=source,
                                       reason=f"{names} share one set of text files ({audio.stem}{PROMPT_SUFFIX}); "
                                       "keep one audio file per song or rename the others"))
            continue
        try:
            entries.append(_read_song(audio, root))
        except SongFormatError as e:
            entries.append(SongProblem(key=key, reason=str(e), audio_path=audio, source=source))
    return SongListing(path=root, format="folder", entries=tuple(entries))

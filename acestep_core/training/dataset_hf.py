"""The original trainer's dataset format: a Hugging Face ``datasets.Dataset.save_to_disk`` folder.

Columns: ``keys``, ``filename``, ``tags`` (list of strings), ``norm_lyrics`` (required, as the original reads them
with ``item[...]``), ``speaker_emb_path`` and ``recaption`` (optional, read with ``item.get``). ``recaption`` may
be a struct (a dict) or a JSON string. A relative ``filename`` resolves against the dataset folder's parent, then
the working directory (the original only tries its working directory). Rows are kept in order, repeats included
(the converter's ``repeat_count`` writes each song many times; the report lists each song once).

The folder is read with ``pyarrow`` alone (an optional, training-only dependency), not with ``datasets``:
``save_to_disk`` writes plain Arrow IPC streams listed in ``state.json`` (``_data_files``), which is the very
file format ``datasets`` memory-maps itself, so reading them needs none of ``datasets``' own dependencies
(pandas, dill, multiprocess, fsspec, an HTTP stack) and cannot trigger a download.

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .songs import DatasetError, SongFormatError, SongListing, SongProblem, TrainingSong, parse_recaption

__all__ = ["HF_OPTIONAL_COLUMNS", "HF_REQUIRED_COLUMNS", "is_hf_dataset", "list_hf_songs", "read_hf_rows"]

HF_REQUIRED_COLUMNS = ("keys", "filename", "tags", "norm_lyrics")
HF_OPTIONAL_COLUMNS = ("speaker_emb_path", "recaption")
STATE_FILE = "state.json"
INFO_FILE = "dataset_info.json"
DICT_FILE = "dataset_dict.json"  # a DatasetDict (several splits), which the original cannot train on either
INSTALL_HINT = "pip install pyarrow (or pip install -r requirements-train.txt)"


def is_hf_dataset(path: Path) -> bool:
    """Whether ``path`` looks like a ``save_to_disk`` folder (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / name).is_file() for name in (STATE_FILE, INFO_FILE, DICT_FILE))


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401 - loads the submodule
    except ImportError as e:
        raise DatasetError(f"reading a Hugging Face dataset folder needs the 'pyarrow' package: {INSTALL_HINT}. "
                           "Or use a folder dataset (<song>.wav + <song>_prompt.txt + <song>_lyrics.txt)") from e
    return pyarrow


def _arrow_files(path: Path) -> list[Path]:
    if (path / DICT_FILE).is_file():
        splits = sorted(p.name for p in path.iterdir() if (p / STATE_FILE).is_file())
        raise DatasetError(f"training data {path}: a Hugging Face DatasetDict with splits {splits}; point to one "
                           f"split's folder instead, e.g. {path / (splits[0] if splits else 'train')}")
    state_path = path / STATE_FILE
    if not state_path.is_file():
        found = sorted(path.glob("*.arrow"))
        if not found:
            raise DatasetError(f"training data {path}: {STATE_FILE} and the .arrow data files are missing: the "
                               "Hugging Face dataset folder is incomplete; re-create it with save_to_disk")
        return found
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"training data {path}: {STATE_FILE} is unreadable or not a save_to_disk state "
                           f"({type(e).__name__}: {e}); re-create the dataset with save_to_disk") from e
    missing = [name for name in names if not (path / name).is_file()]
    if missing or not names:
        raise DatasetError(f"training data {path}: data files {missing or '(none listed)'} named in {STATE_FILE} "
                           "are missing; copy the whole dataset folder")
    return [path / name for name in names]


def _read_table(pa: Any, file: Path) -> Any:
    try:
        with pa.memory_map(str(file)) as source:
            return pa.ipc.open_stream(source).read_all()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DatasetError(f"training data: cannot read {file} ({e}); the file is corrupt or truncated, "
                           "re-create the dataset with save_to_disk") from e


def read_hf_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a ``save_to_disk`` folder as dicts (columns checked; recaption not yet parsed)."""
    path = Path(path).expanduser()
    pa = _pyarrow()
    rows: list[dict[str, Any]] = []
    for file in _arrow_files(path):
        table = _read_table(pa, file)
        missing = [name for name in HF_REQUIRED_COLUMNS if name not in table.schema.names]
        if missing:
            raise DatasetError(f"training data {path}: {file.name} lacks the columns {missing} (it has "
                               f"{table.schema.names}); the original trainer's dataset has "
                               f"{list(HF_REQUIRED_COLUMNS + HF_OPTIONAL_COLUMNS)}")
        rows += table.to_pylist()
    if not rows:
        raise DatasetError(f"training data {path}: the Hugging Face dataset has no rows")
    return rows


def _resolve_audio(filename: str, path: Path, working_dir: Path) -> Path:
    target = Path(filename).expanduser()
    candidates = [target] if target.is_absolute() else [path.parent / target, working_dir / target]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SongFormatError(f"audio file not found: {filename!r} (tried {', '.join(str(c) for c in candidates)}); "
                          "relative file names resolve against the dataset folder's parent, then the working folder")


def _string(row: dict[str, Any], column: str, *, default: str | None = None) -> str:
    value = row.get(column, default)
    if not isinstance(value, str):
        if value is None and default is not None:
            return default
        raise SongFormatError(f"column {column!r} must be a string, got {type(value).__name__}")
    return value


def _tags(row: dict[str, Any]) -> tuple[str, ...]:
    tags = row.get("tags")
    if isinstance(tags, str) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SongFormatError(f"column 'tags' must be a list of strings, got {tags!r:.60}")
    return tuple(tags)


def _row_song(row: dict[str, Any], path: Path, working_dir: Path, cache: dict[str, Path], source: str
              ) -> TrainingSong:
    filename = _string(row, "filename")
    if filename not in cache:
        cache[filename] = _resolve_audio(filename, path, working_dir)
    recaption, notes = parse_recaption(row.get("recaption"), "column 'recaption'")
    return TrainingSong(key=_string(row, "keys"), audio_path=cache[filename], tags=_tags(row),
                        lyrics=_string(row, "norm_lyrics"), recaption=recaption,
                        speaker_emb_path=_string(row, "speaker_emb_path", default=""), notes=notes, source=source)


def list_hf_songs(path: str | Path, *, working_dir: str | Path | None = None) -> SongListing:
    """Every row of a ``save_to_disk`` folder as a song (a :class:`SongProblem` for a row that cannot be used)."""
    path = Path(path).expanduser()
    workdir = Path.cwd() if working_dir is None else Path(working_dir).expanduser()
    entries: list[TrainingSong | SongProblem] = []
    resolved: dict[str, Path] = {}
    for index, row in enumerate(read_hf_rows(path)):
        source = f"row {index}"
        try:
            entries.append(_row_song(row, path, workdir, resolved, source))
        except SongFormatError as e:
            key = row.get("keys") if isinstance(row.get("keys"), str) else source
            filename = row.get("filename")
            entries.append(SongProblem(key=str(key), reason=str(e), source=source,
                                       audio_path=Path(filename) if isinstance(filename, str) else None))
    return SongListing(path=path, format="hf", entries=tuple(entries))

"""The folder dataset format (``<song>.wav`` + ``_prompt.txt`` + ``_lyrics.txt`` + ``_recaption.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from acestep_core.lyrics import LyricTokenizer
from acestep_core.training.dataset import detect_dataset_format, list_training_songs, load_training_dataset
from acestep_core.training.dataset_folder import list_folder_songs
from acestep_core.training.songs import DatasetError, SongProblem, parse_tags
from tests.training.data_helpers import parity_tokenizer, tone, write_audio, write_song


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return parity_tokenizer()


def _codes(report_row: object) -> set[str]:
    return {w.code for w in report_row.warnings}  # type: ignore[attr-defined]


def test_recursive_search_over_every_format(tmp_path: Path) -> None:
    for index, ext in enumerate(("wav", "flac", "ogg", "mp3")):
        write_song(tmp_path / ("album" if index % 2 else ""), f"song{index}", ext=ext)
    listing = list_folder_songs(tmp_path)
    assert [s.key for s in listing.songs] == ["album/song1", "album/song3", "song0", "song2"]
    assert [s.audio_path.suffix for s in listing.songs] == [".flac", ".mp3", ".wav", ".ogg"]
    assert detect_dataset_format(tmp_path) == "folder" and not listing.problems


def test_song_fields_from_the_text_files(tmp_path: Path) -> None:
    write_song(tmp_path, "a", tags="pop, female vocals\n", lyrics="\n[verse]\nla la\n\n",
               recaption={"simplified": "pop", "analysis": {"genre": "pop"}, "empty": ""})
    (song,) = list_folder_songs(tmp_path).songs
    assert song.key == "a" and song.tags == ("pop", "female vocals") and song.lyrics == "[verse]\nla la"
    assert song.recaption == (("simplified", "pop"), ("empty", "")) and song.speaker_emb_path == ""
    assert [n.code for n in song.notes] == ["recaption_ignored"] and "analysis (dict)" in song.notes[0].message


@pytest.mark.parametrize(("text", "tags", "note"), [
    ("a, b", ("a", "b"), None),
    ("  a, b  \n", ("a", "b"), None),
    ("a,b", ("a", "b"), "tags_split"),
    ("a , b,, c", ("a", "b", "c"), "tags_split"),
    ("a\nb", ("a", "b"), "tags_split"),
    ("", (), "no_tags"),
    (" , ", (), "no_tags"),
])
def test_tag_parsing(text: str, tags: tuple[str, ...], note: str | None) -> None:
    got, notes = parse_tags(text)
    assert got == tags
    assert [n.code for n in notes] == ([note] if note else [])
    if note == "tags_split":
        assert "', '" in notes[0].message and str(text.strip().split(", ")) in notes[0].message


def test_missing_prompt_file_is_listed_not_dropped(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    write_song(tmp_path, "good")
    write_song(tmp_path, "orphan", tags=None)
    dataset = load_training_dataset(tmp_path, tokenizer)
    assert [s.key for s in dataset.songs] == ["good"]
    row = next(r for r in dataset.report.songs if r.key == "orphan")
    assert not row.usable and row.reason is not None and "orphan_prompt.txt" in row.reason
    assert "orphan" in dataset.report.to_text() and "UNUSABLE" in dataset.report.to_text()


def test_missing_lyrics_file_means_instrumental(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    write_song(tmp_path, "inst", lyrics=None)
    dataset = load_training_dataset(tmp_path, tokenizer)
    (row,) = dataset.report.songs
    assert row.usable and row.instrumental and {"no_lyrics_file", "instrumental"} <= _codes(row)
    assert dataset.lyric_ids == ((0,),)


def test_broken_recaption_makes_the_song_unusable(tmp_path: Path) -> None:
    write_song(tmp_path, "bad_json", recaption="{not json")
    write_song(tmp_path, "not_object", recaption='["a", "b"]')
    problems = {p.key: p.reason for p in list_folder_songs(tmp_path).problems}
    assert "not valid JSON" in problems["bad_json"] and "must be a JSON object" in problems["not_object"]


def test_hidden_files_are_skipped(tmp_path: Path) -> None:
    write_song(tmp_path, "song")
    (tmp_path / "._song.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    write_song(tmp_path / ".cache", "old")
    assert [s.key for s in list_folder_songs(tmp_path).entries] == ["song"]  # type: ignore[union-attr]


def test_two_audio_files_for_one_song_are_ambiguous(tmp_path: Path) -> None:
    write_song(tmp_path, "twin")
    write_audio(tmp_path / "twin.flac", tone(3.5))
    listing = list_folder_songs(tmp_path)
    assert not listing.songs and len(listing.problems) == 2
    assert all("share one set of text files" in p.reason for p in listing.problems)


def test_text_files_must_be_utf8(tmp_path: Path) -> None:
    write_song(tmp_path, "latin")
    (tmp_path / "latin_lyrics.txt").write_bytes("café".encode("latin-1"))
    (problem,) = list_folder_songs(tmp_path).problems
    assert isinstance(problem, SongProblem) and "not UTF-8" in problem.reason


def test_utf8_bom_is_not_part_of_the_first_tag(tmp_path: Path) -> None:
    write_song(tmp_path, "bom")
    (tmp_path / "bom_prompt.txt").write_bytes("\ufeffpop, rock".encode())
    assert list_folder_songs(tmp_path).songs[0].tags == ("pop", "rock")


def test_empty_folder(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    with pytest.raises(DatasetError, match=r"no audio files \(\.wav, \.flac, \.mp3, \.ogg\) found"):
        load_training_dataset(tmp_path, tokenizer)
    (tmp_path / "x_prompt.txt").write_text("pop")
    with pytest.raises(DatasetError, match=r"1 prompt files found, e\.g\. x_prompt\.txt, but no audio"):
        list_training_songs(tmp_path)


def test_paths_that_are_not_a_dataset_folder(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_training_dataset(tmp_path / "missing", tokenizer)
    file = tmp_path / "song.wav"
    file.write_bytes(b"")
    with pytest.raises(DatasetError, match="is a file, expected a folder"):
        load_training_dataset(file, tokenizer)
    arrow = tmp_path / "data-00000-of-00001.arrow"
    arrow.write_bytes(b"")
    with pytest.raises(DatasetError, match="pass the folder that holds it"):
        detect_dataset_format(arrow)


def test_every_song_unusable_is_one_error_with_every_reason(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    write_song(tmp_path, "silent", data=np.zeros((48000 * 4, 2), dtype=np.float32))
    write_song(tmp_path, "short", data=tone(0.1))
    write_song(tmp_path, "no_prompt", tags=None)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (tmp_path / "corrupt_prompt.txt").write_text("pop")
    with pytest.raises(DatasetError, match=r"none of its 4 songs can be used") as error:
        load_training_dataset(tmp_path, tokenizer)
    message = str(error.value)
    for expected in ("silent: 100.0%", "short: too short or silent: 0.10 s", "no_prompt: no prompt file",
                     "corrupt: training audio", "cannot decode"):
        assert expected in message
    dataset = load_training_dataset(tmp_path, tokenizer, require_usable=False)
    assert len(dataset) == 0 and len(dataset.report.unusable) == 4
    assert json.loads(json.dumps(dataset.report.to_dict()))["unusable"] == 4

"""The dataset report: one row per song, every warning, the text and JSON renderings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from acestep_core.lyrics import MAX_LYRIC_TOKENS, LyricsTooLongError, LyricTokenizer
from acestep_core.training import dataset_report
from acestep_core.training.dataset import load_training_dataset
from acestep_core.training.dataset_report import SongReport, analyse_song
from acestep_core.training.lyrics import TrainingLyrics
from acestep_core.training.songs import TrainingSong
from tests.parity import PARITY_DIR
from tests.training.data_helpers import parity_tokenizer, tone, write_audio, write_song


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return parity_tokenizer()


def _codes(row: SongReport) -> list[str]:
    return [w.code for w in row.warnings]


def _song(audio: Path, lyrics: str = "[verse]\nhello", **fields: object) -> TrainingSong:
    return TrainingSong(key="s", audio_path=audio, tags=("pop",), lyrics=lyrics, **fields)  # type: ignore[arg-type]


def test_a_clean_song_has_no_warning(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    row = analyse_song(_song(write_audio(tmp_path / "a.wav", tone(10.0))), tokenizer).report
    assert row.usable and row.warnings == () and row.main_language == "en" and row.num_tokens
    assert row.duration_s == 10.0 and row.trained_duration_s == 10.0 and row.sample_rate == 48000
    assert row.channels == 2 and row.instrumental is False


def test_audio_warnings(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    loud = tone(2.0, 22050, 3, amplitude=1.5)
    row = analyse_song(_song(write_audio(tmp_path / "loud.wav", loud, 22050, "FLOAT")), tokenizer).report
    assert row.usable and _codes(row)[:3] == ["channels_cut", "padded", "clamped"]
    assert "mostly_silent" not in _codes(row)  # 2 s of sound in 3 s
    quiet = tone(1.0)
    row = analyse_song(_song(write_audio(tmp_path / "one.wav", quiet)), tokenizer).report
    assert row.usable and "mostly_silent" in _codes(row) and "67%" in str(row.warnings)


def test_cropped_song(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    long = np.full((241 * 8000, 1), 0.1, dtype=np.float32)
    row = analyse_song(_song(write_audio(tmp_path / "long.flac", long, 8000)), tokenizer).report
    assert row.usable and "cropped" in _codes(row) and row.trained_duration_s == 240.0 and row.duration_s == 241.0


def test_silent_song_is_unusable_with_the_reason(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    silent = write_audio(tmp_path / "s.wav", np.zeros((48000 * 5, 2), dtype=np.float32))
    analysis = analyse_song(_song(silent), tokenizer)
    assert not analysis.report.usable and "silent: 100.0%" in (analysis.report.reason or "")
    assert analysis.lyric_ids == () and analysis.report.duration_s == 5.0


def test_lyric_warnings(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    audio = write_audio(tmp_path / "a.wav", tone(3.5))
    dense = analyse_song(_song(audio, "\n".join(["one two three four five six seven"] * 6)), tokenizer).report
    assert "lyrics_too_long" in _codes(dense) and f"{dense.num_tokens} lyric tokens for 3.50 s" in str(dense.warnings)
    prompt_like = analyse_song(_song(audio, "write a sad song that genre is jazz"), tokenizer).report
    assert prompt_like.instrumental and "read like a prompt" in prompt_like.warnings[0].message
    empty = analyse_song(_song(audio, "  \n"), tokenizer).report
    assert empty.instrumental and _codes(empty) == ["instrumental"] and empty.num_tokens == 1


def test_unsupported_language_falls_back_with_a_warning(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    cases = json.loads((PARITY_DIR / "training" / "lyrics_train.json").read_text())["cases"]
    lyrics = next(c["lyrics"] for c in cases if "error" in c)
    row = analyse_song(_song(write_audio(tmp_path / "a.wav", tone(3.5)), lyrics), tokenizer).report
    assert row.usable and row.lyric_fallback and "language_fallback" in _codes(row)
    assert "(fallback)" in load_report_text(row)


def load_report_text(row: SongReport) -> str:
    return dataset_report.DatasetReport(path="x", format="folder", songs=(row,)).to_text()


def test_lyrics_cut_to_4096(tmp_path: Path, tokenizer: LyricTokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    long = TrainingLyrics(ids=tuple(range(3, 3 + MAX_LYRIC_TOKENS + 10)), main_language="en")
    monkeypatch.setattr(dataset_report, "tokenize_training_lyrics", lambda tok, text: long)
    analysis = analyse_song(_song(write_audio(tmp_path / "a.wav", tone(3.5))), tokenizer)
    assert analysis.report.num_tokens == MAX_LYRIC_TOKENS and len(analysis.lyric_ids) == MAX_LYRIC_TOKENS
    assert "lyrics_cut" in _codes(analysis.report) and str(MAX_LYRIC_TOKENS + 10) in str(analysis.report.warnings)


def test_dropped_lines_are_reported(tmp_path: Path, tokenizer: LyricTokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    found = TrainingLyrics(ids=(261, 5, 2), main_language="en", dropped_lines=("bad line",))
    monkeypatch.setattr(dataset_report, "tokenize_training_lyrics", lambda tok, text: found)
    row = analyse_song(_song(write_audio(tmp_path / "a.wav", tone(3.5))), tokenizer).report
    assert "line_dropped" in _codes(row) and "'bad line'" in str(row.warnings)


def test_lyric_errors_make_the_song_unusable(tmp_path: Path, tokenizer: LyricTokenizer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(tok: LyricTokenizer, text: str) -> TrainingLyrics:
        raise LyricsTooLongError("the lyrics have 20001 characters")

    monkeypatch.setattr(dataset_report, "tokenize_training_lyrics", refuse)
    row = analyse_song(_song(write_audio(tmp_path / "a.wav", tone(3.5))), tokenizer).report
    assert not row.usable and row.reason == "lyrics: the lyrics have 20001 characters" and row.duration_s == 3.5


def test_report_renderings(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    write_song(tmp_path, "good", lyrics="[verse]\nhello there")
    write_song(tmp_path, "inst", lyrics="")
    write_song(tmp_path, "lost", tags=None)
    report = load_training_dataset(tmp_path, tokenizer).report
    data = json.loads(json.dumps(report.to_dict()))
    assert [s["key"] for s in data["songs"]] == ["good", "inst", "lost"]
    assert (data["usable"], data["unusable"], data["rows"], data["format"]) == (2, 1, 3, "folder")
    assert data["trained_duration_s"] == pytest.approx(7.0)
    assert data["songs"][1]["warnings"][0]["code"] == "instrumental"
    text = report.to_text().splitlines()
    assert text[0].startswith(f"Training data {tmp_path} (folder): 3 songs, 2 usable, 1 unusable; 7.0 s")
    assert any(line.split()[:2] == ["ok", "good"] and "lyrics en" in line for line in text)
    assert any(line.split()[:2] == ["UNUSABLE", "lost"] for line in text)
    assert any("reason: no prompt file" in line for line in text)

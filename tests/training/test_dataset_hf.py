"""The original trainer's Hugging Face dataset format (``save_to_disk`` folders), read with pyarrow: rows, repeats,
recaption forms, path resolution, and every way such a folder can be broken."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from acestep_core.lyrics import LyricTokenizer
from acestep_core.training.dataset import load_training_dataset
from acestep_core.training.dataset_hf import list_hf_songs, read_hf_rows
from acestep_core.training.songs import DatasetError
from tests.training.data_helpers import hf_row, parity_tokenizer, tone, write_audio, write_hf_dataset

pa = pytest.importorskip("pyarrow", reason="reading the Hugging Face dataset needs pyarrow (requirements-train.txt)")


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return parity_tokenizer()


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    return write_audio(tmp_path / "audio" / "a.wav", tone(3.5))


def test_repeated_rows_are_kept_and_reported_once(tmp_path: Path, audio: Path, tokenizer: LyricTokenizer) -> None:
    write_hf_dataset(tmp_path / "ds", [hf_row("a", "audio/a.wav")] * 5)
    calls: list[tuple[int, int]] = []
    dataset = load_training_dataset(tmp_path / "ds", tokenizer,
                                    progress=lambda done, total: calls.append((done, total)))
    assert len(dataset) == 5 and len(set(dataset.songs)) == 1
    (row,) = dataset.report.songs
    assert row.rows == 5 and row.source == "row 0" and calls == [(1, 1)]
    assert "5 rows" in dataset.report.to_text() and dataset.report.to_dict()["rows"] == 5


def test_recaption_as_a_struct_column(tmp_path: Path, audio: Path) -> None:
    rows = [hf_row("a", "audio/a.wav", recaption={"simplified": "pop", "descriptive": None}),
            hf_row("b", "audio/a.wav", recaption={"simplified": None, "descriptive": "long text"})]
    songs = list_hf_songs(write_hf_dataset(tmp_path / "ds", rows)).songs
    assert [s.recaption for s in songs] == [(("simplified", "pop"),), (("descriptive", "long text"),)]
    assert not any(s.notes for s in songs), "None fields of a unified struct are not findings"


def test_optional_columns_may_be_absent(tmp_path: Path, audio: Path) -> None:
    row = {"keys": "a", "filename": str(audio), "tags": ["x"], "norm_lyrics": ""}
    (song,) = list_hf_songs(write_hf_dataset(tmp_path / "ds", [row])).songs
    assert song.audio_path == audio and song.recaption == () and song.speaker_emb_path == ""


def test_bad_rows_are_listed_with_the_reason(tmp_path: Path, audio: Path) -> None:
    rows = [hf_row("ok", "audio/a.wav"), hf_row("lost", "audio/missing.wav"),
            hf_row("broken_recaption", "audio/a.wav", recaption="{oops"),
            hf_row("list_recaption", "audio/a.wav", recaption="[1, 2]")]
    listing = list_hf_songs(write_hf_dataset(tmp_path / "ds", rows), working_dir=tmp_path / "nowhere")
    assert [s.key for s in listing.songs] == ["ok"]
    problems = {p.key: p for p in listing.problems}
    assert "audio file not found: 'audio/missing.wav'" in problems["lost"].reason
    assert str(tmp_path / "audio" / "missing.wav") in problems["lost"].reason
    assert str(tmp_path / "nowhere" / "audio" / "missing.wav") in problems["lost"].reason
    assert "not valid JSON" in problems["broken_recaption"].reason
    assert "must be a JSON object" in problems["list_recaption"].reason
    assert [e.key for e in listing.entries] == ["ok", "lost", "broken_recaption", "list_recaption"]


def test_wrongly_typed_columns(tmp_path: Path, audio: Path) -> None:
    schema = pa.schema([("keys", pa.string()), ("filename", pa.string()), ("tags", pa.string()),
                        ("norm_lyrics", pa.string())])
    rows = [{"keys": "a", "filename": "audio/a.wav", "tags": "pop, rock", "norm_lyrics": "x"}]
    (problem,) = list_hf_songs(write_hf_dataset(tmp_path / "ds", rows, schema=schema)).problems
    assert "column 'tags' must be a list of strings" in problem.reason


def test_speaker_embedding_path_is_ignored_with_a_warning(tmp_path: Path, audio: Path,
                                                          tokenizer: LyricTokenizer) -> None:
    write_hf_dataset(tmp_path / "ds", [hf_row("a", "audio/a.wav", speaker_emb_path="spk/a.pt")])
    dataset = load_training_dataset(tmp_path / "ds", tokenizer)
    (row,) = dataset.report.songs
    assert row.usable and "speaker_emb_ignored" in {w.code for w in row.warnings}
    assert not dataset.item(0, random.Random(0), with_audio=False).speaker_emb.any()


def test_missing_columns_are_named(tmp_path: Path) -> None:
    write_hf_dataset(tmp_path / "ds", [{"keys": "a", "filename": "x.wav", "tags": ["t"]}])
    with pytest.raises(DatasetError, match=r"lacks the columns \['norm_lyrics'\]"):
        read_hf_rows(tmp_path / "ds")


def test_missing_data_file(tmp_path: Path) -> None:
    folder = write_hf_dataset(tmp_path / "ds", [hf_row("a", "x.wav")])
    (folder / "data-00000-of-00001.arrow").unlink()
    with pytest.raises(DatasetError, match=r"data files \['data-00000-of-00001.arrow'\] .* are missing"):
        read_hf_rows(folder)
    (folder / "state.json").unlink()
    with pytest.raises(DatasetError, match="state.json and the .arrow data files are missing"):
        read_hf_rows(folder)


def test_corrupt_data_file(tmp_path: Path) -> None:
    folder = write_hf_dataset(tmp_path / "ds", [hf_row("a", "x.wav")])
    data = folder / "data-00000-of-00001.arrow"
    data.write_bytes(data.read_bytes()[:40])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        read_hf_rows(folder)


def test_broken_state_file(tmp_path: Path) -> None:
    folder = write_hf_dataset(tmp_path / "ds", [hf_row("a", "x.wav")])
    (folder / "state.json").write_text("{}")
    with pytest.raises(DatasetError, match="state.json is unreadable or not a save_to_disk state"):
        read_hf_rows(folder)


def test_empty_dataset(tmp_path: Path) -> None:
    schema = pa.schema([(name, pa.string()) for name in ("keys", "filename", "norm_lyrics")]
                       + [("tags", pa.list_(pa.string()))])
    write_hf_dataset(tmp_path / "ds", [], schema=schema)
    with pytest.raises(DatasetError, match="has no rows"):
        read_hf_rows(tmp_path / "ds")


def test_a_dataset_dict_names_its_splits(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    write_hf_dataset(tmp_path / "dd" / "train", [hf_row("a", "x.wav")])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}))
    with pytest.raises(DatasetError, match=r"DatasetDict with splits \['train'\]; point to one split's folder"):
        load_training_dataset(tmp_path / "dd", tokenizer)


def test_without_pyarrow_the_error_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_hf_dataset(tmp_path / "ds", [hf_row("a", "x.wav")])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(DatasetError, match=r"needs the 'pyarrow' package: pip install pyarrow"):
        read_hf_rows(folder)

"""The golden training dataset (``training/dataset/``, the original's Hugging Face format) read by our loader:
the rows of ``dataset_index.json``, the same songs through an equivalent folder dataset, and the batch the
original fed its steps (``steps.safetensors`` ``in.*`` tensors, ``cases.json -> batch``)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.lyrics import LyricTokenizer
from acestep_core.training.batch import collate
from acestep_core.training.dataset import TrainingDataset, detect_dataset_format, load_training_dataset
from acestep_core.training.prompts import prompt_candidates
from tests.parity import require_parity_module
from tests.training.data_helpers import TRAINING_DIR, parity_tokenizer

require_parity_module()
pytest.importorskip("pyarrow", reason="reading the Hugging Face dataset needs pyarrow (requirements-train.txt)")

INDEX: list[dict[str, Any]] = json.loads((TRAINING_DIR / "dataset_index.json").read_text())
CASES: dict[str, Any] = json.loads((TRAINING_DIR / "cases.json").read_text())
AUDIO_DIR = TRAINING_DIR / "audio"


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return parity_tokenizer()


@pytest.fixture(scope="module")
def hf_dataset(tokenizer: LyricTokenizer) -> TrainingDataset:
    return load_training_dataset(TRAINING_DIR / "dataset", tokenizer, audio_cache={})


def _folder_from_index(folder: Path) -> Path:
    """The golden rows as a folder dataset: <key>.<ext> + _prompt.txt (tags joined by ", ") + _lyrics.txt +
    _recaption.json."""
    for row in INDEX:
        source = AUDIO_DIR / row["file"]
        shutil.copyfile(source, folder / f"{row['keys']}{source.suffix}")
        (folder / f"{row['keys']}_prompt.txt").write_text(", ".join(row["tags"]), encoding="utf-8")
        (folder / f"{row['keys']}_lyrics.txt").write_text(row["norm_lyrics"], encoding="utf-8")
        (folder / f"{row['keys']}_recaption.json").write_text(json.dumps(row["recaption"]), encoding="utf-8")
    return folder


def test_rows_equal_the_index(hf_dataset: TrainingDataset) -> None:
    assert detect_dataset_format(TRAINING_DIR / "dataset") == "hf"
    report_keys = [row.key for row in hf_dataset.report.songs]
    assert report_keys == [row["keys"] for row in INDEX]
    usable = {song.key: song for song in hf_dataset.songs}
    for row in INDEX:
        discarded = CASES["audio_prep"][Path(row["file"]).stem]["discarded"]
        assert (row["keys"] not in usable) is discarded
        if discarded:
            continue
        song = usable[row["keys"]]
        assert song.audio_path.resolve() == (AUDIO_DIR / row["file"]).resolve()
        assert list(song.tags) == row["tags"] and song.lyrics == row["norm_lyrics"]
        assert song.recaption_dict() == {k: v for k, v in row["recaption"].items() if isinstance(v, str)}
        assert song.speaker_emb_path == row["speaker_emb_path"]


def test_wav_lengths_equal_audio_prep(hf_dataset: TrainingDataset) -> None:
    files = {row["keys"]: Path(row["file"]).stem for row in INDEX}
    for song, length in zip(hf_dataset.songs, hf_dataset.wav_lengths, strict=True):
        assert length == CASES["audio_prep"][files[song.key]]["shape"][1]


def test_a_folder_with_the_same_files_gives_the_same_songs(tmp_path: Path, tokenizer: LyricTokenizer,
                                                           hf_dataset: TrainingDataset) -> None:
    folder = load_training_dataset(_folder_from_index(tmp_path), tokenizer)
    assert folder.format == "folder" and len(folder) == len(hf_dataset)
    for ours, theirs in zip(folder.songs, hf_dataset.songs, strict=True):
        assert (ours.key, ours.tags, ours.lyrics, ours.recaption, ours.speaker_emb_path) == (
            theirs.key, theirs.tags, theirs.lyrics, theirs.recaption, theirs.speaker_emb_path)
    assert folder.lyric_ids == hf_dataset.lyric_ids and folder.wav_lengths == hf_dataset.wav_lengths
    for index in range(len(folder)):
        assert torch.equal(folder.load_audio(index).waveform, hf_dataset.load_audio(index).waveform)
    for ours, theirs in zip(folder.report.songs, hf_dataset.report.songs, strict=True):
        where = ("source", "audio_path", "warnings")
        mine = {k: v for k, v in ours.to_dict().items() if k not in where}
        assert mine == {k: v for k, v in theirs.to_dict().items() if k not in where}
        extra = {w.code for w in ours.warnings} - {w.code for w in theirs.warnings}
        assert extra <= {"no_tags"}, "only an empty prompt file is reported differently (it has no tags)"


def test_relative_filenames_fall_back_to_the_working_directory(tmp_path: Path, tokenizer: LyricTokenizer,
                                                               hf_dataset: TrainingDataset) -> None:
    moved = tmp_path / "elsewhere" / "dataset"
    shutil.copytree(TRAINING_DIR / "dataset", moved)
    lost = load_training_dataset(moved, tokenizer, require_usable=False)
    assert len(lost) == 0 and all("audio file not found" in (row.reason or "") for row in lost.report.songs)
    found = load_training_dataset(moved, tokenizer, working_dir=TRAINING_DIR)
    assert [s.audio_path for s in found.songs] == [s.audio_path for s in hf_dataset.songs]


def test_the_batch_the_original_trained_on(hf_dataset: TrainingDataset) -> None:
    """Items of cases.json -> batch, collated: the steps' input tensors exactly (values and dtypes)."""
    batch_case = CASES["batch"]
    indices = [next(i for i, s in enumerate(hf_dataset.songs) if s.key == key) for key in batch_case["keys"]]
    items = [hf_dataset.item(index, random.Random(index)) for index in indices]
    batch = collate(items)
    golden = load_file(str(TRAINING_DIR / "steps.safetensors"))
    ours = {"in.wav_lengths": batch.wav_lengths, "in.lyric_token_ids": batch.lyric_token_ids,
            "in.lyric_masks": batch.lyric_masks, "in.speaker_embs": batch.speaker_embs}
    for name, tensor in ours.items():
        assert tensor.dtype == golden[name].dtype and torch.equal(tensor, golden[name]), name
    assert batch.wav_lengths.tolist() == batch_case["wav_lengths"]
    assert batch.target_wavs is not None and batch.target_wavs.shape == (len(items), 2, max(batch_case["wav_lengths"]))
    for index, prompt in zip(indices, batch_case["prompts"], strict=True):
        song = hf_dataset.songs[index]
        recorded_choices = {*prompt_candidates(song.tags, song.recaption, random.Random(0))[:-1]}
        assert prompt in recorded_choices or sorted(prompt.split(", ")) == sorted(song.tags)

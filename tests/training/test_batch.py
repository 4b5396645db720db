"""Training samples and their batches (the original's ``process`` tensors and ``collate_fn`` padding)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from acestep_core.errors import AceStepInputError
from acestep_core.lyrics import MAX_LYRIC_TOKENS, LyricTokenizer
from acestep_core.training import dataset as dataset_module
from acestep_core.training.audio import PreparedAudio, TrainingAudioError
from acestep_core.training.batch import SPEAKER_EMBEDDING_DIM, collate, make_training_item
from acestep_core.training.dataset import TrainingDataset, load_training_dataset
from acestep_core.training.songs import TrainingSong
from tests.training.data_helpers import parity_tokenizer, tone, write_audio, write_song


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return parity_tokenizer()


SONG = TrainingSong(key="k", audio_path=Path("k.wav"), tags=("a", "b"))


def _item(index: int, length: int, ids: tuple[int, ...], with_audio: bool = True) -> object:
    wav = torch.randn(2, length) if with_audio else None
    return make_training_item(index, SONG, ids, length, random.Random(index), waveform=wav)


def test_item_tensors() -> None:
    item = make_training_item(3, SONG, (261, 5, 2), 1000, random.Random(0), waveform=torch.zeros(2, 1000))
    assert item.lyric_token_ids.dtype == torch.long and item.lyric_token_ids.tolist() == [261, 5, 2]
    assert item.lyric_mask.dtype == torch.float32 and item.lyric_mask.tolist() == [1.0, 1.0, 1.0]
    assert item.speaker_emb.shape == (SPEAKER_EMBEDDING_DIM,) and not item.speaker_emb.any()
    assert item.prompt in {"a, b", "b, a"} and item.index == 3 and item.wav_length == 1000


def test_item_cuts_lyrics_to_4096() -> None:
    item = make_training_item(0, SONG, tuple(range(MAX_LYRIC_TOKENS + 5)), 10, random.Random(0))
    assert item.lyric_token_ids.shape == (MAX_LYRIC_TOKENS,) and item.lyric_mask.shape == (MAX_LYRIC_TOKENS,)


def test_item_refuses_a_wrong_waveform() -> None:
    with pytest.raises(AceStepInputError, match=r"expected a \[2, 1000\] waveform .* got \[1, 1000\]"):
        make_training_item(0, SONG, (0,), 1000, random.Random(0), waveform=torch.zeros(1, 1000))
    with pytest.raises(AceStepInputError, match=r"empty lyric ids; an instrumental song has the ids \[0\]"):
        make_training_item(0, SONG, (), 1000, random.Random(0))


def test_collate_pads_like_the_original() -> None:
    a, b = _item(0, 500, (261, 7, 8, 2)), _item(1, 300, (0,))
    batch = collate([a, b])  # type: ignore[list-item]
    assert batch.target_wavs is not None and batch.target_wavs.shape == (2, 2, 500)
    assert torch.equal(batch.target_wavs[1, :, :300], b.waveform) and not batch.target_wavs[1, :, 300:].any()  # type: ignore[attr-defined]
    assert batch.lyric_token_ids.tolist() == [[261, 7, 8, 2], [0, 0, 0, 0]]
    assert batch.lyric_masks.tolist() == [[1.0] * 4, [1.0, 0.0, 0.0, 0.0]] and batch.lyric_masks.dtype == torch.float32
    assert batch.wav_lengths.tolist() == [500, 300] and batch.wav_lengths.dtype == torch.long
    assert batch.speaker_embs.shape == (2, SPEAKER_EMBEDDING_DIM) and batch.indices == (0, 1) and len(batch) == 2


def test_collate_without_audio_and_mixed() -> None:
    batch = collate([_item(0, 500, (0,), False), _item(1, 300, (0,), False)])  # type: ignore[list-item]
    assert batch.target_wavs is None and batch.wav_lengths.tolist() == [500, 300]
    with pytest.raises(AceStepInputError, match="some items carry a waveform and others do not"):
        collate([_item(0, 500, (0,)), _item(1, 300, (0,), False)])  # type: ignore[list-item]
    with pytest.raises(AceStepInputError, match="no items to batch"):
        collate([])


def _dataset(folder: Path, tokenizer: LyricTokenizer, cache: dict[Path, PreparedAudio] | None) -> TrainingDataset:
    write_song(folder, "one", tags="x, y, z", recaption={"c": "caption"})
    write_song(folder, "two", data=tone(4.0, 44100), sample_rate=44100, lyrics="")
    return load_training_dataset(folder, tokenizer, audio_cache=cache)


def test_dataset_items_are_deterministic_per_rng_state(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    dataset = _dataset(tmp_path, tokenizer, None)
    prompts = [dataset.item(0, random.Random(seed), with_audio=False).prompt for seed in range(30)]
    assert prompts == [dataset.item(0, random.Random(seed), with_audio=False).prompt for seed in range(30)]
    assert "caption" in prompts and len(set(prompts)) > 2
    item = dataset.item(1, random.Random(0))
    assert item.waveform is not None and item.wav_length == item.waveform.shape[-1] == dataset.wav_lengths[1]
    with pytest.raises(IndexError, match="dataset index 2 out of range: the dataset has 2 usable rows"):
        dataset.item(2, random.Random(0))


def test_audio_cache_is_filled_and_used(tmp_path: Path, tokenizer: LyricTokenizer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache: dict[Path, PreparedAudio] = {}
    dataset = _dataset(tmp_path, tokenizer, cache)
    assert set(cache) == {song.audio_path for song in dataset.songs}

    def no_decoding(path: Path) -> PreparedAudio:
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(dataset_module, "prepare_training_audio", no_decoding)
    batch = collate([dataset.item(i, random.Random(i)) for i in range(len(dataset))])
    assert batch.target_wavs is not None and batch.target_wavs.shape[:2] == (2, 2)


def test_a_file_changed_after_loading_is_an_error(tmp_path: Path, tokenizer: LyricTokenizer) -> None:
    dataset = _dataset(tmp_path, tokenizer, None)
    write_audio(dataset.songs[0].audio_path, tone(5.0))
    with pytest.raises(TrainingAudioError, match="changed since the dataset was loaded.*load the dataset again"):
        dataset.load_audio(0)

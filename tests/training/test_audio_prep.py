"""Training audio preparation against ``training/audio_prep.safetensors`` and ``cases.json -> audio_prep`` (the
original's ``get_audio`` + 240 s crop), and its behaviour on synthetic files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchaudio

from acestep_core.training.audio import (
    MIN_DURATION_S,
    TRAIN_SAMPLE_RATE,
    PreparedAudio,
    TrainingAudioError,
    prepare_training_audio,
    prepare_waveform,
)
from tests.parity import assert_golden, load_golden, require_parity_module
from tests.training.data_helpers import TRAINING_DIR, tone, write_audio

require_parity_module()

CASES: dict[str, dict[str, Any]] = json.loads((TRAINING_DIR / "cases.json").read_text())["audio_prep"]
GOLDEN = "training/audio_prep.safetensors"
CATEGORY = "pipeline_waveforms"  # README section 5: waveforms


def _audio_file(name: str) -> Path:
    found = sorted((TRAINING_DIR / "audio").glob(f"{name}.*"))
    assert len(found) == 1, f"expected one audio file named {name}.* in training/audio, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def prepared() -> dict[str, PreparedAudio]:
    return {name: prepare_training_audio(_audio_file(name)) for name in CASES}


def test_every_golden_file_is_covered() -> None:
    heads = {key.rsplit(".", 1)[0] for key in load_golden(GOLDEN)}
    kept = {name for name, case in CASES.items() if not case["discarded"]}
    assert heads == kept and any(case["discarded"] for case in CASES.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_discarded_as_the_original(name: str, prepared: dict[str, PreparedAudio]) -> None:
    assert prepared[name].usable is not CASES[name]["discarded"]
    if CASES[name]["discarded"]:
        assert prepared[name].discard_reason is not None and "silent" in prepared[name].discard_reason


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c["discarded"]))
def test_heads_and_tails_equal_the_original(name: str, prepared: dict[str, PreparedAudio]) -> None:
    wav = prepared[name].waveform
    golden = load_golden(GOLDEN)
    assert wav.dtype == torch.float32 and list(wav.shape) == CASES[name]["shape"]
    head, tail = golden[f"{name}.head"], golden[f"{name}.tail"]
    assert_golden(wav[:, :head.shape[-1]], head, CATEGORY, f"training/audio_prep:{name}.head")
    assert_golden(wav[:, -tail.shape[-1]:], tail, CATEGORY, f"training/audio_prep:{name}.tail")


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c["discarded"]))
def test_statistics_equal_the_original(name: str, prepared: dict[str, PreparedAudio]) -> None:
    wav = prepared[name].waveform.to(torch.float64)
    stats = CASES[name]["stats"]
    assert list(wav.shape) == stats["shape"]
    ours = {"sum": wav.sum(), "abs_sum": wav.abs().sum(), "mean": wav.mean(), "std": wav.std(), "min": wav.min(),
            "max": wav.max()}
    assert set(ours) == set(stats) - {"shape"}, "a statistic of cases.json is not compared"
    for stat, value in ours.items():
        assert_golden(value[None], torch.tensor([stats[stat]], dtype=torch.float64), CATEGORY,
                      f"training/audio_prep:{name}.{stat}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_resampler_is_torchaudio_resample(name: str, prepared: dict[str, PreparedAudio]) -> None:
    """The original calls torchaudio.transforms.Resample(sr, 48000) with default arguments: bit for bit."""
    import soundfile as sf

    data, rate = sf.read(str(_audio_file(name)), dtype="float32", always_2d=True)
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    audio = (audio.repeat(2, 1) if audio.shape[0] == 1 else audio)[:2]
    if rate != TRAIN_SAMPLE_RATE:
        audio = torchaudio.transforms.Resample(rate, TRAIN_SAMPLE_RATE)(audio)
    audio = audio.clamp(-1, 1)
    n = audio.shape[-1]
    assert torch.equal(prepared[name].waveform[:, :n], audio)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 32000, 44100, 88200, 96000])
def test_resampling_is_bit_identical_to_torchaudio_at_common_rates(rate: int) -> None:
    audio = torch.randn(2, rate * 3 // 2, generator=torch.Generator().manual_seed(rate)) * 0.3
    ours = prepare_waveform(audio, rate).waveform
    theirs = torchaudio.transforms.Resample(rate, TRAIN_SAMPLE_RATE)(audio).clamp(-1, 1)
    assert torch.equal(ours[:, :theirs.shape[-1]], theirs)


def test_facts_of_the_golden_files(prepared: dict[str, PreparedAudio]) -> None:
    for name, audio in prepared.items():
        shape = CASES[name].get("shape")
        if shape is not None:
            assert audio.num_samples == shape[1]
        assert audio.padded is (audio.source_duration_s < MIN_DURATION_S)
        assert not audio.cropped
    loud = [a for a in prepared.values() if a.source_channels > 2]
    assert loud and all(a.clamped for a in loud), "the 3-channel golden file peaks beyond full scale"


# synthetic files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_every_format_becomes_48k_stereo(tmp_path: Path, ext: str) -> None:
    path = write_audio(tmp_path / f"x.{ext}", tone(4.0, 44100, 1), 44100)
    audio = prepare_training_audio(path)
    assert audio.usable and audio.waveform.shape[0] == 2 and audio.source_channels == 1
    assert audio.source_sample_rate == 44100 and abs(audio.duration_s - 4.0) < 0.1
    assert torch.equal(audio.waveform[0], audio.waveform[1])


def test_short_clip_is_padded_and_long_one_cropped() -> None:
    short = prepare_waveform(torch.full((2, 1000), 0.5), TRAIN_SAMPLE_RATE)
    assert short.padded and short.num_samples == MIN_DURATION_S * TRAIN_SAMPLE_RATE
    assert torch.all(short.waveform[:, 1000:] == 0) and not short.usable  # 99 % padding -> silent
    long = prepare_waveform(torch.full((2, 241 * TRAIN_SAMPLE_RATE), 0.25), TRAIN_SAMPLE_RATE)
    assert long.cropped and long.num_samples == 240 * TRAIN_SAMPLE_RATE and long.duration_s == 240.0
    assert long.source_duration_s == 241.0


def test_silence_limit_is_more_than_95_percent() -> None:
    n = 100 * TRAIN_SAMPLE_RATE // 10  # 10 s
    audio = torch.zeros(2, n)
    audio[0, : n * 5 // 100] = 0.1  # exactly 95 % silent: kept (the original discards above 95 %)
    assert prepare_waveform(audio, TRAIN_SAMPLE_RATE).usable
    audio[0, n * 5 // 100 - 10: n * 5 // 100] = 0.0
    dropped = prepare_waveform(audio, TRAIN_SAMPLE_RATE)
    assert not dropped.usable and dropped.discard_reason is not None and "95%" in dropped.discard_reason


def test_a_sound_on_one_channel_is_not_silence() -> None:
    audio = torch.zeros(2, 4 * TRAIN_SAMPLE_RATE)
    audio[1] = 0.2
    assert prepare_waveform(audio, TRAIN_SAMPLE_RATE).silent_fraction == 0.0


def test_clamp_counts_samples_beyond_full_scale() -> None:
    audio = torch.full((3, 4 * TRAIN_SAMPLE_RATE), 0.5)
    audio[0, :10] = 1.5
    audio[2] = 9.0  # the third channel is dropped before the clamp
    prepared = prepare_waveform(audio, TRAIN_SAMPLE_RATE)
    assert prepared.clamped_samples == 10 and prepared.waveform.max() == 1.0 and prepared.source_channels == 3


def test_nan_samples_discard_the_song() -> None:
    audio = torch.full((2, 4 * TRAIN_SAMPLE_RATE), 0.5)
    audio[0, 3] = float("nan")
    prepared = prepare_waveform(audio, TRAIN_SAMPLE_RATE)
    assert not prepared.usable and "NaN" in (prepared.discard_reason or "")


def test_empty_file_is_discarded_with_a_reason(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "empty.wav", np.zeros((0, 2), dtype=np.float32))
    prepared = prepare_training_audio(path)
    assert not prepared.usable and "no audio samples" in (prepared.discard_reason or "")


def test_missing_folder_and_corrupt_files_raise(tmp_path: Path) -> None:
    with pytest.raises(TrainingAudioError, match="file not found"):
        prepare_training_audio(tmp_path / "nope.wav")
    with pytest.raises(TrainingAudioError, match="is a folder"):
        prepare_training_audio(tmp_path)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(TrainingAudioError, match="cannot decode.*ffmpeg"):
        prepare_training_audio(corrupt)


def test_bad_waveform_shape_raises() -> None:
    with pytest.raises(TrainingAudioError, match=r"expected a \[channels, samples\] waveform, got shape \[10\]"):
        prepare_waveform(torch.zeros(10), TRAIN_SAMPLE_RATE)

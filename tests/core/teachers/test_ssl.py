"""The trainer's SSL preprocessing: chunking, trimming, grouping invariance, bad input."""

from __future__ import annotations

import pytest
import torch

from acestep_core.errors import AceStepInputError
from acestep_core.teachers import HubertConfig, load_teacher, ssl_features
from acestep_core.teachers.ssl import chunk_frames, normalised_mono, split_chunks

from .conftest import TeacherFactory

RATE, CHUNK_S = 16000, 1  # short chunks keep the CPU test fast; the rules are the same as 5 s / 30 s


def _batch(seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([int(s * 48000) for s in seconds])
    gen = torch.Generator().manual_seed(seed)
    wavs = torch.randn(len(seconds), 2, int(lengths.max()), generator=gen) * 0.3
    for i, n in enumerate(lengths.tolist()):
        wavs[i, :, n:] = 0  # the trainer's collate pads with zeros
    return wavs, lengths


def test_normalisation_uses_each_items_own_length() -> None:
    wavs, lengths = _batch((2.0, 0.75))
    mono, own = normalised_mono(wavs, lengths, RATE)
    assert own == [32000, 12000] and mono.shape == (2, 32000)
    for i, n in enumerate(own):
        assert abs(float(mono[i, :n].mean())) < 1e-5 and abs(float(mono[i, :n].var()) - 1.0) < 1e-4
    tail = mono[1, 12100:]  # past the resampler tail: zeros become (0 - mean) / std, one constant
    assert float(tail.std()) < 1e-6 and float(tail.abs().max()) > 0


def test_chunks_are_zero_padded_and_trimmed() -> None:
    mono = torch.arange(1, 41, dtype=torch.float32).reshape(2, 20)
    chunks, chunk_lengths, per_item = split_chunks(mono, [20, 7], 8)
    assert per_item == [3, 1] and chunk_lengths == [8, 8, 4, 7]
    assert chunks[2].tolist() == [17, 18, 19, 20, 0, 0, 0, 0] and chunks[3, 7] == 0
    assert [chunk_frames(n) for n in (1, 320, 321, 120_000, 480_000)] == [1, 1, 2, 375, 1500]


def test_frame_counts_follow_the_trainer_rule(make_teacher: TeacherFactory) -> None:
    model = load_teacher(make_teacher("t", HubertConfig.tiny(stable_layer_norm=False)))
    wavs, lengths = _batch((2.5, 0.5))
    feats = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S)
    full = model.config.frames_for_samples(RATE * CHUNK_S)  # 49: one less than chunk_frames(16000) = 50
    assert [f.shape for f in feats] == [(full + full + chunk_frames(8000), 32), (chunk_frames(8000), 32)]


@pytest.mark.parametrize("group", [1, 2, 3])
def test_chunk_grouping_does_not_change_the_features(make_teacher: TeacherFactory, group: int) -> None:
    """No cross-chunk interaction: grouping only changes float32 rounding inside batched kernels."""
    model = load_teacher(make_teacher("t", seed=3))
    wavs, lengths = _batch((2.6, 1.2), seed=1)
    reference = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S)
    grouped = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S, max_chunks_per_call=group)
    for a, b in zip(reference, grouped, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_bf16_autocast_stays_close(make_teacher: TeacherFactory) -> None:
    model = load_teacher(make_teacher("t", seed=3))
    wavs, lengths = _batch((1.3,))
    fp32 = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S)[0]
    bf16 = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S,
                        autocast_dtype=torch.bfloat16)[0]
    assert bf16.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(bf16.float(), fp32, dim=-1)
    assert float(cos.min()) > 0.99


@pytest.mark.parametrize(("wavs", "lengths", "match"), [
    (torch.zeros(2, 48000), torch.tensor([1, 1]), r"expected a float \[B, channels, N\] tensor"),
    (torch.zeros(1, 2, 4800), torch.tensor([0]), r"wav_lengths: \[0\] outside 1\.\.4800"),
    (torch.zeros(1, 2, 4800), torch.tensor([5000]), r"wav_lengths: \[5000\] outside"),
    (torch.zeros(2, 2, 4800), torch.tensor([4800]), "1 lengths for a batch of 2"),
    (torch.zeros(1, 2, 4800), torch.tensor([2]), "shorter than one sample at 16000 Hz"),
])
def test_bad_batches_are_refused(wavs: torch.Tensor, lengths: torch.Tensor, match: str) -> None:
    with pytest.raises(AceStepInputError, match=match):
        normalised_mono(wavs, lengths, RATE)


def test_group_size_must_be_positive(make_teacher: TeacherFactory) -> None:
    model = load_teacher(make_teacher("t"))
    wavs, lengths = _batch((0.5,))
    with pytest.raises(AceStepInputError, match="max_chunks_per_call must be >= 1 or None"):
        ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S, max_chunks_per_call=0)


def test_lengths_are_floored_like_the_trainer() -> None:
    """``wav_lengths // 2`` (MERT) and ``// 3`` (mHuBERT): 48,005 samples -> 24,002 and 16,001."""
    wavs = torch.randn(1, 2, 48005, generator=torch.Generator().manual_seed(0))
    assert normalised_mono(wavs, torch.tensor([48005]), 24000)[1] == [24002]
    assert normalised_mono(wavs, torch.tensor([48005]), 16000)[1] == [16001]


def test_bf16_weights_run_without_autocast(make_teacher: TeacherFactory) -> None:
    model = load_teacher(make_teacher("t", seed=3), dtype=torch.bfloat16)
    wavs, lengths = _batch((0.6,))
    out = ssl_features(model, wavs, lengths, sample_rate=RATE, chunk_seconds=CHUNK_S)[0]
    assert out.dtype == torch.bfloat16 and out.shape == (chunk_frames(9600), 32)

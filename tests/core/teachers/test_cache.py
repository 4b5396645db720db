"""Per-song REPA feature cache: miss, hit, corrupt rebuild, keys, 240 s cut."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from acestep_core.teachers import FeatureCache, HubertConfig, TeacherSet
from acestep_core.teachers import cache as cache_module

from .conftest import TeacherFactory

TINY_DIMS = {"mert": 32, "m-hubert": 32}


@pytest.fixture
def teachers(teacher_pair: Path) -> TeacherSet:
    return TeacherSet.load(search_dirs=[teacher_pair], feature_dims=TINY_DIMS)


def _batch(seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([int(s * 48000) for s in seconds])
    wavs = torch.randn(len(seconds), 2, int(lengths.max()), generator=torch.Generator().manual_seed(seed)) * 0.3
    for i, n in enumerate(lengths.tolist()):
        wavs[i, :, n:] = 0
    return wavs, lengths


def test_miss_then_hit_returns_the_same_features(teachers: TeacherSet, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path / "feats", storage="fp32")
    wavs, lengths = _batch((1.2, 0.7))
    first = cache.features(teachers, wavs, lengths)
    assert (cache.stats.hits, cache.stats.misses) == (0, 2) and cache.size_bytes() == cache.stats.bytes_written > 0
    direct = teachers.features(wavs, lengths)
    for name in teachers.names:  # per song alone == in the padded batch (padding is zeros)
        for a, b in zip(first[name], direct[name], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    with caplog.at_level(logging.INFO, logger="acestep_core.teachers.cache"):
        second = FeatureCache(tmp_path / "feats", storage="fp32").features(teachers, wavs, lengths)
    assert any("read from the cache" in r.getMessage() for r in caplog.records)
    for name in teachers.names:
        assert all(torch.equal(a, b) for a, b in zip(first[name], second[name], strict=True))


def test_fp16_storage_serves_identical_numbers_fresh_and_cached(teachers: TeacherSet, tmp_path: Path) -> None:
    wavs, lengths = _batch((0.9,))
    fresh = FeatureCache(tmp_path / "c").features(teachers, wavs, lengths)
    cached_cache = FeatureCache(tmp_path / "c")
    cached = cached_cache.features(teachers, wavs, lengths)
    assert cached_cache.stats.hits == 1 and fresh["mert"][0].dtype == torch.float32
    assert torch.equal(fresh["mert"][0], cached["mert"][0]) and torch.equal(fresh["m-hubert"][0], cached["m-hubert"][0])
    fp32_size = FeatureCache(tmp_path / "c32", storage="fp32")
    fp32_size.features(teachers, wavs, lengths)
    assert fp32_size.stats.bytes_written > cached_cache.size_bytes() * 1.5  # fp16 is about half


def test_partial_hits_compute_only_the_missing_songs(teachers: TeacherSet, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c")
    wavs, lengths = _batch((0.8, 0.6), seed=3)
    cache.features(teachers, wavs[:1, :, :int(lengths[0])], lengths[:1])
    out = cache.features(teachers, wavs, lengths)
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)
    expected = [cache_module.expected_frames(teachers, "mert", int(n)) for n in lengths]
    assert [f.shape[0] for f in out["mert"]] == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_key"])
def test_corrupt_file_is_rebuilt_with_a_warning(teachers: TeacherSet, tmp_path: Path, damage: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    cache = FeatureCache(tmp_path / "c")
    wavs, lengths = _batch((0.7,))
    reference = cache.features(teachers, wavs, lengths)
    (path,) = (tmp_path / "c").glob("*/*.safetensors")
    if damage == "garbage":
        path.write_bytes(b"\x00not a safetensors file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        other = FeatureCache(tmp_path / "other")
        other.features(teachers, *_batch((0.7,), seed=9))
        path.write_bytes(next((tmp_path / "other").glob("*/*.safetensors")).read_bytes())
    rebuilt = FeatureCache(tmp_path / "c")
    with caplog.at_level(logging.WARNING):
        again = rebuilt.features(teachers, wavs, lengths)
    assert rebuilt.stats.rebuilt == 1 and rebuilt.stats.misses == 1
    assert any("recomputing it" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    assert torch.equal(again["mert"][0], reference["mert"][0])
    assert FeatureCache(tmp_path / "c").features(teachers, wavs, lengths)["mert"][0].shape == reference["mert"][0].shape


def test_key_depends_on_audio_teachers_and_settings(teachers: TeacherSet, teacher_pair: Path, tmp_path: Path,
                                                    make_teacher: TeacherFactory) -> None:
    song = _batch((0.5,))[0][0]
    cache = FeatureCache(tmp_path / "c")
    base = cache.key(teachers, song)
    assert cache.key(teachers, song.clone()) == base
    louder = song.clone()
    louder[0, 100] += 1e-3
    assert cache.key(teachers, louder) != base
    assert cache.key(teachers, song, precision="bf16") != base
    bf16_weights = TeacherSet.load(search_dirs=[teacher_pair], feature_dims=TINY_DIMS, dtype=torch.bfloat16)
    assert cache.key(bf16_weights, song) != base
    assert FeatureCache(tmp_path / "c", storage="fp32").key(teachers, song) != base
    make_teacher("other/MERT-v1-330M", HubertConfig.tiny(stable_layer_norm=True), seed=77)
    other = TeacherSet.load(paths={"mert": tmp_path / "other" / "MERT-v1-330M"}, search_dirs=[teacher_pair],
                            feature_dims=TINY_DIMS)
    assert cache.key(other, song) != base


def test_only_the_first_240_s_are_cached(teachers: TeacherSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_CACHED_SECONDS", 1)  # 240 s on the CPU would be slow; same rule
    wavs, lengths = _batch((1.6,))
    cut = FeatureCache(tmp_path / "c").features(teachers, wavs, lengths)
    first_second = teachers.features(wavs[:, :, :48000], torch.tensor([48000]))
    assert torch.equal(cut["m-hubert"][0], first_second["m-hubert"][0].to(torch.float16).float())


def test_unknown_storage_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"storage 'bf16': expected one of \['fp16', 'fp32'\]"):
        FeatureCache(tmp_path, storage="bf16")

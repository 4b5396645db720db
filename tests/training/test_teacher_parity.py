"""Golden parity of the REPA teachers (``shared/parity/teachers``, README section 8).

Every folder, size and length comes from ``teachers/cases.json`` and the tiny teachers' ``config.json``, so the
same test passes on another recording with other widths. Tolerances: README section 8 (module outputs).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

from acestep_core.teachers import (
    MERT_V1_330M_CONFIG,
    MHUBERT_147_CONFIG,
    FeatureCache,
    HubertConfig,
    HubertEncoder,
    TeacherSet,
    load_teacher,
)
from acestep_core.teachers.ssl import ssl_features
from tests.parity import assert_golden, load_golden, require_parity, require_parity_module

require_parity_module()  # the cases below are parametrized from the golden data

TEACHERS_DIR = "teachers"
CATEGORY = "module_outputs"  # README section 8: encoders.* and trainer_ssl outputs as module outputs


@cache
def _cases() -> dict[str, Any]:
    return json.loads((require_parity() / TEACHERS_DIR / "cases.json").read_text(encoding="utf-8"))


def _teacher_names() -> list[str]:
    return list(_cases()["teachers"])


def _folder(name: str) -> Path:
    return require_parity() / TEACHERS_DIR / _cases()["teachers"][name]["folder"]


@pytest.fixture(scope="module")
def teachers() -> dict[str, HubertEncoder]:
    return {name: load_teacher(_folder(name), name=name) for name in _teacher_names()}


@pytest.mark.parametrize("name", _teacher_names())
def test_tiny_teacher_loads_strictly_with_the_recorded_shape(name: str, teachers: dict[str, HubertEncoder]) -> None:
    case = _cases()["teachers"][name]
    raw = json.loads((_folder(name) / "config.json").read_text(encoding="utf-8"))
    mirrored = HubertConfig.from_json(_folder(name) / "config.json").to_dict()
    for key, value in case["config"].items():  # the recorded config is the folder's, and we keep its math keys
        assert raw[key] == value, key
        assert mirrored.get(key, value) == value, key
    assert teachers[name].checkpoint_parameter_count() == case["n_params"]
    baked = {k for k in teachers[name].state_dict()}
    assert baked == {k for k in case["keys"] if not k.endswith(("weight_g", "weight_v"))} | {
        "encoder.pos_conv_embed.conv.weight"}


@pytest.mark.parametrize("name", _teacher_names())
def test_encoder_reproduces_last_hidden_state(name: str, teachers: dict[str, HubertEncoder]) -> None:
    golden = load_golden(f"{TEACHERS_DIR}/encoders.safetensors")
    with torch.no_grad():
        out = teachers[name](golden[f"{name}.in.input_values"])
    assert out.shape[1] == _cases()["teachers"][name]["output_frames_for_chunk"]
    assert_golden(out, golden[f"{name}.out.last_hidden_state"], CATEGORY, f"teachers/encoders:{name}")


@pytest.mark.parametrize("name", _teacher_names())
def test_full_chunk_frame_count(name: str) -> None:
    case = _cases()["teachers"][name]
    cfg = HubertConfig.from_json(_folder(name) / "config.json")
    chunk_samples = case["sample_rate"] * case["trainer_chunk_seconds"]
    assert cfg.frames_for_samples(chunk_samples) == _cases()["full_chunk_frames"][name]


def _trainer_input() -> tuple[torch.Tensor, torch.Tensor]:
    golden = load_golden(f"{TEACHERS_DIR}/trainer_ssl.safetensors")
    wavs = golden["in.target_wavs_pcm16"].to(torch.float32) / 32768  # README: exactly pcm16 / 32768
    lengths = golden["in.wav_lengths"]
    assert lengths.tolist() == _cases()["trainer_ssl"]["wav_lengths"]
    return wavs, lengths


@pytest.mark.parametrize("max_chunks_per_call", [None, 1])
def test_trainer_preprocessing_reproduces_ssl_features(max_chunks_per_call: int | None) -> None:
    """TeacherSet (find by explicit path, config check, strict load) + the trainer's preprocessing."""
    cases = _cases()
    names = list(cases["teachers"])
    dims = {n: HubertConfig.from_json(_folder(n) / "config.json").hidden_size for n in names}
    teacher_set = TeacherSet.load(names=names, paths={n: _folder(n) for n in names}, feature_dims=dims)
    wavs, lengths = _trainer_input()
    feats = teacher_set.features(wavs, lengths, max_chunks_per_call=max_chunks_per_call)
    assert list(feats) == names  # the original's order: MERT first, then mHuBERT
    golden = load_golden(f"{TEACHERS_DIR}/trainer_ssl.safetensors")
    for name in names:
        assert [f.shape[0] for f in feats[name]] == cases["trainer_ssl"][f"{name}_frames"]
        for i, item in enumerate(feats[name]):
            assert_golden(item, golden[f"{name}.{i}"], CATEGORY, f"teachers/trainer_ssl:{name}.{i}")


def test_feature_cache_reproduces_ssl_features_fresh_and_cached(tmp_path: Path) -> None:
    """The cache computes each song alone (no batch padding): same goldens, on the miss and on the hit."""
    names = list(_cases()["teachers"])
    dims = {n: HubertConfig.from_json(_folder(n) / "config.json").hidden_size for n in names}
    teacher_set = TeacherSet.load(names=names, paths={n: _folder(n) for n in names}, feature_dims=dims)
    wavs, lengths = _trainer_input()
    golden = load_golden(f"{TEACHERS_DIR}/trainer_ssl.safetensors")
    for run in ("miss", "hit"):
        cache = FeatureCache(tmp_path / "cache", storage="fp32")
        feats = cache.features(teacher_set, wavs, lengths)
        assert (cache.stats.hits if run == "hit" else cache.stats.misses) == len(lengths)
        for name in names:
            for i, item in enumerate(feats[name]):
                assert_golden(item, golden[f"{name}.{i}"], CATEGORY, f"teachers/trainer_ssl_cache:{name}.{i}")


def test_ssl_features_function_matches_registry_free_call(teachers: dict[str, HubertEncoder]) -> None:
    """The same numbers through ``ssl_features`` with the rate and chunk length read from cases.json."""
    wavs, lengths = _trainer_input()
    golden = load_golden(f"{TEACHERS_DIR}/trainer_ssl.safetensors")
    for name, case in _cases()["teachers"].items():
        feats = ssl_features(teachers[name], wavs, lengths, sample_rate=case["sample_rate"],
                             chunk_seconds=case["trainer_chunk_seconds"])
        for i, item in enumerate(feats):
            assert_golden(item, golden[f"{name}.{i}"], CATEGORY, f"teachers/trainer_ssl_fn:{name}.{i}")


@pytest.mark.parametrize(("cfg", "expected"), [(MERT_V1_330M_CONFIG, 315_428_992), (MHUBERT_147_CONFIG, 94_371_712)],
                         ids=["MERT-v1-330M", "mHuBERT-147"])
def test_full_size_configs_build_on_meta_with_transformers_parameter_counts(cfg: HubertConfig, expected: int) -> None:
    with torch.device("meta"):
        model = HubertEncoder(cfg)
    assert model.checkpoint_parameter_count() == expected
    assert all(p.is_meta for p in model.parameters())

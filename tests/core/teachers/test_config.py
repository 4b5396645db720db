"""HubertConfig: strict mirror of the teachers' config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acestep_core.teachers import MERT_V1_330M_CONFIG, HubertConfig, TeacherConfigError

# The keys MERT-v1-330M's config.json carries beyond a stock HuBERT one (MERTConfig), with released values.
MERT_EXTRAS = {"model_type": "mert_model", "architectures": ["MERTModel"], "sample_rate": 24000,
               "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
               "deepnorm": False, "attention_relax": 32.0, "feature_extractor_cqt": False,
               "feature_extractor_cqt_bins": 336, "conv_pos_batch_norm": False}


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_round_trip_and_mert_extras_accepted(tmp_path: Path) -> None:
    data = {**MERT_V1_330M_CONFIG.to_dict(), **MERT_EXTRAS, "hidden_dropout": 0.1, "mask_time_length": 10,
            "transformers_version": "4.24.0"}
    cfg = HubertConfig.from_json(_write(tmp_path, data))
    assert cfg == MERT_V1_330M_CONFIG
    assert cfg.samples_per_frame == 320 and cfg.frames_for_samples(120_000) == 374


@pytest.mark.parametrize(("key", "value", "match"), [
    ("deepnorm", True, "deepnorm is true: MERT's deepnorm encoder"),
    ("feature_extractor_cqt", True, "feature_extractor_cqt is true: MERT's CQT"),
    ("conv_pos_batch_norm", True, "conv_pos_batch_norm is true"),
    ("hidden_act", "relu", "hidden_act 'relu' is not supported"),
    ("feat_extract_norm", "batch", "feat_extract_norm 'batch' must be"),
    ("num_feat_extract_layers", 6, r"num_feat_extract_layers 6 != len\(conv_dim\) 7"),
    ("num_attention_heads", 5, "not divisible by num_attention_heads 5"),
    ("model_type", "wav2vec2", "model_type 'wav2vec2' is not a HuBERT-family encoder"),
])
def test_math_changing_values_refused(tmp_path: Path, key: str, value: object, match: str) -> None:
    path = _write(tmp_path, {**HubertConfig.tiny().to_dict(), key: value})
    with pytest.raises(TeacherConfigError, match=match) as info:
        HubertConfig.from_json(path)
    assert str(path) in str(info.value)


def test_unknown_key_refused_with_its_name(tmp_path: Path) -> None:
    path = _write(tmp_path, {**HubertConfig.tiny().to_dict(), "rotary_embeddings": True, "zz_new": 1})
    with pytest.raises(TeacherConfigError, match=r"unknown key\(s\) \['rotary_embeddings', 'zz_new'\]"):
        HubertConfig.from_json(path)


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TeacherConfigError, match="not a readable JSON file"):
        HubertConfig.from_json(bad)
    with pytest.raises(TeacherConfigError, match="teacher config file not found"):
        HubertConfig.from_json(tmp_path / "missing.json")


def test_masked_spec_embed_presence_follows_masking_probabilities() -> None:
    assert MERT_V1_330M_CONFIG.has_masked_spec_embed
    assert not HubertConfig.tiny().has_masked_spec_embed

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acestep_core.config import (
    MODEL_SPECS,
    ConfigError,
    DCAEConfig,
    TransformerConfig,
    UMT5Config,
    VocoderConfig,
)
from tests.parity import TINY_CHECKPOINT, require_parity

TINY = {
    TransformerConfig: "ace_step_transformer",
    DCAEConfig: "music_dcae_f8c8",
    VocoderConfig: "music_vocoder",
    UMT5Config: "umt5-base",
}


@pytest.mark.parametrize("cls", list(TINY))
def test_tiny_config_files_load_and_equal_tiny(cls) -> None:
    require_parity()
    assert cls.from_json(TINY_CHECKPOINT / TINY[cls] / "config.json") == cls.tiny()


@pytest.mark.parametrize("cls", list(TINY))
def test_defaults_are_the_released_model(cls) -> None:
    spec = MODEL_SPECS["ace-step-v1-3.5b"]
    assert cls() in (spec.transformer, spec.dcae, spec.vocoder, spec.umt5)
    assert cls.from_dict(cls().to_dict()) == cls()


def test_released_transformer_values() -> None:
    cfg = TransformerConfig()
    assert (cfg.num_layers, cfg.model_dim, cfg.lyric_encoder_vocab_size, cfg.max_width) == (24, 2560, 6693, 32768)
    assert cfg.patch_size == (16, 1) and isinstance(cfg.ssl_latent_dims, tuple)


@pytest.mark.parametrize("cls", list(TINY))
def test_unknown_key_raises_with_the_key_name(cls, tmp_path: Path) -> None:
    data = cls().to_dict()
    data["_class_name"] = "whatever"  # tolerated metadata
    data["num_layerz"] = 3
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="num_layerz") as info:
        cls.from_json(path)
    assert str(path) in str(info.value)


def test_invalid_values_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="num_layers"):
        TransformerConfig.from_dict({"num_layers": 0})
    with pytest.raises(ValueError, match="num_mels"):
        VocoderConfig(num_mels=64)
    with pytest.raises(ConfigError, match="not found"):
        DCAEConfig.from_json(tmp_path / "nope.json")
    bad = tmp_path / "config.json"
    bad.write_text("{ truncated")
    with pytest.raises(ConfigError, match="not valid JSON"):
        UMT5Config.from_json(bad)


def test_configs_are_frozen() -> None:
    cfg = TransformerConfig()
    with pytest.raises(AttributeError):
        cfg.num_layers = 3  # type: ignore[misc]

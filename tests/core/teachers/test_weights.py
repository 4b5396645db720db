"""Strict teacher loading: weight-norm spellings, masked_spec_embed, listed key errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acestep_core.errors import CheckpointMismatchError
from acestep_core.teachers import HubertConfig, load_teacher
from acestep_core.teachers.weights import POS_CONV_PREFIX, WEIGHTS_FILE, bake_weight_norm

from .conftest import TeacherFactory


def _output(folder: Path) -> torch.Tensor:
    model = load_teacher(folder)
    x = torch.randn(2, 4000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(x)


def test_both_weight_norm_spellings_load_identically(make_teacher: TeacherFactory) -> None:
    legacy = make_teacher("legacy", seed=5, spelling="legacy")
    param = make_teacher("param", seed=5, spelling="parametrizations")
    assert set(load_file(str(param / WEIGHTS_FILE))) != set(load_file(str(legacy / WEIGHTS_FILE)))
    assert torch.equal(_output(legacy), _output(param))
    assert torch.equal(load_teacher(legacy).state_dict()[POS_CONV_PREFIX + "weight"],
                       load_teacher(param).state_dict()[POS_CONV_PREFIX + "weight"])


def test_plain_weight_spelling_equals_baked_pair(make_teacher: TeacherFactory) -> None:
    legacy = make_teacher("legacy", seed=6)
    sd = load_file(str(legacy / WEIGHTS_FILE))
    sd[POS_CONV_PREFIX + "weight"] = bake_weight_norm(sd.pop(POS_CONV_PREFIX + "weight_g"),
                                                      sd.pop(POS_CONV_PREFIX + "weight_v"))
    save_file(sd, str(legacy / WEIGHTS_FILE))
    plain = load_teacher(legacy).state_dict()[POS_CONV_PREFIX + "weight"]
    assert torch.equal(plain, sd[POS_CONV_PREFIX + "weight"])


def test_weight_norm_is_over_all_dims_but_the_kernel_dim() -> None:
    v = torch.randn(8, 2, 5)
    g = torch.rand(1, 1, 5) + 0.5
    w = bake_weight_norm(g, v)
    norms = torch.linalg.vector_norm(w, dim=(0, 1))
    torch.testing.assert_close(norms, g.flatten(), rtol=1e-6, atol=1e-6)


def _rewrite(folder: Path, edit: dict[str, torch.Tensor | None]) -> None:
    sd = load_file(str(folder / WEIGHTS_FILE))
    for key, value in edit.items():
        if value is None:
            sd.pop(key)
        else:
            sd[key] = value
    save_file(sd, str(folder / WEIGHTS_FILE))


def test_unknown_and_missing_keys_are_listed(make_teacher: TeacherFactory) -> None:
    folder = make_teacher("t")
    _rewrite(folder, {"encoder.layers.0.attention.q_proj.bias": None, "lm_head.weight": torch.zeros(3, 32)})
    with pytest.raises(CheckpointMismatchError, match=r"Missing 1 key\(s\): encoder\.layers\.0\.attention\.q_proj"
                                                      r"\.bias\..*Unexpected 1 key\(s\): lm_head\.weight") as info:
        load_teacher(folder, name="MERT-v1-330M")
    assert str(folder / WEIGHTS_FILE) in str(info.value) and "MERT-v1-330M teacher" in str(info.value)


def test_both_spellings_at_once_are_refused(make_teacher: TeacherFactory) -> None:
    folder = make_teacher("t")
    sd = load_file(str(folder / WEIGHTS_FILE))
    _rewrite(folder, {POS_CONV_PREFIX + "parametrizations.weight.original0": sd[POS_CONV_PREFIX + "weight_g"]})
    with pytest.raises(CheckpointMismatchError, match=r"Unexpected 1 key\(s\): .*parametrizations\.weight\.original0"):
        load_teacher(folder)


def test_masked_spec_embed_accepted_and_dropped(make_teacher: TeacherFactory) -> None:
    folder = make_teacher("t", seed=2)
    reference = _output(folder)
    _rewrite(folder, {"masked_spec_embed": torch.rand(32)})
    model = load_teacher(folder)
    assert "masked_spec_embed" not in model.state_dict()
    assert torch.equal(_output(folder), reference)
    _rewrite(folder, {"masked_spec_embed": torch.rand(31)})
    with pytest.raises(CheckpointMismatchError, match=r"Wrong shape for 1 key\(s\): masked_spec_embed \(file \[31\]"):
        load_teacher(folder)


def test_weights_of_another_size_are_refused_by_shape(make_teacher: TeacherFactory) -> None:
    folder = make_teacher("t", HubertConfig.tiny(hidden_size=32))
    other = make_teacher("other", HubertConfig.tiny(hidden_size=48))
    (folder / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointMismatchError, match=r"Wrong shape for 36 key\(s\): encoder\.layer_norm\.bias "
                                                      r"\(file \[48\], model \[32\]\).*a different model size"):
        load_teacher(folder)


def test_pickle_weights_file_is_never_opened(make_teacher: TeacherFactory) -> None:
    folder = make_teacher("t")
    torch.save({"x": torch.zeros(1)}, folder / WEIGHTS_FILE)  # a pickle under the safetensors name
    with pytest.raises(OSError, match="PyTorch pickle/zip archive despite its name"):
        load_teacher(folder)


def test_layer_norm_front_end_mode(make_teacher: TeacherFactory) -> None:
    """``feat_extract_norm: "layer"``: a LayerNorm over channels after every conv (no golden; structure + run)."""
    cfg = dataclasses.replace(HubertConfig.tiny(), feat_extract_norm="layer")
    model = load_teacher(make_teacher("layer", cfg))
    keys = model.state_dict()
    assert all(f"feature_extractor.conv_layers.{i}.layer_norm.weight" in keys for i in range(7))
    x = torch.randn(1, 4000)
    with torch.no_grad():
        out = model(x)
        conv0 = model.feature_extractor.conv_layers[0]
        norm = conv0.layer_norm
        y = torch.nn.functional.layer_norm(conv0.conv(x[:, None]).transpose(1, 2), (16,), norm.weight, norm.bias)
        manual = torch.nn.functional.gelu(y.transpose(1, 2))
        torch.testing.assert_close(conv0(x[:, None]), manual)
    assert out.shape == (1, cfg.frames_for_samples(4000), 32)

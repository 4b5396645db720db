"""load_checkpoint on the tiny parity checkpoint: official folder, ComfyUI single file, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acestep_core import (
    CheckpointError,
    CheckpointMismatchError,
    ConfigError,
    DCAEConfig,
    ModelSpec,
    TransformerConfig,
    UMT5Config,
    VocoderConfig,
    load_checkpoint,
)
from acestep_core.loading.components import COMFY_SPIECE_KEY, COMPONENTS, COMPONENTS_BY_NAME
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, require_parity

TINY_SPEC = ModelSpec(name="tiny", transformer=TransformerConfig.tiny(), dcae=DCAEConfig.tiny(),
                      vocoder=VocoderConfig.tiny(), umt5=UMT5Config.tiny())


def _file_tensors(component) -> dict[str, torch.Tensor]:
    return load_file(str(TINY_CHECKPOINT / component.folder / component.weights_file))


def build_comfy_single_file(path: Path, *, parametrized_weight_norm: bool = True) -> Path:
    """Assemble the tiny checkpoint in ComfyUI's single-file layout (see comfyui-integration.md 1.2)."""
    tensors: dict[str, torch.Tensor] = {}
    for component in COMPONENTS:
        for key, tensor in _file_tensors(component).items():
            if parametrized_weight_norm and component.name == "vocoder":
                key = key.replace(".weight_g", ".parametrizations.weight.original0")
                key = key.replace(".weight_v", ".parametrizations.weight.original1")
            tensors[component.comfy_prefix + key] = tensor.to(torch.bfloat16)  # ComfyUI's file is all bf16
    spiece = (PARITY_DIR / "tokenizer" / "umt5_standin_spiece.model").read_bytes()
    tensors[COMFY_SPIECE_KEY] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8)
    save_file(tensors, str(path))
    return path


@pytest.fixture(scope="module")
def folder_ckpt():
    require_parity()
    return load_checkpoint(TINY_CHECKPOINT)


def test_folder_layout_loads_every_component_strictly(folder_ckpt) -> None:
    ckpt = folder_ckpt
    assert ckpt.layout == "folder"
    assert ckpt.spec.transformer == TransformerConfig.tiny()
    for component in COMPONENTS:
        module = getattr(ckpt, component.name)
        file_sd = _file_tensors(component)
        own = module.state_dict()
        for key, value in own.items():
            torch.testing.assert_close(value, file_sd[component.rename(key)], rtol=0, atol=0)
        assert not any(t.is_meta for t in own.values())
        assert not module.training
    assert ckpt.codec is not None and ckpt.codec.dcae is ckpt.dcae and ckpt.codec.vocoder is ckpt.vocoder
    assert ckpt.tokenizer is not None and ckpt.tokenizer.path.name == "tokenizer.json"


def test_loaded_transformer_computes(folder_ckpt) -> None:
    model = folder_ckpt.transformer
    x = torch.randn(1, 8, 16, 5)
    out = model(x, torch.ones(1, 5), torch.randn(1, 3, 64), torch.ones(1, 3, dtype=torch.long),
                torch.zeros(1, 512), torch.tensor([[261, 5, 2]]), torch.ones(1, 3, dtype=torch.long),
                torch.tensor([500.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_dtype_and_subset(tmp_path: Path) -> None:
    require_parity()
    ckpt = load_checkpoint(TINY_CHECKPOINT, dtype=torch.bfloat16, components=["vocoder", "dcae"])
    assert ckpt.transformer is None and ckpt.text_encoder is None and ckpt.codec is not None
    assert {p.dtype for p in ckpt.vocoder.parameters()} == {torch.bfloat16}


def test_comfyui_single_file_loads_same_weights(tmp_path: Path, folder_ckpt) -> None:
    require_parity()
    path = build_comfy_single_file(tmp_path / "ace_step_v1_tiny.safetensors")
    single = load_checkpoint(path, spec=TINY_SPEC)
    assert single.layout == "comfyui_single_file"
    for component in COMPONENTS:
        a, b = getattr(single, component.name).state_dict(), getattr(folder_ckpt, component.name).state_dict()
        assert a.keys() == b.keys()
        for key in a:  # the single file was stored in bf16: equal after the same rounding
            torch.testing.assert_close(a[key], b[key].to(torch.bfloat16).float(), rtol=0, atol=0)
    spiece = (PARITY_DIR / "tokenizer" / "umt5_standin_spiece.model").read_bytes()
    assert single.tokenizer.kind == "sentencepiece" and single.tokenizer.data == spiece


def test_comfyui_single_file_with_legacy_weight_norm_names(tmp_path: Path) -> None:
    require_parity()
    path = build_comfy_single_file(tmp_path / "legacy.safetensors", parametrized_weight_norm=False)
    assert load_checkpoint(path, spec=TINY_SPEC, components=["vocoder"]).vocoder is not None


def test_hf_cache_layout_is_resolved(tmp_path: Path) -> None:
    require_parity()
    snap = tmp_path / "models--ACE-Step--ACE-Step-v1-3.5B" / "snapshots" / "abc123"
    shutil.copytree(TINY_CHECKPOINT, snap)
    assert load_checkpoint(tmp_path, components=["dcae"]).source == snap


# --- bad input -------------------------------------------------------------------------------------------


def test_missing_path_and_incomplete_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "ace_step_transformer").mkdir()
    with pytest.raises(CheckpointError, match="missing sub-folder") as info:
        load_checkpoint(tmp_path)
    assert "music_vocoder" in str(info.value)


@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "model.bin"])
def test_pickle_files_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)


def test_pickle_disguised_as_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="pickle/zip"):
        load_checkpoint(path)


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    require_parity()
    src = TINY_CHECKPOINT / "music_vocoder" / "diffusion_pytorch_model.safetensors"
    data = src.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated, spec=TINY_SPEC)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(garbage, spec=TINY_SPEC)


def _copy_folder_with(tmp_path: Path, component_folder: str, tensors: dict[str, torch.Tensor]) -> Path:
    root = tmp_path / "ckpt"
    shutil.copytree(TINY_CHECKPOINT, root)
    target = root / component_folder
    weights = next(target.glob("*.safetensors"))
    save_file(tensors, str(weights))
    return root


def test_missing_keys_name_the_file_keys_and_cause(tmp_path: Path) -> None:
    require_parity()
    sd = load_file(str(TINY_CHECKPOINT / "music_dcae_f8c8" / "diffusion_pytorch_model.safetensors"))
    sd.pop("decoder.conv_out.bias")
    root = _copy_folder_with(tmp_path, "music_dcae_f8c8", sd)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(root, components=["dcae"])
    msg = str(info.value)
    assert "decoder.conv_out.bias" in msg and "diffusion_pytorch_model.safetensors" in msg and "truncated" in msg


def test_wrong_shapes_point_at_the_config(tmp_path: Path) -> None:
    require_parity()
    path = build_comfy_single_file(tmp_path / "tiny.safetensors")
    with pytest.raises(CheckpointMismatchError, match="Wrong shape") as info:
        load_checkpoint(path, components=["transformer"])  # default spec = the 3.5B model
    assert "config does not match" in str(info.value)


def test_checkpoint_of_another_model(tmp_path: Path) -> None:
    require_parity()
    other = {f"model.diffusion_model.input_blocks.{i}.0.weight": torch.zeros(4, 4) for i in range(12)}
    other["first_stage_model.decoder.conv_in.weight"] = torch.zeros(2)
    path = tmp_path / "sd15.safetensors"
    save_file(other, str(path))
    with pytest.raises(CheckpointMismatchError, match="another model"):
        load_checkpoint(path)
    root = _copy_folder_with(tmp_path, "music_vocoder", {k: torch.zeros(3) for k in ("a.weight", "b.bias")})
    with pytest.raises(CheckpointMismatchError, match="does not look like an ACE-Step v1 vocoder"):
        load_checkpoint(root, components=["vocoder"])


@pytest.mark.parametrize("component", ["ace_step_transformer", "music_dcae_f8c8", "music_vocoder"])
def test_one_official_component_file_given_alone_names_it_and_the_fix(component: str) -> None:
    require_parity()
    weights = TINY_CHECKPOINT / component / "diffusion_pytorch_model.safetensors"
    name = {"ace_step_transformer": "transformer", "music_dcae_f8c8": "dcae", "music_vocoder": "vocoder"}[component]
    with pytest.raises(CheckpointMismatchError, match=rf"this is the {name} alone \({component}/") as info:
        load_checkpoint(weights)
    assert f"pass the folder that holds it, {TINY_CHECKPOINT}" in str(info.value)
    assert "another model" not in str(info.value)


def test_a_component_file_outside_its_folder_gets_the_general_fix(tmp_path: Path) -> None:
    path = tmp_path / "transformer.safetensors"
    require_parity()
    save_file(_file_tensors(COMPONENTS_BY_NAME["transformer"]), str(path))
    with pytest.raises(CheckpointMismatchError, match="this is the transformer alone .*whole ACE-Step-v1-3.5B folder"):
        load_checkpoint(path)


def test_bad_config_in_folder(tmp_path: Path) -> None:
    require_parity()
    root = tmp_path / "ckpt"
    shutil.copytree(TINY_CHECKPOINT, root)
    cfg = root / "music_vocoder" / "config.json"
    cfg.write_text(cfg.read_text().replace('"depths"', '"depthz"'))
    with pytest.raises(ConfigError, match="depthz"):
        load_checkpoint(root, components=["vocoder"])


def test_invalid_arguments() -> None:
    require_parity()
    with pytest.raises(ValueError, match="components"):
        load_checkpoint(TINY_CHECKPOINT, components=["unet"])
    with pytest.raises(ValueError, match="spec is only used for single files"):
        load_checkpoint(TINY_CHECKPOINT, spec=ModelSpec(name="x"))

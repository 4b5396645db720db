"""The LoRA loader node (standalone adapter): choices from ``loras`` and ``ace_step/`` folders, a new model out
(input untouched), chaining = stacking, strength 0 = no LoRA, switching between patched and plain models on the
shared module restores the weights exactly, and LoRAs of other models are refused with a clear message."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from acestep_core.errors import CheckpointError
from acestep_core.lora.merge import LoraError, LoraSpec, merge_loras, read_lora
from nodes.latent import AceStepV1EmptyLatent
from nodes.lora import FROM_INPUT_CHOICE, AceStepV1LoraLoader, list_loras
from tests.nodes.test_nodes import sample
from tests.parity import PARITY_DIR

LORA_DIR = PARITY_DIR / "lora"


@pytest.fixture(scope="module")
def lora_folders(models_dir: Path) -> Path:
    """``ace_step/lora_r4_a8`` (official folder), ``loras/r16/pytorch_lora_weights.safetensors`` (+ config beside
    it), ``loras/comfy_r4.safetensors`` (ComfyUI layout of lora_r4_a8 with .alpha) and an SDXL-style file."""
    (models_dir / "ace_step" / "lora_r4_a8").symlink_to(LORA_DIR / "lora_r4_a8", target_is_directory=True)
    loras = models_dir / "loras"
    shutil.copytree(LORA_DIR / "lora_r16_a8_rslora", loras / "r16")
    peft = read_lora(LORA_DIR / "lora_r4_a8")
    comfy = {}
    for name, mod in peft.modules.items():
        comfy[f"diffusion_model.{name}.lora_down.weight"] = mod.down
        comfy[f"diffusion_model.{name}.lora_up.weight"] = mod.up
        comfy[f"diffusion_model.{name}.alpha"] = torch.tensor(8.0)
    save_file(comfy, str(loras / "comfy_r4.safetensors"))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 4)},
              str(loras / "sdxl_style.safetensors"))
    return models_dir


@pytest.fixture(scope="module", autouse=True)
def _plain_model_afterwards(model: Any) -> Any:
    """Leave the shared module without LoRA for the other test modules."""
    yield
    model.transformer.patcher.sync_loras()


@pytest.fixture(scope="module")
def empty() -> dict[str, Any]:
    return AceStepV1EmptyLatent().build(2.0, 1)[0]


def _apply(model: Any, name: str, strength: float) -> Any:
    return AceStepV1LoraLoader().apply(model, name, strength)["result"][0]


def _core_merged_sample(model: Any, conditioning: Any, empty: Any, specs: list[LoraSpec]) -> torch.Tensor:
    """Sample the plain model with ``specs`` merged by the core (the shared module first back to plain)."""
    model.transformer.patcher.sync_loras()
    merge = merge_loras(model.transformer.module, specs)
    try:
        return sample(model, conditioning, empty)["samples"]
    finally:
        merge.restore()


def test_choices_and_widget_order(lora_folders: Path) -> None:
    choices = list_loras()
    assert choices == ["comfy_r4.safetensors", "r16/pytorch_lora_weights.safetensors", "sdxl_style.safetensors",
                       "ace_step/lora_r4_a8"]
    spec = AceStepV1LoraLoader.INPUT_TYPES()["required"]
    assert list(spec) == ["model", "lora_name", "strength"]
    assert spec["lora_name"][0] == [*choices, FROM_INPUT_CHOICE]
    assert spec["strength"][1]["default"] == 1.0 and (spec["strength"][1]["min"], spec["strength"][1]["max"]) == (
        -3.0, 3.0)


def test_lora_changes_the_output_and_leaves_the_input_model(lora_folders, model, conditioning, empty) -> None:
    before_weights = {k: v.clone() for k, v in model.transformer.module.state_dict().items()}
    plain = sample(model, conditioning, empty)["samples"]
    patched_model = _apply(model, "ace_step/lora_r4_a8", 0.5)
    assert patched_model is not model and patched_model.transformer is not model.transformer
    assert model.transformer.patcher.loras == ()
    patched = sample(patched_model, conditioning, empty)["samples"]
    assert not torch.allclose(patched, plain, atol=1e-3)
    # the same numbers as the core merge at the same scale (trained rule: alpha/r = 2 -> 0.5 * 2 = 1.0)
    expected = _core_merged_sample(model, conditioning, empty,
                                   [LoraSpec(read_lora(LORA_DIR / "lora_r4_a8"), 1.0, "original_app")])
    assert torch.equal(patched, expected)
    assert torch.equal(sample(patched_model, conditioning, empty)["samples"], patched)
    # back to the plain model: the shared weights are restored bit for bit
    assert torch.equal(sample(model, conditioning, empty)["samples"], plain)
    after = model.transformer.module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before_weights.items())


def test_strength_zero_and_layouts(lora_folders, model, conditioning, empty) -> None:
    plain = sample(model, conditioning, empty)["samples"]
    assert torch.equal(sample(_apply(model, "comfy_r4.safetensors", 0.0), conditioning, empty)["samples"], plain)
    official = sample(_apply(model, "ace_step/lora_r4_a8", 0.7), conditioning, empty)["samples"]
    comfy = sample(_apply(model, "comfy_r4.safetensors", 0.7), conditioning, empty)["samples"]
    assert torch.equal(official, comfy)


def test_chained_loaders_stack(lora_folders, model, conditioning, empty) -> None:
    chained = _apply(_apply(model, "ace_step/lora_r4_a8", 0.5), "r16/pytorch_lora_weights.safetensors", 0.25)
    assert len(chained.transformer.patcher.loras) == 2
    got = sample(chained, conditioning, empty)["samples"]
    specs = [LoraSpec(read_lora(LORA_DIR / "lora_r4_a8"), 0.5), LoraSpec(read_lora(LORA_DIR / "lora_r16_a8_rslora"),
                                                                          0.25)]
    assert torch.equal(got, _core_merged_sample(model, conditioning, empty, specs))


def test_other_models_loras_are_refused(lora_folders, model) -> None:
    with pytest.raises(LoraError, match="not an ACE-Step v1 LoRA: it looks like a Stable Diffusion .*SDXL"):
        _apply(model, "sdxl_style.safetensors", 1.0)
    with pytest.raises(CheckpointError, match=r"lora_name 'nope.safetensors': LoRA not found. Available: \["):
        _apply(model, "nope.safetensors", 1.0)
    with pytest.raises(ValueError, match=r"strength 5.0 is outside -3 .. 3"):
        _apply(model, "comfy_r4.safetensors", 5.0)


def test_lora_path_input_wins_and_the_from_input_choice_needs_it(lora_folders, model, conditioning, empty) -> None:
    by_name = sample(_apply(model, "ace_step/lora_r4_a8", 0.5), conditioning, empty)["samples"]
    (by_path,) = AceStepV1LoraLoader().apply(model, FROM_INPUT_CHOICE, 0.5, lora_path=" ace_step/lora_r4_a8 ")["result"]
    torch.testing.assert_close(sample(by_path, conditioning, empty)["samples"], by_name, rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs the lora_path input connected"):
        AceStepV1LoraLoader().apply(model, FROM_INPUT_CHOICE, 1.0)
    with pytest.raises(ValueError, match="needs the lora_path input connected"):
        AceStepV1LoraLoader().apply(model, FROM_INPUT_CHOICE, 1.0, lora_path="  ")


def test_the_scale_used_is_shown_and_a_missing_config_is_a_warning(lora_folders, models_dir, model, caplog) -> None:
    """A LoRA without adapter_config.json (what a bare weights download leaves) is applied at alpha = r: the node
    says so on the node (ui text) and in the log; with the config, it shows the trained scale."""
    bare = models_dir / "loras" / "bare_r16.safetensors"
    shutil.copy(LORA_DIR / "lora_r16_a8_rslora" / "pytorch_lora_weights.safetensors", bare)
    with caplog.at_level("INFO"):
        out = AceStepV1LoraLoader().apply(model, "bare_r16.safetensors", 1.0)
    (text,) = out["ui"]["text"]
    assert text.startswith("warning: ") and "no adapter_config.json" in text and "alpha = r is assumed" in text
    assert "no adapter_config.json" in caplog.text
    (text,) = AceStepV1LoraLoader().apply(model, "r16/pytorch_lora_weights.safetensors", 0.5)["ui"]["text"]
    assert "scale 0.5 x 2 = strength x alpha 8 / sqrt(r) from adapter_config.json" in text, text


def test_a_lora_run_is_recorded_with_the_original_apps_weight(lora_folders, model, conditioning, empty,
                                                              output_dir) -> None:
    """The sidecar names the LoRA relative to ComfyUI's models folder and its original-app weight (strength x
    alpha / r), not "none"."""
    import json

    from nodes.audio import AceStepV1LatentToAudio, AceStepV1SaveAudio

    latent = sample(_apply(model, "ace_step/lora_r4_a8", 0.5), conditioning, empty)
    (audio,) = AceStepV1LatentToAudio().decode(model, latent, "48000", "off")
    (saved,) = AceStepV1SaveAudio().save(audio, "lora/song", "flac")["ui"]["audio"]
    sidecar = output_dir / "lora" / saved["filename"].replace(".flac", "_input_params.json")
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["lora_name_or_path"] == "ace_step/lora_r4_a8" and record["lora_weight"] == 1.0
    assert record["audio_path"] == f"lora/{saved['filename']}"  # relative to the output folder
    latent = sample(_apply(model, "comfy_r4.safetensors", 0.7), conditioning, empty)
    assert latent["acestep_params"]["acestep_lora_name_or_path"] == "loras/comfy_r4.safetensors"

"""The optional ``acceleration`` input of the sampler and flow-edit nodes (tiny checkpoint, CPU)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from acestep_core.runtime.accel import Acceleration
from nodes import sampling
from nodes.conditioning import AceStepV1TextEncode
from nodes.latent import AceStepV1EmptyLatent
from nodes.sampling import (
    ACCELERATION_CHOICES,
    DEFAULT_ACCELERATION,
    AceStepV1FlowEdit,
    AceStepV1Sampler,
    acceleration_from_choice,
)
from tests.nodes.test_nodes import check_latent, sample
from tests.recording import record_generate_and_release


@pytest.mark.parametrize("node", [AceStepV1Sampler, AceStepV1FlowEdit])
def test_acceleration_is_an_optional_combo(node: Any) -> None:
    types = node.INPUT_TYPES()
    assert "acceleration" not in types["required"]  # old workflows (no value) keep validating
    choices, options = types["optional"]["acceleration"]
    assert choices == ["fastest (default)", "batched", "batched + CUDA graphs",
                       "batched + CUDA graphs + torch.compile", "separate passes (original)", "batched + torch.compile"]
    assert options["default"] == DEFAULT_ACCELERATION == choices[0] and "lowvram" in options["tooltip"]


def test_choices_map_to_acceleration() -> None:
    assert [acceleration_from_choice(c) for c in ACCELERATION_CHOICES] == [
        Acceleration.fastest(), Acceleration(), Acceleration(cuda_graphs=True),
        Acceleration(cuda_graphs=True, compile=True), Acceleration(batch_guidance=False), Acceleration(compile=True)]
    assert acceleration_from_choice(None) == acceleration_from_choice("") == Acceleration.fastest()
    with pytest.raises(ValueError, match="acceleration: unknown choice 'turbo'"):
        acceleration_from_choice("turbo")


@pytest.mark.parametrize("node", [AceStepV1Sampler, AceStepV1FlowEdit])
def test_saved_workflows_with_the_old_default_label_still_validate(node: Any) -> None:
    """Earlier versions saved "batched (default)"; ComfyUI asks VALIDATE_INPUTS instead of the combo list."""
    assert acceleration_from_choice("batched (default)") == Acceleration.fastest()
    assert node.VALIDATE_INPUTS(acceleration="batched (default)") is True
    assert node.VALIDATE_INPUTS() is True  # no value: a workflow older than the input
    assert "unknown choice 'turbo'" in node.VALIDATE_INPUTS(acceleration="turbo")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``generate`` and ``release_cuda_graphs`` calls, in order (both still run)."""
    return record_generate_and_release(monkeypatch)


def test_sampler_passes_the_choice_to_generate(model: Any, conditioning: Any, recorded: list[Any]) -> None:
    (empty,) = AceStepV1EmptyLatent().build(1.5, 1)
    default = sample(model, conditioning, empty)  # no acceleration value: an old workflow
    separate = sample(model, conditioning, empty, acceleration="separate passes (original)")
    graphs = sample(model, conditioning, empty, acceleration="batched + CUDA graphs")  # CPU: runs eagerly
    batched = sample(model, conditioning, empty, acceleration="batched")
    # standalone (no ComfyUI), the models leave the GPU after each run: the graphs are released with them
    assert recorded == [("generate", Acceleration.fastest()), ("release", "AceStepTransformer"),
                        ("generate", Acceleration(batch_guidance=False)), ("release", "AceStepTransformer"),
                        ("generate", Acceleration(cuda_graphs=True)), ("release", "AceStepTransformer"),
                        ("generate", Acceleration()), ("release", "AceStepTransformer")]
    for latent in (default, separate, graphs, batched):
        check_latent(latent, 1, 16)
    assert torch.equal(graphs["samples"], default["samples"]) and torch.equal(batched["samples"], default["samples"])
    torch.testing.assert_close(separate["samples"], default["samples"], rtol=1e-4, atol=1e-4)


def test_flow_edit_passes_the_choice_to_generate(model: Any, conditioning: Any, source_latent: dict[str, Any],
                                                 recorded: list[Any]) -> None:
    target = AceStepV1TextEncode().encode(model, "jazz, piano", "")["result"][0]
    (edited,) = AceStepV1FlowEdit().edit(model, conditioning, target, source_latent, seed=3, steps=2,
                                         guidance_scale=15.0, scheduler="euler", edit_n_min=0.0, edit_n_max=1.0,
                                         edit_n_avg=1, acceleration="separate passes (original)")
    check_latent(edited, 1, 22)
    assert recorded == [("generate", Acceleration(batch_guidance=False)), ("release", "AceStepTransformer")]


def test_graphs_stay_cached_while_comfyui_keeps_the_model(model: Any, conditioning: Any, recorded: list[Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside ComfyUI the transformer stays loaded between prompts: no release after the run (ComfyUI's unload
    callback releases them, see test_comfy_adapter)."""
    monkeypatch.setattr(sampling.adapter, "keeps_models_loaded", lambda: True)
    (empty,) = AceStepV1EmptyLatent().build(1.5, 1)
    sample(model, conditioning, empty)
    assert recorded == [("generate", Acceleration.fastest())]


def test_unknown_choice_fails_before_loading(model: Any, conditioning: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling.adapter, "load_models", lambda *a, **k: pytest.fail("models loaded"))
    (empty,) = AceStepV1EmptyLatent().build(1.5, 1)
    with pytest.raises(ValueError, match="acceleration"):
        sample(model, conditioning, empty, acceleration="turbo")

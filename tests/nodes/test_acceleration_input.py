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
    assert choices == ["batched (default)", "batched + CUDA graphs", "batched + CUDA graphs + torch.compile",
                       "separate passes (original)"]
    assert options["default"] == DEFAULT_ACCELERATION == choices[0] and "lowvram" in options["tooltip"]


def test_choices_map_to_acceleration() -> None:
    assert [acceleration_from_choice(c) for c in ACCELERATION_CHOICES] == [
        Acceleration(), Acceleration(cuda_graphs=True), Acceleration(cuda_graphs=True, compile=True),
        Acceleration(batch_guidance=False)]
    assert acceleration_from_choice(None) == acceleration_from_choice("") == Acceleration()
    with pytest.raises(ValueError, match="acceleration: unknown choice 'turbo'"):
        acceleration_from_choice("turbo")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``generate`` and ``release_cuda_graphs`` calls, in order (both still run)."""
    return record_generate_and_release(monkeypatch)


def test_sampler_passes_the_choice_to_generate(model: Any, conditioning: Any, recorded: list[Any]) -> None:
    (empty,) = AceStepV1EmptyLatent().build(1.5, 1)
    default = sample(model, conditioning, empty)  # no acceleration value: an old workflow
    separate = sample(model, conditioning, empty, acceleration="separate passes (original)")
    graphs = sample(model, conditioning, empty, acceleration="batched + CUDA graphs")  # CPU: runs eagerly
    assert recorded == [("generate", Acceleration()), ("release", "AceStepTransformer"),
                        ("generate", Acceleration(batch_guidance=False)), ("release", "AceStepTransformer"),
                        ("generate", Acceleration(cuda_graphs=True)), ("release", "AceStepTransformer")]
    for latent in (default, separate, graphs):
        check_latent(latent, 1, 16)
    assert torch.equal(graphs["samples"], default["samples"])
    torch.testing.assert_close(separate["samples"], default["samples"], rtol=1e-4, atol=1e-4)


def test_flow_edit_passes_the_choice_to_generate(model: Any, conditioning: Any, source_latent: dict[str, Any],
                                                 recorded: list[Any]) -> None:
    target = AceStepV1TextEncode().encode(model, "jazz, piano", "")["result"][0]
    (edited,) = AceStepV1FlowEdit().edit(model, conditioning, target, source_latent, seed=3, steps=2,
                                         guidance_scale=15.0, scheduler="euler", edit_n_min=0.0, edit_n_max=1.0,
                                         edit_n_avg=1, acceleration="separate passes (original)")
    check_latent(edited, 1, 22)
    assert recorded == [("generate", Acceleration(batch_guidance=False)), ("release", "AceStepTransformer")]


def test_unknown_choice_fails_before_loading(model: Any, conditioning: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling.adapter, "load_models", lambda *a, **k: pytest.fail("models loaded"))
    (empty,) = AceStepV1EmptyLatent().build(1.5, 1)
    with pytest.raises(ValueError, match="acceleration"):
        sample(model, conditioning, empty, acceleration="turbo")

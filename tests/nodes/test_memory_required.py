"""The decode and sampler nodes tell ComfyUI how much memory their work needs beyond the weights
(``load_models_gpu(..., memory_required=...)``), so ComfyUI offloads other models on small cards; checked with
a fake ``comfy.model_management`` and with the standalone adapter on the tiny checkpoint."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from acestep_core.runtime.offload import decode_memory_bytes, sampling_memory_bytes
from nodes import comfy_adapter as adapter
from nodes.audio import AceStepV1LatentToAudio
from nodes.latent import AceStepV1EmptyLatent
from tests.nodes.test_nodes import sample


class FakeModelManagement:
    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []

    def load_models_gpu(self, models: list[Any], **kwargs: Any) -> None:
        self.calls.append((models, kwargs))


def test_adapter_passes_memory_required_to_comfyui(monkeypatch: pytest.MonkeyPatch) -> None:
    mm = FakeModelManagement()
    monkeypatch.setattr(adapter, "comfy_available", lambda: True)
    monkeypatch.setattr(adapter, "_comfy", lambda: (mm, None))
    codec, transformer = adapter.ModelHandle("codec", force_full_load=True), adapter.ModelHandle("transformer")
    adapter.load_models([transformer, codec], memory_required=123_456)
    assert mm.calls == [(["transformer"], {"memory_required": 123_456}),
                        (["codec"], {"memory_required": 123_456, "force_full_load": True})]
    adapter.load_models([codec])
    assert mm.calls[-1] == (["codec"], {"memory_required": 0, "force_full_load": True})


def test_estimates_follow_comfyui_and_the_overlapped_window() -> None:
    full = decode_memory_bytes((1, 8, 16, 2583), torch.bfloat16, overlapped=False)  # 240 s
    assert full == 2583 * 16 * 87000 * 2 + 2583 * 4096 * 2 * 4 * 3  # ComfyUI's ACE VAE formula + the waveform
    overlapped = decode_memory_bytes((1, 8, 16, 2583), torch.bfloat16, overlapped=True)
    assert overlapped < 1.7e9 < 7e9 < full
    assert decode_memory_bytes((2, 8, 16, 2583), torch.bfloat16, overlapped=True) < 2 * overlapped  # per item
    assert sampling_memory_bytes(1, 2583, 2560, torch.bfloat16) < 2e9  # + ~5.8 GB weights: under 8 GB


@pytest.mark.parametrize(("choice", "overlapped"), [("off", False), ("on", True), ("auto", False)])
def test_decode_node_passes_its_estimate(model, source_latent, monkeypatch, choice, overlapped) -> None:
    seen: list[int] = []
    real = adapter.load_models
    monkeypatch.setattr(adapter, "load_models", lambda h, memory_required=0: (seen.append(memory_required),
                                                                              real(h, memory_required))[1])
    AceStepV1LatentToAudio().decode(model, source_latent, "48000", choice)
    expected = decode_memory_bytes(tuple(source_latent["samples"].shape), torch.float32, overlapped=overlapped)
    assert seen == [expected] and expected > 0


def test_sampler_node_passes_its_estimate(model, conditioning, monkeypatch) -> None:
    seen: list[int] = []
    real = adapter.load_models
    monkeypatch.setattr(adapter, "load_models", lambda h, memory_required=0: (seen.append(memory_required),
                                                                              real(h, memory_required))[1])
    (empty,) = AceStepV1EmptyLatent().build(2.0, 2)
    sample(model, conditioning, empty)
    width = model.transformer.module.cfg.inner_dim
    assert seen == [sampling_memory_bytes(2, 21, width, model.dtype)]

"""Every parametric layer of every core module is built through the injected ``ops`` namespace,
so ComfyUI's ``comfy.ops`` (manual cast, low-VRAM loading) can replace them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from acestep_core import (
    AceStepTransformer,
    DCAEConfig,
    MusicDCAE,
    TransformerConfig,
    UMT5Config,
    UMT5Encoder,
    Vocoder,
    VocoderConfig,
)

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.GroupNorm, nn.LayerNorm, nn.Embedding)


def _recording_ops() -> SimpleNamespace:
    """An ops namespace whose classes are marked subclasses of the torch.nn layers."""
    namespace = {}
    for base in LAYER_TYPES:
        namespace[base.__name__] = type(f"Recorded{base.__name__}", (base,), {"recorded": True})
    return SimpleNamespace(**namespace)


BUILDERS = {
    "transformer": lambda ops: AceStepTransformer(TransformerConfig.tiny(), ops=ops),
    "dcae": lambda ops: MusicDCAE(DCAEConfig.tiny(), ops=ops),
    "vocoder": lambda ops: Vocoder(VocoderConfig.tiny(), ops=ops),
    "text_encoder": lambda ops: UMT5Encoder(UMT5Config.tiny(), ops=ops),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_all_layers_come_from_ops(name: str) -> None:
    with torch.device("meta"):
        module = BUILDERS[name](_recording_ops())
    layers = [(n, m) for n, m in module.named_modules() if isinstance(m, LAYER_TYPES)]
    assert layers, "expected parametric layers"
    bypassed = [n for n, m in layers if not getattr(m, "recorded", False)]
    assert not bypassed, f"layers built with torch.nn directly instead of ops: {bypassed[:10]}"

"""LoRA parity with the upstream reference (``parity/lora``, README section 6).

The reference applies ``W + lora_weight * (B @ A)`` (alpha, r and rsLoRA ignored). Our default rule is
"strength 1.0 = as trained" (alpha / r, alpha / sqrt(r) with rsLoRA = 2.0 for both files), so a reference run at
``lora_weight`` w is reproduced by ``rule="original_app"`` at strength w and by ``rule="trained"`` at w / 2.0;
both are asserted. Pipeline runs reuse the helpers of ``test_pipeline_parity`` (injected token ids, the
reference-kernel UMT5 encoder) with the LoRA merged into the transformer.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from acestep_core import load_checkpoint
from acestep_core.lora.merge import LoraSpec, merge_loras, read_lora
from acestep_core.sampling.pipeline import GenerationParams, generate
from tests.core.test_pipeline_parity import ReferenceKernelTextEncoder, _category, _tokenizers
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, assert_golden, load_golden, require_parity_module

require_parity_module()

LORA_DIR = PARITY_DIR / "lora"
CASES_FILE = LORA_DIR / "cases.json"
META: dict[str, Any] = json.loads(CASES_FILE.read_text()) if CASES_FILE.is_file() else {"cases": [], "loras": []}
CASES = {case["name"]: case for case in META["cases"]}
LORA_NAMES = [lora["name"] for lora in META["loras"]]
WEIGHTS = (1.0, 0.5)
TRAINED_SCALE = 2.0  # alpha / r = 8 / 4 and alpha / sqrt(r) = 8 / sqrt(16) (cases.json scaling_if_trained_peft)


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(TINY_CHECKPOINT, components=["transformer", "text_encoder", "dcae", "vocoder"])


def _specs(name: str, weight: float) -> list[LoraSpec]:
    lora = read_lora(LORA_DIR / name)
    return [LoraSpec(lora, weight, "original_app"), LoraSpec(lora, weight / TRAINED_SCALE, "trained")]


def test_trained_scale_of_the_goldens() -> None:
    assert META["loras"], "lora/cases.json lists no LoRAs"
    for entry in META["loras"]:
        lora = read_lora(LORA_DIR / entry["folder"])
        assert (lora.config_rank, lora.config_alpha, lora.use_rslora) == (
            entry["lora_config"]["r"], entry["lora_config"]["lora_alpha"], entry["lora_config"]["use_rslora"])
        assert len(lora.modules) == entry["n_modules"]
        from acestep_core.lora.merge import unit_scale

        scales = {unit_scale(lora, mod) for mod in lora.modules.values()}
        assert scales == {entry["scaling_if_trained_peft"]}


@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("name", LORA_NAMES)
def test_effective_weights(name: str, weight: float, checkpoint) -> None:
    golden = load_golden("lora/effective_weights.safetensors")
    model = checkpoint.transformer
    for spec in _specs(name, weight):
        merge = merge_loras(model, [spec])
        try:
            state = model.state_dict()
            prefix = f"{name}.w{weight}."
            for key, expected in golden.items():
                if key.startswith(prefix):
                    assert_golden(state[key[len(prefix):]], expected, "module_outputs", f"{key}:{spec.rule}")
        finally:
            merge.restore()
    state = model.state_dict()
    base_keys = [key for key in golden if key.startswith("base.")]
    assert base_keys, "effective_weights.safetensors holds no base.* tensors"
    for key in base_keys:
        assert torch.equal(state[key[len("base."):]], golden[key]), key


def _run(name: str, checkpoint, specs: list[LoraSpec]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    case = CASES[name]
    golden = load_golden(f"lora/{case['file']}")
    encode_prompt, encode_lyrics = _tokenizers(case, golden)
    model = SimpleNamespace(transformer=checkpoint.transformer,
                            text_encoder=ReferenceKernelTextEncoder(checkpoint.text_encoder))
    traced: dict[str, torch.Tensor] = {}

    def trace(step: int, key: str, tensor: torch.Tensor) -> None:
        traced[key if step < 0 else f"steps.{step}.{key}"] = tensor.detach().clone()

    kwargs = {k: v for k, v in case["call_kwargs"].items()}
    merge = merge_loras(checkpoint.transformer, specs)
    try:
        result = generate(model, GenerationParams.from_kwargs(kwargs), encode_prompt=encode_prompt,
                          encode_lyrics=encode_lyrics, trace=trace)
    finally:
        merge.restore()
    return result.latents, traced


PIPELINE_RUNS = [("t2m_nolora", "none", None, "original_app")] + [
    (f"t2m_{name}_w{weight}", name, weight, rule)
    for name in LORA_NAMES for weight in WEIGHTS for rule in ("original_app", "trained")]


@pytest.mark.parametrize(("case", "lora", "weight", "rule"), PIPELINE_RUNS)
def test_pipeline_runs(case: str, lora: str, weight: float | None, rule: str, checkpoint) -> None:
    meta = CASES[case]
    assert meta.get("lora") == lora and (weight is None or meta["lora_weight"] == weight)
    specs = [] if lora == "none" else [s for s in _specs(lora, weight) if s.rule == rule]
    latents, traced = _run(case, checkpoint, specs)
    golden = load_golden(f"lora/{meta['file']}")
    step_keys = [key for key in golden if key.startswith(("noise.", "steps."))]
    assert step_keys, f"{case}: the golden holds no noise.* / steps.* tensors"
    for key in step_keys:
        assert_golden(traced[key], golden[key], _category(key), f"{case}:{rule}:{key}")
    assert_golden(latents, golden["final_latents"], "pipeline_latents_and_conditioning", f"{case}:{rule}:final")
    if rule == "original_app":
        with torch.no_grad():
            wav = checkpoint.codec.decode(latents, sample_rate=48000)[0]
        head = golden["wav_head.0"]
        assert_golden(wav[:, :head.shape[-1]], head, "pipeline_waveforms", f"{case}:wav_head.0")

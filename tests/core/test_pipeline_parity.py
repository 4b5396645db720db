"""End-to-end parity of :func:`acestep_core.sampling.pipeline.generate` with the upstream pipeline goldens
(``parity/pipeline``): every "ok" case of ``cases.json`` is run on the tiny checkpoint (CPU, float32) with the
recorded arguments, token ids and source latents; noise draws, scheduler-step tensors, final latents and
waveforms are compared with the README tolerances. Error cases must raise :class:`AceStepInputError`.

Each case runs twice: from the recorded token ids through our UMT5 encoder (the real end-to-end path), and with
the recorded UMT5 outputs (``cond.text*.hidden_states``) injected, which isolates the sampler from the text
encoder. The UMT5 encoder runs with the recording machine's softmax kernel (:mod:`tests.reference_kernels`):
with the host's 8-lane kernel its states differ from the golden ones by 1.6e-5 (float32 summation order), and
guidance amplifies that past the latent tolerance in text-only CFG (3.4x) and PingPong batch-2 retake (1.35x).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from acestep_core import AceStepInputError, load_checkpoint
from acestep_core.sampling.pipeline import GenerationParams, GenerationResult, generate
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, assert_golden, load_golden, require_parity_module
from tests.reference_kernels import reference_softmax_kernel

require_parity_module()

CASES: list[dict[str, Any]] = (
    json.loads((PARITY_DIR / "pipeline" / "cases.json").read_text())["cases"]
    if (PARITY_DIR / "pipeline" / "cases.json").is_file() else []
)
OK_CASES = [case["name"] for case in CASES if case["status"] == "ok"]
ERROR_CASES = [case["name"] for case in CASES if case["status"] == "error"]
BY_NAME = {case["name"]: case for case in CASES}
# Record keys that belong to the CLI (files, LoRA, timing), not to the sampling.
NOT_RECORDED = {"format", "lora_name_or_path", "lora_weight", "timecosts", "audio_path", "src_audio_path",
                "ref_audio_input"}


SOURCES = ("token_ids", "recorded_text_states")
# Goldens recorded with an upstream bug that generate() fixes by default (pipeline.py DIVERGENCES item 6):
# these cases run with upstream_bugs=True; the fixed behaviour is tested in tests/core/sampling.
UPSTREAM_BUG_CASES = {"edit_remix_pingpong"}


class ReferenceKernelTextEncoder:
    """Our UMT5 encoder, run with the recording machine's softmax kernel (see the module docstring)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, *, query_scale: float = 1.0) -> torch.Tensor:
        with reference_softmax_kernel():
            return self.encoder(ids, mask, query_scale=query_scale)


class RecordedTextEncoder:
    """Stands in for the UMT5 encoder: returns the recorded hidden states of the recorded prompt ids."""

    def __init__(self, golden: dict[str, torch.Tensor]) -> None:
        self.golden = golden

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, *, query_scale: float = 1.0) -> torch.Tensor:
        for k in range(2):
            if f"cond.text{k}.input_ids" in self.golden and torch.equal(ids, self.golden[f"cond.text{k}.input_ids"]):
                key = f"cond.text{k}.hidden_states" if query_scale == 1.0 else f"cond.text_null{k}.hidden_states"
                return self.golden[key]
        raise KeyError("prompt ids not recorded")


@pytest.fixture(scope="module")
def checkpoint():
    return load_checkpoint(TINY_CHECKPOINT)


def _tokenizers(case: dict[str, Any], golden: dict[str, torch.Tensor]):
    """Injected tokenizers that return the recorded ids (prompt k = ``cond.text{k}``, lyrics from ``lyric_calls``)."""
    prompts = {}
    for k, call in enumerate(case.get("text_calls", [])):
        if f"cond.text{k}.input_ids" in golden:
            prompts[call[0]] = (golden[f"cond.text{k}.input_ids"], golden[f"cond.text{k}.attention_mask"])
    lyrics = {call["lyrics"]: (call["ids"], [1] * len(call["ids"])) for call in case.get("lyric_calls", [])}
    return prompts.__getitem__, lyrics.__getitem__


_RUNS: dict[tuple[str, str], tuple[GenerationResult, dict[str, torch.Tensor]]] = {}


def _run(name: str, checkpoint, source: str = "token_ids") -> tuple[GenerationResult, dict[str, torch.Tensor]]:
    """Run a case once per session (the waveform tests reuse the latents)."""
    if (name, source) not in _RUNS:
        case = BY_NAME[name]
        golden = load_golden(f"pipeline/{case['file']}")
        if source == "recorded_text_states":
            checkpoint = SimpleNamespace(transformer=checkpoint.transformer, text_encoder=RecordedTextEncoder(golden))
        else:
            checkpoint = SimpleNamespace(transformer=checkpoint.transformer,
                                         text_encoder=ReferenceKernelTextEncoder(checkpoint.text_encoder))
        encode_prompt, encode_lyrics = _tokenizers(case, golden)
        kwargs = case["call_kwargs"]
        src = golden.get("src_latents0")
        traced: dict[str, torch.Tensor] = {}

        def trace(step: int, key: str, tensor: torch.Tensor) -> None:
            traced[key if step < 0 else f"steps.{step}.{key}"] = tensor.detach().clone()

        result = generate(checkpoint, GenerationParams.from_kwargs(kwargs), encode_prompt=encode_prompt,
                          encode_lyrics=encode_lyrics, src_latents=src if kwargs["src_audio_path"] else None,
                          ref_latents=src if kwargs["ref_audio_input"] else None, trace=trace,
                          upstream_bugs=name in UPSTREAM_BUG_CASES)
        _RUNS[name, source] = (result, traced)
    return _RUNS[name, source]


def _category(key: str) -> str:
    if key.startswith("noise."):
        return "pipeline_noise"
    if key.endswith(".model_output"):
        return "pipeline_model_outputs"
    return "pipeline_latents_and_conditioning"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", OK_CASES)
def test_case_latents(name: str, source: str, checkpoint) -> None:
    result, traced = _run(name, checkpoint, source)
    golden = load_golden(f"pipeline/{BY_NAME[name]['file']}")
    compared = 0
    for key, expected in golden.items():
        if key.startswith(("noise.", "steps.")):
            assert key in traced, f"{name}: {key} was not produced"
            assert_golden(traced[key], expected, _category(key), f"{name}:{source}:{key}")
            compared += 1
    assert_golden(result.latents, golden["final_latents"], "pipeline_latents_and_conditioning",
                  f"{name}:{source}:final_latents")
    assert compared >= 1


@pytest.mark.parametrize("name", OK_CASES)
def test_case_record(name: str, checkpoint) -> None:
    result, _ = _run(name, checkpoint)
    expected = {k: v for k, v in BY_NAME[name]["pipeline_returned_params"].items() if k not in NOT_RECORDED}
    got = {k: result.params[k] for k in expected}
    assert got == expected


# What our error says for each upstream error case: the upstream exception (cases.json -> error) names the
# same cause in its own words. A new recorded error case must be added here, or this test fails.
ERROR_MESSAGES = {
    "ValueError: The current scheduler class": "oss_steps cannot be used with scheduler_type='heun'",
    "AssertionError: target_latents.shape": "inside the left-extended audio",
}


@pytest.mark.parametrize("name", ERROR_CASES)
def test_error_cases_raise(name: str, checkpoint) -> None:
    case = BY_NAME[name]
    kwargs = case["call_kwargs"]
    src = torch.zeros(1, 8, 16, 22)  # the source length of every case (2.0 s)
    message = next((ours for upstream, ours in ERROR_MESSAGES.items() if case["error"].startswith(upstream)), None)
    assert message is not None, f"{name}: no expected message for upstream error {case['error'][:80]!r}"
    with pytest.raises(AceStepInputError, match=re.escape(message)):
        generate(checkpoint, GenerationParams.from_kwargs(kwargs), encode_prompt=lambda s: ([[5, 1]], [[1, 1]]),
                 encode_lyrics=lambda s: ([261, 2], [1, 1]), src_latents=src if kwargs["src_audio_path"] else None)


FULL_WAV_CASES = [name for name in OK_CASES if name in json.loads(
    (PARITY_DIR / "pipeline" / "cases.json").read_text())["full_wav_cases"]] if CASES else []
WAV_PARAMS = [pytest.param(name, marks=[] if name in FULL_WAV_CASES else [pytest.mark.slow]) for name in OK_CASES]


@pytest.mark.parametrize("name", WAV_PARAMS)
def test_case_waveforms(name: str, checkpoint) -> None:
    """Decode our latents; full waveforms by default, the 4096-sample heads of the other cases with -m slow."""
    result, _ = _run(name, checkpoint)
    golden = load_golden(f"pipeline/{BY_NAME[name]['file']}")
    keys = sorted(k for k in golden if k.startswith("wav"))  # wav.{b} (full) or wav_head.{b} (first samples)
    assert keys, f"{name}: the golden holds no waveform"
    with torch.no_grad():
        for key in keys:
            item = int(key.rsplit(".", 1)[1])
            wav = checkpoint.codec.decode(result.latents[item:item + 1], sample_rate=48000)[0]
            assert_golden(wav[:, :golden[key].shape[-1]], golden[key], "pipeline_waveforms", f"{name}:{key}")


def test_source_latents_from_wav(checkpoint) -> None:
    """``AudioCodec.encode`` of the source wav reproduces the recorded ``src_latents0``."""
    soundfile = pytest.importorskip("soundfile")
    audio, sample_rate = soundfile.read(str(PARITY_DIR / "pipeline" / "src_audio_44k_2s.wav"), dtype="float32",
                                        always_2d=True)
    latents = checkpoint.codec.encode(torch.from_numpy(audio.T.copy())[None], sample_rate)
    expected = load_golden("pipeline/repaint_middle.safetensors")["src_latents0"]
    assert_golden(latents, expected, "pipeline_latents_and_conditioning", "src_latents0")

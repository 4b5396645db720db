"""The speed plan (pure) and the fallbacks of :mod:`acestep_core.runtime.accel` on the CPU: which options run
under which facts, a forced capture failure and a forced compile failure fall back once with one warning, and the
compiled block sees no Python-float query scale and no fixed condition length (no recompiles across prompts)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch._dynamo.utils import counters

from acestep_core.runtime import accel, cuda_graphs
from acestep_core.runtime.accel import Acceleration, Denoiser, PassFacts, PassPlan, plan_passes
from acestep_core.transformer import ERG_DIFFUSION_BLOCKS, ERG_TEMPERATURE, AceStepTransformer
from tests.core.test_accel import _conditions, _latents, tiny_transformer

GPU = PassFacts(cuda=True, weights_resident=True)


@pytest.fixture(scope="module")
def model() -> AceStepTransformer:
    return tiny_transformer()
FASTEST, BOTH = Acceleration.fastest(), Acceleration(cuda_graphs=True, compile=True)


@pytest.mark.parametrize(("acceleration", "facts", "graphs", "compiled", "note"), [
    (FASTEST, GPU, True, True, None),
    (FASTEST, PassFacts(cuda=False, weights_resident=True), False, False, None),  # the default is quiet on CPU
    (Acceleration(compile=True), PassFacts(cuda=False, weights_resident=True), False, True, None),  # explicit
    (BOTH, PassFacts(cuda=False, weights_resident=True), False, True, "CUDA graphs off: not a CUDA device"),
    (FASTEST, PassFacts(cuda=True, weights_resident=False), False, False, "not all on the GPU"),
    (FASTEST, PassFacts(cuda=True, weights_resident=True, triton=False), True, False, "Triton is not importable"),
    (FASTEST, PassFacts(cuda=True, weights_resident=True, allocator="cudaMallocAsync"), True, False,
     "cannot run inside a CUDA graph capture under the cudaMallocAsync allocator"),
    (Acceleration(compile=True), PassFacts(cuda=True, weights_resident=True, allocator="cudaMallocAsync"),
     False, True, None),  # compile without graphs runs under any allocator
    (BOTH, PassFacts(cuda=True, weights_resident=True, capture_failed=True), False, True, None),
    (BOTH, PassFacts(cuda=True, weights_resident=True, compile_failed=True), True, False, None),
    (Acceleration(), GPU, False, False, None),
    (Acceleration(batch_guidance=False, cuda_graphs=True), GPU, True, False, None),
])
def test_plan_keeps_what_is_safe(acceleration: Acceleration, facts: PassFacts, graphs: bool, compiled: bool,
                                 note: str | None) -> None:
    plan = plan_passes(acceleration, facts)
    assert (plan.graphs, plan.compile) == (graphs, compiled)
    assert (note is None) == (not plan.notes) and all(note in n for n in plan.notes if note)


class _FailingCapture:
    """Stands in for ``cuda_graphs.GraphedPass``: warms up like it, then its capture raises."""

    made: list[Any] = []

    def __init__(self, fn: Any, inputs: tuple[torch.Tensor, ...], pool: Any) -> None:
        self.fn, self.inputs = fn, inputs
        fn(*inputs)
        _FailingCapture.made.append(self)

    def capture(self) -> None:
        self.fn(*self.inputs)  # part of the pass was recorded when the failure comes
        raise RuntimeError("Pointer argument (at 0) cannot be accessed from Triton (cpu tensor?)")


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU tensors planned as on a GPU with every weight resident, graph caches without CUDA."""
    monkeypatch.setattr(accel, "_facts", lambda transformer, x: PassFacts(
        cuda=True, weights_resident=True, capture_failed=cuda_graphs.capture_failure() is not None,
        compile_failed=bool(accel._COMPILE_FAILURE)))
    monkeypatch.setattr(cuda_graphs, "graph_cache", lambda transformer: cuda_graphs.GraphCache((), None))
    monkeypatch.setattr(cuda_graphs, "_FAILURE", [])
    monkeypatch.setattr(cuda_graphs, "_QUARANTINE", [])
    monkeypatch.setattr(accel, "_COMPILE_FAILURE", [])


@pytest.mark.parametrize("allocator", ["cudaMallocAsync", "native"])
def test_forced_capture_failure_falls_back_once_with_one_warning(model: AceStepTransformer, fake_gpu: None,
                                                                 monkeypatch: pytest.MonkeyPatch, allocator: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(cuda_graphs, "GraphedPass", _FailingCapture)
    monkeypatch.setattr(cuda_graphs, "allocator_backend", lambda: allocator)
    _FailingCapture.made = []
    conditions = _conditions(model, batch=1, tokens=9, seed=1)
    args = (conditions.cond, conditions.mask, torch.tensor([500.0]))
    with caplog.at_level(logging.INFO, logger="acestep_core.runtime"):
        first = Denoiser(model, Acceleration(cuda_graphs=True))
        outs = [first(_latents(1, 11, seed), *args) for seed in range(2)]
        later = Denoiser(model, Acceleration(cuda_graphs=True))  # the next run does not try again
        outs.append(later(_latents(1, 11, 2), *args))
    eager = Denoiser(model)
    for seed, out in enumerate(outs):  # fp32 rounding apart: the first pass ran with padded conditions
        torch.testing.assert_close(out, eager(_latents(1, 11, seed), *args), rtol=1e-5, atol=1e-5)
    assert len(_FailingCapture.made) == 1 and later.plan == PassPlan(graphs=False, compile=False)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "capture failed" in warnings[0].getMessage()
    assert "cannot be accessed from Triton" in (cuda_graphs.capture_failure() or "")
    # under cudaMallocAsync the failed capture's allocations must never be freed outside a graph: kept alive
    assert len(cuda_graphs._QUARANTINE) == (1 if allocator == "cudaMallocAsync" else 0)


def test_forced_compile_failure_falls_back_once_with_one_warning(model: AceStepTransformer, fake_gpu: None,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def broken_compile(backend: str | None = None) -> Any:
        def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
            calls.append(1)
            raise RuntimeError("CUDA driver error: invalid argument")
        return forward

    monkeypatch.setattr(accel, "compiled_block_forward", broken_compile)
    conditions = _conditions(model, batch=1, tokens=9, seed=1)
    args = (conditions.cond, conditions.mask, torch.tensor([500.0]))
    with caplog.at_level(logging.WARNING, logger="acestep_core.runtime"):
        outs = [Denoiser(model, Acceleration(compile=True))(_latents(1, 11, seed), *args) for seed in range(3)]
    eager = Denoiser(model)
    for seed, out in enumerate(outs):
        torch.testing.assert_close(out, eager(_latents(1, 11, seed), *args), rtol=1e-5, atol=1e-5)
    assert calls == [1] and accel._COMPILE_FAILURE and "invalid argument" in accel._COMPILE_FAILURE[0]
    assert len(caplog.records) == 1 and "torch.compile of the denoiser failed" in caplog.records[0].getMessage()


def test_compiled_blocks_get_tensor_query_scales(model: AceStepTransformer) -> None:
    """No Python float reaches a compiled block (Dynamo would guard on its value): ERG blocks get the [B] factors,
    the others ones; the products are the number form's, bit for bit."""
    seen: list[tuple[int, Any]] = []

    def spy(block: Any, *args: Any, query_scale: Any) -> torch.Tensor:
        seen.append((list(model.transformer_blocks).index(block), query_scale))
        return block(*args, query_scale=query_scale)

    conditions = _conditions(model, batch=2, tokens=7, seed=3)
    x, t = _latents(2, 11, seed=4), torch.tensor([500.0, 500.0])
    for scale in (1.0, ERG_TEMPERATURE, torch.tensor([1.0, ERG_TEMPERATURE])):
        seen.clear()
        spied = model.decode(x, None, conditions.cond, conditions.mask, t, query_scale=scale, block_forward=spy)
        plain = model.decode(x, None, conditions.cond, conditions.mask, t, query_scale=scale)
        torch.testing.assert_close(spied, plain, rtol=0, atol=0)
        assert len(seen) == len(model.transformer_blocks)
        for index, value in seen:
            assert isinstance(value, torch.Tensor) and value.shape == (2,) and value.dtype == torch.float32
            want = torch.as_tensor(scale).expand(2) if index in ERG_DIFFUSION_BLOCKS else torch.ones(2)
            torch.testing.assert_close(value, want.float(), rtol=0, atol=0)


def test_no_recompilation_across_prompts_of_one_length(model: AceStepTransformer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Five prompts of one length, each with another condition length (tags and lyrics differ), each with unguided
    (batch 1) and guided (batch 2, ERG scales) passes: two compiled graphs in all, made by the first prompt."""
    monkeypatch.setattr(accel, "COMPILE_BACKEND", "eager")  # Dynamo's guards are what is checked
    monkeypatch.setattr(accel, "_COMPILED_BLOCK", {})
    monkeypatch.setattr(accel, "_COMPILE_FAILURE", [])
    torch._dynamo.reset()
    counters.clear()
    scales = torch.tensor([1.0, ERG_TEMPERATURE])
    graphs_after_each = []
    for prompt, tokens in enumerate((9, 12, 10, 31, 70)):  # 70 > CONDITION_BUCKET: another padded length
        conditions = _conditions(model, batch=1, tokens=tokens, seed=prompt)
        denoiser, eager = Denoiser(model, Acceleration(compile=True)), Denoiser(model)
        x, t = _latents(1, 13, seed=prompt), torch.tensor([900.0 - 100 * prompt])
        single = (x, conditions.cond, conditions.mask, t)
        assert conditions.uncond is not None
        guided = (x.repeat(2, 1, 1, 1), torch.cat([conditions.cond, conditions.uncond]),
                  conditions.mask.repeat(2, 1), t, scales)
        for inputs in (single, guided):  # eager backend: the padded conditions are the only difference
            torch.testing.assert_close(denoiser(*inputs), eager(*inputs), rtol=1e-5, atol=1e-5)
        assert denoiser.plan is not None and denoiser.plan.compile  # nothing failed, nothing fell back
        graphs_after_each.append(counters["stats"]["unique_graphs"])
    assert graphs_after_each == [2, 2, 2, 2, 2]
    assert not counters["graph_break"]
    torch._dynamo.reset()



def test_padded_conditions_give_the_same_velocity(model: AceStepTransformer) -> None:
    """Masked zero tokens at the end of the condition sequence get zero attention weight."""
    conditions = _conditions(model, batch=2, tokens=11, seed=8)
    states, mask = accel.pad_conditions(conditions.cond, conditions.mask, 16)
    assert states.shape[1] == mask.shape[1] == 16 and not mask[:, 11:].any() and not states[:, 11:].any()
    assert accel.pad_conditions(states, mask, 16)[0] is states  # already a multiple
    x, t = _latents(2, 13, seed=9), torch.tensor([400.0, 400.0])
    scales = torch.tensor([1.0, ERG_TEMPERATURE])
    torch.testing.assert_close(model.decode(x, None, states, mask, t, query_scale=scales),
                               model.decode(x, None, conditions.cond, conditions.mask, t, query_scale=scales),
                               rtol=1e-5, atol=1e-5)

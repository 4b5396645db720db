"""The one Triton dispatch policy: every fact that switches a fused kernel off, and the process-wide fallback."""

from __future__ import annotations

import logging

import pytest
import torch
from torch._dynamo.utils import counters

from acestep_core.kernels import dispatch
from acestep_core.kernels.dispatch import ASYNC_ALLOCATOR, CONV1D_NLC, GLU_DEPTHWISE, decide
from acestep_core.kernels.glu_depthwise import silu_depthwise_glu, silu_depthwise_glu_reference

CAPABLE = dict(is_cuda=True, dtype=torch.bfloat16, capability=(9, 0), triton_ok=True, disabled=False, failure=None)


def test_a_capable_gpu_runs_every_kernel_fused() -> None:
    for spec in (GLU_DEPTHWISE, CONV1D_NLC):
        ok, reason, raw = decide(spec, **CAPABLE)
        assert ok and "9.0" in reason and not raw


@pytest.mark.parametrize(("change", "reason"), [
    ({"is_cuda": False}, "not a CUDA tensor"),
    ({"dtype": torch.float32}, "torch.float32 activations"),
    ({"disabled": True}, "ACESTEP_NO_TRITON is set"),
    ({"failure": "RuntimeError: boom"}, "earlier launch failed in this process (RuntimeError: boom)"),
    ({"triton_ok": False}, "Triton is not importable"),
    ({"capability": (7, 5)}, "needs 8.0 or newer"),
    ({"capability": None}, "needs 8.0 or newer"),
])
def test_each_fact_switches_the_vocoder_kernel_off(change: dict, reason: str) -> None:
    ok, why, _ = decide(CONV1D_NLC, **{**CAPABLE, **change})
    assert not ok and reason in why


def test_kernels_declare_their_own_dtypes_and_gpus() -> None:
    fp32_turing = {**CAPABLE, "dtype": torch.float32, "capability": (7, 5)}
    assert decide(GLU_DEPTHWISE, **fp32_turing)[0]  # element-wise: any float dtype, Volta or newer
    assert not decide(CONV1D_NLC, **fp32_turing)[0]  # tensor-core dots: bf16/fp16 on Ampere or newer


def test_environment_switch_is_read_by_use_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dispatch.NO_TRITON_ENV, "1")
    assert dispatch._disabled_by_env()
    monkeypatch.setenv(dispatch.NO_TRITON_ENV, "0")
    assert not dispatch._disabled_by_env()


def test_run_fused_falls_back_once_and_reraises_out_of_memory(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(dispatch, "_FAILED", {})

    def broken() -> str:
        raise RuntimeError("CUDA driver error: invalid argument")

    with caplog.at_level(logging.WARNING, logger="acestep_core.kernels.dispatch"):
        assert dispatch.run_fused(GLU_DEPTHWISE, broken, lambda: "reference") == "reference"
    assert "invalid argument" in dispatch.failures()[GLU_DEPTHWISE.name]
    assert not decide(GLU_DEPTHWISE, **{**CAPABLE, "failure": dispatch.failures()[GLU_DEPTHWISE.name]})[0]
    assert caplog.text.count("for the rest of this process") == 1

    def oom() -> str:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError, match="out of memory"):
        dispatch.run_fused(CONV1D_NLC, oom, lambda: "reference")
    assert CONV1D_NLC.name not in dispatch.failures()


def test_cpu_tensors_never_reach_triton_and_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="acestep_core.kernels.dispatch"):
        assert not dispatch.use_triton(GLU_DEPTHWISE, torch.zeros(2, 3))
    assert caplog.text == ""


def test_capture_under_cuda_malloc_async_needs_raw_pointers() -> None:
    """Triton's launcher refuses graph memory of a cudaMallocAsync capture: raw-pointer kernels still run fused,
    the others take the reference path; the caching allocator's captures change nothing."""
    capturing_async = {**CAPABLE, "capturing": True, "allocator": ASYNC_ALLOCATOR}
    assert decide(GLU_DEPTHWISE, **capturing_async) == (True, decide(GLU_DEPTHWISE, **capturing_async).reason, True)
    assert "raw device pointers" in decide(GLU_DEPTHWISE, **capturing_async).reason
    ok, why, raw = decide(CONV1D_NLC, **capturing_async)
    assert not ok and not raw and "capture under cudaMallocAsync" in why
    for spec in (GLU_DEPTHWISE, CONV1D_NLC):
        assert decide(spec, **{**CAPABLE, "capturing": True, "allocator": "native"}) == decide(spec, **CAPABLE)
        assert decide(spec, **{**CAPABLE, "allocator": ASYNC_ALLOCATOR}) == decide(spec, **CAPABLE)
    assert not dispatch.triton_capturable(ASYNC_ALLOCATOR) and dispatch.triton_capturable("native")
    assert not decide(GLU_DEPTHWISE, **{**capturing_async, "disabled": True}).fused  # the switch still wins


def test_compiled_callers_see_a_constant_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torch.compile the decision is taken once at trace time: no graph break (its log line, the fallback's
    try/except stay outside the graph) and no guard on the dispatch state, which changes between calls."""
    torch._dynamo.reset()
    counters.clear()
    monkeypatch.setattr(dispatch, "_LOGGED", set())
    monkeypatch.setattr(dispatch, "_FAILED", {})
    u, weight, bias = torch.randn(2, 7, 8), torch.randn(8, 1, 3), torch.randn(8)
    compiled = torch.compile(silu_depthwise_glu, backend="eager", dynamic=False)
    first = compiled(u, weight, bias)
    dispatch._LOGGED.add(("another kernel", True, "logged meanwhile"))
    dispatch._FAILED["another kernel"] = "RuntimeError: meanwhile"
    second = compiled(u, weight, bias)
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] == 1
    torch.testing.assert_close(first, silu_depthwise_glu_reference(u, weight, bias), rtol=0, atol=0)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    torch._dynamo.reset()

"""The default speed plan and ``--eager``, ``--cuda-graphs``, ``--compile``, ``--no-batch-guidance`` of ``python -m
acestep_core generate`` (CPU).

Planning is checked directly; that the plan's :class:`~acestep_core.runtime.accel.Acceleration` reaches
:func:`~acestep_core.sampling.pipeline.generate` (and that the CUDA graphs are released before the decode) is checked by
running :func:`~acestep_core.cli.run.execute` on the tiny checkpoint with ``generate`` wrapped.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.cli import commands as cli
from acestep_core.cli import plan as cli_plan
from acestep_core.cli import run as cli_run
from acestep_core.runtime import offload
from acestep_core.runtime.accel import Acceleration
from tests.core.test_cli import _forbid_model_loading, base_args, run
from tests.parity import require_parity
from tests.recording import record_generate_and_release


def _args(tmp_path, *extra: str) -> Any:
    return cli.build_parser().parse_args(["generate", *base_args(tmp_path, "o.wav", *extra)])


def _plan(tmp_path, *extra: str) -> cli.RunPlan:
    return cli.plan_run(_args(tmp_path, *extra))


def test_help_lists_the_speed_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "speed:" in text
    for flag in ("--eager", "--cuda-graphs", "--compile", "--no-batch-guidance"):
        assert flag in text
    assert "Triton" in text and "CUDA only" in text


def test_plan_defaults_to_the_fastest_safe_path(tmp_path) -> None:
    require_parity()
    assert _plan(tmp_path).acceleration == Acceleration.fastest(compile=False)  # one song per process
    assert _plan(tmp_path, "--eager").acceleration == Acceleration(batch_guidance=True, cuda_graphs=False,
                                                                   compile=False)
    assert _plan(tmp_path, "--no-batch-guidance").acceleration == Acceleration(batch_guidance=False)
    with pytest.raises(cli.UsageError, match="--compile works on CUDA only"):  # inductor's CPU backend fails
        _plan(tmp_path, "--compile")


def test_cuda_graphs_on_cpu_is_a_logged_no_op(tmp_path, caplog) -> None:
    require_parity()
    with caplog.at_level(logging.INFO, logger="acestep_core.cli"):
        plan = _plan(tmp_path, "--cuda-graphs", "--no-batch-guidance")
    assert plan.acceleration == Acceleration(batch_guidance=False, cuda_graphs=False)
    assert "--cuda-graphs has no effect on --device cpu" in caplog.text


def test_cuda_graphs_and_compile_are_kept_on_cuda(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cli_plan.importlib.util, "find_spec", lambda name: object())
    args = _args(tmp_path, "--cuda-graphs", "--compile")
    assert cli_plan._acceleration(args, torch.device("cuda")) == Acceleration(True, True, True)


def test_compile_on_cuda_without_triton_exits_2_before_loading(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    monkeypatch.setattr(cli_plan, "resolve_device", lambda name: torch.device("cuda"))
    real_find_spec = cli_plan.importlib.util.find_spec
    monkeypatch.setattr(cli_plan.importlib.util, "find_spec",
                        lambda name, *a: None if name == "triton" else real_find_spec(name, *a))
    code, out, err = run(base_args(tmp_path, "o.wav", "--compile"), capsys)
    assert code == 2 and out == [] and "--compile on CUDA needs Triton" in err


@pytest.mark.parametrize("low_vram", [False, True])
def test_acceleration_reaches_generate_and_graphs_are_released_before_decode(tmp_path, monkeypatch,
                                                                           low_vram: bool) -> None:
    require_parity()
    events = record_generate_and_release(monkeypatch)
    real_stage = offload.stage

    def recording_stage(name, *modules, device, peaks=None):
        events.append(("stage", name))
        return real_stage(name, *modules, device=device, peaks=peaks)

    monkeypatch.setattr(offload, "stage", recording_stage)
    wanted = Acceleration(batch_guidance=False, cuda_graphs=True)  # graphs: a no-op on CPU tensors
    plan = dataclasses.replace(_plan(tmp_path), acceleration=wanted, low_vram=low_vram)
    cli_run.execute(plan, quiet=True)
    assert events == [("stage", "encode-audio"), ("stage", "generate"), ("generate", wanted),
                      ("release", "AceStepTransformer"), ("stage", "decode")]


def test_separate_passes_match_batched_guidance(tmp_path, capsys) -> None:
    """``--no-batch-guidance`` is an A/B switch: same latents up to float rounding."""
    require_parity()
    latents = []
    for name, extra in (("batched", ()), ("separate", ("--no-batch-guidance",))):
        path = tmp_path / f"{name}.safetensors"
        code, _, err = run([*base_args(tmp_path, f"{name}.wav"), "--save-latents", str(path), *extra], capsys)
        assert code == 0, err
        latents.append(load_file(str(path))["latents"])
    rel = float((latents[0] - latents[1]).norm() / latents[1].norm())
    assert rel < 1e-4, rel

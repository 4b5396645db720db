"""``--low-vram`` and ``--fp8`` of ``python -m acestep_core generate`` on the tiny checkpoint (CPU).

Kept apart from ``test_cli.py``: that module reuses one loaded model across tests, and ``--fp8`` quantises the
model it runs in place. On the CPU ``--low-vram`` is planned as a no-op; its staged path is exercised by running
:func:`~acestep_core.cli.run.execute` on a plan with ``low_vram=True`` (every move is then a same-device no-op).
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.cli import commands as cli
from acestep_core.cli import run as cli_run
from acestep_core.runtime import offload, quant
from tests.core.test_cli import _forbid_model_loading, base_args, check_outputs, run
from tests.core.test_lora import _matrices, write_peft
from tests.parity import TINY_CHECKPOINT, require_parity

needs_fp8 = pytest.mark.skipif(not quant.fp8_supported(), reason="torch without float8")


def _plan(tmp_path, name: str, *extra: str) -> cli.RunPlan:
    return cli.plan_run(cli.build_parser().parse_args(["generate", *base_args(tmp_path, name, *extra)]))


def _latents(tmp_path, capsys, name: str, *extra: str) -> torch.Tensor:
    path = tmp_path / f"{name}.safetensors"
    code, paths, err = run([*base_args(tmp_path, f"{name}.wav"), "--save-latents", str(path), *extra], capsys)
    assert code == 0, err
    check_outputs(paths, task="text2music")
    return load_file(str(path))["latents"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_help_documents_the_memory_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--low-vram" in text and "overlapped decode" in text and "--fp8" in text and "float8" in text


def test_low_vram_on_cpu_is_a_logged_no_op(tmp_path, caplog) -> None:
    require_parity()
    with caplog.at_level(logging.INFO, logger="acestep_core.cli"):
        plan = _plan(tmp_path, "o.wav", "--low-vram", "--fp8")
    assert plan.low_vram is False and plan.fp8 is True
    assert "--low-vram has no effect on --device cpu" in caplog.text
    assert _plan(tmp_path, "o.wav").fp8 is False


def test_fp8_without_float8_support_exits_2_before_loading(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    monkeypatch.setattr(quant, "fp8_supported", lambda: False)
    code, out, err = run(base_args(tmp_path, "o.wav", "--fp8"), capsys)
    assert code == 2 and out == [] and "--fp8 needs torch.float8_e4m3fn" in err and "upgrade torch" in err


@needs_fp8
def test_fp8_run_is_close_to_the_plain_run(tmp_path, capsys) -> None:
    require_parity()
    plain = _latents(tmp_path, capsys, "plain")
    fp8 = _latents(tmp_path, capsys, "fp8", "--fp8")
    # measured 0.18: per-layer fp8 noise (tests/core/test_quant.py) amplified by APG guidance at scale 15
    assert 0 < _rel(fp8, plain) < 0.25, _rel(fp8, plain)


@needs_fp8
def test_fp8_with_lora_merges_first(tmp_path, capsys) -> None:
    """The LoRA is merged for good (nothing to restore), then quantised: it still changes the result."""
    require_parity()
    from acestep_core import load_checkpoint

    transformer = load_checkpoint(TINY_CHECKPOINT, components=["transformer"]).transformer
    folder = write_peft(tmp_path / "lora", _matrices(transformer, 4, 3), alpha=8)
    fp8 = _latents(tmp_path, capsys, "fp8", "--fp8")
    with_lora = _latents(tmp_path, capsys, "fp8_lora", "--fp8", "--lora", str(folder))
    assert _rel(with_lora, fp8) > 0.05


def test_low_vram_path_stages_each_model(tmp_path, monkeypatch) -> None:
    """Stages move: the text encoder + transformer for sampling, the codec for decoding; the result equals the
    normal path (a 2 s song is a single overlapped-decode window)."""
    require_parity()
    plain = _plan(tmp_path, "plain.wav", "--save-latents", str(tmp_path / "plain.safetensors"))
    low = dataclasses.replace(_plan(tmp_path, "low.wav", "--save-latents", str(tmp_path / "low.safetensors")),
                              low_vram=True)
    cli_run.execute(plain, quiet=True)
    stages: list[tuple[str, list[str]]] = []
    real_stage = offload.stage

    def recording_stage(name, *modules, device, peaks=None):
        stages.append((name, [type(m).__name__ for m in modules if m is not None]))
        return real_stage(name, *modules, device=device, peaks=peaks)

    monkeypatch.setattr(offload, "stage", recording_stage)
    written = cli_run.execute(low, quiet=True)
    assert [p.name for p in written] == ["low.wav", "low.safetensors"]
    assert stages == [("encode-audio", []), ("generate", ["UMT5Encoder", "AceStepTransformer"]),
                      ("decode", ["AudioCodec"])]
    assert torch.equal(load_file(str(tmp_path / "low.safetensors"))["latents"],
                       load_file(str(tmp_path / "plain.safetensors"))["latents"])

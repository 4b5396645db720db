"""Explicit offload (:mod:`acestep_core.runtime.offload`): moves there and back, restores on errors, stage peaks only
on CUDA. No GPU here: modules record their moves (a fake "cuda" placement), so the logic runs on any machine."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from acestep_core.runtime import offload


class Movable(nn.Module):
    """Records ``.to(device)`` calls and pretends to live where it was last sent."""

    def __init__(self, name: str, where: str = "cpu", fail_on: str | None = None) -> None:
        super().__init__()
        self.name, self.where, self.fail_on = name, torch.device(where), fail_on
        self.moves: list[str] = []

    def to(self, device, *args, **kwargs):  # type: ignore[override]
        device = torch.device(device)
        if self.fail_on is not None and device.type == self.fail_on:
            raise torch.OutOfMemoryError(f"{self.name}: no room on {device}")
        self.moves.append(str(device))
        self.where = device
        return self


@pytest.fixture(autouse=True)
def fake_placement(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    emptied: list[int] = []
    monkeypatch.setattr(offload, "module_device", lambda m: m.where)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    return emptied


def test_on_device_moves_there_and_back(fake_placement) -> None:
    text, transformer, already = Movable("text"), Movable("transformer"), Movable("codec", where="cuda:0")
    with offload.on_device(text, None, transformer, already, device="cuda:0"):
        assert text.where.type == transformer.where.type == "cuda"
    assert text.moves == ["cuda:0", "cpu"] and transformer.moves == ["cuda:0", "cpu"]
    assert already.moves == [] and already.where == torch.device("cuda:0")  # not moved, not sent away
    assert fake_placement == [1]  # the cache is emptied once, after the moves back


def test_on_device_restores_on_error() -> None:
    text, transformer = Movable("text"), Movable("transformer")
    with pytest.raises(RuntimeError, match="boom"), offload.on_device(text, transformer, device="cuda"):
        raise RuntimeError("boom")
    assert text.where.type == transformer.where.type == "cpu"


def test_on_device_a_failed_move_still_restores_the_others() -> None:
    text, transformer = Movable("text"), Movable("transformer", fail_on="cuda")
    with pytest.raises(torch.OutOfMemoryError), offload.on_device(text, transformer, device="cuda"):
        pytest.fail("the block must not run")
    assert text.moves == ["cuda", "cpu"] and text.where.type == "cpu"


def test_nothing_moves_or_empties_on_the_same_device(fake_placement) -> None:
    module = Movable("m")
    with offload.on_device(module, device="cpu"):
        pass
    assert module.moves == [] and fake_placement == []


def test_stage_on_cpu_logs_and_measures_nothing(caplog) -> None:
    peaks: dict[str, int] = {}
    with caplog.at_level(logging.INFO, logger="acestep_core.runtime.offload"), \
            offload.stage("decode", Movable("codec"), device="cpu", peaks=peaks):
        pass
    offload.log_peaks(peaks)
    assert peaks == {} and caplog.records == []


def test_log_peaks_line(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="acestep_core.runtime.offload"):
        offload.log_peaks({"generate": 6 * 2**30, "decode": 3 * 2**30})
    assert "generate 6.00, decode 3.00; max 6.00" in caplog.text


def test_module_device_of_real_modules(monkeypatch) -> None:
    monkeypatch.undo()
    assert offload.module_device(nn.Linear(2, 2)) == torch.device("cpu")
    assert offload.module_device(nn.ReLU()) is None
    with offload.on_device(nn.ReLU(), device="cpu"):  # nothing to move: a no-op
        pass

"""Guidance rules against ``modules/guidance.safetensors`` plus properties (scale 1, window decay)."""

from __future__ import annotations

import pytest
import torch

from acestep_core.sampling.guidance import (
    MomentumBuffer,
    apg,
    cfg,
    cfg_double,
    cfg_star,
    guidance_scale_at,
    uses_double_condition,
    uses_guidance,
)
from tests.parity import assert_golden, load_golden

CATEGORY = "module_outputs"


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_golden("modules/guidance.safetensors")


def _pair(golden: dict[str, torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return golden[f"in.cond_{k}"], golden[f"in.uncond_{k}"]


def test_apg_with_momentum(golden) -> None:
    momentum = MomentumBuffer()
    for step in range(3):
        out = apg(*_pair(golden, step), 15.0, momentum)
        assert_golden(out, golden[f"apg.momentum.step_{step}"], CATEGORY, f"guidance:apg.momentum.step_{step}")
        assert isinstance(momentum.running_average, torch.Tensor)
        assert_golden(momentum.running_average, golden[f"apg.momentum.running_average_{step}"], CATEGORY,
                      f"guidance:apg.momentum.running_average_{step}")


def test_apg_without_momentum(golden) -> None:
    assert_golden(apg(*_pair(golden, 0), 15.0), golden["apg.no_momentum.scale15"], CATEGORY, "guidance:apg.scale15")
    assert_golden(apg(*_pair(golden, 2), 3.0), golden["apg.no_momentum.scale3"], CATEGORY, "guidance:apg.scale3")
    out = apg(*_pair(golden, 1), 7.0, eta=0.5, norm_threshold=0.0)
    assert_golden(out, golden["apg.no_momentum.eta0.5_thresh0"], CATEGORY, "guidance:apg.eta0.5_thresh0")


def test_cfg(golden) -> None:
    assert_golden(cfg(*_pair(golden, 0), 15.0), golden["cfg.scale15"], CATEGORY, "guidance:cfg.scale15")
    assert_golden(cfg(*_pair(golden, 1), 3.5), golden["cfg.scale3.5"], CATEGORY, "guidance:cfg.scale3.5")


@pytest.mark.parametrize("step", [0, 1, 2])
def test_cfg_star(golden, step: int) -> None:
    out = cfg_star(*_pair(golden, 0), 15.0, step)
    assert_golden(out, golden[f"cfg_star.i{step}"], CATEGORY, f"guidance:cfg_star.i{step}")
    if step <= 1:
        assert not out.any()  # zero-init for loop indices <= zero_steps


def test_cfg_star_without_zero_init(golden) -> None:
    out = cfg_star(*_pair(golden, 1), 7.0, 0, use_zero_init=False)
    assert_golden(out, golden["cfg_star.i0_no_zero_init"], CATEGORY, "guidance:cfg_star.i0_no_zero_init")


def test_cfg_double(golden) -> None:
    out = cfg_double(*_pair(golden, 0), golden["in.only_text_cond"], 5.0, 1.5)
    assert_golden(out, golden["cfg_double.text5_lyric1.5"], CATEGORY, "guidance:cfg_double")


def test_scale_one_is_the_conditional_output(golden) -> None:
    cond, uncond = _pair(golden, 0)
    assert torch.allclose(cfg(cond, uncond, 1.0), cond, atol=1e-6)
    assert torch.equal(apg(cond, uncond, 1.0, MomentumBuffer()), cond)
    assert torch.allclose(cfg_star(cond, uncond, 1.0, 5), cond, atol=1e-5)
    assert torch.allclose(cfg_double(cond, uncond, golden["in.only_text_cond"], 1.0, 1.0), cond, atol=1e-6)
    assert not uses_guidance(1.0) and not uses_guidance(0.0) and uses_guidance(4.0)


def test_apg_is_per_item() -> None:
    """APG norms / projections are per (item, channel): item 0 does not depend on item 1."""
    gen = torch.Generator().manual_seed(3)
    cond, uncond = torch.randn(2, 8, 16, 6, generator=gen), torch.randn(2, 8, 16, 6, generator=gen)
    assert torch.allclose(apg(cond, uncond, 15.0)[:1], apg(cond[:1], uncond[:1], 15.0), atol=1e-6)


def test_guidance_decay() -> None:
    window = (2, 6)
    assert guidance_scale_at(2, window, 15.0, 3.0, 1.0) == 15.0
    assert guidance_scale_at(5, window, 15.0, 3.0, 1.0) == pytest.approx(3.0)
    assert guidance_scale_at(5, window, 15.0, 3.0, 0.5) == pytest.approx(9.0)
    assert guidance_scale_at(4, window, 15.0, 3.0, 0.0) == 15.0


def test_guidance_decay_one_step_window_divergence() -> None:
    """Upstream divides by end - start - 1 = 0 here (ZeroDivisionError); we use the full scale."""
    assert guidance_scale_at(3, (3, 4), 15.0, 3.0, 1.0) == 15.0


def test_double_condition_switch() -> None:
    assert uses_double_condition(5.0, 1.5)
    assert not uses_double_condition(5.0, 1.0) and not uses_double_condition(0.7, 1.5)
    assert not uses_double_condition(None, 2.0)

"""Schedules against ``modules/schedulers.safetensors`` (init grid, double / triple shift, Heun layout,
sigma_max truncation, oss_steps) and the closed forms of the spec (Appendix A, 5.6, 6.6)."""

from __future__ import annotations

import pytest
import torch

from acestep_core.sampling.choices import SCHEDULERS
from acestep_core.sampling.schedule import (
    audio2audio_schedule,
    flow_schedule,
    guidance_window,
    np_linspace,
    oss_schedule,
    parse_oss_steps,
    sigma_range,
    training_sigmas,
)
from acestep_core.timing import seconds_to_frames
from tests.parity import assert_golden, load_golden


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_golden("modules/schedulers.safetensors")


@pytest.mark.parametrize("name", SCHEDULERS)
def test_training_grid(golden, name: str) -> None:
    assert_golden(training_sigmas(), golden[f"{name}.init_sigmas"], "module_outputs", f"schedulers:{name}.init_sigmas")


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("omega", ["omega10", "omega0"])
def test_six_step_schedule(golden, name: str, omega: str) -> None:
    schedule = flow_schedule(6, name)
    # bit-exact: the sampling loop indexes these values
    assert torch.equal(schedule.timesteps, golden[f"{name}.{omega}.timesteps"])
    assert torch.equal(schedule.sigmas, golden[f"{name}.{omega}.sigmas"])
    assert schedule.num_inference_steps == 6  # Heun too: upstream reports N, not 2N - 1


@pytest.mark.parametrize("name", SCHEDULERS)
def test_sigma_max_truncation(golden, name: str) -> None:
    prefix = f"{name}.sigma_max0.5"
    assert torch.equal(torch.tensor(sigma_range(0.5), dtype=torch.float32), golden[f"{prefix}.init_sigmas"])
    schedule = flow_schedule(4, name, sigma_max=0.5)
    assert torch.equal(schedule.timesteps, golden[f"{prefix}.timesteps"])
    assert torch.equal(schedule.sigmas, golden[f"{prefix}.sigmas"])


@pytest.mark.parametrize("name", ["euler", "pingpong"])
def test_oss_triple_shift(golden, name: str) -> None:
    schedule = oss_schedule(parse_oss_steps("1,3,5,7,8"), name)
    assert torch.equal(schedule.timesteps, golden[f"{name}.oss.timesteps"])
    assert torch.equal(schedule.sigmas, golden[f"{name}.oss.sigmas"])
    assert schedule.num_inference_steps == 5


def test_oss_rejects_heun() -> None:
    with pytest.raises(ValueError, match="custom-sigma"):
        oss_schedule([1, 2], "heun")


def test_appendix_a_closed_form() -> None:
    """sigma_k = 3 l / (1 + 2 l), l_k = 1 - k (1 - 0.0029940) / (N - 1): double shift, last sigma 0.0089286."""
    schedule = flow_schedule(60)
    lam = 1 - torch.arange(60, dtype=torch.float64) * (1 - sigma_range()[1]) / 59
    assert torch.allclose(schedule.sigmas[:-1].double(), 3 * lam / (1 + 2 * lam), atol=1e-6)
    assert schedule.sigmas[-1] == 0
    assert float(schedule.timesteps[-1]) == pytest.approx(8.9286, abs=1e-3)
    assert schedule.timesteps[:6].tolist() == pytest.approx([1000.0, 994.303, 988.475, 982.510, 976.406, 970.155],
                                                           abs=1e-3)


def test_oss_ui_placeholder_timesteps() -> None:
    oss = parse_oss_steps("16, 29, 52, 96, 129, 158, 172, 183, 189, 200")
    timesteps = oss_schedule(oss, "euler", timestep_dtype=torch.bfloat16).timesteps
    expected = [990.72, 982.48, 962.18, 909.23, 835.64, 708.25, 600.70, 464.96, 357.14, 26.27]
    assert timesteps.tolist() == pytest.approx(expected, abs=0.02)


def test_audio2audio_schedule() -> None:
    schedule = audio2audio_schedule(0.5, 60)
    assert schedule.num_inference_steps == 30
    assert schedule.sigma_max == pytest.approx(0.75)
    assert float(schedule.timesteps[0]) == pytest.approx(900.0)
    assert audio2audio_schedule(0.3, 60).num_inference_steps == 42
    assert audio2audio_schedule(0.8, 60).num_inference_steps == 11


def test_guidance_window() -> None:
    assert guidance_window(60, 0.5) == (15, 45)
    assert guidance_window(60, 1.0) == (0, 60)
    assert guidance_window(8, 0.5) == (2, 6)


def test_np_linspace_matches_numpy_layout() -> None:
    values = np_linspace(1000.0, 2.994012087583542, 7)
    assert values[0] == 1000.0 and values[-1] == 2.994012087583542
    assert np_linspace(5.0, 1.0, 1).tolist() == [5.0]


def test_parse_oss_steps() -> None:
    assert parse_oss_steps(None) == [] and parse_oss_steps("") == []
    assert parse_oss_steps(" 2, 4,8") == [2, 4, 8]
    assert parse_oss_steps([3, 1]) == [3, 1]


def test_seconds_to_frames_truncates() -> None:
    assert seconds_to_frames(2.0) == 21 and seconds_to_frames(3.5) == 37
    assert seconds_to_frames(-0.5) == -5  # toward zero, as upstream (extend)
    assert seconds_to_frames(240) == 2583

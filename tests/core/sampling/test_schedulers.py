"""Update rules against ``modules/schedulers.safetensors``: one stepper driven through all timesteps with the
recorded model outputs (Euler / Heun with omega 10 and 0, PingPong with a CPU generator seeded 402)."""

from __future__ import annotations

import pytest
import torch

from acestep_core.sampling.schedule import flow_schedule
from acestep_core.sampling.schedulers import draw_normal, make_stepper, omega_rescale, omega_update
from tests.parity import assert_golden, load_golden

OMEGAS = {"omega10": 10.0, "omega0": 0.0}


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_golden("modules/schedulers.safetensors")


@pytest.mark.parametrize("name", ["euler", "heun", "pingpong"])
@pytest.mark.parametrize("omega", list(OMEGAS))
def test_steps_match_reference(golden, name: str, omega: str) -> None:
    prefix = f"{name}.{omega}"
    schedule = flow_schedule(6, name)
    generator = torch.Generator().manual_seed(402)
    stepper = make_stepper(schedule, omega_scale=OMEGAS[omega], generator=generator)
    sample = golden[f"{prefix}.sample_0"]
    for index in range(len(schedule.timesteps)):
        sample = stepper(sample, golden[f"{prefix}.model_output_{index}"], index)
        assert sample.dtype == torch.float32
        assert_golden(sample, golden[f"{prefix}.sample_{index + 1}"], "module_outputs",
                      f"schedulers:{prefix}.sample_{index + 1}")


@pytest.mark.parametrize("omega", list(OMEGAS))
def test_pingpong_noise_stream(golden, omega: str) -> None:
    generator = torch.Generator().manual_seed(402)
    like = golden[f"pingpong.{omega}.sample_0"]
    for index in range(6):
        assert torch.equal(draw_normal(like, generator), golden[f"pingpong.{omega}.noise_{index}"])


def test_omega_rescale_values() -> None:
    assert omega_rescale(10.0) == pytest.approx(1.0462117157260011, abs=1e-15)
    assert omega_rescale(0.0) == 1.0
    assert omega_rescale(-10.0) == pytest.approx(0.953788, abs=1e-6)


def test_omega_update_keeps_global_mean() -> None:
    delta = torch.randn(2, 8, 16, 5, generator=torch.Generator().manual_seed(0))
    out = omega_update(delta, 1.05)
    assert torch.allclose(out.mean(), delta.mean(), atol=1e-6)
    assert torch.allclose(out - out.mean(), 1.05 * (delta - delta.mean()), atol=1e-6)


def test_bf16_velocity_keeps_bf16_latents() -> None:
    """Upstream keeps latents in the model dtype between steps (prev_sample.to(model_output.dtype))."""
    schedule = flow_schedule(4)
    x = torch.randn(1, 8, 16, 4).to(torch.bfloat16)
    for name in ("euler", "heun", "pingpong"):
        stepper = make_stepper(flow_schedule(4, name), generator=torch.Generator().manual_seed(1))
        assert stepper(x, torch.randn_like(x), 0).dtype == torch.bfloat16
    assert len(schedule.timesteps) == 4


def test_channels_last_layout_decides_pingpong_noise() -> None:
    """CPU normal_ fills strided tensors with another sampler than contiguous ones (why the pipeline keeps
    upstream's channels-last source latents)."""
    like = torch.zeros(1, 8, 16, 22)
    contiguous = draw_normal(like, torch.Generator().manual_seed(7))
    strided = draw_normal(like.contiguous(memory_format=torch.channels_last), torch.Generator().manual_seed(7))
    assert not torch.equal(contiguous, strided)

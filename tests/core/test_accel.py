"""Speed options (acestep_core.runtime.accel): batched guidance equals separate passes; per-item query scales; the
mask-free decode equals the all-ones mask; CUDA graphs and torch.compile replay the eager pass (GPU only)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.config import TransformerConfig
from acestep_core.loading.checkpoint import load_strict
from acestep_core.runtime.accel import Acceleration, Denoiser, release_cuda_graphs
from acestep_core.sampling.conditions import ConditionSet
from acestep_core.sampling.loop import GuidanceConfig, GuidedVelocity
from acestep_core.transformer import ERG_TEMPERATURE, AceStepTransformer
from tests.parity import TINY_CHECKPOINT, require_parity


def tiny_transformer() -> AceStepTransformer:
    """The tiny parity checkpoint's transformer (fp32, CPU); skips without the parity data."""
    require_parity()
    cfg = TransformerConfig.from_json(TINY_CHECKPOINT / "ace_step_transformer/config.json")
    state = load_file(str(TINY_CHECKPOINT / "ace_step_transformer/diffusion_pytorch_model.safetensors"))
    return load_strict(AceStepTransformer(cfg), state, source="tiny", component="transformer").requires_grad_(False)


@pytest.fixture(scope="module")
def model() -> AceStepTransformer:
    return tiny_transformer()


def _conditions(model: AceStepTransformer, batch: int, tokens: int, seed: int) -> ConditionSet:
    gen = torch.Generator().manual_seed(seed)
    dim = model.cfg.model_dim
    cond, uncond, text = (torch.randn(batch, tokens, dim, generator=gen) for _ in range(3))
    mask = torch.ones(batch, tokens)
    mask[:, -2:] = 0  # padded condition tokens
    return ConditionSet(cond, mask, uncond, text)


def _latents(batch: int, frames: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 8, 16, frames, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("double_condition", [False, True])
def test_batched_guidance_equals_separate_passes(model: AceStepTransformer, double_condition: bool) -> None:
    conditions = _conditions(model, batch=2, tokens=9, seed=1)
    config = GuidanceConfig(guidance_scale=7.0, cfg_type="apg", window=(0, 4), do_cfg=True,
                            double_condition=double_condition, guidance_scale_text=5.0, guidance_scale_lyric=2.5,
                            erg_diffusion=True)
    x, t = _latents(2, 13, seed=2), torch.tensor(700.0)
    calls: list[int] = []

    class Counting(Denoiser):
        def __call__(self, x, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(x.shape[0])
            return super().__call__(x, *args, **kwargs)

    batched = GuidedVelocity(Counting(model), conditions, config)(x, t, 0)
    assert calls == [6 if double_condition else 4]
    calls.clear()
    separate = GuidedVelocity(Counting(model, Acceleration(batch_guidance=False)), conditions, config)(x, t, 0)
    assert calls == [2, 2, 2] if double_condition else [2, 2]
    # Each pass agrees to 1e-5 (batch 2 == 2 x batch 1, see test_transformer); the guidance combination scales
    # pass differences by up to |1 - g_t| + |g_t - g_l| + |g_l| = 9 (double condition) or ~g (APG).
    torch.testing.assert_close(batched, separate, rtol=1e-5, atol=1e-4)


def test_per_item_query_scale_equals_scalar_passes(model: AceStepTransformer) -> None:
    conditions = _conditions(model, batch=1, tokens=7, seed=3)
    x, t = _latents(1, 11, seed=4), torch.tensor([500.0])
    states = torch.cat([conditions.cond, conditions.uncond])
    mask = conditions.mask.repeat(2, 1)
    scales = torch.tensor([1.0, ERG_TEMPERATURE])
    both = model.decode(x.repeat(2, 1, 1, 1), None, states, mask, t.expand(2), query_scale=scales)
    one = model.decode(x, None, conditions.cond, conditions.mask, t)
    two = model.decode(x, None, conditions.uncond, conditions.mask, t, query_scale=ERG_TEMPERATURE)
    torch.testing.assert_close(both, torch.cat([one, two]), rtol=1e-5, atol=1e-5)
    assert (one - two).abs().max() > 1e-3  # the ERG scale really changes the unconditional pass


def test_mask_free_decode_equals_all_ones_mask(model: AceStepTransformer) -> None:
    conditions = _conditions(model, batch=2, tokens=6, seed=5)
    x, t = _latents(2, 10, seed=6), torch.tensor([300.0, 600.0])
    free = model.decode(x, None, conditions.cond, conditions.mask, t)
    ones = model.decode(x, torch.ones(2, 10), conditions.cond, conditions.mask, t)
    torch.testing.assert_close(free, ones, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("compile_blocks", [False, True])
def test_cuda_graph_replay_equals_eager(model: AceStepTransformer, compile_blocks: bool) -> None:
    gpu = AceStepTransformer(model.cfg).to("cuda").requires_grad_(False)
    gpu.load_state_dict(model.state_dict(), strict=False)
    conditions = _conditions(model, batch=1, tokens=9, seed=7)
    states, mask = conditions.cond.cuda(), conditions.mask.cuda()
    eager = Denoiser(gpu)
    graphed = Denoiser(gpu, Acceleration(cuda_graphs=True, compile=compile_blocks))
    for seed in range(3):  # capture on the first call, replay with new inputs after
        x, t = _latents(1, 21, seed=10 + seed).cuda(), torch.tensor([100.0 * (seed + 1)], device="cuda")
        torch.testing.assert_close(graphed(x, states, mask, t), eager(x, states, mask, t), rtol=1e-4, atol=1e-4)
    release_cuda_graphs(gpu)

"""``generate`` behaviour beyond the goldens: input validation before any model work, progress / interruption,
batch and seed properties, and the documented divergences (pipeline DIVERGENCES)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from acestep_core import AceStepInputError
from acestep_core.runtime.accel import Acceleration
from acestep_core.sampling.pipeline import GenerationInterrupted, GenerationParams, StepInfo, generate
from acestep_core.sampling.tasks import MAX_FRAMES
from acestep_core.timing import seconds_to_frames

BASE = GenerationParams(prompt="pop", lyrics="[verse]\nla", audio_duration=2.0, infer_step=4, guidance_scale=4.0,
                        cfg_type="cfg", manual_seeds=[1], retake_seeds=[2], guidance_interval=1.0)


class StubTransformer(nn.Module):
    """Cheap stand-in with the encode / decode signatures: the velocity depends on x, t and the condition."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = SimpleNamespace(speaker_embedding_dim=4)
        self.weight = nn.Parameter(torch.zeros(1))
        self.decodes = 0

    def encode(self, text, text_mask, speaker, ids, lyric_mask, *, lyric_query_scale=1.0):
        states = torch.cat([text.mean(-1, keepdim=True), ids[..., None].to(text) * lyric_query_scale], 1)
        return states, torch.ones(states.shape[:2])

    def decode(self, x, frame_mask, states, mask, timestep, *, output_length=None, query_scale=1.0):
        self.decodes += 1
        if isinstance(query_scale, torch.Tensor):  # batched guidance [cond; uncond]: each item its own condition
            condition, query_scale = states.mean(dim=(1, 2))[:, None, None, None], query_scale.view(-1, 1, 1, 1)
        else:
            condition = states.mean()
        return 0.5 * x + 0.01 * condition * query_scale + timestep[:, None, None, None] / 10000


class StubTextEncoder:
    def __call__(self, ids, mask, *, query_scale=1.0):
        return ids[..., None].float().expand(-1, -1, 3) * query_scale


class Untouchable:
    """A model whose use means validation came too late."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"model.{name} used before the inputs were validated")


def _stub_model() -> SimpleNamespace:
    return SimpleNamespace(transformer=StubTransformer(), text_encoder=StubTextEncoder())


def _tokens(text: str) -> tuple[list[list[int]], list[list[int]]]:
    ids = [[len(text) % 7 + 2, 1]]
    return ids, [[1, 1]]


def _run(params: GenerationParams, model: Any = None, **kwargs: Any):
    return generate(model if model is not None else _stub_model(), params, encode_prompt=_tokens,
                    encode_lyrics=lambda s: ([261, 5, 2], [1, 1, 1]), **kwargs)


SRC = torch.randn(1, 8, 16, 22, generator=torch.Generator().manual_seed(5))

# case -> (GenerationParams overrides, source latents, what the error must say)
BAD_INPUTS = {
    "duration_zero": (dict(audio_duration=0.0), None, r"audio_duration: 0.0 s; pass a length in seconds in \(0, 240\]"),
    "duration_negative": (dict(audio_duration=-1.0), None, r"audio_duration: -1.0 s; pass a length"),
    "duration_too_long": (dict(audio_duration=241.0), None,
        r"audio_duration: 241.0 s is longer than the model's 240 s window"),
    "unknown_scheduler": (dict(scheduler_type="ddim"), None,
        r"scheduler_type: unknown 'ddim'; choose one of \['euler', 'heun', 'pingpong'\]"),
    "unknown_cfg": (dict(cfg_type="pag"), None, r"cfg_type: unknown 'pag'; choose one of"),
    "unknown_task": (dict(task="remix"), None, r"task: unknown 'remix'"),
    "zero_steps": (dict(infer_step=0), None, r"infer_step: expected an integer >= 1"),
    "interval_above_one": (dict(guidance_interval=1.5), None,
        r"guidance_interval: expected a value in \[0, 1\].*got 1.5"),
    "interval_negative": (dict(guidance_interval=-0.1), None,
        r"guidance_interval: expected a value in \[0, 1\].*got -0.1"),
    "seed_list_too_short": (dict(batch_size=2, manual_seeds=[1]), None, r"manual_seeds: 1 seeds for batch_size 2"),
    "retake_seed_list_too_long": (dict(retake_seeds=[1, 2]), None, r"retake_seeds: 2 seeds for batch_size 1"),
    "unreadable_seeds": (dict(manual_seeds="1;2"), None, r"manual_seeds: cannot read '1;2'"),
    "heun_with_oss": (dict(scheduler_type="heun", oss_steps="1,3,5"), None,
        r"oss_steps cannot be used with scheduler_type='heun'"),
    "oss_zero_based": (dict(oss_steps="0,2"), None, r"oss_steps: step numbers are 1-based"),
    "repaint_without_source": (dict(task="repaint", repaint_start=0.5, repaint_end=1.0), None,
        r"task 'repaint' needs src_latents"),
    "repaint_past_the_end": (dict(task="repaint", repaint_start=0.5, repaint_end=2.5), SRC,
        r"repaint_end 2.5 s is past the end of the source"),
    "repaint_negative_start": (dict(task="repaint", repaint_start=-0.5, repaint_end=1.0), SRC,
        r"repaint_start -0.5 s is before the start of the source"),
    "repaint_empty": (dict(task="repaint", repaint_start=1.0, repaint_end=1.0), SRC,
        r"repaint_end \(1.0 s\) must be after repaint_start \(1.0 s\)"),
    "repaint_under_one_frame": (dict(task="repaint", repaint_start=1.0, repaint_end=1.02), SRC,
        r"shorter than one latent frame"),
    "repaint_no_step_runs": (dict(task="repaint", repaint_start=0.5, repaint_end=1.0, retake_variance=0.0), SRC,
        r"retake_variance 0.0: no sampling step would run"),
    "extend_negative_left": (dict(task="extend", repaint_start=0.5, repaint_end=3.0), SRC, r"negative left extension"),
    "extend_nothing": (dict(task="extend", repaint_start=0.0, repaint_end=2.0), SRC, r"extends nothing"),
    "extend_end_inside_left_extended": (dict(task="extend", repaint_start=-0.5, repaint_end=2.5), SRC,
        r"inside the left-extended audio"),
    "extend_longer_than_source": (dict(task="extend", repaint_start=-3.0, repaint_end=2.0), SRC,
        r"at most the source length on each side"),
    "source_for_text2music": (dict(), SRC, r"src_latents are only used by tasks"),
    "edit_fractions_swapped": (dict(task="edit", edit_n_min=0.6, edit_n_max=0.2), SRC,
        r"edit_n_min \(0.6\) must not exceed edit_n_max \(0.2\)"),
    "edit_zero_averages": (dict(task="edit", edit_n_avg=0), SRC, r"edit_n_avg: expected an integer >= 1"),
    "audio2audio_without_reference": (dict(task="audio2audio", audio2audio_enable=True), None,
        r"audio2audio needs ref_latents"),
    "strength_above_one": (dict(audio2audio_enable=True, ref_audio_strength=1.5), None,
        r"ref_audio_strength: expected a value in \[0, 1\]"),
    "variance_above_one": (dict(task="retake", retake_variance=1.5), None,
        r"retake_variance: expected a value in \[0, 1\]"),
    "prompt_missing": (dict(prompt=None), None, r"prompt: expected a string"),
}


def test_reference_without_audio2audio_flag_is_refused() -> None:
    with pytest.raises(AceStepInputError, match="audio2audio_enable"):
        _run(BASE, Untouchable(), ref_latents=SRC)


def test_audio2audio_strength_bounds() -> None:
    """Strength 1 runs no step and returns the reference; strength 0 starts from pure noise with N steps."""
    seen: list[StepInfo] = []
    params = replace(BASE, audio2audio_enable=True, ref_audio_strength=1.0)
    result = _run(params, ref_latents=SRC, callback=seen.append)
    assert torch.equal(result.latents, SRC) and not seen and result.params["task"] == "audio2audio"
    _run(replace(params, ref_audio_strength=0.0), ref_latents=SRC, callback=seen.append)
    assert len(seen) == BASE.infer_step


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_before_model_work(case: str) -> None:
    overrides, src, message = BAD_INPUTS[case]
    with pytest.raises(AceStepInputError, match=message):
        _run(replace(BASE, **overrides), Untouchable(), src_latents=src)


def test_duration_error_explains_extend() -> None:
    with pytest.raises(AceStepInputError, match="extend"):
        replace(BASE, audio_duration=300.0).validate()


def test_unknown_upstream_kwarg_is_rejected() -> None:
    with pytest.raises(AceStepInputError, match="unknown"):
        GenerationParams.from_kwargs({"promt": "x"})
    assert GenerationParams.from_kwargs({"prompt": "x", "format": "mp3", "lora_weight": 1.0}).prompt == "x"


@pytest.mark.parametrize(("scheduler", "task", "steps"), [
    ("euler", "text2music", 4), ("heun", "text2music", 7), ("pingpong", "retake", 4),
    ("euler", "repaint", 2), ("euler", "edit", 3), ("pingpong", "edit", 3),
])
def test_callback_counts(scheduler: str, task: str, steps: int) -> None:
    seen: list[StepInfo] = []
    params = replace(BASE, scheduler_type=scheduler, task=task, repaint_start=0.5, repaint_end=1.0,
                     edit_n_min=0.25)
    src = SRC if task in ("repaint", "edit") else None
    result = _run(params, callback=seen.append, src_latents=src)
    assert [info.step for info in seen] == list(range(1, steps + 1))
    assert all(info.total == steps for info in seen)
    assert torch.equal(seen[-1].latents.float(), result.latents)


def test_should_stop_interrupts_before_a_step() -> None:
    seen: list[StepInfo] = []
    with pytest.raises(GenerationInterrupted):
        _run(BASE, callback=seen.append, should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2


def test_same_seed_same_latents_and_record() -> None:
    first, second = _run(BASE), _run(BASE)
    assert torch.equal(first.latents, second.latents)
    assert first.params["actual_seeds"] == [1] and first.params["retake_seeds"] == [2]
    random_seeds = _run(replace(BASE, manual_seeds=None)).params["actual_seeds"]
    assert len(random_seeds) == 1 and 0 <= random_seeds[0] < 2**32


def test_batch_items_follow_their_own_seed() -> None:
    """Noise is per item; without omega's batch-wide mean (omega 0) and with Euler + CFG, item b of a batch run
    equals a batch-1 run with seed b. With omega 10 the batch mean couples the items (upstream quirk)."""
    params = replace(BASE, batch_size=2, manual_seeds=[11, 22], retake_seeds=[1, 2], omega_scale=0.0)
    pair = _run(params).latents
    single = _run(replace(params, batch_size=1, manual_seeds=[22], retake_seeds=[2])).latents
    assert torch.allclose(pair[1:], single, atol=1e-5)
    coupled = _run(replace(params, omega_scale=10.0)).latents
    coupled_single = _run(replace(params, omega_scale=10.0, batch_size=1, manual_seeds=[22], retake_seeds=[2]))
    assert not torch.allclose(coupled[1:], coupled_single.latents, atol=1e-5)


def test_generator_device_cpu_reproduces_cpu_noise() -> None:
    traced: dict[str, torch.Tensor] = {}
    _run(BASE, generator_device="cpu", trace=lambda i, k, t: traced.setdefault(k, t.clone()))
    assert torch.equal(traced["noise.0"], torch.randn((1, 8, 16, 21), generator=torch.Generator().manual_seed(1)))


def test_decay_over_one_step_window_does_not_divide_by_zero() -> None:
    # infer_step 4, interval 0.25 -> window [1, 2): one guided step; upstream raises ZeroDivisionError
    params = replace(BASE, guidance_interval=0.25, guidance_interval_decay=1.0, min_guidance_scale=1.0)
    model = _stub_model()
    batched = _run(params, model).latents
    assert torch.isfinite(batched).all()
    assert model.transformer.decodes == 4  # 3 conditional + 1 batched conditional/unconditional pass
    model = _stub_model()
    separate = _run(params, model, acceleration=Acceleration(batch_guidance=False)).latents
    assert model.transformer.decodes == 5  # 4 conditional + 1 unconditional
    torch.testing.assert_close(batched, separate, rtol=0, atol=1e-7)


def test_edit_target_defaults_to_source() -> None:
    params = replace(BASE, task="edit", edit_n_min=0.25)
    explicit = replace(params, edit_target_prompt=params.prompt, edit_target_lyrics=params.lyrics)
    assert torch.equal(_run(params, src_latents=SRC).latents, _run(explicit, src_latents=SRC).latents)


def _long_source(frames: int) -> torch.Tensor:
    return torch.randn(1, 8, 16, frames, generator=torch.Generator().manual_seed(9))


def test_left_extend_past_240s_reattaches_the_source_tail() -> None:
    src = _long_source(MAX_FRAMES - 10)
    params = replace(BASE, task="extend", repaint_start=-30 / 10.7666, repaint_end=1.0, retake_variance=1.0,
                     infer_step=2)
    out = _run(params, src_latents=src).latents
    left = -seconds_to_frames(params.repaint_start)
    assert out.shape[-1] == left + src.shape[-1]
    kept = out[..., left:]
    assert torch.equal(kept, src)  # window part keeps the source (sigma 0 at the end), tail re-attached in order


def test_right_extend_past_240s_reattaches_the_source_head() -> None:
    src = _long_source(MAX_FRAMES - 10)
    end_s = (MAX_FRAMES + 21) / 10.7666  # 30 frames past the source end
    params = replace(BASE, task="extend", repaint_start=0.0, repaint_end=end_s, retake_variance=1.0, infer_step=2)
    out = _run(params, src_latents=src).latents
    right = seconds_to_frames(end_s) - src.shape[-1]
    assert out.shape[-1] == src.shape[-1] + right
    assert out.shape[0] == 1  # upstream concatenated on the batch axis
    assert torch.equal(out[..., :src.shape[-1]], src)


def test_extend_both_sides_past_240s_is_refused() -> None:
    src = _long_source(MAX_FRAMES - 10)
    params = replace(BASE, task="extend", repaint_start=-2.0, repaint_end=(MAX_FRAMES + 40) / 10.7666,
                     retake_variance=1.0)
    with pytest.raises(AceStepInputError, match="one side"):
        _run(params, Untouchable(), src_latents=src)


def test_flowedit_pingpong_edit_phase_updates() -> None:
    """DIVERGENCES 6: with only an edit phase (n_max 1) the edit update is Euler whatever the scheduler, so the
    fixed PingPong result equals the Euler one (to float32 rounding: the PingPong branch keeps z_edit in float32
    layout-converted buffers); upstream's bug (upstream_bugs=True) returns the source unchanged."""
    params = replace(BASE, task="edit", edit_n_min=0.25, edit_n_max=1.0, edit_target_prompt="jazz")
    euler = _run(params, src_latents=SRC).latents
    pingpong = _run(replace(params, scheduler_type="pingpong"), src_latents=SRC).latents
    torch.testing.assert_close(pingpong, euler)
    assert (euler - SRC.to(euler)).abs().max() > 1e-4  # the stub moves every element by ~8e-4
    buggy = generate(_stub_model(), replace(params, scheduler_type="pingpong"), encode_prompt=_tokens,
                     encode_lyrics=_tokens, src_latents=SRC, upstream_bugs=True).latents
    torch.testing.assert_close(buggy, SRC.to(buggy), rtol=0, atol=0)

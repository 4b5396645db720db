"""``generate``: the ACE-Step v1 sampling pipeline on latents (text2music, retake, repaint, extend, edit,
audio2audio), numerically equivalent to upstream ``ACEStepPipeline.__call__`` up to the decoder.

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py (Apache-2.0). Tokenizers are injected
(``encode_prompt`` / ``encode_lyrics``); audio files are the caller's business (encode them with
``AudioCodec.encode`` and pass latents; decode the result with ``AudioCodec.decode``). LoRA is not handled here.

DIVERGENCES of the pipeline from upstream (everything else matches upstream, quirks included; the divergences of
every module are gathered in DIVERGENCES.md at the repository root):

1. Input validation (:meth:`GenerationParams.validate`, then the tensor checks of :func:`generate`) raises
   :class:`AceStepInputError` before any model work, for values upstream accepts silently or crashes on:
   ``audio_duration <= 0`` (upstream picks a random 30-240 s; here it is an error: pass a duration) or
   ``> 240`` s (extend is how to go longer); unknown scheduler / cfg / task names; ``infer_step < 1``;
   guidance interval / decay, retake variance, strength, edit fractions outside [0, 1]; ``edit_n_avg < 1``;
   seed lists whose length differs from ``batch_size`` (upstream reuses the last seed / drops extras);
   Heun with ``oss_steps`` (upstream: ValueError from diffusers); repaint windows that are empty, shorter
   than one latent frame or outside the source (upstream turns the latter into an extend); extend requests
   that extend nothing or have a negative side; repaint/extend with so little variance that no step would
   run (upstream returns the raw noise); latents given to tasks that do not use them; repaint / edit sources and
   audio2audio references longer than the model's 240 s window (upstream runs them and returns a song past the
   length the model was trained for; extend keeps working on long songs through its window).
2. Guidance decay over a one-step guidance window uses the full scale (upstream: ZeroDivisionError).
3. Extend: ``extend_both_equal``-type requests (right end inside the left-extended audio, upstream
   AssertionError), a side longer than the source (upstream AssertionError) and both-side extends beyond
   240 s raise a clear :class:`AceStepInputError`. Beyond 240 s, the frames cut off to fit the 2583-frame
   window are taken from the source before truncation (upstream: after, duplicating frames) and re-attached
   along time on their own side (upstream: on the batch axis / the wrong tensor).
4. ``edit_target_prompt`` / ``edit_target_lyrics`` = ``None`` mean "same as the source" (upstream crashes;
   its UI copies the source). ``lyrics=None`` means no lyrics.
5. Source / reference latents with batch 1 are expanded to ``batch_size``.
6. FlowEdit with PingPong: upstream computes the edit-phase update but never assigns it (the edit phase is a
   no-op); here it is applied (the PingPong step noise is still drawn, so the target phase's random stream is
   unchanged). ``generate(..., upstream_bugs=True)`` reproduces the bug (the ``edit_remix_pingpong`` golden).
   Upstream also keeps the edited latents in float32 after the first PingPong update and feeds them to the
   model, which fails with a bf16 model; the model input is cast to the model dtype (no change in float32).
7. ERG is computed with explicit query scales instead of forward hooks, and the ERG-tag prompt states are
   only computed when they are used (ERG-lyric on); numbers are unchanged.

Kept upstream quirks (pinned by the goldens or part of the model's behaviour): double / triple sigma
shift, audio2audio noise-level mismatch, the Heun guidance window computed from N over 2N - 1 iterations,
Heun / PingPong replaced by masked Euler updates in repaint / extend, the left-extended timeline of
``repaint_end`` when extending both sides (pinned by ``extend_both``), a whole-track repaint behaving as a
retake, batch coupling (omega mean over the batch, PingPong noise from generator 0), the repaint /
audio2audio step count taken from ``max(oss_steps)``.

Seeds: same seed, same noise as upstream. Generators are per batch item on ``generator_device`` (CPU ones
reproduce the CPU goldens, CUDA ones upstream's GPU runs), drawn in upstream's order. Source / reference
latents are put in channels-last layout, the layout upstream's DCAE encoder returns: ``torch.normal_`` fills
strided tensors with a different sampler, so PingPong's ``empty_like(latents).normal_()`` draws in
audio2audio and edit only match upstream with that layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..errors import AceStepInputError, check_latent_shape
from ..runtime.accel import Acceleration, Denoiser
from .conditions import LyricTokens, PromptStates, build_edit_conditions, encode_prompt_states, lyric_tokens
from .guidance import uses_guidance
from .loop import GenerationInterrupted, Progress, StepInfo
from .noise import make_generators, resolve_seeds
from .params import GenerationParams
from .schedule import flow_schedule, parse_oss_steps
from .tasks_edit import EditConfig, edit_phase_bounds, run_flowedit
from .text2music import Text2MusicInputs, frames_for, run_text2music
from .validation import check_tensors

__all__ = ["GenerationInterrupted", "GenerationParams", "GenerationResult", "StepInfo", "generate", "token_lookup"]

TokenizeFn = Callable[[str], tuple[Any, Any]]


def token_lookup(tokens: Mapping[str, tuple[Any, Any]], what: str) -> TokenizeFn:
    """An ``encode_prompt`` / ``encode_lyrics`` function answering from ``tokens`` computed in advance (so
    tokenization errors surface before any model work); raises for texts not tokenized in advance."""

    def lookup(text: str) -> tuple[Any, Any]:
        if text not in tokens:
            raise AceStepInputError(f"{what} {text[:40]!r} was not tokenized in advance")
        return tokens[text]

    return lookup

@dataclass
class GenerationResult:
    """``latents`` [B, 8, 16, T] float32 and ``params``: upstream's returned parameter record (``task``
    renamed to ``audio2audio``, parsed ``oss_steps``, ``actual_seeds``, ``retake_seeds``, ...)."""

    latents: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)


def _model_device_dtype(transformer: Any) -> tuple[torch.device, torch.dtype]:
    param = next(transformer.parameters())
    return param.device, param.dtype


def _prepare_latents(latents: torch.Tensor | None, name: str, batch: int, device: torch.device,
                     dtype: torch.dtype) -> torch.Tensor | None:
    if latents is None:
        return None
    check_latent_shape(latents, channels=8, height=16, name=name)
    if latents.shape[0] not in (1, batch):
        raise AceStepInputError(f"{name}: batch {latents.shape[0]} does not match batch_size {batch}; "
                                "pass one latent (it is repeated) or one per batch item")
    # Upstream's DCAE encoder hands out channels-last latents, and the layout decides the values of the
    # ``empty_like(...).normal_()`` draws of PingPong (audio2audio, edit): keep that layout for the same noise.
    latents = latents.to(device=device, dtype=dtype).expand(batch, -1, -1, -1)
    return latents.contiguous(memory_format=torch.channels_last)


def _encode(encode_prompt: TokenizeFn, encode_lyrics: TokenizeFn, text_encoder: Any, prompt: str,
            lyrics: str, *, batch: int, device: torch.device, dtype: torch.dtype, erg_tag: bool):
    ids, mask = encode_prompt(prompt)
    states = encode_prompt_states(text_encoder, ids, mask, batch_size=batch, device=device, erg_tag=erg_tag)
    states = PromptStates(states.states.to(dtype), states.mask,
                          None if states.erg_states is None else states.erg_states.to(dtype))
    lyric_ids, lyric_mask = encode_lyrics(lyrics) if lyrics else ([0], [0])
    return states, lyric_tokens(lyric_ids, lyric_mask, batch_size=batch, device=device)


def _record(params: GenerationParams, task: str, seeds: list[int], retake_seeds: list[int],
            oss_steps: list[int], timecosts: dict[str, float]) -> dict[str, Any]:
    record = asdict(params)
    record.update(task=task, oss_steps=oss_steps, actual_seeds=seeds, retake_seeds=retake_seeds,
                  timecosts=timecosts)
    if task == "retake":
        record.update(repaint_start=0, repaint_end=params.audio_duration)
    if task == "edit":  # upstream records the target texts (here: the source ones when no target was given)
        record.update(prompt=params.prompt if params.edit_target_prompt is None else params.edit_target_prompt,
                      lyrics=params.lyrics if params.edit_target_lyrics is None else params.edit_target_lyrics)
    return record


def _run_edit(model: Any, params: GenerationParams, src: torch.Tensor, encode_prompt: TokenizeFn,
              encode_lyrics: TokenizeFn, retake_generators: list[torch.Generator], progress_args: dict[str, Any],
              device: torch.device, dtype: torch.dtype, trace: Callable[..., None] | None,
              upstream_bugs: bool, acceleration: Acceleration | None) -> torch.Tensor:
    batch = params.batch_size
    target_prompt = params.prompt if params.edit_target_prompt is None else params.edit_target_prompt
    target_lyrics = (params.lyrics or "") if params.edit_target_lyrics is None else params.edit_target_lyrics
    def encode(prompt: str, lyrics: str) -> tuple[PromptStates, LyricTokens]:
        return _encode(encode_prompt, encode_lyrics, model.text_encoder, prompt, lyrics, batch=batch, device=device,
                       dtype=dtype, erg_tag=False)

    src_prompt, src_lyrics = encode(params.prompt or "", params.lyrics or "")
    tar_prompt, tar_lyrics = encode(target_prompt or "", target_lyrics)
    do_cfg = uses_guidance(params.guidance_scale)
    source = build_edit_conditions(model.transformer, src_prompt, src_lyrics, doubled=do_cfg)
    target = build_edit_conditions(model.transformer, tar_prompt, tar_lyrics, doubled=do_cfg)
    config = EditConfig(params.guidance_scale, params.edit_n_min, params.edit_n_max, params.edit_n_avg, do_cfg,
                        pingpong=params.scheduler_type == "pingpong", upstream_pingpong_bug=upstream_bugs)
    schedule = flow_schedule(params.infer_step, "euler")
    first, _ = edit_phase_bounds(params.infer_step, config)
    progress = Progress(params.infer_step - first, **progress_args)
    return run_flowedit(Denoiser(model.transformer, acceleration), source, target, src, schedule, config,
                        retake_generators, progress=progress, trace=trace)


@torch.no_grad()
def generate(model: Any, params: GenerationParams, *, encode_prompt: TokenizeFn, encode_lyrics: TokenizeFn,
             src_latents: torch.Tensor | None = None, ref_latents: torch.Tensor | None = None,
             device: torch.device | str | None = None, dtype: torch.dtype | None = None,
             callback: Callable[[StepInfo], None] | None = None, should_stop: Callable[[], bool] | None = None,
             generator_device: str | torch.device | None = None,
             trace: Callable[[int, str, torch.Tensor], None] | None = None,
             upstream_bugs: bool = False, acceleration: Acceleration | None = None) -> GenerationResult:
    """Run one ACE-Step v1 generation and return its latents.

    Args:
        model: needs ``.transformer`` (:class:`AceStepTransformer`) and ``.text_encoder`` (:class:`UMT5Encoder`),
            e.g. a :class:`LoadedCheckpoint`.
        params: upstream ``__call__`` arguments (validated first).
        encode_prompt: prompt -> ``(input_ids, attention_mask)`` ``[1, L]`` (UMT5 tokenizer, ``</s>`` appended).
        encode_lyrics: lyrics -> ``(ids, mask)`` ``[1, L]``; not called for empty lyrics (``[[0]]``/``[[0]]``).
        src_latents: [1 or B, 8, 16, S] source for repaint / extend / edit.
        ref_latents: [1 or B, 8, 16, R] reference for audio2audio (``params.audio2audio_enable``).
        device, dtype: default to the transformer's; latents stay in ``dtype`` between steps, as upstream.
        callback: called with :class:`StepInfo` after every sampling step that runs.
        should_stop: checked before every step; ``True`` raises :class:`GenerationInterrupted`.
        generator_device: where the per-item seed generators live (default: ``device``). ``"cpu"`` gives the
            same noise on every device (the CPU goldens); ``"cuda"`` matches upstream GPU runs.
        trace: debugging hook ``trace(step, name, tensor)`` (noise draws and scheduler step tensors).
        upstream_bugs: reproduce the upstream bugs this module fixes where a golden pins them (currently the
            FlowEdit + PingPong edit phase that never updates, DIVERGENCES item 6).
        acceleration: how the transformer passes run, see :class:`acestep_core.runtime.accel.Acceleration`
            (``None``: plain batched passes; the nodes and the CLI pass their defaults, CUDA graphs and
            ``torch.compile`` where safe).
    """
    params.validate()
    task = "audio2audio" if params.audio2audio_enable and ref_latents is not None else params.task
    check_tensors(params, task, src_latents, ref_latents)
    model_device, model_dtype = _model_device_dtype(model.transformer)
    device = torch.device(device) if device is not None else model_device
    dtype = dtype or model_dtype
    batch = params.batch_size
    src = _prepare_latents(src_latents, "src_latents", batch, device, dtype)
    ref = _prepare_latents(ref_latents, "ref_latents", batch, device, dtype)
    seeds = resolve_seeds(batch, params.manual_seeds)
    retake_seeds = resolve_seeds(batch, params.retake_seeds)
    gen_device = torch.device(generator_device) if generator_device is not None else device
    generators, retake_generators = make_generators(seeds, gen_device), make_generators(retake_seeds, gen_device)
    oss_steps = parse_oss_steps(params.oss_steps)
    progress_args: dict[str, Any] = dict(callback=callback, should_stop=should_stop)
    started = time.perf_counter()
    if task == "edit":
        assert src is not None
        latents = _run_edit(model, params, src, encode_prompt, encode_lyrics, retake_generators, progress_args,
                            device, dtype, trace, upstream_bugs, acceleration)
    else:
        prompt, lyrics = _encode(encode_prompt, encode_lyrics, model.text_encoder, params.prompt or "",
                                 params.lyrics or "", batch=batch, device=device, dtype=dtype,
                                 erg_tag=params.use_erg_tag and params.use_erg_lyric)
        inputs = Text2MusicInputs(task, batch, frames_for(task, params.audio_duration, src, ref), params,
                                  oss_steps, src, ref)
        latents = run_text2music(model.transformer, inputs, prompt, lyrics, generators=generators,
                                 retake_generators=retake_generators, device=device, dtype=dtype,
                                 trace=trace, acceleration=acceleration, **progress_args)
    timecosts = {"diffusion": time.perf_counter() - started}
    return GenerationResult(latents.to(torch.float32),
                            _record(params, task, seeds, retake_seeds, oss_steps, timecosts))

"""Sampler and flow-edit nodes: widgets + guidance options + conditioning + latent -> ``GenerationParams`` ->
:func:`acestep_core.sampling.pipeline.generate` -> LATENT.

Task mapping of the sampler (from the latent it is given):

=========================================  ======================================================
latent                                      task
=========================================  ======================================================
empty (all zeros), ``retake_variance`` = 0  text2music (duration = latent length)
empty, ``retake_variance`` > 0              retake (variation of the song ``seed`` gives)
marked by the Repaint Window node           repaint (window + variance from the marker)
marked by the Extend Latent node            extend (source = the latent without its padding)
holding audio, unmarked                     audio2audio (``audio2audio_strength`` = ref_audio_strength)
=========================================  ======================================================

Seeds: ``seed`` for item 0, ``seed + i`` for item i, unless ``seeds`` lists one seed per item (comma list).
Retake seeds (retake / repaint / extend): ``retake_seeds`` list, else ``seed + 1 + i``. Flow-edit uses the
seed list as its noise seeds (upstream's retake seeds). The output LATENT carries the upstream generation record
under ``acestep_params`` (actual seeds included) for the save node.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from acestep_core.sampling.choices import CFG_TYPES, EDIT_SCHEDULERS, SCHEDULERS
from acestep_core.timing import frames_to_duration, seconds_to_frames

from . import comfy_adapter as adapter
from .conditioning import GUIDANCE_DEFAULTS
from .latent import has_audio, read_latent
from .types import (
    CATEGORY,
    CONDITIONING,
    EDIT_SOURCE_KEY,
    GUIDANCE,
    LATENT,
    LATENT_TYPE,
    LORA_KEY,
    LORA_WEIGHT_KEY,
    MAX_SECONDS,
    MODEL,
    PARAMS_KEY,
    TASK_KEY,
)
from .words import in_node_words

SEED_MAX = 2**32 - 1
# the optional ``acceleration`` input: label -> acestep_core.runtime.accel.Acceleration arguments
DEFAULT_ACCELERATION = "fastest (default)"
ACCELERATION_CHOICES: dict[str, dict[str, bool]] = {
    DEFAULT_ACCELERATION: {"cuda_graphs": True, "compile": True, "auto": True},
    "batched": {},
    "batched + CUDA graphs": {"cuda_graphs": True},
    "batched + CUDA graphs + torch.compile": {"cuda_graphs": True, "compile": True},
    "separate passes (original)": {"batch_guidance": False},
    "batched + torch.compile": {"compile": True},
}
# labels saved by earlier versions: "batched (default)" was the default, so it still means the default
LEGACY_ACCELERATION = {"batched (default)": DEFAULT_ACCELERATION}
ACCELERATION_TOOLTIP = (
    "How the transformer passes run. fastest (default): batched guidance, CUDA graphs and torch.compile wherever "
    "they are safe (on CUDA with every weight on the GPU; with ComfyUI's partial lowvram loading, on the CPU or "
    "without Triton it runs batched; under ComfyUI's cudaMallocAsync allocator CUDA graphs without compile; the "
    "first song of a new length compiles for a few seconds). batched: the conditional and unconditional passes "
    "of a guided step as one batch, nothing else. CUDA graphs: each pass shape is captured once and replayed "
    "(CUDA only; under cudaMallocAsync without compile). torch.compile: compiles the DiT blocks once per song "
    "length (needs Triton; tens of seconds the first time in a process). separate passes: one pass after the "
    "other, as the original app (for A/B checks). A choice that cannot run falls back to batched passes.")


def parse_seed_list(text: str, batch: int, name: str) -> list[int] | None:
    """``"1, 2, 3"`` -> one seed per batch item (a single seed is used for every item); ``""`` -> None."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [part.strip() for part in text.replace(";", ",").split(",")]
    if not all(parts):
        raise ValueError(f"{name}: {text!r} has an empty entry between commas; write integers like '1, 2, 3'")
    try:
        seeds = [int(part) for part in parts]
    except ValueError as e:
        raise ValueError(f"{name}: cannot read {text!r} as seeds; write integers separated by commas") from e
    if len(seeds) == 1:
        seeds = seeds * batch
    if len(seeds) != batch or any(not 0 <= s <= SEED_MAX for s in seeds):
        raise ValueError(f"{name}: {len(seeds)} seed(s) for a batch of {batch}; give one seed per batch item "
                         f"(or one for all), each in [0, {SEED_MAX}]")
    return seeds


def _check_conditioning(conditioning: Any, name: str) -> dict[str, Any]:
    if not isinstance(conditioning, dict) or "prompt_tokens" not in conditioning:
        raise ValueError(f"{name}: expected the output of 'ACE-Step v1 Text Encode' (ACESTEP_CONDITIONING)")
    return conditioning


def _encoders(*conditionings: dict[str, Any]) -> tuple[Any, Any]:
    from acestep_core.sampling.pipeline import token_lookup

    prompts = {c["prompt"]: c["prompt_tokens"] for c in conditionings}
    lyrics = {c["lyrics"]: c["lyric_tokens"] for c in conditionings if c["lyric_tokens"] is not None}
    return token_lookup(prompts, "prompt"), token_lookup(lyrics, "lyrics")


def _guidance_fields(guidance: dict[str, Any] | None) -> dict[str, Any]:
    options = {**GUIDANCE_DEFAULTS, **(guidance or {})}
    oss = options.pop("oss_steps")
    return {**options, "oss_steps": oss.strip() or None if isinstance(oss, str) else oss}


def _duration(frames: int) -> float:
    """``audio_duration`` for a latent of ``frames`` (what the record says; the model's window at most, as the CLI:
    tasks with a source take their length from it, and a too-long source is refused with its own message)."""
    return min(frames_to_duration(frames), MAX_SECONDS)


def _task_fields(latent: dict[str, Any], samples: torch.Tensor, retake_variance: float,
                 audio2audio_strength: float) -> tuple[dict[str, Any], torch.Tensor | None, torch.Tensor | None]:
    """``GenerationParams`` task fields + (src_latents, ref_latents) for the mapping in the module docstring."""
    from acestep_core.sampling.windows import extend_window_for_frames

    marker = latent.get(TASK_KEY)
    frames = samples.shape[-1]
    if marker is not None and marker.get("task") == "repaint":
        return ({"task": "repaint", "repaint_start": marker["start_s"], "repaint_end": marker["end_s"],
                 "retake_variance": marker["variance"], "audio_duration": _duration(frames)}, samples, None)
    if marker is not None and marker.get("task") == "extend":
        left, right = marker["left_frames"], marker["right_frames"]
        src = samples[..., left:frames - right]
        start, end = extend_window_for_frames(src.shape[-1], marker["left_s"], marker["right_s"])
        return ({"task": "extend", "repaint_start": start, "repaint_end": end, "retake_variance": marker["variance"],
                 "audio_duration": _duration(src.shape[-1])}, src, None)
    if marker is not None:
        raise ValueError(f"latent: unknown ACE-Step task marker {marker!r}")
    if has_audio(samples):
        return ({"task": "text2music", "audio2audio_enable": True, "ref_audio_strength": audio2audio_strength,
                 "audio_duration": _duration(frames)}, None, samples)
    fields = {"task": "retake" if retake_variance > 0 else "text2music", "audio_duration": _duration(frames)}
    if retake_variance > 0:
        fields["retake_variance"] = retake_variance
    return fields, None, None


def sampling_memory_required(model: Any, params: Any, src: torch.Tensor | None, ref: torch.Tensor | None) -> int:
    """Bytes sampling needs beyond the weights, for ``load_models_gpu(memory_required=...)``: the longest of the
    requested duration and the source / reference latents (extend: the 240 s window, an upper bound)."""
    from acestep_core.runtime.offload import sampling_memory_bytes
    frames = max([seconds_to_frames(params.audio_duration)] + [t.shape[-1] for t in (src, ref) if t is not None])
    if params.task == "extend":
        frames = max(frames, seconds_to_frames(MAX_SECONDS))
    width = model.transformer.module.cfg.inner_dim
    return sampling_memory_bytes(params.batch_size, frames, width, model.dtype)


def acceleration_from_choice(choice: str | None) -> Any:
    """The ``acceleration`` input's label -> :class:`~acestep_core.runtime.accel.Acceleration` (None/"" = default;
    labels of earlier versions are accepted, see ``LEGACY_ACCELERATION``)."""
    from acestep_core.runtime.accel import Acceleration

    choice = LEGACY_ACCELERATION.get(choice or DEFAULT_ACCELERATION, choice or DEFAULT_ACCELERATION)
    if choice not in ACCELERATION_CHOICES:
        raise ValueError(f"acceleration: unknown choice {choice!r}; choose one of {list(ACCELERATION_CHOICES)}")
    return Acceleration(**ACCELERATION_CHOICES[choice])


def validate_acceleration(acceleration: str | None = None) -> bool | str:
    """``VALIDATE_INPUTS`` of the nodes with the input: ComfyUI then accepts the legacy labels too."""
    try:
        acceleration_from_choice(acceleration)
    except ValueError as e:
        return str(e)
    return True


def _acceleration_input() -> dict[str, Any]:
    return {"acceleration": (list(ACCELERATION_CHOICES), {"default": DEFAULT_ACCELERATION,
                                                          "tooltip": ACCELERATION_TOOLTIP})}


def _accelerate(accel: Any, choice: str | None, device: Any) -> Any:
    """The acceleration for ``device``: an explicitly chosen torch.compile is dropped with one warning off CUDA (its
    CPU backend fails on the DiT blocks); the default plans compile only where it is safe, silently."""
    import dataclasses
    import logging

    explicit = LEGACY_ACCELERATION.get(choice or "", choice) not in (None, DEFAULT_ACCELERATION)
    if explicit and accel.compile and getattr(device, "type", "cpu") != "cuda":
        logging.getLogger(__name__).warning(
            "ACE-Step: acceleration %r: torch.compile works on CUDA only, this server runs on %s; sampling without "
            "it (choose %r to silence this)", choice, device, DEFAULT_ACCELERATION)
        accel = dataclasses.replace(accel, compile=False)
    return accel


def _lora_record(model: Any) -> dict[str, Any]:
    """What the save node records of the model's LoRAs: the first one (the original app's format has one), with
    the original app's lora_weight that reproduces it (strength x trained scale)."""
    loras = getattr(model, "loras", ())
    if not loras:
        return {}
    from acestep_core.lora.merge import unit_scale

    name, spec = loras[0]
    if len(loras) > 1:
        import logging

        logging.getLogger(__name__).warning("ACE-Step: the saved _input_params.json names one LoRA only (the original "
                                            "app's format): %s; the workflow embedded in the audio has them all", name)
    scales = {unit_scale(spec.lora, mod, spec.rule) for mod in spec.lora.modules.values()}
    weight = spec.strength * scales.pop() if len(scales) == 1 else spec.strength
    return {LORA_KEY: name, LORA_WEIGHT_KEY: weight}


def run_generation(model: Any, fields: dict[str, Any], conditionings: list[dict[str, Any]],
                   src: torch.Tensor | None, ref: torch.Tensor | None, node_id: str | None,
                   acceleration: str | None = None) -> dict[str, Any]:
    """Validate, load the models, generate with progress + interrupt, and wrap the result as a LATENT.

    CUDA graphs captured for the run stay cached for the next prompts while ComfyUI keeps the transformer loaded
    (the loader releases them when ComfyUI unloads it, see ``adapter.wrap_module``); standalone, where the models
    leave the GPU after each run, they are released at the end of the run. Errors name the widgets to change
    (:mod:`nodes.words`); NaN / inf latents are an error naming the likely cause."""
    from acestep_core.errors import AceStepInputError, NonFiniteResultError
    from acestep_core.runtime.accel import release_cuda_graphs
    from acestep_core.sampling.pipeline import GenerationInterrupted, GenerationParams, generate
    from acestep_core.sampling.validation import check_finite_result

    accel = acceleration_from_choice(acceleration)
    params = GenerationParams(**fields)
    try:
        params.validate()
        encode_prompt, encode_lyrics = _encoders(*conditionings)
        handles = [model.transformer, model.text_encoder]
        with adapter.models_loaded(handles, sampling_memory_required(model, params, src, ref)):
            device = model.transformer.device
            accel = _accelerate(accel, acceleration, device)
            bar = adapter.ProgressBar(params.infer_step, node_id)
            try:
                result = generate(SimpleNamespace(transformer=model.transformer.module,
                                                  text_encoder=model.text_encoder.module),
                                  params, encode_prompt=encode_prompt, encode_lyrics=encode_lyrics,
                                  src_latents=None if src is None else src.to(device),
                                  ref_latents=None if ref is None else ref.to(device), device=device,
                                  dtype=model.dtype, callback=lambda info: bar.update(info.step, info.total),
                                  should_stop=adapter.interrupt_requested, acceleration=accel)
            except GenerationInterrupted as e:
                adapter.raise_interrupted(e)
                raise
            finally:
                if not adapter.keeps_models_loaded():  # standalone: the weights move away, the graphs' memory goes
                    release_cuda_graphs(model.transformer.module)
        samples = result.latents.to(adapter.intermediate_device(), torch.float32)
        check_finite_result(samples, "latents", params, model.dtype)
    except AceStepInputError as e:
        raise AceStepInputError(in_node_words(str(e))) from e
    except NonFiniteResultError as e:
        raise NonFiniteResultError(in_node_words(str(e))) from e
    record = {**result.params, **_lora_record(model)}
    if params.task == "edit":
        record[EDIT_SOURCE_KEY] = (params.prompt or "", params.lyrics or "")
    return {"samples": samples, "type": LATENT_TYPE, PARAMS_KEY: record}


def _common_inputs() -> dict[str, Any]:
    return {
        "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                         "tooltip": "Noise seed of the first batch item (item i uses seed + i)."}),
        "steps": ("INT", {"default": 60, "min": 1, "max": 1000, "tooltip": "Sampling steps (original app: 60)."}),
        "guidance_scale": ("FLOAT", {"default": 15.0, "min": 0.0, "max": 200.0, "step": 0.1,
                                     "tooltip": "Classifier-free guidance scale (original app: 15; <= 1 = off)."}),
    }


class AceStepV1Sampler:
    """Generate with ACE-Step v1: text2music, retake, repaint, extend or audio2audio, chosen by the latent
    (see the table in the module docstring)."""

    TITLE = "ACE-Step v1 Sampler"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Generated audio LATENT (with the generation record for the save node).",)
    FUNCTION = "sample"
    DESCRIPTION = __doc__
    VALIDATE_INPUTS = staticmethod(validate_acceleration)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model."}),
            "conditioning": (CONDITIONING, {"tooltip": "Tags + lyrics from 'ACE-Step v1 Text Encode'."}),
            "latent": (LATENT, {"tooltip": (
                "Empty latent = text2music (or retake); repaint/extend-marked latent = repaint/extend; a latent "
                "holding audio = audio2audio.")}),
            **_common_inputs(),
            "scheduler": (list(SCHEDULERS), {"default": "euler", "tooltip": "Sampler of the original app."}),
            "cfg_type": (list(CFG_TYPES), {"default": "apg", "tooltip": "Guidance formula (original app: apg)."}),
            "omega_scale": ("FLOAT", {"default": 10.0, "min": -100.0, "max": 100.0, "step": 0.1,
                                      "tooltip": "Granularity: larger = more detail / variation per step."}),
            "retake_variance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Empty latent only: > 0 makes a retake (variation) of the song this seed gives; 0 = off.")}),
            "audio2audio_strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Latent holding audio only: how close to stay to it (1 = unchanged, 0 = ignore it).")}),
        }, "optional": {
            "guidance": (GUIDANCE, {"tooltip": "Advanced guidance options (defaults of the original app if absent)."}),
            "seeds": ("STRING", {"default": "", "tooltip": "Per-item seeds '1,2,3' (overrides seed; empty = off)."}),
            "retake_seeds": ("STRING", {"default": "", "tooltip": (
                "Retake/repaint/extend noise seeds '1,2,3' (empty = seed + 1 + item).")}),
            **_acceleration_input(),
        }, "hidden": {"unique_id": "UNIQUE_ID"}}

    def sample(self, model: Any, conditioning: Any, latent: Any, seed: int, steps: int, guidance_scale: float,
               scheduler: str, cfg_type: str, omega_scale: float, retake_variance: float,
               audio2audio_strength: float, guidance: dict[str, Any] | None = None, seeds: str = "",
               retake_seeds: str = "", acceleration: str = DEFAULT_ACCELERATION,
               unique_id: str | None = None) -> tuple[dict[str, Any]]:
        conditioning = _check_conditioning(conditioning, "conditioning")
        samples = read_latent(latent)
        task, src, ref = _task_fields(latent, samples, retake_variance, audio2audio_strength)
        batch = samples.shape[0]
        fields = {
            **_guidance_fields(guidance), **task, "prompt": conditioning["prompt"], "lyrics": conditioning["lyrics"],
            "infer_step": steps, "guidance_scale": guidance_scale, "scheduler_type": scheduler, "cfg_type": cfg_type,
            "omega_scale": omega_scale, "batch_size": batch,
            "manual_seeds": parse_seed_list(seeds, batch, "seeds") or [(seed + i) % (SEED_MAX + 1)
                                                                       for i in range(batch)],
            "retake_seeds": parse_seed_list(retake_seeds, batch, "retake_seeds") or [
                (seed + 1 + i) % (SEED_MAX + 1) for i in range(batch)],
        }
        return (run_generation(model, fields, [conditioning], src, ref, unique_id, acceleration),)


class AceStepV1FlowEdit:
    """Flow-edit a song: change its tags and/or lyrics (source -> target conditioning) while keeping the rest."""

    TITLE = "ACE-Step v1 Flow Edit"
    CATEGORY = CATEGORY
    RETURN_TYPES = (LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The edited song's LATENT.",)
    FUNCTION = "edit"
    DESCRIPTION = __doc__
    VALIDATE_INPUTS = staticmethod(validate_acceleration)

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        unit = {"min": 0.0, "max": 1.0, "step": 0.01}
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model."}),
            "source_conditioning": (CONDITIONING, {"tooltip": "Tags + lyrics that describe the source song."}),
            "target_conditioning": (CONDITIONING, {"tooltip": "Tags + lyrics the edited song should have."}),
            "latent": (LATENT, {"tooltip": "Latent of the source song (from Audio To Latent or a sampler)."}),
            **_common_inputs(),
            "scheduler": (list(EDIT_SCHEDULERS), {"default": "euler", "tooltip": "Sampler of the edit."}),
            "edit_n_min": ("FLOAT", {"default": 0.0, **unit, "tooltip": "Fraction of the steps where editing starts."}),
            "edit_n_max": ("FLOAT", {"default": 1.0, **unit, "tooltip": "Fraction of the steps where editing stops."}),
            "edit_n_avg": ("INT", {"default": 1, "min": 1, "max": 16,
                                   "tooltip": "Noise draws averaged per edit step (smoother, slower)."}),
        }, "optional": {
            "seeds": ("STRING", {"default": "", "tooltip": "Per-item seeds '1,2,3' (overrides seed; empty = off)."}),
            **_acceleration_input(),
        }, "hidden": {"unique_id": "UNIQUE_ID"}}

    def edit(self, model: Any, source_conditioning: Any, target_conditioning: Any, latent: Any, seed: int,
             steps: int, guidance_scale: float, scheduler: str, edit_n_min: float, edit_n_max: float,
             edit_n_avg: int, seeds: str = "", acceleration: str = DEFAULT_ACCELERATION,
             unique_id: str | None = None) -> tuple[dict[str, Any]]:
        source = _check_conditioning(source_conditioning, "source_conditioning")
        target = _check_conditioning(target_conditioning, "target_conditioning")
        if (source["prompt"], source["lyrics"]) == (target["prompt"], target["lyrics"]):
            raise ValueError("flow edit: source_conditioning and target_conditioning have the same tags and lyrics, "
                             "so nothing would change; write the new tags and/or lyrics into the Text Encode node "
                             "connected to target_conditioning")
        samples = read_latent(latent)
        if not has_audio(samples) or latent.get(TASK_KEY) is not None:
            raise ValueError("flow edit needs the unmarked latent of the source song (from Audio To Latent or a "
                             "sampler), not an empty or repaint/extend-marked latent")
        batch = samples.shape[0]
        item_seeds = parse_seed_list(seeds, batch, "seeds") or [(seed + i) % (SEED_MAX + 1) for i in range(batch)]
        fields = {
            "task": "edit", "prompt": source["prompt"], "lyrics": source["lyrics"],
            "edit_target_prompt": target["prompt"], "edit_target_lyrics": target["lyrics"],
            "edit_n_min": edit_n_min, "edit_n_max": edit_n_max, "edit_n_avg": edit_n_avg,
            "infer_step": steps, "guidance_scale": guidance_scale, "scheduler_type": scheduler,
            "audio_duration": _duration(samples.shape[-1]), "batch_size": batch,
            "manual_seeds": item_seeds, "retake_seeds": item_seeds,
        }
        return (run_generation(model, fields, [source, target], samples, None, unique_id, acceleration),)

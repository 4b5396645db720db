"""Execution for ``python -m acestep_core generate``: a validated :class:`~acestep_core.cli.plan.RunPlan`
-> files on disk.

Loads the checkpoint (downloading the default one when none is given), tokenizes the prompt, encodes the
source/reference audio, generates, decodes and writes the audio files with their ``_input_params.json``
sidecars (+ optional latents). Progress goes to stderr; nothing here validates user input.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..audio.files import AudioInfo
from ..errors import AceStepInputError, CheckpointError
from ..hub import checkpoint_cache_dir, download_checkpoint, snapshot
from .params_io import LORA_NONE
from .plan import LoraRequest, RunPlan

logger = logging.getLogger("acestep_core.cli")  # the CLI's one logger name

__all__ = ["execute"]

DEFAULT_SAMPLE_RATE = 48000  # upstream latents2audio
OFFLINE_HINT = "pass --checkpoint PATH to a downloaded copy of the model"


def _progress(quiet: bool) -> Any:
    """A ``callback(StepInfo)`` drawing a tqdm bar (if installed) or log lines on stderr."""
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    state: dict[str, Any] = {}

    def callback(info: Any) -> None:
        if tqdm is not None:
            if "bar" not in state:
                state["bar"] = tqdm(total=info.total, desc="sampling", unit="step", file=sys.stderr)
            bar = state["bar"]
            bar.update(info.step - bar.n)
            if info.step >= info.total:
                bar.close()
        elif info.step == info.total or info.step % max(1, info.total // 10) == 0:
            logger.info("sampling step %d/%d", info.step, info.total)

    return callback


def _encode_audio(codec: Any, info: AudioInfo | None, device: torch.device, what: str) -> torch.Tensor | None:
    if info is None:
        return None
    from ..audio.files import read_audio

    audio, sample_rate = read_audio(info.path, what=what)
    return codec.encode(audio[None].to(device), sample_rate)


def _load(plan: RunPlan) -> Any:
    """The checkpoint on ``plan.device``, or in CPU memory with ``--low-vram`` (stages move what they need)."""
    from ..loading.loader import load_checkpoint

    path = (plan.checkpoint.expanduser() if plan.checkpoint is not None
            else download_checkpoint(offline_hint=OFFLINE_HINT))
    device = torch.device("cpu") if plan.low_vram else plan.device
    started = time.perf_counter()
    model = load_checkpoint(path, device=device, dtype=plan.dtype)
    logger.info("loaded %s on %s (%s) in %.1f s", path, device, plan.dtype, time.perf_counter() - started)
    return model


def _lora_path(request: LoraRequest) -> Path:
    """Local path of a planned LoRA; a Hub repo id is fetched like the original app (cached, then downloaded)."""
    if request.path is not None:
        return request.path
    assert request.repo is not None  # a LoraRequest names a path or a repo
    return snapshot(request.repo, checkpoint_cache_dir(), what=f"the LoRA {request.repo}",
                    offline_hint="give the path of a downloaded LoRA folder to --lora")


def _apply_loras(model: Any, plan: RunPlan) -> tuple[Any, str, float]:
    """Merge the planned LoRAs into the transformer; returns the merge record (originals kept on the CPU so the
    model is restored after the run, e.g. when the caller reuses it) and what the sidecar records as
    ``lora_name_or_path`` / ``lora_weight`` (the original app's scale, so re-running the sidecar matches)."""
    if not plan.loras:
        return None, LORA_NONE, 1.0
    from ..lora.merge import LoraSpec, merge_loras, read_lora, unit_scale

    specs = [LoraSpec(read_lora(_lora_path(r)), r.strength, r.rule) for r in plan.loras]  # type: ignore[arg-type]
    # fp8 (quantised after the merge) cannot take the originals back: merge for good, keep nothing.
    merge = merge_loras(model.transformer, specs, backup_device="cpu", keep_originals=not plan.fp8)
    for request in plan.loras:
        logger.info("LoRA %s applied at strength %g (%s scale rule)", request.label, request.strength, request.rule)
    if len(specs) > 1:
        logger.warning("the input_params sidecar can name one LoRA only (original app format): it records %s",
                       plan.loras[0].label)
    first = specs[0]
    scales = {unit_scale(first.lora, mod, first.rule) for mod in first.lora.modules.values()}
    weight = first.strength * scales.pop() if len(scales) == 1 else first.strength
    return merge, plan.loras[0].label, weight


def _encoders(model: Any, plan: RunPlan) -> tuple[Any, Any]:
    """``encode_prompt`` / ``encode_lyrics`` for :func:`~acestep_core.sampling.pipeline.generate`: text -> ids, mask."""
    from ..text.prompt_tokenizer import PromptTokenizer

    if model.tokenizer is None:
        raise CheckpointError("the checkpoint carries no UMT5 tokenizer (umt5-base/tokenizer.json); "
                              "use the full ACE-Step-v1-3.5B folder or ComfyUI's single file")
    prompt_tokenizer = PromptTokenizer.from_source(model.tokenizer)

    def encode_prompt(text: str) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = prompt_tokenizer(text)
        return tokens.input_ids, tokens.attention_mask

    def encode_lyrics(text: str) -> tuple[list[int], list[int]]:
        if text not in plan.lyric_tokens:  # the pipeline only tokenizes the texts planned for
            raise AceStepInputError(f"lyrics {text[:40]!r} were not tokenized in advance")
        return plan.lyric_tokens[text]

    return encode_prompt, encode_lyrics


def _prepare_transformer(model: Any, plan: RunPlan) -> tuple[Any, str, float]:
    """Merge the LoRAs, then (``--fp8``) quantise; on the GPU for the duration with ``--low-vram``."""
    from ..runtime.offload import on_device

    with on_device(model.transformer if plan.low_vram and (plan.loras or plan.fp8) else None, device=plan.device):
        merge, lora_name, lora_weight = _apply_loras(model, plan)
        if plan.fp8:
            from ..runtime.quant import QuantError, quantize_fp8_

            try:
                quantize_fp8_(model.transformer, lora_merge=merge)
            except QuantError as e:
                raise AceStepInputError(f"--fp8: {e}") from e
    return merge, lora_name, lora_weight


def execute(plan: RunPlan, *, quiet: bool = False) -> list[Path]:
    """Load, apply the LoRAs, generate, decode and write; returns the files written (audio files, then latents)."""
    model = _load(plan)
    merge, lora_name, lora_weight = _prepare_transformer(model, plan)
    try:
        written = _run(model, plan, quiet, lora_name, lora_weight)
    finally:
        if merge is not None:
            merge.restore()
    return written


def _generate_audio(model: Any, plan: RunPlan, quiet: bool) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, float]]:
    """Encode source audio, generate, decode: ``(result, latents [B, 8, 16, T], audio [B, 2, N], timecosts)``,
    latents and audio on the CPU in float32. Each stage logs its CUDA peak; with ``--low-vram`` it also moves
    only its own models to the GPU (codec / text encoder + transformer / codec) and decodes overlapped.
    CUDA graphs (``--cuda-graphs``) are released at the end of the generate stage, while the transformer is
    still on the GPU, so their memory pool is free for the decode."""
    from ..runtime.accel import release_cuda_graphs
    from ..runtime.offload import log_peaks, stage
    from ..sampling.pipeline import generate

    encode_prompt, encode_lyrics = _encoders(model, plan)
    peaks: dict[str, int] = {}  # stage -> peak bytes (CUDA only)

    def moved(*modules: Any) -> tuple[Any, ...]:  # what a stage moves to the GPU: only with --low-vram
        return modules if plan.low_vram else ()

    started = time.perf_counter()
    has_audio = plan.src_audio is not None or plan.ref_audio is not None
    with stage("encode-audio", *moved(model.codec if has_audio else None), device=plan.device, peaks=peaks):
        src_latents = _encode_audio(model.codec, plan.src_audio, plan.device, "--src-audio")
        ref_latents = _encode_audio(model.codec, plan.ref_audio, plan.device, "--ref-audio")
    preprocess_s = time.perf_counter() - started
    with stage("generate", *moved(model.text_encoder, model.transformer), device=plan.device, peaks=peaks):
        try:
            result = generate(model, plan.params, encode_prompt=encode_prompt, encode_lyrics=encode_lyrics,
                              src_latents=src_latents, ref_latents=ref_latents, device=plan.device,
                              dtype=plan.dtype, callback=_progress(quiet), acceleration=plan.acceleration)
        finally:  # free the graphs' memory pool before the transformer leaves the GPU and before the decode
            release_cuda_graphs(model.transformer)
    diffusion_s = time.perf_counter() - started - preprocess_s
    latents = result.latents.detach().to("cpu", torch.float32).contiguous()  # [B, 8, 16, T]
    overlapped = True if plan.low_vram else (None if plan.overlapped_decode else False)
    with stage("decode", *moved(model.codec), device=plan.device, peaks=peaks):
        audio = model.codec.decode(latents.to(plan.device), sample_rate=DEFAULT_SAMPLE_RATE,
                                   overlapped=overlapped).cpu()  # [B, 2, N] float32
    log_peaks(peaks)
    timecosts = {"preprocess": preprocess_s, "diffusion": diffusion_s,
                 "latent2audio": time.perf_counter() - started - preprocess_s - diffusion_s}
    return result, latents, audio, timecosts


def _run(model: Any, plan: RunPlan, quiet: bool, lora_name: str, lora_weight: float) -> list[Path]:
    """Generate, decode and write with the (LoRA-patched) model."""
    from ..audio.files import write_audio, write_sidecar
    from .params_io import record_from_params

    result, latents, audio, timecosts = _generate_audio(model, plan, quiet)
    written: list[Path] = []
    for index, path in enumerate(plan.outputs):
        record = record_from_params(
            result.params, audio_format=plan.audio_format, actual_seeds=result.params["actual_seeds"],
            retake_seeds=result.params.get("retake_seeds"), timecosts=timecosts,
            src_audio_path=plan.src_audio.path if plan.src_audio else None,
            ref_audio_input=plan.ref_audio.path if plan.ref_audio else None, audio_path=path,
            lora_name_or_path=lora_name, lora_weight=lora_weight)
        write_audio(path, audio[index], DEFAULT_SAMPLE_RATE, metadata=record)
        write_sidecar(path, record)
        written.append(path)
    if plan.save_latents is not None:
        written.append(_save_latents(plan.save_latents, latents))
    return written


def _save_latents(path: Path, latents: torch.Tensor) -> Path:
    from safetensors.torch import save_file

    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"latents": latents}, str(path), metadata={"format": "acestep-v1 latents [B, 8, 16, T]"})
    return path

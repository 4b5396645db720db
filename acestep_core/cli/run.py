"""Execution for ``python -m acestep_core generate``: a validated :class:`~acestep_core.cli.plan.RunPlan`
-> files on disk.

Loads the checkpoint (downloading the default one when none is given), tokenizes the prompt, encodes the
source/reference audio, generates, decodes and writes the audio files with their ``_input_params.json``
sidecars (+ optional latents) through :mod:`.outputs` (temporary files, never replacing a file without
``--overwrite``). Non-finite latents or audio end the run with :class:`~acestep_core.errors.NonFiniteResultError`
before anything is written. Progress goes to stderr; user input was validated by :mod:`.plan`.
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
from .loras import LoraRequest
from .outputs import write_audio_outputs, write_latents
from .params_io import LORA_NONE
from .plan import RunPlan

logger = logging.getLogger("acestep_core.cli")  # the CLI's one logger name

__all__ = ["execute"]

DEFAULT_SAMPLE_RATE = 48000  # upstream latents2audio
OFFLINE_HINT = "pass --checkpoint PATH to a downloaded copy of the model"


class Progress:
    """``callback(StepInfo)`` drawing a tqdm bar (if installed) or log lines on stderr; :meth:`close` ends the
    bar's line (so an ``error:`` line after Ctrl-C starts on a line of its own)."""

    def __init__(self, quiet: bool) -> None:
        self.reset(quiet)

    def reset(self, quiet: bool) -> None:
        """Start over for a new run (``quiet``: draw nothing)."""
        self.quiet = quiet
        self.bar: Any = None
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self._tqdm = tqdm

    def __call__(self, info: Any) -> None:
        if self.quiet:
            return
        if self._tqdm is not None:
            if self.bar is None:
                self.bar = self._tqdm(total=info.total, desc="sampling", unit="step", file=sys.stderr)
            self.bar.update(info.step - self.bar.n)
            if info.step >= info.total:
                self.close()
        elif info.step == info.total or info.step % max(1, info.total // 10) == 0:
            logger.info("sampling step %d/%d", info.step, info.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


PROGRESS = Progress(quiet=True)  # the current run's bar, closed by the entry point on Ctrl-C


def _encode_audio(codec: Any, info: AudioInfo | None, device: torch.device, what: str) -> torch.Tensor | None:
    if info is None:
        return None
    from ..audio.files import read_audio

    audio, sample_rate = read_audio(info.path, what=what)
    started = time.perf_counter()
    latents = codec.encode(audio[None].to(device), sample_rate)
    if info.duration_s > 60:
        logger.info("encoded %s (%.0f s of audio) in %.1f s", what, info.duration_s, time.perf_counter() - started)
    return latents


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


def _lora_file(request: LoraRequest) -> Any:
    """The planned LoRA's file: read while planning (local), or fetched like the original app (a Hub repo id)."""
    from ..lora.merge import read_lora

    if request.lora is not None:
        return request.lora
    path = request.path
    if path is None:
        assert request.repo is not None  # a LoraRequest names a path or a repo
        path = snapshot(request.repo, checkpoint_cache_dir(), what=f"the LoRA {request.repo}",
                        offline_hint="give the path of a downloaded LoRA folder to --lora")
    return read_lora(path)


def _apply_loras(model: Any, plan: RunPlan) -> tuple[Any, str, float]:
    """Merge the planned LoRAs into the transformer; returns the merge record (originals kept on the CPU so the
    model is restored after the run, e.g. when the caller reuses it) and what the sidecar records as
    ``lora_name_or_path`` / ``lora_weight`` (the original app's scale, so re-running the sidecar matches)."""
    if not plan.loras:
        return None, LORA_NONE, 1.0
    from ..lora.merge import LoraSpec, merge_loras, unit_scale

    specs = [LoraSpec(_lora_file(r), r.strength, r.rule) for r in plan.loras]  # type: ignore[arg-type]
    # fp8 (quantised after the merge) cannot take the originals back: merge for good, keep nothing.
    merge = merge_loras(model.transformer, specs, backup_device="cpu", keep_originals=not plan.fp8)
    for request in plan.loras:
        logger.info("LoRA %s applied at strength %g (%s scale rule)", request.label, request.strength, request.rule)
    if len(plan.loras) > 1:
        logger.warning("the input_params sidecar can name one LoRA only (original app format): it records %s; "
                       "re-running it through --params needs the other LoRAs as --lora flags",
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
        warning = prompt_tokenizer.truncation_warning(text)
        if warning:
            logger.warning("--tags: %s", warning)
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
    latents and audio on the CPU in float32, both checked to be finite. Each stage logs its CUDA peak; with
    ``--low-vram`` it also moves only its own models to the GPU (codec / text encoder + transformer / codec) and
    decodes overlapped. CUDA graphs (``--cuda-graphs``) are released at the end of the generate stage, while the
    transformer is still on the GPU, so their memory pool is free for the decode."""
    from ..runtime.accel import release_cuda_graphs
    from ..runtime.offload import log_peaks, stage
    from ..sampling.pipeline import generate
    from ..sampling.validation import check_finite_result

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
    PROGRESS.reset(quiet)
    with stage("generate", *moved(model.text_encoder, model.transformer), device=plan.device, peaks=peaks):
        try:
            result = generate(model, plan.params, encode_prompt=encode_prompt, encode_lyrics=encode_lyrics,
                              src_latents=src_latents, ref_latents=ref_latents, device=plan.device,
                              dtype=plan.dtype, callback=PROGRESS, acceleration=plan.acceleration)
        finally:  # free the graphs' memory pool before the transformer leaves the GPU and before the decode
            release_cuda_graphs(model.transformer)
            PROGRESS.close()
    diffusion_s = time.perf_counter() - started - preprocess_s
    latents = result.latents.detach().to("cpu", torch.float32).contiguous()  # [B, 8, 16, T]
    check_finite_result(latents, "latents", plan.params, plan.dtype)
    audio = _decode(model, plan, latents, moved, peaks)
    check_finite_result(audio, "audio", plan.params, plan.dtype)
    log_peaks(peaks)
    timecosts = {"preprocess": preprocess_s, "diffusion": diffusion_s,
                 "latent2audio": time.perf_counter() - started - preprocess_s - diffusion_s}
    return result, latents, audio, timecosts


def _decode(model: Any, plan: RunPlan, latents: torch.Tensor, moved: Any, peaks: dict[str, int]) -> torch.Tensor:
    """Latents -> 48 kHz audio [B, 2, N] float32 on the CPU; long songs say how long they take."""
    from ..runtime.offload import stage
    from ..timing import frames_to_seconds

    overlapped = True if plan.low_vram else (None if plan.overlapped_decode else False)
    seconds = frames_to_seconds(latents.shape[-1])
    if seconds > 60:
        logger.info("decoding %.0f s of audio%s", seconds, " (overlapped)" if overlapped else "")
    started = time.perf_counter()
    with stage("decode", *moved(model.codec), device=plan.device, peaks=peaks):
        audio = model.codec.decode(latents.to(plan.device), sample_rate=DEFAULT_SAMPLE_RATE,
                                   overlapped=overlapped).cpu()  # [B, 2, N] float32
    if seconds > 60:
        logger.info("decoded in %.1f s", time.perf_counter() - started)
    return audio


def _recorded_path(path: Path | None, sidecar_folder: Path) -> str | None:
    """How a source file is recorded in a sidecar: relative to the sidecar's folder when it lies inside it (the
    ``--params`` reader resolves relative paths there), else absolute."""
    if path is None:
        return None
    resolved, folder = path.expanduser().resolve(), sidecar_folder.expanduser().resolve()
    try:
        return resolved.relative_to(folder).as_posix()
    except ValueError:
        return str(resolved)


def _lora_label(plan: RunPlan, name: str, sidecar_folder: Path) -> str:
    """The recorded ``lora_name_or_path``: a local LoRA like a source file (:func:`_recorded_path`), a repo id as is."""
    if name == LORA_NONE or plan.loras[0].path is None:
        return name
    return _recorded_path(plan.loras[0].path, sidecar_folder) or name


def _run(model: Any, plan: RunPlan, quiet: bool, lora_name: str, lora_weight: float) -> list[Path]:
    """Generate, decode and write with the (LoRA-patched) model."""
    from .params_io import record_from_params

    result, latents, audio, timecosts = _generate_audio(model, plan, quiet)
    edit_source = (plan.params.prompt or "", plan.params.lyrics or "") if plan.params.task == "edit" else None

    def record_for(index: int, path: Path) -> dict[str, Any]:
        return record_from_params(
            result.params, audio_format=plan.outputs.fmt, actual_seeds=result.params["actual_seeds"],
            retake_seeds=result.params.get("retake_seeds"), timecosts=timecosts,
            src_audio_path=_recorded_path(plan.src_audio.path if plan.src_audio else None, path.parent),
            ref_audio_input=_recorded_path(plan.ref_audio.path if plan.ref_audio else None, path.parent),
            audio_path=path, lora_name_or_path=_lora_label(plan, lora_name, path.parent), lora_weight=lora_weight,
            edit_source=edit_source)

    written = write_audio_outputs(plan.outputs, audio, DEFAULT_SAMPLE_RATE, record_for)
    latents_path = write_latents(plan.outputs, latents)
    return written if latents_path is None else [*written, latents_path]

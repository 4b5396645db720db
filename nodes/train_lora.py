"""The Train LoRA node (see :mod:`nodes.training` for the dataset and options nodes)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from . import comfy_adapter as adapter
from . import web_events
from .training import REPA_CHOICES, TRAIN_DATASET, TRAIN_OPTIONS, lora_folder
from .types import AUDIO, CATEGORY, MODEL

logger = logging.getLogger(__name__)

PREVIEW_SUBFOLDER = "acestep_lora_previews"  # under ComfyUI's output folder, where the browser can play them
TEACHERS_FOLDER = "ace_step"  # teachers are looked for as <models/ace_step>/MERT-v1-330M and .../mHuBERT-147
WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
OOM_ADVICE = ("out of GPU memory while training; lower it in Train LoRA Options (precision bf16 or fp8, checkpointing "
              "on, optimizer adamw8bit), with a smaller rank or batch_size, repa off, or shorter songs")


def _config(steps: int, rank: int, alpha: float, learning_rate: float, batch_size: int, seed: int, repa: str,
            save_every: int, preview_every: int, options: dict[str, Any] | None) -> Any:
    from acestep_core.training.config import TrainConfig
    from acestep_core.training.lora import LoraConfig
    from acestep_core.training.optim import OptimConfig

    o = options or {}
    targets = tuple(t.strip() for t in str(o.get("targets", "")).split(",") if t.strip())
    lora = LoraConfig(r=rank, lora_alpha=alpha if alpha > 0 else None, use_rslora=bool(o.get("rslora", False)),
                      **({"target_modules": targets} if targets else {}))
    optim = OptimConfig(learning_rate=learning_rate, warmup_steps=int(o.get("warmup_steps", 10)),
                        grad_clip_norm=float(o.get("grad_clip", 0.5)), optimizer=o.get("optimizer", "adamw"))
    return TrainConfig(max_steps=steps, lora=lora, optim=optim, batch_size=batch_size, seed=seed,
                       accumulate=int(o.get("accumulate", 1)), precision=o.get("precision", "fp32"),
                       checkpointing=o.get("checkpointing", "auto"), repa=repa,  # type: ignore[arg-type]
                       ssl_coeff=float(o.get("ssl_coeff", 1.0)), shift=float(o.get("shift", 3.0)),
                       mask_padding=bool(o.get("mask_padding", False)), save_every=save_every,
                       keep_checkpoints=int(o.get("keep_checkpoints", 3)), preview_every=preview_every,
                       preview_seconds=float(o.get("preview_seconds", 30.0)),
                       preview_steps=int(o.get("preview_steps", 27)))


def _audio_output(path: Path | None) -> dict[str, Any]:
    """The last preview as ComfyUI AUDIO (one second of silence when none was rendered)."""
    from acestep_core.audio.files import read_audio

    if path is None or not path.is_file():
        return {"waveform": torch.zeros(1, 2, 48000), "sample_rate": 48000}
    audio, rate = read_audio(path)
    return {"waveform": audio[None].float(), "sample_rate": rate}


def _estimate(models: Any, dataset: Any, config: Any, checkpointing: bool) -> int:
    from acestep_core.training.lora import lora_param_count
    from acestep_core.training.memory import module_bytes, training_memory_bytes

    cfg = models.transformer.cfg
    lora = lora_param_count(models.transformer, config.lora)
    frames = max(dataset.wav_lengths) // 4096 * 44100 // 48000 + 2
    return training_memory_bytes(weight_bytes=module_bytes(models.transformer, models.codec, models.text_encoder),
                                 trained_params=lora, frames=frames, model_dim=cfg.model_dim,
                                 num_blocks=cfg.num_layers, batch=config.batch_size,
                                 value_bytes=4 if config.precision == "fp32" else 2,
                                 checkpointing=checkpointing,
                                 optimizer_bytes=2.0 if config.optim.optimizer == "adamw8bit" else 8.0)


class AceStepV1TrainLoRA:
    """Train a LoRA on a dataset with the original trainer's recipe; writes models/loras/<name>/ (official
    layout). Cancel saves the LoRA and the training state; queue again with resume on to continue."""

    TITLE = "ACE-Step v1 Train LoRA"
    CATEGORY = CATEGORY + "/training"
    RETURN_TYPES = ("STRING", "IMAGE", AUDIO)
    RETURN_NAMES = ("lora_path", "loss_curve", "preview")
    OUTPUT_TOOLTIPS = ("The trained LoRA (connect to the LoRA Loader's lora_path input).",
                       "The loss per step.", "The last preview song rendered with the LoRA.")
    FUNCTION = "train"
    OUTPUT_NODE = True
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The ACE-Step v1 model to train a LoRA for."}),
                "dataset": (TRAIN_DATASET, {"tooltip": "From the Training Dataset node."}),
                "name": ("STRING", {"default": "my_acestep_lora", "tooltip": (
                    "The LoRA's folder name in models/loras/ (letters, digits, spaces, . _ -).")}),
                "steps": ("INT", {"default": 500, "min": 1, "max": 1_000_000, "tooltip": "Optimiser steps."}),
                "rank": ("INT", {"default": 64, "min": 1, "max": 1024, "tooltip": "LoRA rank."}),
                "alpha": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 4096.0, "step": 1.0, "tooltip": (
                    "LoRA alpha; 0 = the rank (then strength 1.0 means the same everywhere).")}),
                "learning_rate": ("FLOAT", {"default": 1e-4, "min": 1e-7, "max": 1e-1, "step": 1e-5,
                                            "round": False, "tooltip": "AdamW learning rate (the original: 1e-4)."}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": (
                    "Songs per micro-batch (the original: 1); more needs more GPU memory.")}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1, "tooltip": (
                    "Every random draw of the run follows from it: the same seed gives the same LoRA.")}),
                "repa": (REPA_CHOICES, {"default": "auto", "tooltip": (
                    "REPA loss with the MERT / mHuBERT teachers (non-commercial licences): auto = on when both are "
                    "in models/ (MERT-v1-330M/, mHuBERT-147/) or the acestep cache.")}),
                "save_every": ("INT", {"default": 250, "min": 0, "max": 1_000_000,
                                       "tooltip": "Checkpoint every N steps (0 = only at the end)."}),
                "preview_every": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                                          "tooltip": "Render a preview song every N steps (0 = only at the end)."}),
                "resume": ("BOOLEAN", {"default": False, "tooltip": (
                    "Continue the run saved under this name (after a Cancel, or to train further).")}),
            },
            "optional": {"options": (TRAIN_OPTIONS, {"tooltip": "From Train LoRA Options."})},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def train(self, model: Any, dataset: Any, name: str, steps: int, rank: int, alpha: float, learning_rate: float,
              batch_size: int, seed: int, repa: str, save_every: int, preview_every: int, resume: bool,
              options: dict[str, Any] | None = None, unique_id: str | None = None) -> dict[str, Any]:
        from acestep_core.training.plot import loss_curve_image
        from acestep_core.training.run_files import RunFolder

        folder = RunFolder(lora_folder(name))
        config = _config(steps, rank, alpha, learning_rate, batch_size, seed, repa, save_every, preview_every,
                         options)
        folder.prepare(resume=resume, overwrite=False, flags=("resume on (Train LoRA's resume input)", None))
        with torch.inference_mode(False), torch.enable_grad():
            try:
                result, last_preview = _run(model, dataset, config, folder, resume, unique_id)
            except torch.OutOfMemoryError as e:
                raise RuntimeError(OOM_ADVICE) from e
        if result.stopped_early:
            adapter.raise_interrupted(RuntimeError(f"training stopped at step {result.steps_done}; the LoRA and the "
                                                   f"state are saved in {folder.root} (resume on to continue)"))
        image = loss_curve_image(result.loss_history).float()[None] / 255.0  # [1, H, W, 3]
        lora_path = f"{folder.root.name}/{WEIGHTS_FILE}"
        return {"ui": {"text": [f"{name}: {result.steps_done} steps, loss "
                                f"{result.loss_history[-1][1] if result.loss_history else float('nan'):.4f}"]},
                "result": (lora_path, image, _audio_output(last_preview))}


def _run(model: Any, dataset: Any, config: Any, folder: Any, resume: bool, node_id: str | None) -> tuple[Any, Any]:
    from acestep_core.training.loop import TrainCallbacks
    from acestep_core.training.run_files import LOSS_LOG
    from acestep_core.training.session import build_training_run, checkpointing_enabled, load_training_models

    device = adapter.load_device()
    repa_on, teachers_paths = _repa(config.repa)
    if not repa_on:
        config = replace(config, repa="off")
    adapter.free_memory_for(0, device)
    models = load_training_models(model.source, model.lyric_tokenizer(), device=device, precision=config.precision,
                                  repa=repa_on)
    adapter.free_memory_for(_estimate(models, dataset, config, checkpointing_enabled(config.checkpointing, device)),
                            device)
    teachers = _teachers(models, device, teachers_paths) if repa_on else None
    run = build_training_run(models, dataset, config, folder, device=device, teachers=teachers, final_preview=True)
    bar = adapter.ProgressBar(config.max_steps, node_id)
    previews: list[Path] = []
    trained_before = _logged_seconds(folder.root / LOSS_LOG) if resume else 0.0

    def on_step(report: Any) -> None:
        bar.update(report.step, report.max_steps, interruptible=False)  # Cancel: the loop saves, then stops
        adapter.show_progress_text(f"step {report.step}/{report.max_steps}  loss {report.loss:.4f}", node_id)
        web_events.send_event(web_events.TRAIN_PROGRESS_EVENT, web_events.train_progress_payload(
            node_id or "", report.step, report.max_steps, report.loss, report.learning_rate,
            trained_before + time.perf_counter() - started))  # the chart's elapsed / time left

    def on_preview(step: int, path: Path) -> None:
        shown = adapter.output_directory() / PREVIEW_SUBFOLDER / folder.root.name / path.name
        shown.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, shown)  # /view serves ComfyUI's output folder only
        previews.append(path)
        web_events.send_event(web_events.TRAIN_PREVIEW_EVENT, web_events.train_preview_payload(
            node_id or "", step, shown.name, f"{PREVIEW_SUBFOLDER}/{folder.root.name}"))

    started = time.perf_counter()
    try:
        result = run.train(TrainCallbacks(on_step=on_step, on_preview=on_preview,
                                          should_stop=adapter.interrupt_requested), resume=resume)
    finally:
        del models, run
        adapter.free_memory_for(0, device)
    return result, previews[-1] if previews else None


def _logged_seconds(loss_log: Path) -> float:
    """Seconds the steps in ``loss_log`` took (a resumed run's chart counts the earlier steps' time too)."""
    total = 0.0
    try:
        lines = loss_log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0.0
    for line in lines:
        try:
            total += float(json.loads(line).get("seconds", 0.0))
        except (ValueError, TypeError, AttributeError):
            continue  # a torn last line
    return total


def _repa(mode: str) -> tuple[bool, dict[str, Path] | None]:
    """``repa`` input -> (on, teacher folders); teachers are looked for in ComfyUI's models folders too."""
    if mode == "off":
        return False, None
    from acestep_core.teachers import resolve_repa

    search = tuple(str(p) for p in adapter.model_folders(TEACHERS_FOLDER))
    enabled, reason = resolve_repa(mode, search_dirs=search)  # type: ignore[arg-type]
    logger.info("ACE-Step training: %s", reason)
    return enabled, None


def _teachers(models: Any, device: torch.device, paths: dict[str, Path] | None) -> Any:
    from acestep_core.teachers import TeacherSet

    cfg = models.transformer.cfg
    search = tuple(str(p) for p in adapter.model_folders(TEACHERS_FOLDER))
    return TeacherSet.load(paths=paths, search_dirs=search, device=device,
                           feature_dims=dict(zip(cfg.ssl_names, cfg.ssl_latent_dims, strict=True)))

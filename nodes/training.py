"""Training nodes: a dataset from a folder of songs, and LoRA training on it (thin over
:mod:`acestep_core.training`).

* **Training Dataset**: a folder (relative to ComfyUI's ``input/`` folder, or absolute) -> ``ACESTEP_TRAIN_DATASET``
  and the dataset report (songs, durations, languages, token counts, warnings, unusable songs with reasons).
* **Train LoRA Options** (optional): the rarely changed settings.
* **Train LoRA**: model + dataset + common settings -> the LoRA's name (for the LoRA Loader's ``lora_path``
  input), the loss curve (IMAGE) and the last preview (AUDIO). Writes ``models/loras/<name>/`` in the official
  layout (listed by the LoRA Loader without a restart). Runs on ComfyUI's device with its own training copy of
  the model after ComfyUI's models are unloaded; Cancel saves the LoRA and the training state, then stops;
  queueing again with ``resume`` on continues the run.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from acestep_core.training import choices as _choices

from . import comfy_adapter as adapter
from .types import CATEGORY, MODEL

logger = logging.getLogger(__name__)

TRAIN_DATASET = "ACESTEP_TRAIN_DATASET"
TRAIN_OPTIONS = "ACESTEP_TRAIN_OPTIONS"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
REPA_CHOICES = list(_choices.REPA_CHOICES)
PRECISION_CHOICES = list(_choices.PRECISIONS)
CHECKPOINTING_CHOICES = list(_choices.CHECKPOINTING_CHOICES)
OPTIMIZER_CHOICES = list(_choices.OPTIMIZERS)


def dataset_folder(folder: str) -> Path:
    """``folder`` relative to ComfyUI's input folder (or absolute); a clear error when it does not exist."""
    text = folder.strip()
    if not text:
        raise ValueError("folder: empty; give a folder of songs relative to ComfyUI's input/ folder (e.g. "
                         "acestep_dataset) or an absolute path")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else adapter.input_directory() / path
    if not path.is_dir():
        raise ValueError(f"folder {text!r}: {path} does not exist; put your songs there (<song>.wav + "
                         "<song>_prompt.txt + <song>_lyrics.txt) or give another folder")
    return path


def lora_folder(name: str) -> Path:
    """``models/loras/<name>``: the name may not be empty, hold path separators, or escape the loras folder."""
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ValueError(f"name {name!r}: use letters, digits, spaces, '.', '_' or '-' (no '/' or '..'); the LoRA "
                         "goes into models/loras/<name>/")
    root = adapter.lora_output_folder().resolve()
    folder = (root / name).resolve()
    if folder.parent != root:
        raise ValueError(f"name {name!r} would leave the loras folder {root}; choose a plain name")
    return folder


class AceStepV1TrainingDataset:
    """A folder of songs for LoRA training, with a report on every song (unusable ones are listed with the
    reason, never dropped silently)."""

    TITLE = "ACE-Step v1 Training Dataset"
    CATEGORY = CATEGORY + "/training"
    RETURN_TYPES = (TRAIN_DATASET, "STRING")
    RETURN_NAMES = ("dataset", "report")
    OUTPUT_TOOLTIPS = ("The songs to train on.", "The dataset report (songs, durations, languages, warnings).")
    FUNCTION = "load"
    OUTPUT_NODE = True
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model (its lyric tokenizer reads the lyrics)."}),
            "folder": ("STRING", {"default": "acestep_dataset", "tooltip": (
                "Folder of songs, relative to ComfyUI's input/ folder or absolute: <song>.wav|flac|mp3|ogg with "
                "<song>_prompt.txt (comma separated tags) and <song>_lyrics.txt, searched recursively; the "
                "original trainer's Hugging Face dataset folders work too.")}),
        }}

    def load(self, model: Any, folder: str) -> dict[str, Any]:
        from acestep_core.training.dataset import load_training_dataset

        dataset = load_training_dataset(dataset_folder(folder), model.lyric_tokenizer(), audio_cache={})
        report = dataset.report.to_text()
        return {"ui": {"text": [report]}, "result": (dataset, report)}


class AceStepV1TrainOptions:
    """The less common training settings (defaults = the original trainer's recipe)."""

    TITLE = "ACE-Step v1 Train LoRA Options"
    CATEGORY = CATEGORY + "/training"
    RETURN_TYPES = (TRAIN_OPTIONS,)
    RETURN_NAMES = ("options",)
    FUNCTION = "options"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "precision": (PRECISION_CHOICES, {"default": "fp32", "tooltip": (
                "fp32 = the original; bf16 = bf16 base weights with fp32 LoRA weights (less memory, faster); fp8 = "
                "the DiT blocks' weights stored in fp8 (least memory; bf16 math, weights rounded to 3 mantissa "
                "bits).")}),
            "optimizer": (OPTIMIZER_CHOICES, {"default": "adamw", "tooltip": (
                "adamw = the original; adamw8bit keeps the optimiser moments in 8 bits (less memory).")}),
            "checkpointing": (CHECKPOINTING_CHOICES, {"default": "auto", "tooltip": (
                "Activation checkpointing per DiT block (auto: off when the free GPU memory holds the run "
                "without it).")}),
            "accumulate": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": "Micro-batches per step."}),
            "warmup_steps": ("INT", {"default": 10, "min": 0, "max": 100000, "tooltip": (
                "Steps of linear learning-rate warm-up from 0 (the original: 10).")}),
            "grad_clip": ("FLOAT", {"default": 0.5, "min": 0.001, "max": 100.0, "step": 0.01, "tooltip": (
                "Gradients are clipped to this total norm (the original: 0.5).")}),
            "shift": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 10.0, "step": 0.1, "tooltip": (
                "Timestep shift of the training noise levels (the original: 3.0).")}),
            "ssl_coeff": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                    "tooltip": "REPA loss weight (1.0 = the original)."}),
            "targets": ("STRING", {"default": "speaker_embedder,linear_q,linear_k,linear_v,to_q,to_k,to_v,to_out.0",
                                   "tooltip": "Comma separated LoRA target modules (default: RapMachine's)."}),
            "rslora": ("BOOLEAN", {"default": False, "tooltip": "rsLoRA scaling alpha / sqrt(rank)."}),
            "mask_padding": ("BOOLEAN", {"default": False, "tooltip": (
                "Leave the padding of shorter clips in a batch out of the loss (the original trains on it).")}),
            "keep_checkpoints": ("INT", {"default": 3, "min": 0, "max": 1000, "tooltip": (
                "How many step checkpoints to keep (0 = all); the final LoRA is always kept.")}),
            "preview_seconds": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 240.0, "step": 1.0, "tooltip": (
                "Length of each preview song, in seconds.")}),
            "preview_steps": ("INT", {"default": 27, "min": 1, "max": 200, "tooltip": (
                "Sampling steps of each preview song.")}),
        }}

    def options(self, **values: Any) -> tuple[dict[str, Any]]:
        return (dict(values),)

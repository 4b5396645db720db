"""Checkpoint loader node: ACE-Step v1 single files / official folders / a download -> ``ACESTEP_MODEL``.

Choices listed (stable names, workflows store them):

* ``<name>.safetensors``: ACE-Step single files in the ``checkpoints`` folders (ComfyUI's
  ``ace_step_v1_3.5b.safetensors``; other checkpoints are filtered out by their header keys);
* ``ace_step/<folder>``: official-layout folders (``ace_step_transformer/``, ``music_dcae_f8c8/``,
  ``music_vocoder/``, ``umt5-base/``) in the ``ace_step`` model folders (``extra_model_paths.yaml`` honoured);
* ``download: ACE-Step/ACE-Step-v1-3.5B``: fetched with huggingface_hub into the first ``ace_step`` folder only
  when the node runs (resumable; a complete copy is used offline).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import comfy_adapter as adapter
from .types import CATEGORY, MODEL

logger = logging.getLogger(__name__)

DOWNLOAD_CHOICE = "download: ACE-Step/ACE-Step-v1-3.5B"
FOLDER_PREFIX = "ace_step/"
OFFLINE_HINT = ("put the ACE-Step-v1-3.5B folder into ComfyUI/models/ace_step/ (or ComfyUI's single file into "
                "models/checkpoints/) and pick it in the loader's ckpt_name")
NODE_VOCAB_HINT = ("Set the loader's lyric_vocab input to the file's path, or put it next to the checkpoint as "
                   "vocab.json (ComfyUI's own copy is found automatically when ComfyUI has it).")
DTYPE_CHOICES = ["auto", "bf16", "fp16", "fp32"]
SINGLE_FILE_SENTINEL = "model.diffusion_model.genre_embedder.weight"
_header_cache: dict[tuple[str, float, int], bool] = {}


@dataclass
class AceStepModel:
    """What flows on an ``ACESTEP_MODEL`` socket: the three managed components, tokenizer sources and dtype."""

    source: Path
    dtype: torch.dtype
    transformer: adapter.ModelHandle
    text_encoder: adapter.ModelHandle
    codec: adapter.ModelHandle
    tokenizer: Any  # acestep_core TokenizerSource
    lyric_vocab: str = ""
    loras: tuple[Any, ...] = ()  # (recorded name, LoraSpec) of each LoRA Loader applied, in order
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def prompt_tokenizer(self) -> Any:
        if "prompt" not in self._cache:
            from acestep_core.text.prompt_tokenizer import PromptTokenizer

            if self.tokenizer is None:
                raise ValueError(f"{self.source}: the checkpoint carries no UMT5 tokenizer (umt5-base/tokenizer.json "
                                 "or the single file's spiece_model); use the full ACE-Step-v1-3.5B folder or "
                                 "ComfyUI's ace_step_v1_3.5b.safetensors")
            self._cache["prompt"] = PromptTokenizer.from_source(self.tokenizer)
        return self._cache["prompt"]

    def lyric_tokenizer(self) -> Any:
        if "lyrics" not in self._cache:
            from acestep_core.lyrics import LyricTokenizer, resolve_lyric_vocab
            from acestep_core.lyrics.vocab import LyricVocabError, vocab_message

            try:
                vocab = resolve_lyric_vocab(self.lyric_vocab or None, checkpoint=self.source,
                                            comfyui_root=adapter.comfyui_root())
            except LyricVocabError as e:
                raise LyricVocabError(vocab_message(e, NODE_VOCAB_HINT)) from e
            self._cache["lyrics"] = LyricTokenizer.from_vocab(vocab)
        return self._cache["lyrics"]


def _is_ace_step_file(path: Path) -> bool:
    """An ACE-Step single file has the DiT's ``genre_embedder`` under ComfyUI's prefix (header read only)."""
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime, stat.st_size)
        if key not in _header_cache:
            from acestep_core.loading.checkpoint import read_safetensors_keys

            _header_cache[key] = SINGLE_FILE_SENTINEL in set(read_safetensors_keys(path))
        return _header_cache[key]
    except Exception:  # noqa: BLE001 - unreadable files are simply not listed
        return False


def _is_checkpoint_folder(path: Path) -> bool:
    from acestep_core.loading.loader import resolve_folder

    try:
        resolve_folder(path)
    except Exception:  # noqa: BLE001 - not a checkpoint folder
        return False
    return True


def list_checkpoints() -> list[str]:
    """The loader's choices: ACE-Step single files, ``ace_step/<folder>`` folders, then the download choice."""
    from acestep_core.loading.loader import HF_REPO_CACHE_DIR

    files = [name for name in adapter.folder_files(adapter.CHECKPOINTS_FOLDER)
             if _is_ace_step_file(adapter.folder_file_path(adapter.CHECKPOINTS_FOLDER, name))]
    folders = []
    for root in adapter.model_folders(adapter.ACE_STEP_FOLDER):
        if root.is_dir():
            folders += [FOLDER_PREFIX + p.name for p in sorted(root.iterdir())
                        if p.is_dir() and p.name != HF_REPO_CACHE_DIR and _is_checkpoint_folder(p)]
    return [*files, *sorted(set(folders)), DOWNLOAD_CHOICE]


def _ui_progress_tqdm() -> type:
    """A ``tqdm`` subclass that mirrors huggingface_hub's files-done progress on the node's progress bar."""
    from tqdm.auto import tqdm

    class UiProgressTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._ui = adapter.ProgressBar(max(1, int(self.total or 1)))

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            self._ui.update(int(self.n), max(1, int(self.total or 1)))
            return shown

    return UiProgressTqdm


def resolve_checkpoint(name: str) -> Path:
    """A choice -> the path to load (downloads for the download choice); clear error when it is missing."""
    if name == DOWNLOAD_CHOICE:
        from acestep_core.hub import download_checkpoint

        target = adapter.model_folders(adapter.ACE_STEP_FOLDER)[0]
        logger.info("ACE-Step: fetching ACE-Step/ACE-Step-v1-3.5B into %s (resumable)", target)
        return download_checkpoint(target, tqdm_class=_ui_progress_tqdm(), offline_hint=OFFLINE_HINT)
    if name.startswith(FOLDER_PREFIX):
        for root in adapter.model_folders(adapter.ACE_STEP_FOLDER):
            if (root / name[len(FOLDER_PREFIX):]).is_dir():
                return root / name[len(FOLDER_PREFIX):]
    else:
        path = adapter.folder_file_path(adapter.CHECKPOINTS_FOLDER, name)
        if path is not None:
            return path
    from acestep_core.errors import CheckpointError

    available = [c for c in list_checkpoints() if c != DOWNLOAD_CHOICE]
    raise CheckpointError(
        f"ckpt_name {name!r}: model not found. Available: {available or 'none'}. Put ComfyUI's "
        "ace_step_v1_3.5b.safetensors into models/checkpoints, or the ACE-Step-v1-3.5B folder into models/ace_step/, "
        f"or choose {DOWNLOAD_CHOICE!r}")


def load_model(path: Path, dtype_choice: str, lyric_vocab: str = "") -> AceStepModel:
    """Load all components on the offload device with the host's ops and wrap each for memory management."""
    from acestep_core.loading.loader import load_checkpoint
    from acestep_core.runtime.accel import release_cuda_graphs

    dtype = adapter.resolve_dtype(dtype_choice)
    loaded = load_checkpoint(path, device=adapter.offload_device(), dtype=dtype, ops=adapter.model_ops())
    return AceStepModel(
        source=path, dtype=dtype,  # CUDA graphs cached across prompts go when ComfyUI unloads the transformer
        transformer=adapter.wrap_module(loaded.transformer,
                                        on_unload=functools.partial(release_cuda_graphs, loaded.transformer)),
        text_encoder=adapter.wrap_module(loaded.text_encoder),
        codec=adapter.wrap_module(loaded.codec, force_full_load=True),
        tokenizer=loaded.tokenizer, lyric_vocab=lyric_vocab.strip())


class AceStepV1CheckpointLoader:
    """Load an ACE-Step v1 checkpoint (single file, official folder, or download) for the pack's nodes."""

    TITLE = "ACE-Step v1 Checkpoint Loader"
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The ACE-Step v1 model (transformer, text encoder, audio codec, tokenizers).",)
    FUNCTION = "load"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {
            "required": {
                "ckpt_name": (list_checkpoints(), {"tooltip": (
                    "ACE-Step v1 checkpoint: a single file from models/checkpoints, an official folder from "
                    f"models/ace_step/, or '{DOWNLOAD_CHOICE}' (fetched from Hugging Face when run, ~8 GB).")}),
                "dtype": (DTYPE_CHOICES, {"default": "auto", "tooltip": (
                    "Weight dtype. auto = bf16 on GPU, fp32 on CPU (the original app's choice).")}),
            },
            "optional": {
                "lyric_vocab": ("STRING", {"default": "", "tooltip": (
                    "Path of the lyric vocab.json. Empty = automatic: next to the checkpoint, then ComfyUI's "
                    "bundled comfy/text_encoders/ace_lyrics_tokenizer/vocab.json, then the acestep cache.")}),
            },
        }

    def load(self, ckpt_name: str, dtype: str, lyric_vocab: str = "") -> tuple[AceStepModel]:
        if dtype not in DTYPE_CHOICES:
            raise ValueError(f"dtype {dtype!r}: choose one of {DTYPE_CHOICES}")
        return (load_model(resolve_checkpoint(ckpt_name), dtype, lyric_vocab),)

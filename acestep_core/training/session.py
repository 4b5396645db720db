"""Setting up a training run from paths and settings, shared by the CLI and the ComfyUI node: load the models
the run needs, decide activation checkpointing, prepare the songs (latents, teacher features), and build the
:class:`~.loop.TrainingRun` with its text encoder, item and preview closures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..hub import cache_root
from ..lyrics import LyricTokenizer
from ..text.prompt_tokenizer import PromptTokenizer
from .batch import collate
from .config import TrainConfig
from .dataset import TrainingDataset
from .distributed import DistContext
from .loop import TrainingRun
from .lora import LoraAdapter
from .prepare import LatentCache, PreparedSong, prepare_songs
from .preview import PreviewSpec, render_preview
from .run_files import RunFolder

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINTING_FREE_GIB", "TrainingModels", "build_training_run", "checkpointing_enabled",
           "load_training_models"]

CHECKPOINTING_FREE_GIB = 40.0  # --checkpointing auto without an estimate: off when this much GPU memory is free
AUTO_MARGIN_BYTES = 2 * 2**30


@dataclass
class TrainingModels:
    """The models a run uses (``transformer`` with its REPA heads when REPA is on)."""

    transformer: Any
    text_encoder: Any
    prompt_tokenizer: PromptTokenizer
    codec: Any
    lyric_tokenizer: LyricTokenizer
    source: Path | None = None  # the checkpoint they came from (a full fine-tune copies its untrained keys)


def load_training_models(checkpoint: str | Path, lyric_tokenizer: LyricTokenizer, *, device: torch.device,
                         precision: str, repa: bool, full: bool = False) -> TrainingModels:
    """Load the checkpoint for training: the transformer in the run's precision (fp32 = the original; bf16 base
    weights train fp32 LoRAs; fp8 stores the DiT blocks' weights in fp8 on top of bf16, see
    :mod:`acestep_core.runtime.quant`), text encoder and codec in fp32, everything frozen. ``full``: the
    transformer in fp32 whatever the precision (its master weights; bf16 is FSDP2's compute dtype)."""
    from ..loading.loader import load_checkpoint

    dtype = torch.float32 if precision == "fp32" or full else torch.bfloat16
    base = load_checkpoint(checkpoint, device=device, dtype=dtype, components=["transformer"], repa_heads=repa)
    if precision == "fp8":
        from ..runtime.quant import quantize_fp8_

        quantize_fp8_(base.transformer)
    rest = load_checkpoint(checkpoint, device=device, dtype=torch.float32,
                           components=["dcae", "vocoder", "text_encoder"])
    for module in (base.transformer, rest.text_encoder, rest.codec):
        module.requires_grad_(False)
    assert rest.tokenizer is not None
    return TrainingModels(transformer=base.transformer, text_encoder=rest.text_encoder,
                          prompt_tokenizer=PromptTokenizer.from_source(rest.tokenizer), codec=rest.codec,
                          lyric_tokenizer=lyric_tokenizer, source=Path(checkpoint))


def checkpointing_enabled(choice: str, device: torch.device, needed_bytes: int | None = None) -> bool:
    """``--checkpointing``: on / off, or ``auto`` = off only on a GPU whose free memory holds what the run still
    needs without checkpointing (``needed_bytes``: activations + trained state, plus a 2 GiB margin; unknown:
    :data:`CHECKPOINTING_FREE_GIB`)."""
    if choice != "auto":
        return choice == "on"
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    if needed_bytes is None:
        return free / 2**30 < CHECKPOINTING_FREE_GIB
    return free < needed_bytes + AUTO_MARGIN_BYTES


def needed_without_checkpointing(models: TrainingModels, config: TrainConfig, frames: int) -> int:
    """What a run allocates on top of its loaded models without activation checkpointing: the longest
    micro-batch's activations and the trained parameters' gradients and optimiser state."""
    from .lora import lora_param_count
    from .memory import activation_bytes

    cfg = models.transformer.cfg
    if config.full:
        trained = sum(p.numel() for p in models.transformer.parameters())
    else:
        trained = lora_param_count(models.transformer, config.lora)
    state = trained * (4 + (2 if config.optim.optimizer == "adamw8bit" else 8)) + (0 if config.full else trained * 4)
    return activation_bytes(frames=frames, model_dim=cfg.model_dim, num_blocks=cfg.num_layers,
                            batch=config.batch_size, value_bytes=4 if config.precision == "fp32" else 2,
                            checkpointing=False) + state


def _text_encoder(models: TrainingModels, device: torch.device) -> Callable[[list[str]], Any]:
    @torch.no_grad()
    def encode(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = models.prompt_tokenizer(prompts)
        mask = tokens.attention_mask.to(device)
        return models.text_encoder(tokens.input_ids.to(device), mask), mask
    return encode


def _previewer(models: TrainingModels, dataset: TrainingDataset, config: TrainConfig, folder: RunFolder,
               device: torch.device) -> Callable[[LoraAdapter, int], Path]:
    song = dataset.songs[0]
    spec = PreviewSpec(prompt=", ".join(song.tags) or "music", lyrics=song.lyrics, seconds=config.preview_seconds,
                       steps=config.preview_steps, seed=config.seed)

    def encode_prompt(text: str) -> tuple[Any, Any]:
        tokens = models.prompt_tokenizer(text)
        return tokens.input_ids, tokens.attention_mask

    def encode_lyrics(text: str) -> tuple[Any, Any]:
        tokens = models.lyric_tokenizer.encode(text)
        return tokens.ids, tokens.mask

    def preview(_adapter: LoraAdapter, step: int) -> Path:
        home = next(models.codec.parameters()).device
        models.codec.to(device)  # back on the run's device for the decode only
        try:
            return render_preview(models, spec, encode_prompt, encode_lyrics, folder.preview(step))
        finally:
            models.codec.to(home)
            if device.type == "cuda" and home.type == "cpu":
                torch.cuda.empty_cache()

    return preview


def build_training_run(models: TrainingModels, dataset: TrainingDataset, config: TrainConfig, folder: RunFolder, *,
                       device: torch.device, dist: DistContext | None = None, teachers: Any = None,
                       init_lora: Path | None = None, cache_dir: Path | None = None,
                       progress: Callable[[int, int], None] | None = None, final_preview: bool = False
                       ) -> TrainingRun:
    """Everything :class:`TrainingRun` needs; songs are prepared (and cached) first."""
    dist = dist or DistContext()
    root = cache_dir or cache_root() / "training"
    latents = LatentCache(root / "latents", models.codec)
    features = None
    if teachers is not None:
        from ..teachers import FeatureCache

        feature_cache = FeatureCache(root / "features")

        def features(audios: Any) -> list[dict[str, torch.Tensor]]:
            wavs = torch.stack([a.waveform for a in audios]).to(device)
            lengths = torch.tensor([a.num_samples for a in audios], device=device)
            out = feature_cache.features(teachers, wavs, lengths)
            return [{name: out[name][i].to(torch.float16).cpu() for name in out} for i in range(len(audios))]

    if not dist.is_main:
        dist.barrier()  # rank 0 fills the caches first; the other ranks then read them
    songs: list[PreparedSong] = prepare_songs(dataset.load_audio, len(dataset), latents, device=device,
                                              features=features, progress=progress)
    if dist.is_main:
        dist.barrier()
    if teachers is not None:
        logger.info("%s", feature_cache.summary())
    if dataset.audio_cache is not None:
        dataset.audio_cache.clear()  # the steps read latents and features only: free the waveforms
    if device.type == "cuda":  # the steps read cached latents and features: codec and teachers wait on the CPU
        models.codec.to("cpu")
        if teachers is not None:
            teachers.to("cpu")
        torch.cuda.empty_cache()
    frames = max((song.latents.shape[-1] for song in songs), default=1)
    checkpoint = checkpointing_enabled(config.checkpointing, device,
                                       needed_without_checkpointing(models, config, frames))
    logger.info("activation checkpointing %s (--checkpointing %s)", "on" if checkpoint else "off",
                config.checkpointing)
    trainee = None
    if config.full:
        from .full import FullTrainee

        if models.source is None:
            raise ValueError("--full needs the models' checkpoint path (TrainingModels.source)")
        base = models.source

        def trainee() -> Any:
            return FullTrainee(models.transformer, config, device=device, dist_context=dist,
                               checkpoint_blocks=checkpoint, base=base)

    return TrainingRun(transformer=models.transformer, text=_text_encoder(models, device), trainee=trainee,
                       items=lambda index, rng: dataset.item(index, rng, with_audio=False), collate=collate,
                       songs=songs, config=config, folder=folder, device=device, dist=dist, init_lora=init_lora,
                       checkpoint_blocks=checkpoint, final_preview=final_preview,
                       preview=_previewer(models, dataset, config, folder, device)
                       if config.preview_every or final_preview else None)

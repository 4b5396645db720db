"""The training loop, top to bottom: prepare the songs once, then for every optimiser step draw each item's
prompt and random numbers from its key, run the original's step, clip, step AdamW and the schedule, log, and
save / preview on schedule. Ctrl-C (or a node's Cancel) saves the LoRA and the state, then stops; a non-finite
loss stops without stepping, keeping the last good LoRA.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .config import TrainConfig
from .distributed import DistContext
from .draws import KeyedDropout, prompt_rng, step_draws
from .lora import LoraAdapter
from .optim import make_optimizer
from .order import global_positions
from .plot import loss_curve_image, write_png
from .prepare import PreparedSong
from .run_files import LOSS_LOG, LOSS_PNG, RunFolder
from .state import TrainingState, capture, load_state, restore, save_state_json, save_state_tensors
from .step import Conditions, StepLoss
from .trainee import LoraTrainee, Trainee

logger = logging.getLogger(__name__)

__all__ = ["StepReport", "TrainCallbacks", "TrainResult", "TrainingDiverged", "TrainingRun"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the LoRA of the last good step was kept."""


@dataclass(frozen=True)
class StepReport:
    step: int  # optimiser steps done
    max_steps: int
    loss: float
    denoising: float
    repa: dict[str, float]
    learning_rate: float
    grad_norm: float
    seconds_per_step: float


@dataclass
class TrainCallbacks:
    on_step: Callable[[StepReport], None] | None = None
    on_save: Callable[[int, Path], None] | None = None
    on_preview: Callable[[int, Path], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass
class TrainResult:
    lora_folder: Path
    steps_done: int
    stopped_early: bool
    loss_history: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class TrainingRun:
    """One run: the models, the dataset rows' prepared inputs and the settings (see the module docstring).

    ``text``: prompts -> ``(states [B, L, D], mask [B, L])`` (UMT5, no gradient); ``items``: (dataset index,
    random.Random) -> the row's training item (prompt drawn, lyric ids); ``collate``: items -> batch;
    ``preview``: optional ``(adapter, step) -> wav path`` renderer (rank 0).
    """

    transformer: Any
    text: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]
    items: Callable[[int, Any], Any]
    collate: Callable[[list[Any]], Any]
    songs: list[PreparedSong]
    config: TrainConfig
    folder: RunFolder
    device: torch.device
    dist: DistContext = field(default_factory=DistContext)
    init_lora: Path | None = None
    checkpoint_blocks: bool = True
    trainee: Callable[[], Trainee] | None = None  # None = a LoRA (see :mod:`.trainee`); --full: :mod:`.full`
    preview: Callable[[LoraAdapter, int], Path] | None = None
    final_preview: bool = False  # also render a preview of the final LoRA (unless the run stopped early)

    def train(self, callbacks: TrainCallbacks | None = None, *, resume: bool = False) -> TrainResult:
        with _matmul_precision(self.config.tf32 and self.device.type == "cuda"):
            return self._train(callbacks or TrainCallbacks(), resume)

    def _train(self, callbacks: TrainCallbacks, resume: bool) -> TrainResult:
        config = self.config
        adapter = self.trainee() if self.trainee is not None else LoraTrainee(
            self.transformer, config, device=self.device, dist=self.dist, checkpoint_blocks=self.checkpoint_blocks,
            init_lora=self.init_lora)
        params = adapter.parameters()  # optimiser order = the state's names
        model = adapter.model()
        optimizer, scheduler = make_optimizer(params, config.optim, config.max_steps)
        start, history = self._resume(adapter, optimizer, scheduler) if resume else (0, [])
        stopped = False
        last_good = start
        for step in range(start, config.max_steps):
            started = time.perf_counter()
            loss = self._optimiser_step(model, adapter, optimizer, step)
            if not self.dist.all_ok(math.isfinite(loss.total.item())):
                self._save(adapter, optimizer, last_good, history, final=True)
                raise TrainingDiverged(
                    f"step {step + 1}: the loss is {loss.total.item()} (not finite); training stopped without "
                    f"applying that step; the LoRA of step {last_good} is kept in {self.folder.root}. Lower the "
                    "learning rate, or use --precision fp32")
            grad_norm = _to_float(torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip_norm))
            learning_rate = float(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            done = last_good = step + 1
            names = sorted(loss.repa)
            total, denoising, *repa = self.dist.mean([loss.total.item(), loss.denoising.item(),
                                                      *(loss.repa[k].item() for k in names)])
            history.append((done, total))
            report = StepReport(done, config.max_steps, total, denoising, dict(zip(names, repa, strict=True)),
                                learning_rate, grad_norm, time.perf_counter() - started)
            self._log(report, callbacks)
            if config.save_every and done % config.save_every == 0 and done < config.max_steps:
                self._save(adapter, optimizer, done, history, final=False, callbacks=callbacks)
            if config.preview_every and done % config.preview_every == 0:
                self._preview(adapter, done, callbacks)
            if callbacks.should_stop is not None and not self.dist.all_ok(not callbacks.should_stop()):
                stopped = True
                break
        folder = self._save(adapter, optimizer, last_good, history, final=True, callbacks=callbacks)
        periodic = config.preview_every and last_good % config.preview_every == 0
        if self.preview is not None and self.final_preview and not stopped and not periodic:
            self._preview(adapter, last_good, callbacks)
        adapter.close()
        return TrainResult(folder, last_good, stopped, history)

    # -- one optimiser step --------------------------------------------------------------------------------------

    def _optimiser_step(self, model: Any, adapter: Trainee, optimizer: Any, step: int) -> StepLoss:
        """Forward and backward of every micro-batch of global step ``step`` (this rank's share)."""
        config, loss = self.config, None
        for micro in range(config.accumulate):
            positions = global_positions(step, micro, config, len(self.songs), self.dist)
            sync = micro == config.accumulate - 1
            context = adapter.no_sync() if not sync else contextlib.nullcontext()
            with context:
                loss = self._micro_batch(model, step, positions)
                (loss.total / config.accumulate).backward()
        assert loss is not None
        return loss

    def _micro_batch(self, model: Any, step: int, positions: list[tuple[int, int]]) -> StepLoss:
        config = self.config
        indices = [index for index, _ in positions]
        keys = [key for _, key in positions]
        batch = self.collate([self.items(index, prompt_rng(config.seed, step, key)) for index, key in positions])
        states, text_mask = self.text(list(batch.prompts))
        latents, frame_mask = _pad_latents([self.songs[i].latents for i in indices], self.device)
        conditions = Conditions(text_states=states, text_mask=text_mask,
                                speaker=batch.speaker_embs.to(self.device), lyric_ids=batch.lyric_token_ids.to(
                                    self.device), lyric_mask=batch.lyric_masks.to(self.device))
        ssl = None
        if self.songs[indices[0]].ssl is not None:
            ssl = {name: [self.songs[i].ssl[name].to(self.device, torch.float32) for i in indices]  # type: ignore[index]
                   for name in self.songs[indices[0]].ssl}  # type: ignore[union-attr]
        draws = step_draws(config.seed, step, keys, latents.shape[-1], device=self.device,
                           logit_mean=config.logit_mean, logit_std=config.logit_std)
        dropout = KeyedDropout(config.lyric_dropout, config.seed, step, keys) if config.lyric_dropout else None
        return model(latents, conditions, draws, frame_mask if config.mask_padding else None, ssl, dropout)

    # -- saving, resuming, logging -------------------------------------------------------------------------------

    def _state(self, adapter: Trainee, optimizer: Any, step: int, history: list[tuple[int, float]]
               ) -> TrainingState:
        return capture(step, self.config, adapter.names(), optimizer, history)

    def _save(self, adapter: Trainee, optimizer: Any, step: int, history: list[tuple[int, float]], *,
              final: bool, callbacks: TrainCallbacks | None = None) -> Path:
        """Weights + training state into the root (final) or a new checkpoint folder. With a sharded state every
        rank writes its own optimiser shard; the state's JSON, written last by rank 0, marks a complete save."""
        state = self._state(adapter, optimizer, step, history)
        shard = (self.dist.rank, self.dist.world) if adapter.sharded_state else None
        target = self.folder.root if final else self.folder.begin_checkpoint(step, self.dist)

        def write(folder: Path) -> None:
            adapter.save(folder)  # collective for FSDP2 (every rank gathers, rank 0 writes)
            if shard is not None or self.dist.is_main:
                save_state_tensors(folder, state, shard=shard)
            self.dist.barrier()
            if self.dist.is_main:
                save_state_json(folder, state, world=self.dist.world if shard is not None else None)

        write(target)
        if self.dist.is_main:
            if final:
                write_png(target / LOSS_PNG, loss_curve_image(history))
            else:
                target = self.folder.commit_checkpoint(step, target, self.config.keep_checkpoints)
            logger.info("step %d: %s saved in %s", step, "LoRA" if adapter.kind == "lora" else "model", target)
            if callbacks is not None and callbacks.on_save is not None:
                callbacks.on_save(step, target)
        self.dist.barrier()
        return self.folder.checkpoint(step) if not final else target

    def _resume(self, adapter: Trainee, optimizer: Any, scheduler: Any) -> tuple[int, list[tuple[int, float]]]:
        source = self.folder.latest_state()
        if source is None:
            raise FileNotFoundError(f"{self.folder.root}: no training state to resume")
        shard = (self.dist.rank, self.dist.world) if adapter.sharded_state else None
        state = load_state(source, shard=shard)
        changed = state.config.resume_compatible(self.config)
        if changed:
            raise ValueError(f"--resume: settings {changed} differ from the run being continued (in {source}); "
                             "use the same settings, or start a new run")
        adapter.load(source)
        restore(state, optimizer)
        with warnings.catch_warnings():  # fast-forwarding the schedule before any optimizer.step() is intended
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(state.step):
                scheduler.step()
        logger.info("resuming from step %d (%s)", state.step, source)
        return state.step, list(state.loss_history)

    def _log(self, report: StepReport, callbacks: TrainCallbacks) -> None:
        if not self.dist.is_main:
            return
        line = {"step": report.step, "loss": report.loss, "denoising_loss": report.denoising,
                **{f"{k}_loss": v for k, v in report.repa.items()}, "learning_rate": report.learning_rate,
                "grad_norm": report.grad_norm, "seconds": round(report.seconds_per_step, 4)}
        with (self.folder.root / LOSS_LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        if callbacks.on_step is not None:
            callbacks.on_step(report)

    def _preview(self, adapter: Trainee, step: int, callbacks: TrainCallbacks) -> None:
        if self.dist.is_main and self.preview is not None and isinstance(adapter, LoraTrainee):
            path = self.preview(adapter.adapter, step)
            if callbacks.on_preview is not None:
                callbacks.on_preview(step, path)
        self.dist.barrier()


@contextlib.contextmanager
def _matmul_precision(tf32: bool) -> Iterator[None]:
    """TF32 for fp32 matmuls and convolutions during the run (the original's trainer.py sets
    ``torch.set_float32_matmul_precision("high")`` at import); the process's settings come back afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    if tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _to_float(value: torch.Tensor) -> float:
    """A scalar tensor (an FSDP2 gradient norm is a replicated DTensor) as a float."""
    full = getattr(value, "full_tensor", None)
    return float(full() if callable(full) else value)


def _pad_latents(latents: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``[8, 16, T_i]`` latents to the longest -> ``[B, 8, 16, T]`` and the valid-frame mask ``[B, T]``."""
    frames = max(t.shape[-1] for t in latents)
    stacked = torch.stack([F.pad(t, (0, frames - t.shape[-1])) for t in latents]).to(device)
    mask = torch.stack([(torch.arange(frames) < t.shape[-1]).float() for t in latents]).to(device)
    return stacked, mask

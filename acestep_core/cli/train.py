"""``python -m acestep_core train``: check every argument and the output folder before any model is loaded,
load the dataset (its report goes to stderr and ``<output>/dataset_report.txt``), then train. Ctrl-C saves the
LoRA and the training state, then stops (``--resume`` continues). Under ``torchrun`` every process runs this."""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from ..errors import AceStepInputError
from ..lora.formats import LoraError
from ..training.config import TrainConfig
from ..training.lora import LoraConfig
from ..training.optim import OptimConfig
from ..training.run_files import REPORT_TXT, RunFolder
from .plan import UsageError, resolve_device
from .train_args import IGNORED_ORIGINAL, ORIGINAL_PRECISIONS, output_folder

logger = logging.getLogger("acestep_core.cli")

__all__ = ["TrainPlan", "plan_training", "run_training"]

OOM_ADVICE = ("out of GPU memory while training; lower it with --precision bf16 (or fp8), --checkpointing on, "
              "--optimizer adamw8bit, a smaller --rank, --batch-size 1 (with --accumulate for a larger effective "
              "batch), --repa off, or shorter clips")


@dataclass(frozen=True)
class TrainPlan:
    config: TrainConfig
    data: Path
    output: Path
    checkpoint: Path | None
    device: torch.device
    lyric_vocab: Path | None
    init_lora: Path | None
    teacher_paths: dict[str, Path]
    cache_dir: Path | None
    resume: bool
    overwrite: bool
    report_only: bool


def _lora_config(args: argparse.Namespace) -> LoraConfig:
    base = LoraConfig.from_json(args.lora_config) if args.lora_config else None
    values: dict[str, Any] = {} if base is None else {"r": base.r, "lora_alpha": base.lora_alpha,
                                                       "use_rslora": base.use_rslora,
                                                       "target_modules": base.target_modules}
    if args.rank is not None:
        values["r"] = args.rank
        if args.alpha is None and base is None:
            values["lora_alpha"] = None  # default alpha = the rank
    if args.alpha is not None:
        values["lora_alpha"] = args.alpha
    if args.rslora:
        values["use_rslora"] = True
    if args.targets:
        values["target_modules"] = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    return LoraConfig(**values)


def _original_flags(args: argparse.Namespace) -> str:
    """Map / refuse the original trainer's flags that have no direct equivalent; returns our precision."""
    if args.ckpt_path:
        raise UsageError("--ckpt_path: the original trainer's Lightning .ckpt files are pickles, which are not "
                         "opened here; continue one of our runs with --resume, or start from a LoRA with --init-lora")
    if args.gradient_clip_algorithm != "norm":
        raise UsageError(f"--gradient_clip_algorithm {args.gradient_clip_algorithm!r}: only 'norm' is supported "
                         "(the original's default)")
    if args.devices > 1 or args.num_nodes > 1:
        raise UsageError(f"--devices {args.devices} / --num_nodes {args.num_nodes}: start one process per GPU with "
                         f"torchrun, e.g. `torchrun --nproc-per-node {args.devices} -m acestep_core train ...` "
                         "(multi-node: add --nnodes/--node-rank/--rdzv-endpoint)")
    for name in IGNORED_ORIGINAL:
        if getattr(args, name) is not None:
            logger.info("--%s: accepted for compatibility with the original trainer, has no effect here", name)
    precision = ORIGINAL_PRECISIONS.get(str(args.precision))
    if precision is None:
        raise UsageError(f"--precision {args.precision!r}: choose fp32 (the original's 32), bf16 "
                         "(bf16 base weights with fp32 LoRA weights; the original's bf16-mixed) or fp8 (the DiT "
                         "blocks' weights in fp8)")
    return precision


def plan_training(args: argparse.Namespace) -> TrainPlan:
    """Every check that needs no model: raises :class:`UsageError` with the flag's name and the fix."""
    precision = _original_flags(args)
    if not args.data:
        raise UsageError("train needs --data DIR (a folder of songs, or the original's Hugging Face dataset)")
    data = Path(args.data).expanduser()
    if not data.exists():
        raise UsageError(f"--data {data}: not found")
    output = output_folder(args)
    if output is None:
        raise UsageError("train needs --output DIR (where the LoRA, checkpoints and previews go)")
    checkpoint = Path(args.checkpoint).expanduser() if args.checkpoint else None
    if checkpoint is not None and not checkpoint.exists():
        raise UsageError(f"--checkpoint {checkpoint}: not found")
    try:
        lora = _lora_config(args)
        optim = OptimConfig(learning_rate=args.learning_rate, weight_decay=args.weight_decay,
                            warmup_steps=args.warmup_steps, grad_clip_norm=args.clip, optimizer=args.optimizer)
        config = TrainConfig(max_steps=args.max_steps, lora=lora, optim=optim, batch_size=args.batch_size,
                             accumulate=args.accumulate, seed=args.seed if args.seed is not None else
                             random.SystemRandom().randrange(2**31), precision=precision,  # type: ignore[arg-type]
                             checkpointing=args.checkpointing, repa=args.repa, ssl_coeff=args.ssl_coeff,
                             shift=args.shift, mask_padding=args.mask_padding, save_every=args.save_every,
                             keep_checkpoints=args.keep, preview_every=args.preview_every,
                             preview_seconds=args.preview_seconds, preview_steps=args.preview_steps,
                             full=args.full, tf32=args.tf32)
    except (ValueError, LoraError) as e:
        raise UsageError(str(e)) from e
    init_lora = Path(args.init_lora).expanduser() if args.init_lora else None
    if args.full and init_lora is not None:
        raise UsageError("--init-lora starts a LoRA run; --full trains the base weights (merge the LoRA into a "
                         "checkpoint first, or drop one of the two flags)")
    if init_lora is not None and not init_lora.exists():
        raise UsageError(f"--init-lora {init_lora}: not found")
    folder = RunFolder(output)
    if not args.report_only and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 owns the folder
        try:
            folder.prepare(resume=args.resume, overwrite=args.overwrite)
        except AceStepInputError as e:
            raise UsageError(str(e)) from e
    teachers = {name: Path(path).expanduser() for name, path in (("mert", args.teacher_mert),
                                                                   ("m-hubert", args.teacher_mhubert)) if path}
    return TrainPlan(config=config, data=data, output=output, checkpoint=checkpoint,
                     device=resolve_device(args.device), lyric_vocab=Path(args.lyric_vocab) if args.lyric_vocab
                     else None, init_lora=init_lora, teacher_paths=teachers,
                     cache_dir=Path(args.cache_dir).expanduser() if args.cache_dir else None, resume=args.resume,
                     overwrite=args.overwrite, report_only=args.report_only)


class _StopFlag:
    """Ctrl-C once: save and stop at the end of the step; twice: stop now."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (the LoRA and the training state are saved); Ctrl-C again to abort",
              file=sys.stderr)


def run_training(plan: TrainPlan, *, quiet: bool = False) -> Path:
    """Load, prepare and train; returns the folder holding the final LoRA."""
    from ..hub import download_checkpoint
    from ..lyrics import LyricTokenizer, resolve_lyric_vocab
    from ..training.dataset import load_training_dataset
    from ..training.distributed import init_distributed
    from ..training.loop import TrainCallbacks
    from ..training.session import build_training_run, load_training_models
    from .run import OFFLINE_HINT

    dist = init_distributed(plan.device)
    device = torch.device("cuda", dist.local_rank) if plan.device.type == "cuda" and dist.active else plan.device
    checkpoint = plan.checkpoint or download_checkpoint(offline_hint=OFFLINE_HINT)
    vocab = resolve_lyric_vocab(plan.lyric_vocab, checkpoint=checkpoint, allow_download=True)
    lyric_tokenizer = LyricTokenizer.from_vocab(vocab)
    dataset = load_training_dataset(plan.data, lyric_tokenizer, audio_cache={}, require_usable=not plan.report_only)
    report = dataset.report.to_text()
    if dist.is_main:
        print(report, file=sys.stderr)
    if plan.report_only:
        return plan.output
    if dist.is_main:
        (plan.output / REPORT_TXT).write_text(report + "\n", encoding="utf-8")
    repa = _repa_enabled(plan)
    config = plan.config if repa or plan.config.repa == "off" else replace(plan.config, repa="off")
    models = load_training_models(checkpoint, lyric_tokenizer, device=device, precision=config.precision, repa=repa,
                                  full=config.full)
    teachers = _load_teachers(plan, models, device) if repa else None
    run = build_training_run(models, dataset, config, RunFolder(plan.output), device=device, dist=dist,
                             teachers=teachers, init_lora=plan.init_lora, cache_dir=plan.cache_dir)
    stop = _StopFlag()
    previous = signal.signal(signal.SIGINT, stop)
    try:
        callbacks = TrainCallbacks(on_step=_progress(quiet or not dist.is_main), should_stop=lambda: stop.requested)
        result = run.train(callbacks, resume=plan.resume)
    except torch.OutOfMemoryError as e:
        raise UsageError(OOM_ADVICE) from e
    except Exception as e:
        if dist.active:  # torchrun ends the other ranks; this line says which one failed and why
            logger.error("rank %d of %d failed: %s: %s (the last saved state in %s is intact)", dist.rank,
                         dist.world, type(e).__name__, e, plan.output)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    logger.info("trained %d steps%s; %s: %s", result.steps_done, " (stopped early)" if result.stopped_early else "",
                "model" if config.full else "LoRA", result.lora_folder)
    return result.lora_folder


def _repa_enabled(plan: TrainPlan) -> bool:
    """``--repa``: off, on (teachers required), auto (on when both are found locally); one log line says which."""
    if plan.config.repa == "off":
        logger.info("REPA off (--repa off)")
        return False
    from ..teachers import resolve_repa

    enabled, reason = resolve_repa(plan.config.repa, paths=plan.teacher_paths or None)
    logger.info("%s", reason)
    return enabled


def _load_teachers(plan: TrainPlan, models: Any, device: torch.device) -> Any:
    from ..teachers import TeacherSet

    cfg = models.transformer.cfg
    return TeacherSet.load(paths=plan.teacher_paths or None, device=device,
                           feature_dims=dict(zip(cfg.ssl_names, cfg.ssl_latent_dims, strict=True)))


def _progress(quiet: bool) -> Any:
    if quiet:
        return None

    def show(report: Any) -> None:
        remaining = (report.max_steps - report.step) * report.seconds_per_step
        repa = " ".join(f"{k} {v:.4f}" for k, v in report.repa.items())
        print(f"step {report.step}/{report.max_steps}  loss {report.loss:.4f}  {repa}  lr {report.learning_rate:.2e}"
              f"  {report.seconds_per_step:.2f} s/step  ETA {remaining / 60:.1f} min", file=sys.stderr)
    return show

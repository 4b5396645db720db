"""``python -m acestep_core train`` arguments: ours, and the original trainer's flags by their names
(``--learning_rate``, ``--max_steps``, ``--precision 32``, ...), mapped onto ours so its commands keep working.

Original flag -> ours: ``--dataset_path`` = ``--data``; ``--checkpoint_dir`` = ``--checkpoint``;
``--logger_dir`` + ``--exp_name`` = ``--output`` (``<logger_dir>/<exp_name>``) when ``--output`` is not given;
``--lora_config_path`` = ``--lora-config``; ``--learning_rate``, ``--max_steps``, ``--shift``,
``--accumulate_grad_batches`` (= ``--accumulate``), ``--gradient_clip_val`` (= ``--clip``),
``--every_n_train_steps`` (= ``--save-every``), ``--every_plot_step`` (= ``--preview-every``); ``--precision``
``32`` = fp32, ``bf16``/``bf16-mixed``/``bf16-true`` = bf16; ``--devices`` / ``--num_nodes`` above 1: run under
``torchrun`` (the message says how); ``--ckpt_path`` (a Lightning pickle) is refused with what to use instead;
``--gradient_clip_algorithm`` must be ``norm``; ``--num_workers``, ``--epochs``, ``--reload_dataloaders_every_n_epochs``
and ``--val_check_interval`` are accepted and have no effect (logged).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..training.config import CHECKPOINTING_CHOICES, PRECISIONS, REPA_CHOICES
from ..training.optim import OPTIMIZERS

__all__ = ["ORIGINAL_PRECISIONS", "add_train_parser"]

ORIGINAL_PRECISIONS = {"32": "fp32", "32-true": "fp32", "fp32": "fp32", "bf16": "bf16", "bf16-mixed": "bf16",
                       "bf16-true": "bf16", "fp8": "fp8"}
DESCRIPTION = """Train a LoRA for ACE-Step v1 on a folder of songs, with the original trainer's recipe by default.

  python -m acestep_core train --data my_songs/ --checkpoint ACE-Step-v1-3.5B/ --output my_lora/ --max-steps 2000

A song is <name>.wav|flac|mp3|ogg with <name>_prompt.txt (comma separated tags) and <name>_lyrics.txt (optional
<name>_recaption.json); the original trainer's Hugging Face dataset folders work too. The LoRA is written to
--output (pytorch_lora_weights.safetensors + adapter_config.json), with checkpoints, previews and a loss log.
Ctrl-C saves and stops; --resume continues. The original trainer's flags (--learning_rate, --max_steps,
--precision 32, --accumulate_grad_batches, --gradient_clip_val, --every_n_train_steps, --every_plot_step,
--dataset_path, --lora_config_path, --checkpoint_dir, --exp_name, --logger_dir) are accepted by their names.
Several GPUs: torchrun --nproc-per-node N -m acestep_core train ...
"""
IGNORED_ORIGINAL = ("num_workers", "epochs", "reload_dataloaders_every_n_epochs", "val_check_interval")


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and files")
    g.add_argument("--data", "--dataset_path", dest="data", metavar="DIR",
                   help="folder of songs (<song>.wav|flac|mp3|ogg + <song>_prompt.txt + <song>_lyrics.txt, searched "
                        "recursively) or the original trainer's Hugging Face dataset folder")
    g.add_argument("--checkpoint", "--checkpoint_dir", dest="checkpoint", metavar="PATH",
                   help="ACE-Step-v1-3.5B folder or ComfyUI single file (default: the downloaded checkpoint)")
    g.add_argument("--output", metavar="DIR", help="run folder: the LoRA, checkpoints, previews, logs")
    g.add_argument("--logger_dir", "--logger-dir", dest="logger_dir", metavar="DIR", default="./exps/logs",
                   help=argparse.SUPPRESS)
    g.add_argument("--exp_name", "--exp-name", dest="exp_name", metavar="NAME", default=None,
                   help=argparse.SUPPRESS)
    g.add_argument("--lyric-vocab", metavar="FILE", help="lyric vocab.json (default: found next to the checkpoint, "
                                                          "in ComfyUI, or downloaded)")
    g.add_argument("--resume", action="store_true", help="continue the run in --output exactly")
    g.add_argument("--overwrite", action="store_true", help="start again in an --output folder that holds a run")
    g.add_argument("--report-only", action="store_true", help="print the dataset report and stop")
    g.add_argument("--cache-dir", metavar="DIR", help="latent / feature cache (default $ACESTEP_CACHE_DIR/training)")


def _add_lora_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LoRA")
    g.add_argument("--rank", type=int, metavar="R", help="LoRA rank (default 64)")
    g.add_argument("--alpha", type=float, metavar="A", help="LoRA alpha (default = rank: strength 1.0 means the "
                                                             "same in our loader, the original app and ComfyUI)")
    g.add_argument("--rslora", action="store_true", default=None, help="rsLoRA scaling alpha / sqrt(rank)")
    g.add_argument("--targets", metavar="LIST", help="comma separated target modules (default: the RapMachine "
                                                     "targets speaker_embedder,linear_q,linear_k,linear_v,to_q,to_k,"
                                                     "to_v,to_out.0)")
    g.add_argument("--lora-config", "--lora_config_path", dest="lora_config", metavar="FILE",
                   help="the original's lora_config.json (PEFT LoraConfig arguments); flags above override it")
    g.add_argument("--init-lora", metavar="PATH", help="start from this LoRA (continue training it)")
    g.add_argument("--full", action="store_true", help="fine-tune every weight of the DiT instead of a LoRA (FSDP2, "
                                                      "also over torchrun processes; writes ace_step_transformer/)")


def _add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe (defaults = the original trainer)")
    g.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int, metavar="N", default=2000,
                   help="optimiser steps (default 2000; the learning rate decays to 0 at the last)")
    g.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, metavar="X",
                   default=1e-4)
    g.add_argument("--warmup-steps", type=int, default=10, metavar="N")
    g.add_argument("--weight-decay", type=float, default=1e-2, metavar="X")
    g.add_argument("--clip", "--gradient_clip_val", dest="clip", type=float, default=0.5, metavar="X",
                   help="gradient norm clip (default 0.5)")
    g.add_argument("--gradient_clip_algorithm", default="norm", help=argparse.SUPPRESS)
    g.add_argument("--batch-size", type=int, default=1, metavar="B", help="clips per process per micro-batch")
    g.add_argument("--accumulate", "--accumulate_grad_batches", dest="accumulate", type=int, default=1,
                   metavar="N", help="micro-batches per optimiser step")
    g.add_argument("--seed", type=int, default=None, help="makes the run reproducible (default: a random seed, "
                                                          "logged and stored in the run)")
    g.add_argument("--shift", type=float, default=3.0, help="time shift of the training grid (default 3)")
    g.add_argument("--repa", choices=REPA_CHOICES, default="auto",
                   help="REPA loss with the MERT / mHuBERT teachers: auto = on when both are found locally")
    g.add_argument("--ssl-coeff", type=float, default=1.0, metavar="W", help="REPA weight (1.0 = the original)")
    g.add_argument("--teacher-mert", metavar="DIR", help="MERT-v1-330M folder (config.json + model.safetensors)")
    g.add_argument("--teacher-mhubert", metavar="DIR", help="mHuBERT-147 folder")


def _add_speed_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speed and memory")
    g.add_argument("--precision", default="fp32", help=f"{' | '.join(PRECISIONS)} (fp32 = the original; bf16 = "
                                                        "bf16 base weights, fp32 LoRA; fp8 = the DiT blocks' "
                                                        "weights in fp8, bf16 math); the original's 32 / "
                                                        "bf16-mixed are accepted")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw",
                   help="adamw = the original; adamw8bit keeps the optimiser moments in 8 bits (less memory)")
    g.add_argument("--checkpointing", choices=CHECKPOINTING_CHOICES, default="auto",
                   help="activation checkpointing per DiT block (auto: off on a GPU whose free memory holds "
                        "the run without it)")
    g.add_argument("--no-tf32", dest="tf32", action="store_false",
                   help="true fp32 matmuls on CUDA (default: TF32, as the original's trainer sets)")
    g.add_argument("--mask-padding", action="store_true", help="leave the padding of shorter clips in a batch out "
                                                               "of the loss (the original trains on it)")
    g.add_argument("--device", default="auto", help="auto | cuda | cuda:N | cpu | mps")
    g.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    g.add_argument("--num_nodes", "--num-nodes", dest="num_nodes", type=int, default=1, help=argparse.SUPPRESS)
    g.add_argument("--ckpt_path", default=None, help=argparse.SUPPRESS)
    for name in IGNORED_ORIGINAL:
        g.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)


def _add_schedule_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("saving and previews")
    g.add_argument("--save-every", "--every_n_train_steps", dest="save_every", type=int, default=500, metavar="N",
                   help="checkpoint every N steps (0 = only the final save)")
    g.add_argument("--keep", type=int, default=3, metavar="K", help="checkpoints kept (0 = all)")
    g.add_argument("--preview-every", "--every_plot_step", dest="preview_every", type=int, default=0,
                   metavar="N", help="render a preview song every N steps (0 = never)")
    g.add_argument("--preview-seconds", type=float, default=30.0, metavar="S")
    g.add_argument("--preview-steps", type=int, default=27, metavar="N")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress or info messages")


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on the ``python -m acestep_core`` sub-command parser."""
    p = subparsers.add_parser("train", help="train a LoRA on your songs (the original trainer's recipe)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    for add in (_add_data_arguments, _add_lora_arguments, _add_recipe_arguments, _add_speed_arguments,
                _add_schedule_arguments):
        add(p)
    return p


def output_folder(args: argparse.Namespace) -> Path | None:
    if args.output:
        return Path(args.output).expanduser()
    if args.exp_name:
        return Path(args.logger_dir).expanduser() / args.exp_name
    return None

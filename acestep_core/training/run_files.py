"""The files of a training run's output folder, in one place.

::

    <output>/pytorch_lora_weights.safetensors   the final (or latest) LoRA, official layout
    <output>/adapter_config.json                (+ pytorch_lora_weights_comfyui.safetensors when alpha != r)
    <output>/training_state.json|.safetensors   the state --resume continues from
    <output>/loss_log.jsonl                     one JSON line per optimiser step
    <output>/loss_curve.png
    <output>/dataset_report.txt
    <output>/checkpoints/step_0000500/          LoRA + state every --save-every steps (the last K kept)
    <output>/previews/step_0000500.wav          preview songs every --preview-every steps

A ``--full`` run writes ``ace_step_transformer/`` (+ links to the base folder's other components) instead of
the LoRA files, and one optimiser-state file per process (``training_state.rankXXXXX-of-YYYYY.safetensors``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import AceStepInputError
from .lora import PEFT_WEIGHTS_FILE
from .state import STATE_JSON

__all__ = ["LOSS_LOG", "LOSS_PNG", "REPORT_TXT", "RunFolder", "RunFolderError"]

LOSS_LOG = "loss_log.jsonl"
LOSS_PNG = "loss_curve.png"
REPORT_TXT = "dataset_report.txt"
CHECKPOINTS = "checkpoints"
FULL_MODEL_FOLDER = "ace_step_transformer"  # a --full run's weights (see transformer_files)
PREVIEWS = "previews"


class RunFolderError(AceStepInputError):
    """The output folder cannot be used as asked (holds another run, or no run to resume)."""


class RunFolder:
    """A run's output folder (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def holds_run(self) -> bool:
        return (self.root / STATE_JSON).is_file() or (self.root / PEFT_WEIGHTS_FILE).is_file() or \
            (self.root / CHECKPOINTS).is_dir() or (self.root / FULL_MODEL_FOLDER).is_dir()

    def prepare(self, *, resume: bool, overwrite: bool,
                flags: tuple[str, str | None] = ("--resume", "--overwrite")) -> None:
        """Check the folder before any work: a new run needs an empty (or new) folder unless ``overwrite``;
        ``resume`` needs a run to continue. ``flags`` are the user's words for resume / overwrite (``None``: the
        interface cannot overwrite)."""
        resume_flag, overwrite_flag = flags
        if resume and overwrite:
            raise RunFolderError(f"{resume_flag} and {overwrite_flag} exclude each other: continue the run in "
                                 f"{self.root}, or start it again")
        if resume:
            if self.latest_state() is None:
                raise RunFolderError(f"{resume_flag}: {self.root} holds no training state to continue "
                                     f"({STATE_JSON}); start a new run without {resume_flag}")
            return
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"output {self.root} is a file, not a folder; choose a folder for the run")
        if self.holds_run():
            if not overwrite:
                again = (f", start it again with {overwrite_flag} (its LoRA, checkpoints and previews are deleted)"
                         if overwrite_flag else "")
                raise RunFolderError(f"output folder {self.root} already holds a training run; continue it with "
                                     f"{resume_flag}{again}, or choose another folder")
            for name in (CHECKPOINTS, PREVIEWS, FULL_MODEL_FOLDER):
                shutil.rmtree(self.root / name, ignore_errors=True)
            for path in self.root.glob("*"):
                if path.is_symlink() or path.is_file():  # files, and a full run's links to the base components
                    path.unlink()
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".write_test.{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunFolderError(f"output folder {self.root} is not writable ({e}); choose another folder") from e

    def checkpoint(self, step: int) -> Path:
        return self.root / CHECKPOINTS / f"step_{step:07d}"

    def checkpoints(self) -> list[Path]:
        folder = self.root / CHECKPOINTS
        return sorted(p for p in folder.glob("step_*") if (p / STATE_JSON).is_file()) if folder.is_dir() else []

    def latest_state(self) -> Path | None:
        """The folder holding the most recent complete state (the root's final save, or the last checkpoint)."""
        candidates = [p for p in (self.root, *self.checkpoints()) if (p / STATE_JSON).is_file()]
        if not candidates:
            return None
        return max(candidates, key=lambda p: json.loads((p / STATE_JSON).read_text(encoding="utf-8"))["step"])

    def begin_checkpoint(self, step: int, dist: Any = None) -> Path:
        """The temporary folder a checkpoint is written into (created by rank 0; every rank may write there)."""
        temporary = self.checkpoint(step).with_name(f".step_{step:07d}.tmp")
        if dist is None or dist.is_main:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        if dist is not None:
            dist.barrier()
        return temporary

    def commit_checkpoint(self, step: int, temporary: Path, keep: int) -> Path:
        """Rename a written temporary folder to ``checkpoints/step_XXXXXXX`` (a checkpoint folder is complete or
        absent), then keep only the last ``keep`` checkpoints (0 = all)."""
        final = self.checkpoint(step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        if keep > 0:
            for old in self.checkpoints()[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def write_checkpoint(self, step: int, write: Callable[[Path], None], keep: int) -> Path:
        """``write(folder)`` into a temporary folder, then :meth:`commit_checkpoint` (one process)."""
        temporary = self.begin_checkpoint(step)
        write(temporary)
        return self.commit_checkpoint(step, temporary, keep)

    def preview(self, step: int) -> Path:
        return self.root / PREVIEWS / f"step_{step:07d}.wav"

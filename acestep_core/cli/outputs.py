"""The files a ``generate`` run writes: their names, the checks made before any work, and writing them safely.

Policy (:mod:`acestep_core.safe_write`): an existing file is never replaced unless ``--overwrite`` is given.
Without it, a run whose names are taken writes the next free variant (``song-1.wav`` + ``song-1_input_params.json``;
a batch ``song-1_0.wav``, ``song-1_1.wav``...), chosen by exclusive creation so concurrent runs never share one,
and prints the names it wrote. Audio files and their sidecars are one group: they always carry the same variant.
Every file goes through a temporary file in its folder, so Ctrl-C or an error leaves existing files as they were.

Refused before any work (exit 2): an output that is also an input (``--src-audio``, ``--ref-audio``,
``--params``, ``--lyrics-file``, a ``--lora`` ...) or two outputs naming the same file (``--save-latents`` on the
``--output`` path), an unsupported extension, a folder that cannot be created or written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..audio.files import (
    SUPPORTED_FORMATS,
    AudioFileError,
    audio_tags,
    encode_audio_file,
    format_from_path,
    is_folder_target,
    output_paths,
    sidecar_path,
    sidecar_text,
)
from ..safe_write import OutputGroup, OutputPathError, atomic_write, check_writable_target, same_file
from .errors import UsageError

logger = logging.getLogger("acestep_core.cli")

__all__ = ["OutputPlan", "plan_outputs", "write_audio_outputs", "write_latents"]


@dataclass(frozen=True)
class OutputPlan:
    """Where a run writes: ``--output`` as typed, the batch size, the format, the timestamp of default names,
    ``--save-latents`` and ``--overwrite``."""

    output: str | None
    batch_size: int
    fmt: str
    stamp: str
    latents: Path | None = None
    overwrite: bool = False

    def audio(self, variant: int = 0) -> list[Path]:
        """The audio files of name variant ``variant`` (0 = as asked)."""
        return output_paths(self.output, batch_size=self.batch_size, default_format=self.fmt, variant=variant,
                            stamp=self.stamp)

    def group(self, variant: int = 0) -> list[Path]:
        """Audio files, then their sidecars, of one variant."""
        audio = self.audio(variant)
        return [*audio, *(sidecar_path(p) for p in audio)]


def _audio_format(output: str | None, default_format: str) -> str:
    if output is None or is_folder_target(output):
        return default_format if default_format in SUPPORTED_FORMATS else "wav"
    suffix = Path(output).suffix.lower().lstrip(".")
    if not suffix:
        raise UsageError(f"--output {output}: no audio file extension; give a file name ending in .wav, .flac, .mp3 "
                         "or .ogg, or a folder ending in '/' (it is created)")
    try:
        return format_from_path(output)
    except AudioFileError as e:
        raise UsageError(f"--{e}") from e


def plan_outputs(output: str | None, latents: Path | None, *, batch_size: int, default_format: str,
                 overwrite: bool, inputs: Sequence[tuple[str, Path | None]]) -> OutputPlan:
    """Check the outputs before any work (see the module docstring) and return the plan; raises UsageError."""
    plan = OutputPlan(output, batch_size, _audio_format(output, default_format), time.strftime("%Y%m%d%H%M%S"),
                      None if latents is None else latents.expanduser(), overwrite)
    outputs = [("--output", path) for path in plan.audio()]
    outputs += [("--output (its _input_params.json)", sidecar_path(p)) for p in plan.audio()]
    if plan.latents is not None:
        outputs.append(("--save-latents", plan.latents))
    try:
        check_writable_target(outputs[0][1], "--output")
        if plan.latents is not None:
            check_writable_target(plan.latents, "--save-latents")
    except OutputPathError as e:
        raise UsageError(str(e)) from e
    for index, (what, path) in enumerate(outputs):
        for flag, source in inputs:
            if source is not None and same_file(path, source):
                raise UsageError(f"{what} {path} is the same file as {flag}; the run would destroy its own input. "
                                 "Choose another output name")
        for other_what, other in outputs[index + 1:]:
            if same_file(path, other):
                raise UsageError(f"{what} and {other_what} both name {path}; give them different names")
    _log_existing(plan)
    return plan


def _log_existing(plan: OutputPlan) -> None:
    taken = [p for p in [*plan.group(), plan.latents] if p is not None and p.exists()]
    if taken and plan.overwrite:
        logger.info("--overwrite: %s will be replaced when the run succeeds", ", ".join(map(str, taken)))
    elif taken:
        logger.info("%s exists: this run writes the next free name instead (--overwrite replaces it)",
                    ", ".join(map(str, taken)))


def write_audio_outputs(plan: OutputPlan, audio: torch.Tensor, sample_rate: int,
                        record_for: Callable[[int, Path], dict[str, Any]]) -> list[Path]:
    """Write every batch item ``audio[i]`` with its sidecar ``record_for(i, path)`` as one group; returns the
    audio paths written (the names chosen for this run, see the module docstring)."""
    batch = plan.batch_size
    with OutputGroup(overwrite=plan.overwrite) as group:
        names = group.reserve(plan.group)
        for index, path in enumerate(names[:batch]):
            record = record_for(index, path)
            encode_audio_file(group.stage(path), plan.fmt, audio[index], sample_rate, tags=audio_tags(record))
            group.stage(names[batch + index]).write_text(sidecar_text(record), encoding="utf-8")
        group.commit()
    wanted = plan.audio()
    if names[:batch] != wanted:
        logger.warning("%s exists; wrote %s instead (nothing was replaced; --overwrite replaces)",
                       ", ".join(map(str, wanted)), ", ".join(map(str, names[:batch])))
    return names[:batch]


def write_latents(plan: OutputPlan, latents: torch.Tensor) -> Path | None:
    """``--save-latents``: a safetensors file with ``latents`` [B, 8, 16, T] float32 (same naming policy)."""
    if plan.latents is None:
        return None
    from safetensors.torch import save_file

    def save(tmp: Path) -> None:
        save_file({"latents": latents}, str(tmp), metadata={"format": "acestep-v1 latents [B, 8, 16, T]"})

    return atomic_write(plan.latents, save, overwrite=plan.overwrite, unique=True)

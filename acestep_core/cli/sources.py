"""Checks of ``--src-audio`` / ``--ref-audio`` before any model work: the samples are finite, the lengths fit the
task (the model's 240 s window), and the repaint / extend windows fit the source, all from the file alone."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..audio.files import AudioFileError, AudioInfo
from ..errors import AceStepInputError
from .errors import UsageError
from .words import in_cli_words

logger = logging.getLogger("acestep_core.cli")

__all__ = ["check_finite_samples", "check_sources"]

_BLOCK_FRAMES = 1 << 18


def check_finite_samples(info: AudioInfo, what: str) -> None:
    """Refuse a file holding NaN or infinite samples (only float WAV / AIFF can); integer formats are skipped."""
    import soundfile as sf

    try:
        subtype = sf.info(str(info.path)).subtype
        if subtype not in ("FLOAT", "DOUBLE"):
            return
        for block in sf.blocks(str(info.path), blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise UsageError(f"{what} {info.path}: the file holds NaN or infinite samples (a damaged or "
                                 "unnormalised float WAV); re-export it, e.g. `ffmpeg -i in.wav -c:a pcm_s24le "
                                 "out.wav`")
    except (RuntimeError, OSError) as e:
        raise AudioFileError(f"{what}: cannot read {info.path}: {e}") from e


def check_sources(params: Any, task: str, src: AudioInfo | None, ref: AudioInfo | None) -> None:
    """Finite samples, lengths and windows of the source / reference against ``params`` (exit 2 on failure)."""
    from ..audio.codec import encoded_latent_frames
    from ..sampling.validation import check_source_frames

    for info, what in ((src, "--src-audio"), (ref, "--ref-audio")):
        if info is not None:
            check_finite_samples(info, what)
            if info.duration_s > 60:
                logger.info("%s is %.0f s long: encoding it takes a while on CPU", what, info.duration_s)

    def frames(info: AudioInfo | None) -> int | None:
        return None if info is None else encoded_latent_frames(info.frames, info.sample_rate)

    try:
        check_source_frames(params, task, frames(src), frames(ref))
    except AceStepInputError as e:
        raise UsageError(in_cli_words(str(e))) from e

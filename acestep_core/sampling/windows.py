"""Small helpers shared by front-ends (the ComfyUI nodes, the CLI) that are not part of the sampling itself.

* :func:`extend_window_for_frames`: extend-left/right seconds on a source of ``src_frames`` latent frames ->
  upstream ``repaint_start`` / ``repaint_end`` (the same convention as the CLI's ``--extend-left/-right``);
* :func:`token_lookup`: ``encode_prompt`` / ``encode_lyrics`` callables for :func:`acestep_core.sampling.pipeline.generate`
  that serve tokens computed in advance (so tokenization errors surface before any model work).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import AceStepInputError
from .schedule import seconds_to_frames

__all__ = ["LATENT_RATE_HZ", "extend_window_for_frames", "frames_to_duration", "token_lookup"]

LATENT_RATE_HZ = 44100 / 4096  # latent frames per second (44.1 kHz, 512-sample hop, 8x time compression)


def frames_to_duration(frames: int) -> float:
    """A duration in seconds whose ``seconds_to_frames`` is exactly ``frames`` (half a frame past the boundary,
    so float truncation cannot lose a frame)."""
    return (frames + 0.5) / LATENT_RATE_HZ


def extend_window_for_frames(src_frames: int, left_s: float, right_s: float) -> tuple[float, float]:
    """``(repaint_start, repaint_end)`` seconds for extending a ``src_frames``-frame source by ``left_s`` /
    ``right_s`` (upstream measures ``repaint_end`` on the left-extended timeline)."""
    if left_s < 0 or right_s < 0 or left_s + right_s <= 0:
        raise AceStepInputError(f"extend: left/right must be >= 0 seconds and not both 0, got {left_s}, {right_s}")
    left, right = seconds_to_frames(left_s), seconds_to_frames(right_s)
    if left_s > 0 and left == 0 or right_s > 0 and right == 0:
        raise AceStepInputError(f"extend: {left_s} / {right_s} s is less than one latent frame (0.093 s); "
                                "use at least 0.1 s or 0")
    if left > src_frames or right > src_frames:
        raise AceStepInputError(f"extend: one run adds at most the source length per side "
                                f"({src_frames / LATENT_RATE_HZ:.2f} s), got left {left_s} s, right {right_s} s; "
                                "extend in several runs")
    end = (left + src_frames + right + 0.5) / LATENT_RATE_HZ if right > 0 else (src_frames - 0.5) / LATENT_RATE_HZ
    return -float(left_s), end


def token_lookup(tokens: Mapping[str, tuple[Any, Any]], what: str) -> Callable[[str], tuple[Any, Any]]:
    """A ``text -> (ids, mask)`` function answering from ``tokens`` (raises for texts not tokenized in advance)."""

    def lookup(text: str) -> tuple[Any, Any]:
        if text not in tokens:
            raise AceStepInputError(f"{what} {text[:40]!r} was not tokenized in advance")
        return tokens[text]

    return lookup

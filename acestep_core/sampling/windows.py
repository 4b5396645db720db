"""The extend-window convention, shared by every front-end (the CLI's ``--extend-left/--extend-right``, the
Extend Latent node's ``left_s``/``right_s``): seconds to add on each side of a source of ``src_frames`` latent
frames -> upstream ``repaint_start`` / ``repaint_end``."""

from __future__ import annotations

from ..errors import AceStepInputError
from ..timing import LATENT_FRAME_RATE_HZ, seconds_to_frames

__all__ = ["extend_window_for_frames"]

FRAME_S = 1.0 / LATENT_FRAME_RATE_HZ


def extend_window_for_frames(src_frames: int, left_s: float, right_s: float, *,
                             names: tuple[str, str] = ("left_s", "right_s")) -> tuple[float, float]:
    """``(repaint_start, repaint_end)`` seconds for extending a ``src_frames``-frame source by ``left_s`` /
    ``right_s``. ``names`` are the user's words for the two values (flag or widget names) in error messages.

    Upstream measures ``repaint_end`` on the left-extended timeline, so with a right extension the end is
    ``left + src + right`` frames, placed half a frame past that boundary so truncation to frames gives exactly
    ``seconds_to_frames(right_s)`` new frames; without one the end is half a frame before the source's end
    (nothing is added on the right).
    """
    left_name, right_name = names
    if left_s < 0 or right_s < 0 or left_s + right_s <= 0:
        raise AceStepInputError(f"extend: {left_name} and {right_name} must be >= 0 seconds and not both 0, "
                                f"got {left_s} and {right_s}")
    left, right = seconds_to_frames(left_s), seconds_to_frames(right_s)
    if left_s > 0 and left == 0 or right_s > 0 and right == 0:
        raise AceStepInputError(f"extend: {left_name} {left_s} s / {right_name} {right_s} s: a side shorter than "
                                f"one latent frame ({FRAME_S:.3f} s) adds nothing; use at least 0.1 s, or 0")
    if left > src_frames or right > src_frames:
        raise AceStepInputError(f"extend: one run adds at most the source length per side "
                                f"({src_frames / LATENT_FRAME_RATE_HZ:.2f} s), got {left_name} {left_s} s and "
                                f"{right_name} {right_s} s; extend in several runs")
    if right > 0:
        end = (left + src_frames + right + 0.5) / LATENT_FRAME_RATE_HZ
    else:
        end = (src_frames - 0.5) / LATENT_FRAME_RATE_HZ
    return -float(left_s), end

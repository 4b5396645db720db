"""Time on the latent grid, derived from the codec config: the latent frame rate, the model's 240 s window,
seconds <-> frames. The one home of these facts for the core, the CLI, the nodes and the tests."""

from __future__ import annotations

from .config import CodecConfig

__all__ = ["LATENT_FRAME_RATE_HZ", "MAX_DURATION_S", "MAX_FRAMES", "frames_to_duration", "frames_to_seconds",
           "seconds_to_frames"]

CODEC = CodecConfig()  # ACE-Step v1 has one codec; its constants define the latent time grid
LATENT_FRAME_RATE_HZ = CODEC.latent_frame_rate_hz  # 44100 / (512 * 8) = 10.77 latent frames per second
MAX_DURATION_S = 240.0  # upstream's longest generation window (and the first 240 s the original trains on)


def seconds_to_frames(seconds: float) -> int:
    """Latent frames for a time in seconds, truncated toward zero as upstream (``int(s * 44100 / 512 / 8)``)."""
    return CODEC.seconds_to_frames(seconds)


def frames_to_seconds(frames: int) -> float:
    """The start time of latent frame ``frames`` (``frames / 10.77``)."""
    return frames / LATENT_FRAME_RATE_HZ


def frames_to_duration(frames: int) -> float:
    """A duration in seconds whose :func:`seconds_to_frames` is exactly ``frames`` (half a frame past the
    boundary, so float truncation cannot lose a frame)."""
    return (frames + 0.5) / LATENT_FRAME_RATE_HZ


MAX_FRAMES = seconds_to_frames(MAX_DURATION_S)  # 2583

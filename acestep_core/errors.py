"""Exception types of the core. All derive from ``ValueError``/``OSError`` so callers
that only know the builtins still catch them; messages say what, why and how to fix."""

from __future__ import annotations


class AceStepInputError(ValueError):
    """A tensor or argument given to a core module has the wrong shape, dtype or value."""


class CheckpointError(OSError):
    """A checkpoint file or folder cannot be read (missing, corrupt, truncated, pickle...)."""


class NonFiniteResultError(ArithmeticError):
    """A generation produced NaN or infinite latents or audio; nothing may be saved or reported as a success."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was read but its keys/shapes do not match the module being loaded."""


def check_latent_shape(latents: object, *, channels: int, height: int, name: str = "latents") -> None:
    """Raise :class:`AceStepInputError` unless ``latents`` is a ``[B, channels, height, T]`` tensor, T >= 1."""
    import torch

    if not isinstance(latents, torch.Tensor):
        raise AceStepInputError(
            f"{name}: expected a torch.Tensor [B, {channels}, {height}, T], got {type(latents).__name__}"
        )
    shape = tuple(latents.shape)
    if latents.ndim != 4 or shape[1] != channels or shape[2] != height or shape[0] < 1 or shape[3] < 1:
        hint = ""
        if latents.ndim == 3 and shape[0] == channels and shape[1] == height:
            hint = " (missing batch dimension: add one with latents[None])"
        elif latents.ndim == 4 and shape[1] != channels:
            hint = (
                f" (got {shape[1]} channels; ACE-Step v1 latents have {channels}:"
                " is this a latent of another model?)"
            )
        raise AceStepInputError(
            f"{name}: expected shape [B, {channels}, {height}, T] with B, T >= 1, got {list(shape)}{hint}"
        )


def reword(message: str, words: dict[str, str]) -> str:
    """``message`` with the core's parameter names (``audio_duration``, ``task='extend'``...) replaced by the
    words of the interface the user used (``--duration``, a widget name), so every message names what the user
    can change. Whole names only: a name inside a path or a longer identifier is left alone."""
    if not words:
        return message
    import re

    names = "|".join(re.escape(name) for name in sorted(words, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w\-/\\.'])({names})(?![\w\-/\\]|\.\w)")
    return pattern.sub(lambda match: words[match.group(1)], message)

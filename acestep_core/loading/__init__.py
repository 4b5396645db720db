"""Checkpoint files -> modules: safe strict safetensors reading (:mod:`.checkpoint`), the registry of the four
components and how a file is recognised (:mod:`.components`), and :func:`load_checkpoint` (:mod:`.loader`)."""

from .loader import LoadedCheckpoint, TokenizerSource, load_checkpoint

__all__ = ["LoadedCheckpoint", "TokenizerSource", "load_checkpoint"]

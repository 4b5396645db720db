"""ACE-Step v1 model core in plain PyTorch (never imports ComfyUI).

Public API:

* configs: :class:`TransformerConfig`, :class:`DCAEConfig`, :class:`VocoderConfig`,
  :class:`UMT5Config`, :class:`CodecConfig`, :class:`ModelSpec`, ``MODEL_SPECS``;
* :func:`load_checkpoint` -> :class:`LoadedCheckpoint` (official folder or ComfyUI single file);
* modules: ``AceStepTransformer`` (``encode``/``decode``), ``MusicDCAE``, ``Vocoder``,
  ``AudioCodec`` (waveform <-> latent), ``UMT5Encoder``;
* errors: :class:`AceStepInputError`, :class:`CheckpointError`, :class:`CheckpointMismatchError`.
"""

from __future__ import annotations

from .config import (
    MODEL_SPECS,
    CodecConfig,
    ConfigError,
    DCAEConfig,
    ModelSpec,
    TransformerConfig,
    UMT5Config,
    VocoderConfig,
)
from .errors import AceStepInputError, CheckpointError, CheckpointMismatchError
from .loader import LoadedCheckpoint, TokenizerSource, load_checkpoint

__all__ = [
    "MODEL_SPECS",
    "AceStepInputError",
    "CheckpointError",
    "CheckpointMismatchError",
    "CodecConfig",
    "ConfigError",
    "DCAEConfig",
    "LoadedCheckpoint",
    "ModelSpec",
    "TokenizerSource",
    "TransformerConfig",
    "UMT5Config",
    "VocoderConfig",
    "load_checkpoint",
]

"""ACE-Step v1 model core in plain PyTorch (never imports ComfyUI).

Public API:

* configs: :class:`TransformerConfig`, :class:`DCAEConfig`, :class:`VocoderConfig`,
  :class:`UMT5Config`, :class:`CodecConfig`, :class:`ModelSpec`, ``MODEL_SPECS``;
* :func:`load_checkpoint` -> :class:`LoadedCheckpoint` (official folder or ComfyUI single file);
* modules: ``AceStepTransformer`` (``encode``/``decode``), ``MusicDCAE``, ``Vocoder``,
  ``AudioCodec`` (waveform <-> latent), ``UMT5Encoder``;
* sampling: :class:`GenerationParams` (the original app's argument names) and :func:`generate`
  (every task: text2music, retake, repaint, extend, edit, audio2audio);
* LoRA: :func:`read_lora`, :class:`LoraSpec`, :func:`merge_loras` (official PEFT, ComfyUI and kohya layouts);
* text front-ends: :mod:`acestep_core.text.prompt_tokenizer`, :mod:`acestep_core.lyrics`;
* errors: :class:`AceStepInputError`, :class:`CheckpointError`, :class:`CheckpointMismatchError`.
"""

from __future__ import annotations

from .audio.codec import AudioCodec
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
from .dcae import MusicDCAE
from .errors import AceStepInputError, CheckpointError, CheckpointMismatchError
from .loading.loader import LoadedCheckpoint, TokenizerSource, load_checkpoint
from .lora.merge import LoraSpec, merge_loras, read_lora
from .sampling.pipeline import GenerationInterrupted, GenerationParams, GenerationResult, StepInfo, generate
from .text.encoder import UMT5Encoder
from .transformer import AceStepTransformer
from .vocoder.model import Vocoder

__all__ = [
    "MODEL_SPECS",
    "AceStepInputError",
    "AceStepTransformer",
    "AudioCodec",
    "CheckpointError",
    "CheckpointMismatchError",
    "CodecConfig",
    "ConfigError",
    "GenerationInterrupted",
    "GenerationParams",
    "GenerationResult",
    "DCAEConfig",
    "LoadedCheckpoint",
    "LoraSpec",
    "ModelSpec",
    "StepInfo",
    "MusicDCAE",
    "TokenizerSource",
    "TransformerConfig",
    "UMT5Config",
    "UMT5Encoder",
    "Vocoder",
    "VocoderConfig",
    "generate",
    "load_checkpoint",
    "merge_loras",
    "read_lora",
]

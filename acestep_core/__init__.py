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

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> module that defines it. Imported on first use (PEP 562), so ``import acestep_core.timing`` or
# the ComfyUI nodes' import does not pull in the networks, the loader or the sampling pipeline.
_EXPORTS: dict[str, str] = {
    "AudioCodec": ".audio.codec",
    "MODEL_SPECS": ".config", "CodecConfig": ".config", "ConfigError": ".config", "DCAEConfig": ".config",
    "ModelSpec": ".config", "TransformerConfig": ".config", "UMT5Config": ".config", "VocoderConfig": ".config",
    "MusicDCAE": ".dcae",
    "AceStepInputError": ".errors", "CheckpointError": ".errors", "CheckpointMismatchError": ".errors",
    "LoadedCheckpoint": ".loading.loader", "TokenizerSource": ".loading.loader", "load_checkpoint": ".loading.loader",
    "LoraSpec": ".lora.merge", "merge_loras": ".lora.merge", "read_lora": ".lora.merge",
    "GenerationInterrupted": ".sampling.pipeline", "GenerationResult": ".sampling.pipeline",
    "StepInfo": ".sampling.pipeline", "generate": ".sampling.pipeline",
    "GenerationParams": ".sampling.params",
    "PromptTokenizer": ".text.prompt_tokenizer", "UMT5Encoder": ".text.encoder",
    "AceStepTransformer": ".transformer",
    "Vocoder": ".vocoder.model",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'acestep_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
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
    from .sampling.params import GenerationParams
    from .sampling.pipeline import GenerationInterrupted, GenerationResult, StepInfo, generate
    from .text.encoder import UMT5Encoder
    from .text.prompt_tokenizer import PromptTokenizer
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
    "PromptTokenizer",
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

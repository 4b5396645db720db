"""ComfyUI nodes of the pack: thin classic-API (V1) wrappers over ``acestep_core``.

Only this package touches ComfyUI, and only through :mod:`nodes.comfy_adapter` (lazy imports with a standalone
fallback), so importing it works without ComfyUI, without a network and without loading any model.
Node ids (``AceStepV1...``) and widget orders are stable: workflows store them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("acestep_core") is None:  # inside ComfyUI: custom_nodes/<pack>/ is not on sys.path
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from .audio import AceStepV1AudioToLatent, AceStepV1LatentToAudio, AceStepV1SaveAudio
from .conditioning import AceStepV1GuidanceOptions, AceStepV1TextEncode
from .latent import AceStepV1EmptyLatent, AceStepV1ExtendLatent, AceStepV1RepaintWindow
from .loaders import AceStepV1CheckpointLoader
from .lora import AceStepV1LoraLoader
from .sampling import AceStepV1FlowEdit, AceStepV1Sampler
from .train_lora import AceStepV1TrainLoRA
from .training import AceStepV1TrainingDataset, AceStepV1TrainOptions

_NODES: tuple[type, ...] = (
    AceStepV1CheckpointLoader,
    AceStepV1LoraLoader,
    AceStepV1TextEncode,
    AceStepV1GuidanceOptions,
    AceStepV1EmptyLatent,
    AceStepV1AudioToLatent,
    AceStepV1RepaintWindow,
    AceStepV1ExtendLatent,
    AceStepV1Sampler,
    AceStepV1FlowEdit,
    AceStepV1LatentToAudio,
    AceStepV1SaveAudio,
    AceStepV1TrainingDataset,
    AceStepV1TrainOptions,
    AceStepV1TrainLoRA,
)

NODE_CLASS_MAPPINGS: dict[str, type] = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {cls.__name__: cls.TITLE for cls in _NODES}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

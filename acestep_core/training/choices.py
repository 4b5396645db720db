"""The choice lists of the training settings: one home, importable without torch (the ComfyUI nodes list them
at start-up). :mod:`.config` and :mod:`.optim` validate against them."""

from __future__ import annotations

from typing import Literal

__all__ = ["CHECKPOINTING_CHOICES", "OPTIMIZERS", "PRECISIONS", "REPA_CHOICES"]

Precision = Literal["fp32", "bf16", "fp8"]
# fp32 = the original; bf16 = bf16 base weights, fp32 LoRA; fp8 = the DiT blocks' weights stored in fp8 (bf16 math)
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp8")
Switch = Literal["on", "off", "auto"]
CHECKPOINTING_CHOICES: tuple[Switch, ...] = ("auto", "on", "off")
REPA_CHOICES: tuple[Switch, ...] = ("auto", "on", "off")
OptimizerName = Literal["adamw", "adamw8bit"]
OPTIMIZERS: tuple[OptimizerName, ...] = ("adamw", "adamw8bit")  # adamw = the original; adamw8bit: 8-bit moments

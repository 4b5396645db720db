"""LoRA: reading the official PEFT, ComfyUI and kohya layouts (:mod:`.formats`) and applying LoRAs to a
transformer with the documented scale rules (:mod:`.merge`)."""

from .formats import LoraError, LoraFile, read_lora
from .merge import LoraSpec, merge_loras, parse_lora_arg

__all__ = ["LoraError", "LoraFile", "LoraSpec", "merge_loras", "parse_lora_arg", "read_lora"]

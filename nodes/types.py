"""Socket type names and shared constants of the pack's nodes (stable: workflows store them).

``LATENT`` and ``AUDIO`` are ComfyUI's own types, so core audio nodes interoperate:

* LATENT: ``{"samples": Tensor[B, 8, 16, T] float32, "type": "audio"}``, plus optional ``"noise_mask"``
  ``[1, 16, T]`` (1 = regenerate; set by the repaint / extend nodes), ``"acestep_task"`` (the task marker the
  sampler reads, see :mod:`nodes.latent`) and ``"acestep_params"`` (the generation record set by the sampler).
* AUDIO: ``{"waveform": Tensor[B, C, N] float32, "sample_rate": int}``, plus optional ``"acestep_params"``.
"""

from __future__ import annotations

from acestep_core.timing import MAX_DURATION_S

PREFIX = "AceStepV1"
DISPLAY_PREFIX = "ACE-Step v1"
CATEGORY = "audio/ACE-Step"

MODEL = "ACESTEP_MODEL"
CONDITIONING = "ACESTEP_CONDITIONING"
GUIDANCE = "ACESTEP_GUIDANCE"
LATENT = "LATENT"
AUDIO = "AUDIO"

LATENT_TYPE = "audio"
LATENT_CHANNELS = 8
LATENT_HEIGHT = 16
TASK_KEY = "acestep_task"
PARAMS_KEY = "acestep_params"
# extra entries of the PARAMS_KEY record (the sampler's): the LoRA to record, and a flow edit's source texts
LORA_KEY = "acestep_lora_name_or_path"  # relative to ComfyUI's models folder ("loras/<file>", "ace_step/<folder>")
LORA_WEIGHT_KEY = "acestep_lora_weight"  # the original app's lora_weight that reproduces the run
EDIT_SOURCE_KEY = "acestep_edit_source"  # (source tags, source lyrics) of a flow edit
MAX_SECONDS = MAX_DURATION_S  # the model's window; longer songs are made with Extend

"""How much device memory a training run needs (for ComfyUI's model management, which frees that much first).

Weights of the transformer (in the run's precision; with the REPA heads), the text encoder and the codec (fp32),
the LoRA's parameters, gradients and two Adam moments (fp32), and the activations of the longest batch: with
activation checkpointing the input of every block plus one block's working set, without it every block's.
Measured on an H200 (random full-size weights, 240 s, bf16, r 64): 23.2 GiB without checkpointing, < 12.8 GiB
with it (docs: training-anchors 1.17); the working set here (48 values per frame and model dimension) is
conservative against that.
"""

from __future__ import annotations

__all__ = ["training_memory_bytes"]

BLOCK_WORKING_SET = 48  # activation values kept per frame and model dimension inside one DiT block (fwd + bwd)


def training_memory_bytes(*, transformer_params: int, other_params: int, lora_params: int, frames: int,
                          model_dim: int, num_blocks: int, batch: int, bf16: bool, checkpointing: bool) -> int:
    weight_bytes = transformer_params * (2 if bf16 else 4) + other_params * 4
    lora_bytes = lora_params * 4 * 4  # parameter, gradient, two Adam moments
    value_bytes = 2 if bf16 else 4
    per_block = batch * frames * model_dim * value_bytes
    activations = per_block * (num_blocks + BLOCK_WORKING_SET) if checkpointing else \
        per_block * num_blocks * BLOCK_WORKING_SET
    return int(weight_bytes + lora_bytes + activations)

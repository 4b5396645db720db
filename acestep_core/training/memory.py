"""How much device memory a training run needs (for ComfyUI's model management, which frees that much first).

Weights of the transformer (in the run's precision; with the REPA heads), the text encoder and the codec (fp32),
the LoRA's parameters, gradients and two Adam moments (fp32), and the activations of the longest batch: with
activation checkpointing the input of every block plus one block's working set, without it every block's.
Measured on an H200 (random full-size weights, 240 s, bf16, r 64): 23.2 GiB without checkpointing, < 12.8 GiB
with it (docs: training-anchors 1.17); the working set here (48 values per frame and model dimension) is
conservative against that.
"""

from __future__ import annotations

__all__ = ["activation_bytes", "module_bytes", "training_memory_bytes"]

BLOCK_WORKING_SET = 48  # activation values kept per frame and model dimension inside one DiT block (fwd + bwd)


def training_memory_bytes(*, weight_bytes: int, trained_params: int, frames: int, model_dim: int, num_blocks: int,
                          batch: int, value_bytes: int, checkpointing: bool, optimizer_bytes: float = 8.0
                          ) -> int:
    """Bytes a run needs: ``weight_bytes`` of the loaded (frozen) models, the trained parameters (fp32 value +
    gradient + ``optimizer_bytes`` of optimiser state each: 8 for AdamW, ~2 for 8-bit AdamW), activations of
    ``value_bytes`` per value (4 fp32, 2 bf16)."""
    trained = trained_params * (4 + 4 + optimizer_bytes)
    activations = activation_bytes(frames=frames, model_dim=model_dim, num_blocks=num_blocks, batch=batch,
                                   value_bytes=value_bytes, checkpointing=checkpointing)
    return int(weight_bytes + trained + activations)


def activation_bytes(*, frames: int, model_dim: int, num_blocks: int, batch: int, value_bytes: int,
                     checkpointing: bool) -> int:
    """Activations of one micro-batch: every block's working set, or with checkpointing the blocks' inputs plus
    one block's working set."""
    per_block = batch * frames * model_dim * value_bytes
    return per_block * (num_blocks + BLOCK_WORKING_SET) if checkpointing else per_block * num_blocks * BLOCK_WORKING_SET


def module_bytes(*modules: object) -> int:
    """Bytes of the parameters and buffers of ``modules`` (fp8 weights are buffers)."""
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:  # type: ignore[attr-defined]
            total += tensor.numel() * tensor.element_size()
    return total

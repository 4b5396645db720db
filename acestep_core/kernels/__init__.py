"""Fused GPU kernels (Triton) for the hot spots of the denoiser, each with a plain-PyTorch reference path.

The fused paths are used on CUDA tensors when Triton is importable; set ``ACESTEP_NO_TRITON=1`` to force the
reference path (A/B checks). Nothing here is imported or compiled until first use.
"""

from .glu_depthwise import silu_depthwise_glu, silu_depthwise_glu_reference, triton_available

__all__ = ["silu_depthwise_glu", "silu_depthwise_glu_reference", "triton_available"]

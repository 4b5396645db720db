"""Fused GPU kernels (Triton) for the hot spots of the denoiser and the vocoder, each with a plain-PyTorch
reference path. :mod:`.dispatch` is the one policy deciding which path runs (set ``ACESTEP_NO_TRITON=1`` to force
the reference path for A/B checks). Nothing here is imported or compiled until first use."""

from .dispatch import triton_available
from .glu_depthwise import silu_depthwise_glu, silu_depthwise_glu_reference

__all__ = ["silu_depthwise_glu", "silu_depthwise_glu_reference", "triton_available"]

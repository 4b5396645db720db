"""Neural-network building blocks of the ACE-Step v1 diffusion transformer (no ComfyUI imports)."""

from __future__ import annotations

from .attention import CrossAttention, LinearSelfAttention
from .blocks import FinalLayer, GLUMBConv, LinearTransformerBlock, PatchEmbed, TimestepEmbedding, Timesteps
from .conformer import LyricConformerEncoder
from .rope import apply_rope, rope_tables

__all__ = [
    "CrossAttention",
    "FinalLayer",
    "GLUMBConv",
    "LinearSelfAttention",
    "LinearTransformerBlock",
    "LyricConformerEncoder",
    "PatchEmbed",
    "TimestepEmbedding",
    "Timesteps",
    "apply_rope",
    "rope_tables",
]

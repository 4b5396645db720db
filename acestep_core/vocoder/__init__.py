"""The ACE-Step music vocoder (mel -> 44.1 kHz waveform): ConvNeXt backbone + HiFi-GAN head (:mod:`.model`),
its weight-normed layers (:mod:`.blocks`) and the fused channels-last head used on capable GPUs
(:mod:`.fused_head`)."""

from .model import Vocoder

__all__ = ["Vocoder"]

"""Music-DCAE (diffusers ``AutoencoderDC`` f8c8) for ACE-Step v1: log-mel <-> latent."""

from __future__ import annotations

from .autoencoder import Decoder, Encoder, MusicDCAE

__all__ = ["Decoder", "Encoder", "MusicDCAE"]

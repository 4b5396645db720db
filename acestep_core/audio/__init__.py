"""Waveforms: audio files (:mod:`.files`: read, probe, write with embedded parameters, sidecars), the mel
front-end and resampler (:mod:`.mel`), and the waveform <-> latent codec (:mod:`.codec`, DCAE + vocoder)."""

from .codec import AudioCodec

__all__ = ["AudioCodec"]

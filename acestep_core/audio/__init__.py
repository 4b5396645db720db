"""Waveforms: audio files (:mod:`.files`: read, probe, write with embedded parameters, sidecars), the mel
front-end and resampler (:mod:`.mel`), and the waveform <-> latent codec (:mod:`.codec`, DCAE + vocoder).

Nothing is imported here: :mod:`.mel` is a dependency of the vocoder, which :mod:`.codec` builds on."""

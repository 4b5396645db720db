"""Waveform <-> ACE-Step latent codec: resampling, log-mel, mel normalisation, Music-DCAE, vocoder, chunking.

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_dcae_pipeline.py (Apache-2.0), class
``MusicDCAE`` (``encode``, ``decode``, ``decode_overlap``).

Encode: ``[B, C, N] @ sr`` -> stereo -> sinc-resample to 44.1 kHz -> right-pad to a multiple of 4096
samples -> log-mel per channel ``[B, 2, 128, N/512]`` -> ``m̃ = 2·(mel + 11)/14 - 1`` -> DCAE encoder
``z [B, 8, 16, N/4096]`` -> ``latents = (z - shift)·scale`` (shift -1.9091, scale 0.1786).
Decode: the inverse, the vocoder run once per channel, then 44.1 kHz -> ``sample_rate``.

Everything runs on the device of the input (placement belongs to the caller) in ``compute_dtype``
(default: the DCAE's parameter dtype), with the upstream precision quirks: the input audio is cast to that
dtype *before* resampling, the STFT runs in float32. Decoded waveforms are returned in float32.

Deliberate divergences:
* ``decode`` always returns float32 and resamples in float32 (upstream: model dtype at 44.1 kHz; its
  overlapped decoder resamples in the model dtype, e.g. bf16).
* Overlapped decode trims the 44.1 kHz waveform to ``4096·T`` samples *before* resampling, so its length
  equals the full decode's (upstream resamples the over-long last vocoder block, which includes output of
  zero-padded mel frames, and then truncates to ``floor(4096·T·sr/44100)``: one sample shorter at 48 kHz).
* ``decode(overlapped=False)`` (the default) is upstream's full decode; ``overlapped=None`` switches to the
  overlapped decoder above 48 s, as upstream does when the pipeline is built with ``overlapped_decode=True``.
  The overlapped decode is not equal to the full decode: each DCAE window's linear attention is global over
  the window, and vocoder blocks overlap by 2 mel frames while the vocoder's receptive field is ~90 frames
  (~53 on the tiny test model), so it is opt-in (lower peak memory for long songs).
* Audio with more than 2 channels, non-positive sample rates and malformed latents raise
  :class:`AceStepInputError` instead of failing inside the networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import CodecConfig
from ..dcae import MusicDCAE
from ..errors import AceStepInputError, check_latent_shape
from ..vocoder.model import Vocoder
from .mel import resampled_length, sinc_resample

DEFAULT_CODEC_CONFIG = CodecConfig()

AUTO_OVERLAP_MIN_SECONDS = 48.0
"""``decode(overlapped=None)`` uses the overlapped decoder for latents longer than this (upstream
``latents2audio``: ``overlapped_decode and duration > 48``), i.e. T > 516 frames, which is also past the
512-frame DCAE window, the first length where windowing changes anything."""


def latent_frames_for_duration(duration_s: float, codec_cfg: CodecConfig = DEFAULT_CODEC_CONFIG) -> int:
    """Latent frames for a requested duration: ``int(seconds·44100/512/8)`` (floor; 10 s -> 107)."""
    return codec_cfg.seconds_to_frames(duration_s)


def encoded_latent_frames(num_samples: int, sample_rate: int, codec_cfg: CodecConfig = DEFAULT_CODEC_CONFIG) -> int:
    """Frames :meth:`AudioCodec.encode` returns for ``num_samples`` at ``sample_rate`` (resampled to 44.1 kHz,
    padded to a whole frame): ``ceil(N' / 4096)``."""
    resampled = resampled_length(num_samples, sample_rate, codec_cfg.sample_rate)
    return -(-resampled // codec_cfg.samples_per_latent_frame)


def latent_frames_for_samples(num_samples: int, sample_rate: int, codec_cfg: CodecConfig = DEFAULT_CODEC_CONFIG) -> int:
    """Upstream ``latent_lengths``: ``int(N / sr · 44100 / 512 / 8)`` evaluated in float32 like the reference."""
    hop = codec_cfg.samples_per_latent_frame // codec_cfg.time_compression
    n = torch.tensor(num_samples, dtype=torch.float32)
    return int((n / sample_rate * codec_cfg.sample_rate / hop / codec_cfg.time_compression).long())


def _check_sample_rate(sample_rate: object, name: str) -> int:
    if isinstance(sample_rate, float) and sample_rate.is_integer():
        sample_rate = int(sample_rate)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AceStepInputError(
            f"{name}: expected a positive integer sample rate in Hz (e.g. 44100 or 48000), got {sample_rate!r}; "
            "pass the rate the waveform was recorded at"
        )
    return sample_rate


def _as_stereo_batch(audio: object) -> torch.Tensor:
    """``[C, N]`` or ``[B, C, N]`` with C in {1, 2} -> ``[B, 2, N]`` (mono duplicated)."""
    if not isinstance(audio, torch.Tensor):
        raise AceStepInputError(f"audio: expected a torch.Tensor [B, C, N] or [C, N], got {type(audio).__name__}")
    if not audio.is_floating_point():
        raise AceStepInputError(
            f"audio: expected a floating-point waveform in [-1, 1], got dtype {audio.dtype}; "
            "convert integer PCM first (e.g. audio.float() / 32768 for int16)"
        )
    if audio.ndim == 2:
        audio = audio.unsqueeze(0)
    if audio.ndim != 3 or audio.shape[0] < 1 or audio.shape[2] < 1:
        raise AceStepInputError(f"audio: expected shape [B, C, N] or [C, N] with N >= 1, got {list(audio.shape)}")
    channels = audio.shape[1]
    if channels not in (1, 2):
        raise AceStepInputError(
            f"audio: got {channels} channels (shape {list(audio.shape)}); ACE-Step encodes mono or stereo only. "
            "Downmix to stereo first (e.g. keep the front left/right channels); if the tensor is laid out "
            "[N, C] or [B, N, C], transpose it to channels-first"
        )
    return audio.expand(-1, 2, -1) if channels == 1 else audio


def _check_consistent(dcae: MusicDCAE, vocoder: Vocoder, codec_cfg: CodecConfig) -> None:
    hop, compression = vocoder.cfg.hop_length, dcae.compression
    consistent = (codec_cfg.sample_rate == vocoder.cfg.sampling_rate and compression == codec_cfg.time_compression
                  and hop * compression == codec_cfg.samples_per_latent_frame)
    if not consistent:
        raise ValueError(
            f"AudioCodec: codec config (sample_rate {codec_cfg.sample_rate}, samples_per_latent_frame "
            f"{codec_cfg.samples_per_latent_frame}, time_compression {codec_cfg.time_compression}) does not match "
            f"the vocoder (sampling_rate {vocoder.cfg.sampling_rate}, hop_length {hop}) and the DCAE "
            f"(compression {compression}); build all three from the same checkpoint / ModelSpec"
        )


class AudioCodec(nn.Module):
    """ACE-Step v1 waveform <-> latent ``[B, 8, 16, T]`` (10.77 latent frames per second).

    Args:
        dcae: the Music-DCAE (``music_dcae_f8c8``).
        vocoder: the mel vocoder (``music_vocoder``); also provides the log-mel front-end.
        codec_cfg: latent/mel constants and overlapped-decode window sizes.
        compute_dtype: dtype the networks run in; ``None`` = dtype of the DCAE parameters.

    The only submodules are ``dcae`` and ``vocoder`` so ``state_dict()`` is ``dcae.*`` + ``vocoder.*``
    (ComfyUI's single-file ``vae.`` layout). ``encode``/``decode`` run without autograd.
    """

    def __init__(self, dcae: MusicDCAE, vocoder: Vocoder, codec_cfg: CodecConfig = DEFAULT_CODEC_CONFIG, *,
                 compute_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        _check_consistent(dcae, vocoder, codec_cfg)
        self.dcae = dcae
        self.vocoder = vocoder
        self.codec_cfg = codec_cfg
        self.compute_dtype = compute_dtype
        self.latent_height = vocoder.cfg.n_mels // dcae.compression  # 16

    # ----------------------------------------------------------------------------------------- helpers
    def _dtype(self) -> torch.dtype:
        if self.compute_dtype is not None:
            return self.compute_dtype
        return next(self.dcae.parameters()).dtype

    def _check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        check_latent_shape(latents, channels=self.dcae.cfg.latent_channels, height=self.latent_height)
        return latents

    def latent_frames_for_duration(self, duration_s: float) -> int:
        """See :func:`latent_frames_for_duration`."""
        return latent_frames_for_duration(duration_s, self.codec_cfg)

    def auto_overlapped(self, latent_frames: int) -> bool:
        """What ``decode(overlapped=None)`` picks: overlapped iff T > frames of ``AUTO_OVERLAP_MIN_SECONDS`` (516)."""
        return latent_frames > self.latent_frames_for_duration(AUTO_OVERLAP_MIN_SECONDS)

    def scale_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Raw DCAE latent -> model latent: ``(z - shift)·scale``."""
        return (z - self.codec_cfg.latent_shift) * self.codec_cfg.latent_scale

    def unscale_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Model latent -> raw DCAE latent: ``latents/scale + shift``."""
        return latents / self.codec_cfg.latent_scale + self.codec_cfg.latent_shift

    def normalise_mel(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel -> DCAE input: ``((mel - min)/(max - min) - 0.5)/0.5`` (min -11, max 3; no clipping)."""
        cfg = self.codec_cfg
        return ((log_mel - cfg.mel_min) / (cfg.mel_max - cfg.mel_min) - 0.5) / 0.5

    def denormalise_mel(self, mel_normalised: torch.Tensor) -> torch.Tensor:
        """DCAE output -> log-mel: ``(m·0.5 + 0.5)·(max - min) + min``."""
        cfg = self.codec_cfg
        return (mel_normalised * 0.5 + 0.5) * (cfg.mel_max - cfg.mel_min) + cfg.mel_min

    # ------------------------------------------------------------------------------------------ encode
    def prepare_waveform(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[B, C, N]``/``[C, N]`` @ sample_rate -> stereo 44.1 kHz ``[B, 2, N']``, N' a multiple of 4096."""
        sample_rate = _check_sample_rate(sample_rate, "sample_rate")
        audio = _as_stereo_batch(audio).to(self._dtype())
        audio = sinc_resample(audio, sample_rate, self.codec_cfg.sample_rate)
        multiple = self.codec_cfg.samples_per_latent_frame
        return F.pad(audio, (0, -audio.shape[-1] % multiple))

    def waveform_to_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Stereo 44.1 kHz ``[B, 2, N]`` -> natural-log mel ``[B, 2, 128, N/512]`` (each item's channels as a batch)."""
        return torch.stack([self.vocoder.mel_transform(item) for item in audio])

    def mel_to_latents(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, 2, 128, F]`` (F a multiple of 8) -> model latents ``[B, 8, 16, F/8]`` (one item at a time)."""
        mel_normalised = self.normalise_mel(log_mel)
        z = torch.cat([self.dcae.encode(item[None]) for item in mel_normalised])
        return self.scale_latents(z)

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Waveform ``[B, C, N]`` or ``[C, N]`` (C = 1 or 2) at ``sample_rate`` -> latents ``[B, 8, 16, ceil(N'/4096)]``
        where N' is the length at 44.1 kHz; the padded tail is encoded too (as upstream)."""
        return self.mel_to_latents(self.waveform_to_mel(self.prepare_waveform(audio, sample_rate)))

    # ------------------------------------------------------------------------------------------ decode
    def latents_to_mel(self, latents: torch.Tensor) -> torch.Tensor:
        """Model latents ``[B, 8, 16, T]`` -> log-mel ``[B, 2, 128, 8T]`` (DCAE decoder, one item at a time)."""
        z = self.unscale_latents(self._check_latents(latents).to(self._dtype()))
        return torch.cat([self.denormalise_mel(self.dcae.decode(item[None])) for item in z])

    def mel_to_waveform(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[B, 2, 128, F]`` -> 44.1 kHz waveform ``[B, 2, 512·F]``: each item's two channels are vocoded
        as one batch of two mono mels (upstream ``vocoder.decode(mels[0])``)."""
        return torch.stack([self.vocoder.decode(item)[:, 0] for item in log_mel])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, *, sample_rate: int = 48000, overlapped: bool | None = False
               ) -> torch.Tensor:
        """Latents ``[B, 8, 16, T]`` -> float32 stereo waveform ``[B, 2, N]`` at ``sample_rate``.

        ``N = 4096·T`` at 44.1 kHz, ``ceil(4096·T·sr/44100)`` otherwise. ``overlapped``: ``False`` = full
        decode (upstream ``decode``), ``True`` = windowed DCAE + block vocoder (upstream ``decode_overlap``,
        lower peak memory), ``None`` = overlapped only when T > ``latent_frames_for_duration(48 s)`` = 516.
        """
        latents = self._check_latents(latents)
        sample_rate = _check_sample_rate(sample_rate, "sample_rate")
        if overlapped is None:
            overlapped = self.auto_overlapped(latents.shape[-1])
        if overlapped:
            wav = self.mel_to_waveform_overlapped(self.latents_to_mel_overlapped(latents))
        else:
            wav = self.mel_to_waveform(self.latents_to_mel(latents))
        wav = wav[..., :latents.shape[-1] * self.codec_cfg.samples_per_latent_frame].to(torch.float32)
        return sinc_resample(wav, self.codec_cfg.sample_rate, sample_rate)

    # ------------------------------------------------------------------------------- overlapped decode
    def latents_to_mel_overlapped(self, latents: torch.Tensor) -> torch.Tensor:
        """:meth:`latents_to_mel` with the DCAE decoder run on windows of 512 latent frames.

        Windows start every 256 frames; the first drops its last 128 frames' mel, middle ones 128 at each end,
        the last its first 128, so the kept parts tile ``[0, T)`` exactly (upstream ``decode_overlap``).
        Identical to the full decode for T <= 512 (a single window); longer inputs differ everywhere a little
        because the DCAE's linear attention is global over each window.
        """
        cfg = self.codec_cfg
        window, margin = cfg.overlap_window_frames, cfg.overlap_margin_frames
        hop, mel_margin = window - 2 * margin, margin * cfg.time_compression
        z = self.unscale_latents(self._check_latents(latents).to(self._dtype()))
        length = z.shape[-1]
        anchors = list(range(margin, length - margin, hop)) or [margin]
        mels = []
        for item in z:
            parts = []
            for i, anchor in enumerate(anchors):
                start = anchor - margin
                mel = self.dcae.decode(item[None, ..., start:min(length, start + window)])  # [1, 2, 128, 8·w]
                keep_from = 0 if i == 0 else mel_margin
                keep_to = mel.shape[-1] if i == len(anchors) - 1 else mel.shape[-1] - mel_margin
                parts.append(mel[..., keep_from:keep_to])
            mels.append(self.denormalise_mel(torch.cat(parts, dim=-1)))
        return torch.cat(mels)

    def mel_to_waveform_overlapped(self, log_mel: torch.Tensor) -> torch.Tensor:
        """:meth:`mel_to_waveform` on blocks of 512 mel frames (upstream ``decode_overlap`` vocoder stage).

        Blocks start every 508 frames (260,096 samples); the last block is zero-padded to 512 frames. Each block
        but the first drops its first 1024 samples and each but the last its final 1024; the 128 samples before
        every seam are linearly cross-faded with the next block's samples [896, 1024). Returns float32
        ``[B, 2, >= 512·F]`` (the caller trims).
        """
        return torch.stack([self._vocode_blocks(item) for item in log_mel])

    def _vocode_blocks(self, mel: torch.Tensor) -> torch.Tensor:
        """One item: log-mel ``[2, 128, F]`` -> float32 ``[2, N]`` with both channels vocoded as a batch."""
        cfg, hop_length = self.codec_cfg, self.vocoder.cfg.hop_length
        block_frames, overlap = cfg.vocoder_block_mel_frames, cfg.vocoder_overlap_samples
        fade = cfg.vocoder_crossfade_samples
        block_hop = block_frames * hop_length - 2 * overlap  # 260,096 samples
        total = mel.shape[-1] * hop_length
        ramp_down = torch.linspace(1.0, 0.0, fade, device=mel.device)
        ramp_up = torch.linspace(0.0, 1.0, fade, device=mel.device)

        def vocode(first_frame: int) -> torch.Tensor:
            block = mel[..., first_frame:first_frame + block_frames]
            block = F.pad(block, (0, block_frames - block.shape[-1]))  # zero-padded like upstream
            return self.vocoder.decode(block)[:, 0].to(torch.float32)  # [2, block_frames·hop]

        pieces = [vocode(0)[:, :-overlap]]  # concatenated once at the end (no quadratic re-copying)
        position = block_hop
        while position < total:
            new, previous = vocode(position // hop_length), pieces[-1]
            n = min(fade, previous.shape[-1], new.shape[-1] - (overlap - fade))
            if n > 0:
                mixed = previous[:, -n:] * ramp_down[:n] + new[:, overlap - n:overlap] * ramp_up[:n]
                pieces[-1] = torch.cat([previous[:, :-n], mixed], dim=-1)
            is_last = position + block_hop >= total
            pieces.append(new[:, overlap:] if is_last else new[:, overlap:-overlap])
            position += block_hop
        return torch.cat(pieces, dim=-1)

"""Audio front-end DSP: the vocoder's log-mel spectrogram and the band-limited sinc resampler.

Ported from ace-step/ACE-Step@d612523 acestep/music_dcae/music_log_mel.py (Apache-2.0), which uses
torchaudio's ``MelScale(norm="slaney", mel_scale="slaney")``; the resampler reproduces
``torchaudio.transforms.Resample`` with its defaults (``sinc_interp_hann``, ``lowpass_filter_width=6``,
``rolloff=0.99``; torchaudio, BSD-2-Clause) that ``music_dcae_pipeline.py`` uses.

Log-mel (per channel, 44.1 kHz): reflect-pad ``(win - hop) / 2`` = 768 samples on both sides, STFT
(n_fft 2048, periodic Hann 2048, hop 512, ``center=False``) in float32, magnitude ``sqrt(re² + im² + 1e-6)``,
slaney mel filterbank (128 bins, 40 Hz - 16 kHz), ``ln(max(mel, 1e-5))``. N samples give ``N // 512`` frames
when N is a multiple of 512.

Deliberate divergences:
* The filterbank and window are computed here (same formulas as torchaudio / ``torch.hann_window``) so the
  core does not need torchaudio; both are also checkpoint buffers and are replaced on load.
* The resampler is a function, not a module holding its kernel as a buffer: ``AudioCodec`` must not own
  state-dict entries besides ``dcae.*``/``vocoder.*``.
* Buffers are read through ``cast_like`` so they follow the input's device (ComfyUI offloading).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import VocoderConfig
from ..errors import AceStepInputError
from ..ops import cast_like

MAGNITUDE_EPS = 1e-6  # upstream LinearSpectrogram "pow2_sqrt"
LOG_CLAMP_MIN = 1e-5  # upstream LogMelSpectrogram.compress
RESAMPLE_LOWPASS_WIDTH = 6  # torchaudio Resample defaults
RESAMPLE_ROLLOFF = 0.99


def _is_meta(device: torch.device | str | None) -> bool:
    return torch.empty(0, device=device).is_meta


def _hz_to_mel_slaney(freq: float) -> float:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f_sp = 200.0 / 3
    if freq < 1000.0:
        return freq / f_sp
    return 1000.0 / f_sp + math.log(freq / 1000.0) / (math.log(6.4) / 27.0)


def _mel_to_hz_slaney(mels: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_mel = 1000.0 / f_sp
    logstep = math.log(6.4) / 27.0
    return torch.where(mels >= min_log_mel, 1000.0 * torch.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def slaney_mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular slaney-normalised mel filterbank ``[n_freqs, n_mels]`` (float32, as torchaudio computes it)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel_slaney(f_min), _hz_to_mel_slaney(f_max), n_mels + 2)
    f_pts = _mel_to_hz_slaney(m_pts)  # [n_mels + 2] band edges in Hz
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # [n_freqs, n_mels + 2]
    down = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)
    return fb * (2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)  # slaney area normalisation


class LinearSpectrogram(nn.Module):
    """Magnitude STFT ``[B, N] -> [B, n_fft/2 + 1, frames]`` with manual reflect padding.

    ``window`` (periodic Hann) is a persistent buffer: it is the checkpoint key
    ``mel_transform.spectrogram.window``.
    """

    window: torch.Tensor

    def __init__(self, n_fft: int, win_length: int, hop_length: int, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        if _is_meta(device):
            window = torch.empty(win_length, dtype=dtype, device=device)
        else:
            window = torch.hann_window(win_length, device=device).to(dtype or torch.float32)
        self.register_buffer("window", window)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        pad_left = (self.win_length - self.hop_length) // 2
        pad_right = (self.win_length - self.hop_length + 1) // 2
        padded = F.pad(audio.unsqueeze(1), (pad_left, pad_right), mode="reflect").squeeze(1)  # [B, N + 1536]
        spec = torch.stft(padded.to(torch.float32), self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=cast_like(self.window, padded).to(torch.float32),
                          center=False, normalized=False, onesided=True, return_complex=True)
        spec = torch.view_as_real(spec)  # [B, n_fft/2 + 1, frames, 2]
        return torch.sqrt(spec.pow(2).sum(-1) + MAGNITUDE_EPS).to(audio.dtype)


class MelScale(nn.Module):
    """Linear spectrogram ``[B, n_freqs, frames] -> [B, n_mels, frames]``; ``fb`` is a persistent buffer
    (checkpoint key ``mel_transform.mel_scale.fb``)."""

    fb: torch.Tensor

    def __init__(self, n_mels: int, sample_rate: int, f_min: float, f_max: float, n_freqs: int, *,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        if _is_meta(device):
            fb = torch.empty(n_freqs, n_mels, dtype=dtype, device=device)
        else:
            fb = slaney_mel_filterbank(n_freqs, f_min, f_max, n_mels, sample_rate).to(device=device, dtype=dtype)
        self.register_buffer("fb", fb)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return torch.matmul(spec.transpose(-1, -2), cast_like(self.fb, spec)).transpose(-1, -2)


class LogMelSpectrogram(nn.Module):
    """Natural-log mel spectrogram ``[B, N] (or [B, 1, N]) -> [B, n_mels, frames]`` of the vocoder.

    Args:
        cfg: the vocoder config (``sampling_rate``, ``n_fft``, ``win_length``, ``hop_length``, ``f_min``,
            ``f_max``, ``n_mels``).

    ``spectrogram``/``mel_scale`` are checkpoint prefixes of the two buffers.
    """

    def __init__(self, cfg: VocoderConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.spectrogram = LinearSpectrogram(cfg.n_fft, cfg.win_length, cfg.hop_length, dtype=dtype, device=device)
        f_max = cfg.f_max or cfg.sampling_rate // 2
        self.mel_scale = MelScale(cfg.n_mels, cfg.sampling_rate, cfg.f_min, f_max, cfg.n_fft // 2 + 1,
                                  dtype=dtype, device=device)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim == 3 and audio.shape[1] == 1:
            audio = audio.squeeze(1)
        min_samples = (self.spectrogram.win_length - self.spectrogram.hop_length + 1) // 2 + 1
        if audio.ndim != 2 or audio.shape[-1] < min_samples:
            raise AceStepInputError(
                f"mel_transform: expected mono audio [B, N] (or [B, 1, N]) with N >= {min_samples} samples "
                f"(the reflect padding needs them), got {list(audio.shape)}; pass one channel at a time and "
                "pad very short clips"
            )
        mel = self.mel_scale(self.spectrogram(audio))  # [B, n_mels, frames]
        return torch.log(torch.clamp(mel, min=LOG_CLAMP_MIN))


def sinc_resample_kernel(orig_freq: int, new_freq: int, *, device: torch.device | str | None = None
                         ) -> tuple[torch.Tensor, int]:
    """Hann-windowed sinc polyphase kernel ``[new', 1, 2·width + orig']`` (float32) and ``width``.

    ``orig'``/``new'`` are the rates divided by their gcd. Computed in float64 and rounded to float32
    exactly as ``torchaudio.transforms.Resample`` does (including its float32 output-phase grid).
    """
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    base_freq = min(orig, new) * RESAMPLE_ROLLOFF
    width = math.ceil(RESAMPLE_LOWPASS_WIDTH * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=torch.float64, device=device)[None, None] / orig
    phase = torch.arange(0, -new, -1, dtype=torch.float32, device=device)[:, None, None] / new
    t = ((phase + idx) * base_freq).clamp(-RESAMPLE_LOWPASS_WIDTH, RESAMPLE_LOWPASS_WIDTH)  # float64
    window = torch.cos(t * math.pi / RESAMPLE_LOWPASS_WIDTH / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), t.sin() / t) * (window * (base_freq / orig))
    return kernel.to(torch.float32), width


def resampled_length(num_samples: int, orig_freq: int, new_freq: int) -> int:
    """Output length of :func:`sinc_resample`: ``ceil(new·N/orig)`` evaluated in float32 like torchaudio
    (so 10,579,968 samples at 44.1 kHz, T = 2583, give 11,515,611 at 48 kHz, not the exact ceil 11,515,612)."""
    if orig_freq == new_freq:
        return num_samples
    gcd = math.gcd(orig_freq, new_freq)
    ratio = torch.tensor((new_freq // gcd) * num_samples / (orig_freq // gcd), dtype=torch.float32)
    return int(torch.ceil(ratio).item())


def sinc_resample(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """Resample ``[..., N]`` from ``orig_freq`` to ``new_freq`` Hz (torchaudio default sinc resampler).

    Runs in the waveform's dtype and device (the kernel is rounded to that dtype, as upstream does when
    it moves its ``Resample`` module to the model dtype). Identity when the rates are equal.
    """
    if orig_freq == new_freq:
        return waveform
    kernel, width = sinc_resample_kernel(orig_freq, new_freq, device=waveform.device)
    gcd = math.gcd(orig_freq, new_freq)
    orig = orig_freq // gcd
    shape = waveform.shape
    flat = F.pad(waveform.reshape(-1, shape[-1]), (width, width + orig))  # [n, N + 2·width + orig]
    out = F.conv1d(flat[:, None], kernel.to(waveform.dtype), stride=orig)  # [n, new', frames]
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    return out[:, :resampled_length(shape[-1], orig_freq, new_freq)].reshape(*shape[:-1], -1)

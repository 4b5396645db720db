"""The original trainer's SSL preprocessing around a teacher: 48 kHz batch -> per-item feature sequences.

Ported from ace-step/ACE-Step@d612523 ``trainer.py`` ``Pipeline.infer_mert_ssl`` / ``infer_mhubert_ssl``
(Apache-2.0); the same steps for both teachers, only the rate and chunk length differ:

1. channel mean -> mono; sinc-resample the whole padded batch 48 kHz -> the teacher's rate (torchaudio
   ``Resample`` with its defaults, reproduced by :func:`acestep_core.audio.mel.sinc_resample`);
2. per item, mean and unbiased variance over the item's own length ``wav_lengths // (48000 / rate)``
   (``// 2`` MERT, ``// 3`` mHuBERT), ``(x - mean) / sqrt(var + 1e-7)`` (whole-track statistics);
3. chunks of ``chunk_seconds`` (5 s / 30 s) over each item's length, the last one zero-padded to a full chunk;
4. the encoder over all chunks; chunk ``i`` keeps ``(len_i + 319) // 320`` frames (a full chunk yields one frame
   less than that, so it keeps all its frames: 374 MERT / 1499 mHuBERT); frames concatenated per item.

Deliberate divergences (same numbers in fp32):
* the encoder runs over the chunks in groups of at most ``max_chunks_per_call`` (default: all at once, as the
  original) to bound memory; chunks do not interact, so the grouping does not change the result (tested);
* resampling and normalisation always run in float32; ``autocast_dtype`` (e.g. bf16) applies to the encoder only
  (the original wraps the whole call in the trainer's autocast);
* an item of length 0 raises :class:`~acestep_core.errors.AceStepInputError` (the original fails in ``torch.cat``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..audio.mel import sinc_resample
from ..errors import AceStepInputError
from .model import HubertEncoder
from .registry import TRAINER_SAMPLE_RATE

__all__ = ["NORM_EPS", "SAMPLES_PER_FEATURE", "chunk_frames", "normalised_mono", "split_chunks", "ssl_features"]

NORM_EPS = 1e-7  # upstream: torch.sqrt(vars + 1e-7)
SAMPLES_PER_FEATURE = 320  # upstream trim: (chunk_len + 319) // 320


def chunk_frames(chunk_len: int) -> int:
    """Frames the trainer keeps from a chunk holding ``chunk_len`` real samples."""
    return (chunk_len + SAMPLES_PER_FEATURE - 1) // SAMPLES_PER_FEATURE


def _check_batch(wavs: torch.Tensor, wav_lengths: torch.Tensor) -> list[int]:
    if not isinstance(wavs, torch.Tensor) or wavs.ndim != 3 or not wavs.is_floating_point():
        got = list(wavs.shape) if isinstance(wavs, torch.Tensor) else type(wavs).__name__
        raise AceStepInputError(f"wavs_48k: expected a float [B, channels, N] tensor at 48 kHz, got {got}")
    lengths = [int(n) for n in torch.as_tensor(wav_lengths).reshape(-1).tolist()]
    if len(lengths) != wavs.shape[0]:
        raise AceStepInputError(f"wav_lengths: {len(lengths)} lengths for a batch of {wavs.shape[0]}")
    bad = [n for n in lengths if not 0 < n <= wavs.shape[-1]]
    if bad:
        raise AceStepInputError(f"wav_lengths: {bad} outside 1..{wavs.shape[-1]} (the padded length)")
    return lengths


def normalised_mono(wavs_48k: torch.Tensor, wav_lengths: torch.Tensor, sample_rate: int
                    ) -> tuple[torch.Tensor, list[int]]:
    """Steps 1-2: ``[B, C, N]`` 48 kHz -> (``[B, M]`` float32 mono at ``sample_rate``, normalised per item; the
    items' lengths at that rate)."""
    lengths_48k = _check_batch(wavs_48k, wav_lengths)
    if TRAINER_SAMPLE_RATE % sample_rate:
        raise AceStepInputError(f"teacher sample rate {sample_rate} Hz does not divide {TRAINER_SAMPLE_RATE} Hz; the "
                                "trainer's length rule wav_lengths // (48000 / rate) needs an integer ratio")
    step = TRAINER_SAMPLE_RATE // sample_rate
    mono = sinc_resample(wavs_48k.to(torch.float32).mean(dim=1), TRAINER_SAMPLE_RATE, sample_rate)  # [B, M]
    lengths = [n // step for n in lengths_48k]
    if min(lengths) < 1:
        raise AceStepInputError(f"wav_lengths {lengths_48k}: an item is shorter than one sample at {sample_rate} Hz")
    means = torch.stack([mono[i, :n].mean() for i, n in enumerate(lengths)])
    variances = torch.stack([mono[i, :n].var() for i, n in enumerate(lengths)])  # unbiased, as upstream
    return (mono - means[:, None]) / torch.sqrt(variances[:, None] + NORM_EPS), lengths


def split_chunks(mono: torch.Tensor, lengths: list[int], chunk_samples: int
                 ) -> tuple[torch.Tensor, list[int], list[int]]:
    """Step 3: (``[K, chunk_samples]`` chunks in item order, real samples per chunk, chunks per item)."""
    chunks, chunk_lengths, per_item = [], [], []
    for i, length in enumerate(lengths):
        starts = range(0, length, chunk_samples)
        per_item.append(len(starts))
        for start in starts:
            chunk = mono[i, start:min(start + chunk_samples, length)]
            chunk_lengths.append(chunk.shape[0])
            chunks.append(F.pad(chunk, (0, chunk_samples - chunk.shape[0])))
    return torch.stack(chunks), chunk_lengths, per_item


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[object]:
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _groups(total: int, size: int | None) -> Iterator[slice]:
    step = total if size is None else size
    if step < 1:
        raise AceStepInputError(f"max_chunks_per_call must be >= 1 or None (all chunks at once), got {size}")
    for start in range(0, total, step):
        yield slice(start, min(start + step, total))


@torch.no_grad()
def ssl_features(encoder: HubertEncoder, wavs_48k: torch.Tensor, wav_lengths: torch.Tensor, *, sample_rate: int,
                 chunk_seconds: int, max_chunks_per_call: int | None = None,
                 autocast_dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """The trainer's features of one teacher: ``[B, C, N]`` 48 kHz + lengths ``[B]`` -> per item ``[frames, H]``.

    Runs on the encoder's device (the waveforms are moved there); the chunks enter the encoder in its parameter
    dtype. Outputs are in that dtype, or ``autocast_dtype``'s output dtype when given (e.g. bf16).
    """
    weight = next(encoder.parameters())
    device = weight.device
    mono, lengths = normalised_mono(wavs_48k.to(device), wav_lengths, sample_rate)
    chunks, chunk_lengths, per_item = split_chunks(mono, lengths, sample_rate * chunk_seconds)
    kept: list[torch.Tensor] = []
    with _autocast(device, autocast_dtype):
        for group in _groups(chunks.shape[0], max_chunks_per_call):
            hidden = encoder(chunks[group].to(weight.dtype))  # [k, T, H]
            kept += [hidden[j, :chunk_frames(n)] for j, n in enumerate(chunk_lengths[group])]
    out, first = [], 0
    for count in per_item:
        out.append(torch.cat(kept[first:first + count], dim=0))
        first += count
    return out

"""One training sample and a batch of them, as the original trainer's dataset builds them (``process`` and
``collate_fn``).

A sample carries the prompt picked for this draw, the waveform (``[2, N]`` at 48 kHz after the 240 s crop;
optional, so a loop that caches latents need not load audio), ``wav_length``, the lyric ids (cut to 4096) with an
all-ones float mask of the same length (also ``[0]``/``[1]`` for an instrumental song), and a zero speaker
embedding (the original never loads one). :func:`collate` right-pads waveforms with zeros to the longest and
lyric ids and masks with 0, as ``collate_fn``; the padding is not masked out anywhere (the original trains on it).

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import AceStepInputError
from ..lyrics import MAX_LYRIC_TOKENS
from .audio import TRAIN_CHANNELS
from .prompts import choose_prompt
from .songs import TrainingSong

__all__ = ["SPEAKER_EMBEDDING_DIM", "TrainingBatch", "TrainingItem", "collate", "make_training_item"]

SPEAKER_EMBEDDING_DIM = 512


@dataclass(frozen=True, eq=False)
class TrainingItem:
    """What one sample feeds the training step."""

    index: int  # dataset index (the loop keys its random draws by it)
    key: str
    prompt: str
    wav_length: int  # samples at 48 kHz after the crop
    lyric_token_ids: torch.Tensor  # [L] int64, L <= 4096
    lyric_mask: torch.Tensor  # [L] float32, all ones (the original's torch.ones)
    speaker_emb: torch.Tensor  # [512] float32 zeros
    waveform: torch.Tensor | None = None  # [2, wav_length] float32 @ 48 kHz


@dataclass(frozen=True, eq=False)
class TrainingBatch:
    """Items stacked and padded as the original's ``collate_fn``; ``target_wavs`` is ``None`` when the items
    carry no waveform (a loop training from cached latents)."""

    indices: tuple[int, ...]
    keys: tuple[str, ...]
    prompts: tuple[str, ...]
    wav_lengths: torch.Tensor  # [B] int64
    lyric_token_ids: torch.Tensor  # [B, L_max] int64, 0-padded
    lyric_masks: torch.Tensor  # [B, L_max] float32, 0-padded
    speaker_embs: torch.Tensor  # [B, 512] float32
    target_wavs: torch.Tensor | None = None  # [B, 2, N_max] float32, 0-padded

    def __len__(self) -> int:
        return len(self.keys)


def make_training_item(index: int, song: TrainingSong, lyric_ids: Sequence[int], wav_length: int,
                       rng: random.Random, *, waveform: torch.Tensor | None = None) -> TrainingItem:
    """One sample of ``song``: draws its prompt from ``rng`` (the only random draw of an item, as the original).

    Args:
        index: the song's dataset index.
        song: the song record (tags and recaptions).
        lyric_ids: its training lyric ids (cut to 4096 here if longer).
        wav_length: samples of its prepared audio (checked against ``waveform`` when given).
        rng: the sample's random stream.
        waveform: the prepared ``[2, N]`` audio, or ``None`` when the caller has its latents.
    """
    if waveform is not None and (waveform.ndim != 2 or waveform.shape[0] != TRAIN_CHANNELS
                                 or waveform.shape[1] != wav_length):
        raise AceStepInputError(f"song {song.key!r}: expected a [{TRAIN_CHANNELS}, {wav_length}] waveform (its "
                                f"prepared audio), got {list(waveform.shape)}; pass the PreparedAudio.waveform")
    ids = torch.tensor(list(lyric_ids[:MAX_LYRIC_TOKENS]), dtype=torch.long)
    if ids.numel() == 0:
        raise AceStepInputError(f"song {song.key!r}: empty lyric ids; an instrumental song has the ids [0]")
    return TrainingItem(index=index, key=song.key, prompt=choose_prompt(song.tags, song.recaption, rng),
                        wav_length=int(wav_length), lyric_token_ids=ids,
                        lyric_mask=torch.ones(ids.shape[0], dtype=torch.float32),
                        speaker_emb=torch.zeros(SPEAKER_EMBEDDING_DIM, dtype=torch.float32), waveform=waveform)


def _pad_stack(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Right-pad the last dimension with zeros to the longest, then stack."""
    longest = max(t.shape[-1] for t in tensors)
    return torch.stack([F.pad(t, (0, longest - t.shape[-1]), "constant", 0) for t in tensors])


def collate(items: Sequence[TrainingItem]) -> TrainingBatch:
    """Stack ``items`` into a batch, padding as the original's ``collate_fn``."""
    if not items:
        raise AceStepInputError("collate: no items to batch")
    with_audio = [item.waveform is not None for item in items]
    if any(with_audio) and not all(with_audio):
        raise AceStepInputError("collate: some items carry a waveform and others do not; build every item of a "
                                "batch the same way")
    target_wavs = _pad_stack([item.waveform for item in items if item.waveform is not None]) if all(
        with_audio) else None
    return TrainingBatch(indices=tuple(item.index for item in items), keys=tuple(item.key for item in items),
                         prompts=tuple(item.prompt for item in items),
                         wav_lengths=torch.tensor([item.wav_length for item in items], dtype=torch.long),
                         lyric_token_ids=_pad_stack([item.lyric_token_ids for item in items]),
                         lyric_masks=_pad_stack([item.lyric_mask for item in items]),
                         speaker_embs=torch.stack([item.speaker_emb for item in items]), target_wavs=target_wavs)

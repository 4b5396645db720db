"""Condition sets of the ACE-Step v1 sampler: cond / uncond / only-text, with ERG as explicit query scales.

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py (``get_text_embeddings(_null)``,
``text2music_diffusion_process``, ``flowedit_diffusion_process``; Apache-2.0). Spec 5.7 / 5.8.

Upstream's ERG forward hooks are replaced by the ``query_scale`` arguments of the text encoder and the
transformer (same numbers). The speaker embedding is always zeros, as upstream (the released model has no
speaker encoder).

==========================  =============================  ===========  ===========  ============
set                         text                           lyric ids    lyric mask   lyric ERG
==========================  =============================  ===========  ===========  ============
cond                        UMT5(prompt)                   ids          M_l          no
uncond, ERG-lyric off       zeros                          zeros        M_l          no
uncond, ERG-lyric on        ERG-tag UMT5(prompt) or zeros  ids          M_l          yes
only_text, ERG-lyric off    UMT5(prompt)                   zeros        M_l          no
only_text, ERG-lyric on     UMT5(prompt)                   ids          M_l          yes
==========================  =============================  ===========  ===========  ============

Every branch is decoded with the cond mask. ERG-tag states are only used when ERG-lyric is on (upstream
computes and discards them otherwise; here they are not computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..text.encoder import ERG_TAG_QUERY_SCALE
from ..transformer import ERG_TEMPERATURE


@dataclass(frozen=True)
class PromptStates:
    """UMT5 output of one prompt repeated over the batch: ``states`` [B, L_t, D_t], ``mask`` [B, L_t],
    ``erg_states`` [B, L_t, D_t] (ERG-tag "weak" prompt) or ``None``."""

    states: torch.Tensor
    mask: torch.Tensor
    erg_states: torch.Tensor | None = None


@dataclass(frozen=True)
class LyricTokens:
    """Lyric token ids and mask [B, L_l] (int64); no lyrics = ``[[0]]`` with mask ``[[0]]``."""

    ids: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class ConditionSet:
    """Encoded condition sequences [B, S, D]; ``mask`` [B, S] (the cond mask) is used for every branch."""

    cond: torch.Tensor
    mask: torch.Tensor
    uncond: torch.Tensor | None = None
    only_text: torch.Tensor | None = None


def _as_ids(values: Any, device: torch.device | str) -> torch.Tensor:
    tensor = torch.as_tensor(values, dtype=torch.long, device=device)
    return tensor[None] if tensor.ndim == 1 else tensor


@torch.no_grad()
def encode_prompt_states(text_encoder: Any, input_ids: Any, attention_mask: Any, *, batch_size: int,
                         device: torch.device | str, erg_tag: bool) -> PromptStates:
    """Run the text encoder once on a ``[1, L]`` prompt and repeat the result ``batch_size`` times."""
    ids, mask = _as_ids(input_ids, device), _as_ids(attention_mask, device)
    states = text_encoder(ids, mask)
    erg = text_encoder(ids, mask, query_scale=ERG_TAG_QUERY_SCALE) if erg_tag else None
    repeat = (batch_size, 1, 1)
    return PromptStates(states.repeat(*repeat), mask.repeat(batch_size, 1),
                        None if erg is None else erg.repeat(*repeat))


def lyric_tokens(ids: Any, mask: Any, *, batch_size: int, device: torch.device | str) -> LyricTokens:
    """Lyric ids/mask (list or tensor, ``[L]`` or ``[1, L]``) repeated over the batch; empty -> ``[[0]]``/``[[0]]``."""
    ids_t, mask_t = _as_ids(ids, device), _as_ids(mask, device)
    if ids_t.numel() == 0:
        ids_t, mask_t = _as_ids([0], device), _as_ids([0], device)
    return LyricTokens(ids_t.repeat(batch_size, 1), mask_t.repeat(batch_size, 1))


def _speaker(transformer: Any, batch: int, like: torch.Tensor) -> torch.Tensor:
    return like.new_zeros(batch, transformer.cfg.speaker_embedding_dim)


@torch.no_grad()
def build_conditions(transformer: Any, prompt: PromptStates, lyrics: LyricTokens, *, use_erg_lyric: bool,
                     with_uncond: bool, with_only_text: bool) -> ConditionSet:
    """Encode the cond set and, when asked, the uncond / only-text sets (table in the module docstring)."""
    text, text_mask = prompt.states, prompt.mask
    speaker = _speaker(transformer, text.shape[0], text)
    cond, mask = transformer.encode(text, text_mask, speaker, lyrics.ids, lyrics.mask)
    zero_ids = torch.zeros_like(lyrics.ids)
    erg_scale = ERG_TEMPERATURE if use_erg_lyric else 1.0
    lyric_ids = lyrics.ids if use_erg_lyric else zero_ids
    uncond = only_text = None
    if with_uncond:
        null_text = prompt.erg_states if use_erg_lyric and prompt.erg_states is not None else torch.zeros_like(text)
        uncond, _ = transformer.encode(null_text, text_mask, speaker, lyric_ids, lyrics.mask,
                                       lyric_query_scale=erg_scale)
    if with_only_text:
        only_text, _ = transformer.encode(text, text_mask, speaker, lyric_ids, lyrics.mask,
                                          lyric_query_scale=erg_scale)
    return ConditionSet(cond, mask, uncond, only_text)


@torch.no_grad()
def build_edit_conditions(transformer: Any, prompt: PromptStates, lyrics: LyricTokens, *,
                          doubled: bool) -> ConditionSet:
    """FlowEdit conditioning (spec 6.5): one batch ``[cond; uncond]`` when ``doubled`` (guidance on), where
    uncond = zero text (mask kept), zero speaker, zero lyric ids AND zero lyric mask; no ERG.

    Upstream re-runs ``encode`` inside every ``forward``; encoding once gives the same numbers."""
    text, text_mask, ids, lyric_mask = prompt.states, prompt.mask, lyrics.ids, lyrics.mask
    if doubled:
        text = torch.cat([text, torch.zeros_like(text)])
        text_mask = torch.cat([text_mask, text_mask])
        ids = torch.cat([ids, torch.zeros_like(ids)])
        lyric_mask = torch.cat([lyric_mask, torch.zeros_like(lyric_mask)])
    speaker = _speaker(transformer, text.shape[0], text)
    states, mask = transformer.encode(text, text_mask, speaker, ids, lyric_mask)
    return ConditionSet(states, mask)

"""One training step's arithmetic, exactly the original trainer's ``preprocess`` (after the encoders) and
``run_step``: CFG dropout, logit-normal timesteps on the shifted grid, the flow-matching noising, the x0-space
loss and the REPA loss.

Every random number of a step comes in a :class:`StepDraws` (per-item keyed draws from
:mod:`acestep_core.training.draws`, or the draws recorded with the goldens), so the arithmetic here is a pure
function of its inputs.

Ported from ace-step/ACE-Step@d612523 trainer.py (``preprocess``, ``get_timestep``, ``get_sd3_sigmas``,
``run_step``) (Apache-2.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..nn.blocks import LinearTransformerBlock
from ..nn.conformer import Dropout
from ..sampling.schedule import NUM_TRAIN_TIMESTEPS, SHIFT, training_sigmas
from ..transformer import AceStepTransformer
from .repa import repa_losses

__all__ = ["CFG_LYRIC_DROP", "CFG_SPEAKER_DROP", "CFG_TEXT_DROP", "Conditions", "StepDraws", "StepLoss",
           "apply_cfg_dropout", "step_loss", "timesteps_from_normal"]

CFG_TEXT_DROP = 0.15  # text states zeroed (mask kept) for 15 % of the items
CFG_SPEAKER_DROP = 0.50  # speaker embedding zeroed for 50 % (it is always zero in ACE-Step v1 anyway)
CFG_LYRIC_DROP = 0.15  # lyric ids and mask zeroed for 15 %


@dataclass(frozen=True)
class StepDraws:
    """Every random number of one step, in the original's draw order, one row per item."""

    cfg_text_uniform: torch.Tensor  # [B] U(0, 1)
    cfg_speaker_uniform: torch.Tensor  # [B]
    cfg_lyric_uniform: torch.Tensor  # [B]
    noise: torch.Tensor  # [B, 8, 16, T] N(0, 1)
    timestep_normal: torch.Tensor  # [B] N(logit_mean, logit_std)


@dataclass(frozen=True)
class Conditions:
    """The transformer's inputs besides the noisy latents (``preprocess``'s outputs)."""

    text_states: torch.Tensor  # [B, L_t, D_text] UMT5 last hidden state
    text_mask: torch.Tensor  # [B, L_t]
    speaker: torch.Tensor  # [B, 512]
    lyric_ids: torch.Tensor  # [B, L] int64
    lyric_mask: torch.Tensor  # [B, L]


@dataclass(frozen=True)
class StepLoss:
    """The step's losses (``total`` is what is back-propagated) and the intermediates the goldens record."""

    total: torch.Tensor
    denoising: torch.Tensor
    repa: dict[str, torch.Tensor]
    timesteps: torch.Tensor
    noisy_latents: torch.Tensor
    model_output: torch.Tensor
    conditions: Conditions


def apply_cfg_dropout(conditions: Conditions, draws: StepDraws) -> Conditions:
    """Classifier-free-guidance dropout: per item, text states (not their mask) where ``u_text < 0.15``, the
    speaker where ``u_speaker < 0.5``, lyric ids and mask where ``u_lyric < 0.15`` become zeros."""
    keep_text = ~(draws.cfg_text_uniform < CFG_TEXT_DROP).to(conditions.text_states.device)
    keep_speaker = ~(draws.cfg_speaker_uniform < CFG_SPEAKER_DROP).to(conditions.speaker.device)
    keep_lyric = ~(draws.cfg_lyric_uniform < CFG_LYRIC_DROP).to(conditions.lyric_ids.device)
    return replace(
        conditions,
        text_states=torch.where(keep_text[:, None, None], conditions.text_states,
                                torch.zeros_like(conditions.text_states)),
        speaker=torch.where(keep_speaker[:, None], conditions.speaker, torch.zeros_like(conditions.speaker)),
        lyric_ids=torch.where(keep_lyric[:, None], conditions.lyric_ids, torch.zeros_like(conditions.lyric_ids)),
        lyric_mask=torch.where(keep_lyric[:, None], conditions.lyric_mask, torch.zeros_like(conditions.lyric_mask)))


def timesteps_from_normal(normal: torch.Tensor, *, shift: float = SHIFT) -> tuple[torch.Tensor, torch.Tensor]:
    """``(timesteps [B], sigmas [B])`` for logit-normal draws: ``sigmoid(u) * 1000`` floored and clamped to
    [0, 999] indexes the shifted 1000-step training grid (timestep = 1000 sigma), as ``get_timestep``."""
    sigmas = training_sigmas(shift=shift)  # [1000] descending
    indices = (torch.sigmoid(normal.float().cpu()) * NUM_TRAIN_TIMESTEPS).long().clamp(0, NUM_TRAIN_TIMESTEPS - 1)
    chosen = sigmas[indices]
    return chosen * NUM_TRAIN_TIMESTEPS, chosen


BlockForward = Callable[..., torch.Tensor]


def _block_runner(transformer: AceStepTransformer, capture: Sequence[int], outputs: dict[int, torch.Tensor],
                  checkpoint_blocks: bool) -> BlockForward:
    """A ``block_forward`` for ``decode``: optional activation checkpointing, and the outputs of the blocks
    REPA reads captured into ``outputs``."""
    index_of = {id(block): index for index, block in enumerate(transformer.transformer_blocks)}

    def run(block: LinearTransformerBlock, *args: Any, **kwargs: Any) -> torch.Tensor:
        if checkpoint_blocks and torch.is_grad_enabled():
            out = checkpoint(LinearTransformerBlock.__call__, block, *args, use_reentrant=False, **kwargs)
        else:
            out = LinearTransformerBlock.__call__(block, *args, **kwargs)
        index = index_of[id(block)]
        if index in capture:
            outputs[index] = out
        return out

    return run


def step_loss(transformer: AceStepTransformer, target_latents: torch.Tensor, conditions: Conditions,
              draws: StepDraws, *, frame_mask: torch.Tensor | None = None,
              ssl_features: Mapping[str, Sequence[torch.Tensor]] | None = None, ssl_coeff: float = 1.0,
              shift: float = SHIFT, checkpoint_blocks: bool = False, lyric_dropout: Dropout | None = None) -> StepLoss:
    """The original trainer's loss for one batch.

    Args:
        transformer: an :class:`~acestep_core.transformer.AceStepTransformer` (with ``repa_heads`` for REPA).
        target_latents: [B, 8, 16, T] DCAE latents of the clips.
        conditions: text / speaker / lyric inputs before CFG dropout.
        draws: the step's random numbers.
        frame_mask: [B, T] latent frames that count in the loss; ``None`` = all (the original trains on the
            padding of shorter clips in a batch; a real mask is an option of ours).
        ssl_features: teacher name -> per-item features for REPA; ``None`` or empty = no REPA loss.
        ssl_coeff: weight of the mean REPA loss (1.0 in the original).
        shift: time shift of the training grid (``--shift``, 3.0).
        checkpoint_blocks: activation checkpointing per DiT block (numerically the same).
        lyric_dropout: the lyric Conformer's dropout (train mode), ``None`` = eval mode.
    """
    conditions = apply_cfg_dropout(conditions, draws)
    dtype, device = target_latents.dtype, target_latents.device
    batch, frames = target_latents.shape[0], target_latents.shape[-1]
    mask = torch.ones(batch, frames, device=device, dtype=dtype) if frame_mask is None else frame_mask.to(dtype)
    timesteps, sigmas = timesteps_from_normal(draws.timestep_normal, shift=shift)
    timesteps, sigmas = timesteps.to(device), sigmas.to(device=device, dtype=dtype).view(-1, 1, 1, 1)
    noisy = sigmas * draws.noise.to(device=device, dtype=dtype) + (1.0 - sigmas) * target_latents
    model_dtype = next(transformer.parameters()).dtype  # bf16 base weights: the network runs in bf16
    states, state_mask = transformer.encode(conditions.text_states.to(model_dtype), conditions.text_mask,
                                            conditions.speaker.to(model_dtype), conditions.lyric_ids,
                                            conditions.lyric_mask, lyric_dropout=lyric_dropout)
    cfg = transformer.cfg
    use_repa = bool(ssl_features)
    captured: dict[int, torch.Tensor] = {}
    runner = _block_runner(transformer, cfg.ssl_encoder_depths if use_repa else (), captured, checkpoint_blocks)
    velocity = transformer.decode(noisy.to(model_dtype), mask.to(model_dtype), states, state_mask,
                                  timesteps.to(dtype).to(model_dtype), output_length=frames,
                                  block_forward=runner).to(dtype)
    x0_estimate = velocity * (-sigmas) + noisy  # EDM-style preconditioning: the loss is in x0 space
    mask4 = mask[:, None, None, :].expand(-1, target_latents.shape[1], target_latents.shape[2], -1)
    per_item = F.mse_loss((x0_estimate * mask4).reshape(batch, -1), (target_latents * mask4).reshape(batch, -1),
                          reduction="none").mean(1)
    denoising = (per_item * mask4.reshape(batch, -1).mean(1)).mean()
    repa = (repa_losses(transformer.projectors, cfg.ssl_names, cfg.ssl_encoder_depths, captured, ssl_features or {})
            if use_repa else {})
    total = denoising + (sum(repa.values(), denoising.new_zeros(())) / len(repa)) * ssl_coeff if repa else denoising
    return StepLoss(total=total, denoising=denoising, repa=repa, timesteps=timesteps, noisy_latents=noisy,
                    model_output=velocity, conditions=conditions)

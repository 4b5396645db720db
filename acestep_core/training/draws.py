"""Every random draw of a training run, keyed by (seed, global step, the item's dataset index, purpose).

The original trainer draws from global generators (CUDA for CFG dropout, noise and the Conformer's dropout,
the CPU for timesteps, each data-loader worker's Python ``random`` for prompts) and sets no seed, so a run cannot
be repeated. Here each item's numbers come from generators seeded with a hash of its key, so a run with the same
``--seed`` repeats bit for bit (on the same device type), resuming at step K continues exactly, and the result
does not depend on the number of processes or on how a batch is split. The distributions are the original's:
U(0, 1) for the three CFG dropout draws, N(0, 1) noise, N(mean, std) for the logit-normal timesteps, Bernoulli
dropout masks scaled by 1 / (1 - p).

Divergence: the original draws one relative-position dropout mask for the whole batch; here each item has its
own (the same for batch 1, the original's default).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import torch

from .step import StepDraws

__all__ = ["KeyedDropout", "draw_key", "prompt_rng", "step_draws"]

LATENT_CHANNELS = 8
LATENT_HEIGHT = 16


def draw_key(seed: int, step: int, index: int, purpose: str) -> int:
    """A 63-bit seed for one item's draws of one purpose at one global step (stable across Python versions)."""
    digest = hashlib.blake2b(f"{seed}/{step}/{index}/{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _generator(key: int, device: torch.device | str = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(key)
    return generator


def prompt_rng(seed: int, step: int, index: int) -> random.Random:
    """The Python ``random.Random`` the item's prompt is chosen with (tag shuffle + recaption pick)."""
    return random.Random(draw_key(seed, step, index, "prompt"))


def step_draws(seed: int, step: int, indices: Sequence[int], frames: int, *, device: torch.device | str = "cpu",
               logit_mean: float = 0.0, logit_std: float = 1.0) -> StepDraws:
    """The draws of one step for items ``indices`` (dataset indices) with ``frames`` latent frames.

    Noise is drawn time-major (``[T, 8, 16]`` then moved to ``[8, 16, T]``) so an item's first frames get the
    same noise whatever the padded length of its batch.
    """
    uniforms, noise, normals = [], [], []
    for index in indices:
        uniforms.append(torch.rand(3, generator=_generator(draw_key(seed, step, index, "cfg"))))
        g = _generator(draw_key(seed, step, index, "noise"), device)
        noise.append(torch.randn(frames, LATENT_CHANNELS, LATENT_HEIGHT, generator=g, device=device).permute(1, 2, 0))
        z = torch.randn(1, generator=_generator(draw_key(seed, step, index, "timestep")))
        normals.append(z * logit_std + logit_mean)
    u = torch.stack(uniforms)  # [B, 3]
    return StepDraws(cfg_text_uniform=u[:, 0], cfg_speaker_uniform=u[:, 1], cfg_lyric_uniform=u[:, 2],
                     noise=torch.stack(noise), timestep_normal=torch.cat(normals))


class KeyedDropout:
    """The lyric Conformer's dropout (``dropout(x, site)``), one mask per item and site from keyed generators.

    ``x`` is ``[B, ...]`` with one row per item of ``indices``; recomputation (activation checkpointing) draws
    the same masks. ``p == 0`` returns ``x`` unchanged.
    """

    def __init__(self, p: float, seed: int, step: int, indices: Sequence[int]) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p}: expected a value in [0, 1)")
        self.p, self.seed, self.step, self.indices = p, seed, step, list(indices)

    def __call__(self, x: torch.Tensor, site: str) -> torch.Tensor:
        if self.p == 0.0:
            return x
        if x.shape[0] != len(self.indices):
            raise ValueError(f"dropout at {site}: {x.shape[0]} rows for {len(self.indices)} items")
        masks = [torch.rand(x.shape[1:], generator=_generator(draw_key(self.seed, self.step, index,
                                                                       f"dropout/{site}"), x.device),
                            device=x.device) >= self.p for index in self.indices]
        return x * torch.stack(masks).to(x.dtype) / (1.0 - self.p)

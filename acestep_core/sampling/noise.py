"""Seeds, generators and Gaussian draws in upstream's order (spec 5.11, parity README 4.4).

Ported from ace-step/ACE-Step@d612523 acestep/pipeline_ace_step.py ``set_seeds`` and diffusers'
``randn_tensor`` (Apache-2.0).

One ``torch.Generator`` per batch item, seeded with that item's seed; a ``[B, ...]`` draw is the
concatenation of per-item ``randn((1, ...), generator=g_b)``, so item b does not depend on the batch size.
Generators live on ``generator_device`` (CPU generators reproduce the CPU goldens on any device; CUDA
generators reproduce upstream's GPU runs); draws are moved to the latent device afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SeedSpec = int | str | Sequence[int] | None


def parse_seeds(seeds: SeedSpec) -> int | list[int] | None:
    """Upstream's reading of ``manual_seeds`` / ``retake_seeds``.

    An int, a non-empty list of ints, a ``"a,b,c"`` string (each part through ``int()``) or a digits-only
    string; anything else (``None``, ``[]``, ``" 12"``) means random seeds.
    """
    if isinstance(seeds, bool):
        return None
    if isinstance(seeds, int):
        return seeds
    if isinstance(seeds, str):
        if "," in seeds:
            return [int(part) for part in seeds.split(",")]
        return int(seeds) if seeds.isdigit() else None
    if isinstance(seeds, Sequence) and len(seeds) > 0 and all(isinstance(s, int) for s in seeds):
        return [int(s) for s in seeds]
    return None


def resolve_seeds(batch_size: int, seeds: SeedSpec) -> list[int]:
    """One seed per batch item: the int, ``list[b]`` (the last one when the list is short) or a random
    ``[0, 2**32)`` seed from torch's global generator, like upstream's ``set_seeds``."""
    parsed = parse_seeds(seeds)
    resolved: list[int] = []
    for index in range(batch_size):
        if isinstance(parsed, int):
            seed = parsed
        elif isinstance(parsed, list):
            seed = parsed[index] if index < len(parsed) else parsed[-1]
        else:
            seed = int(torch.randint(0, 2**32, (1,)).item())
        resolved.append(seed)
    return resolved


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One generator per seed on ``device``."""
    generators = []
    for seed in seeds:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        generators.append(generator)
    return generators


def randn_per_item(shape: Sequence[int], generators: Sequence[torch.Generator], *,
                   device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """``[B, ...]`` standard normal draw: item b from ``generators[b]`` (diffusers ``randn_tensor``)."""
    if len(generators) != shape[0]:
        raise ValueError(f"need one generator per batch item: {len(generators)} generators, batch {shape[0]}")
    item_shape = (1, *shape[1:])
    draws = [torch.randn(item_shape, generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.cat(draws, dim=0).to(device)

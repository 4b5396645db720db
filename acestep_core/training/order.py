"""Which dataset rows each step trains on: every epoch is a permutation of the rows keyed by (seed, epoch)
(the original reshuffles every epoch), consumed in order; a global step takes ``batch_size * world * accumulate``
positions, a micro-batch ``batch_size * world`` of them and each rank its own ``batch_size``. The order depends
only on the seed and the global batch size, so it needs no state to resume and is the same for 1 process with
batch 2 as for 2 processes with batch 1."""

from __future__ import annotations

import functools

import torch

from .config import TrainConfig
from .distributed import DistContext
from .draws import draw_key

__all__ = ["epoch_permutation", "global_positions"]


@functools.lru_cache(maxsize=8)
def epoch_permutation(seed: int, epoch: int, rows: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(draw_key(seed, epoch, -1, "order"))
    return tuple(torch.randperm(rows, generator=generator).tolist())


@functools.lru_cache(maxsize=4)
def _step_items(seed: int, step: int, per_step: int, rows: int) -> tuple[tuple[int, int], ...]:
    """Every ``(dataset index, draw key)`` of global step ``step``; a row met again within the step gets the key
    ``index + k * rows`` the ``k``-th time (a dataset smaller than the batch, or an epoch boundary)."""
    seen: dict[int, int] = {}
    items = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, within = divmod(position, rows)
        index = epoch_permutation(seed, epoch, rows)[within]
        repeat = seen.get(index, 0)
        seen[index] = repeat + 1
        items.append((index, index + repeat * rows))
    return tuple(items)


def global_positions(step: int, micro: int, config: TrainConfig, rows: int, dist: DistContext
                     ) -> list[tuple[int, int]]:
    """``[(dataset index, draw key), ...]`` of this rank's items in micro-batch ``micro`` of step ``step``."""
    per_micro = config.batch_size * dist.world
    items = _step_items(config.seed, step, per_micro * config.accumulate, rows)
    start = micro * per_micro + dist.rank * config.batch_size
    return list(items[start:start + config.batch_size])

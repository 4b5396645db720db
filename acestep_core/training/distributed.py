"""Several processes with the standard engine: ``torchrun --nproc-per-node N -m acestep_core train ...`` sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (and the rendezvous) and each process trains its share of every global
batch under ``torch.distributed`` DDP; only the LoRA's gradients are all-reduced (the frozen transformer is not
part of the wrapped module). Rank 0 caches, saves, previews and logs; the others wait at barriers.
Backend: NCCL on CUDA, gloo on the CPU. Multi-node runs use torchrun's ``--nnodes``/``--node-rank``/
``--rdzv-endpoint`` flags unchanged.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = ["DistContext", "init_distributed", "local_tensor"]

TIMEOUT_S = 1800  # as the original's Lightning DDP default


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run (``world == 1`` without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean(self, values: list[float]) -> list[float]:
        """The mean of each value over the ranks (what one process with the whole global batch would log)."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64,
                              device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(tensor)
        return (tensor / self.world).tolist()

    def all_ok(self, ok: bool) -> bool:
        """Whether every rank reports ``ok`` (a failure on one rank stops them all together)."""
        if not self.active:
            return ok
        flag = torch.tensor([0 if ok else 1], dtype=torch.int64,
                            device="cuda" if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(flag)
        return int(flag.item()) == 0


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group torchrun describes (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    logger.info("distributed training: rank %d of %d (%s)", rank, world, backend)
    return DistContext(rank=rank, world=world, local_rank=local_rank)


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The local shard of an FSDP2 (DTensor) tensor; any other tensor as it is."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if callable(to_local) else tensor

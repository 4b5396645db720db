"""Full fine-tuning of the DiT (``--full``) on ``torch.distributed``'s FSDP2, one code path for 1 or N processes.

* **Sharding**: ``fully_shard`` on every transformer block, on each REPA head and on the root (whose ``encode``
  / ``decode`` are registered as FSDP forward methods, since the loss calls them rather than ``forward``). One
  process runs the same path over a 1-rank process group, so memory and numerics do not depend on the launcher.
* **Precision**: the weights FSDP keeps are the fp32 master weights (the checkpoint's values); ``--precision
  bf16`` gathers them in bf16 for the forward/backward (``MixedPrecisionPolicy``) and reduces gradients in fp32.
  fp8 base weights cannot train and are refused.
* **Recipe**: the LoRA trainer's loss, dropout, REPA, AdamW (or 8-bit AdamW), clipping and schedule unchanged;
  every transformer parameter trains (the REPA heads too when REPA is on).
* **Saving** (rank 0 writes after every rank joins the gather): ``<folder>/ace_step_transformer/`` in the official
  layout (:mod:`.transformer_files`); the optimiser state is sharded: every rank writes its own file (see
  :func:`~.state.shard_file`), so resuming needs the same number of processes.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .config import TrainConfig
from .distributed import TIMEOUT_S, DistContext
from .draws import KeyedDropout
from .step import Conditions, StepLoss, step_loss
from .trainee import loss_inputs
from .transformer_files import (
    TRANSFORMER_FOLDER,
    complete_checkpoint,
    read_transformer_folder,
    write_transformer_folder,
)

logger = logging.getLogger(__name__)

__all__ = ["FullTrainee", "ensure_process_group"]


def ensure_process_group(device: torch.device) -> None:
    """A 1-rank process group for a single process (FSDP2 needs one); torchrun's group is used as it is."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S))


class _FullLoss:
    def __init__(self, transformer: Any, config: TrainConfig, checkpoint_blocks: bool) -> None:
        self.transformer, self.settings = transformer, loss_inputs(config, checkpoint_blocks)

    def __call__(self, latents: torch.Tensor, conditions: Conditions, draws: Any, frame_mask: torch.Tensor | None,
                 ssl: dict[str, list[torch.Tensor]] | None, dropout: KeyedDropout | None) -> StepLoss:
        return step_loss(self.transformer, latents, conditions, draws, frame_mask=frame_mask, ssl_features=ssl,
                         lyric_dropout=dropout, **self.settings)


class FullTrainee:
    """The whole transformer, sharded with FSDP2 (see the module docstring)."""

    kind = "full"
    sharded_state = True

    def __init__(self, transformer: Any, config: TrainConfig, *, device: torch.device, dist_context: DistContext,
                 checkpoint_blocks: bool, base: Path) -> None:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method

        if config.precision == "fp8":
            raise ValueError("--full trains every weight, which fp8 storage cannot hold; use --precision fp32 or bf16")
        if next(transformer.parameters()).dtype != torch.float32:
            raise ValueError("--full needs the transformer loaded in fp32 (the master weights)")
        ensure_process_group(device)
        self.transformer, self.base, self.dist = transformer, Path(base), dist_context
        transformer.requires_grad_(True)
        policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                  if config.precision == "bf16" else MixedPrecisionPolicy())
        mesh = init_device_mesh(device.type, (dist_context.world,))
        for block in transformer.transformer_blocks:
            fully_shard(block, mesh=mesh, mp_policy=policy)
        for head in getattr(transformer, "projectors", ()):
            fully_shard(head, mesh=mesh, mp_policy=policy)
        fully_shard(transformer, mesh=mesh, mp_policy=policy)
        for method in ("encode", "decode"):
            register_fsdp_forward_method(transformer, method)
        self._names = [name for name, _ in transformer.named_parameters()]
        self._params = list(transformer.parameters())
        self._model = _FullLoss(transformer, config, checkpoint_blocks)
        logger.info("full fine-tuning: %d tensors, %s parameters, FSDP2 over %d process(es), %s",
                    len(self._params), f"{sum(p.numel() for p in self._params):,}", dist_context.world,
                    "bf16 compute, fp32 master weights" if config.precision == "bf16" else "fp32")

    def parameters(self) -> list[torch.nn.Parameter]:
        return self._params

    def names(self) -> list[str]:
        return self._names

    def model(self) -> Any:
        return self._model

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        self.transformer.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            self.transformer.set_requires_gradient_sync(True)

    def save(self, folder: Path) -> None:
        """Gather the full weights (every rank joins) and write ``folder/ace_step_transformer/`` (rank 0)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state: dict[str, Any] = get_model_state_dict(self.transformer, options=StateDictOptions(full_state_dict=True,
                                                                                cpu_offload=True))
        if self.dist.is_main:
            write_transformer_folder(folder / TRANSFORMER_FOLDER, state, base=self.base,
                                     cfg=self.transformer.cfg)
            complete_checkpoint(folder, self.base)  # every save is a loadable checkpoint folder

    def load(self, folder: Path) -> None:
        """Every rank reads the saved weights; FSDP2 keeps its shard of each."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        wanted = set(self._names) | {name for name, _ in self.transformer.named_buffers()}
        state: dict[str, Any] = read_transformer_folder(folder / TRANSFORMER_FOLDER, keep=lambda key: key in wanted)
        missing = sorted(wanted - set(state))
        if missing:
            from ..errors import CheckpointError

            raise CheckpointError(f"{folder / TRANSFORMER_FOLDER}: {len(missing)} trained tensors missing (e.g. "
                                  f"{missing[:3]}); resume from another checkpoint folder")
        set_model_state_dict(self.transformer, state, options=StateDictOptions(full_state_dict=True))

    def close(self) -> None:
        return None

"""What a run trains, behind one interface for :class:`~.loop.TrainingRun`: a LoRA (the default; DDP over
several processes, only the adapters' gradients all-reduced) or the whole DiT (``--full``, FSDP2:
:mod:`.full`).

A trainee gives the loop its parameters in optimiser order with their names (the training state's keys), the
module that computes one micro-batch's loss (what DDP wraps), a context that skips the gradient
synchronisation of the micro-batches before the last, and how to save and load its weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch

from .config import TrainConfig
from .distributed import DistContext
from .draws import KeyedDropout
from .lora import LoraAdapter, attach_lora
from .save import save_lora
from .step import Conditions, StepLoss, step_loss

__all__ = ["LoraTrainee", "Trainee", "loss_inputs"]


class Trainee(Protocol):
    kind: str  # "lora" | "full"
    sharded_state: bool  # every rank writes its own optimiser state (FSDP2) instead of rank 0 alone

    def parameters(self) -> list[torch.nn.Parameter]: ...

    def names(self) -> list[str]: ...

    def model(self) -> Any: ...

    def no_sync(self) -> contextlib.AbstractContextManager[None]: ...

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...

    def close(self) -> None: ...


def loss_inputs(config: TrainConfig, checkpoint_blocks: bool) -> dict[str, Any]:
    """The settings :func:`~.step.step_loss` takes from the run's config."""
    return {"ssl_coeff": config.ssl_coeff, "shift": config.shift, "checkpoint_blocks": checkpoint_blocks}


class _LossModule(torch.nn.Module):
    """The module DDP wraps: the LoRA's parameters are its own; the frozen transformer is not registered."""

    def __init__(self, transformer: Any, adapter: LoraAdapter, config: TrainConfig, checkpoint_blocks: bool) -> None:
        super().__init__()
        self.adapters = adapter.module
        self._transformer = [transformer]  # a list hides it from nn.Module's registration (and from DDP)
        self.settings = loss_inputs(config, checkpoint_blocks)

    def forward(self, latents: torch.Tensor, conditions: Conditions, draws: Any, frame_mask: torch.Tensor | None,
                ssl: dict[str, list[torch.Tensor]] | None, dropout: KeyedDropout | None) -> StepLoss:
        return step_loss(self._transformer[0], latents, conditions, draws, frame_mask=frame_mask, ssl_features=ssl,
                         lyric_dropout=dropout, **self.settings)


class LoraTrainee:
    """Trainable adapters on the frozen transformer (see :mod:`.lora`)."""

    kind = "lora"
    sharded_state = False

    def __init__(self, transformer: Any, config: TrainConfig, *, device: torch.device, dist: DistContext,
                 checkpoint_blocks: bool, init_lora: Path | None = None) -> None:
        self.dist = dist
        self.adapter = attach_lora(transformer, config.lora, init_from=init_lora,
                                   generator=torch.Generator().manual_seed(config.seed))
        self._params = self.adapter.parameters()  # optimiser order: lora_A, lora_B of each module
        for param in self._params:
            param.requires_grad_(True)
        module = _LossModule(transformer, self.adapter, config, checkpoint_blocks)
        self._model: Any = module
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self._model = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)

    def parameters(self) -> list[torch.nn.Parameter]:
        return self._params

    def names(self) -> list[str]:
        return [f"{name}.lora_{ab}.weight" for name, _ in self.adapter.pairs() for ab in "AB"]

    def model(self) -> Any:
        return self._model

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        if hasattr(self._model, "no_sync"):
            with self._model.no_sync():
                yield
        else:
            yield

    def save(self, folder: Path) -> None:
        if self.dist.is_main:
            save_lora(self.adapter, folder)

    def load(self, folder: Path) -> None:
        from ..lora.formats import read_lora

        lora = read_lora(folder)
        self.adapter.load_state_dict({f"{n}.lora_A.weight": m.down for n, m in lora.modules.items()}
                                     | {f"{n}.lora_B.weight": m.up for n, m in lora.modules.items()},
                                     source=str(folder))

    def close(self) -> None:
        self.adapter.detach()

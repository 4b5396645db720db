"""The original trainer's optimiser: AdamW over the trainable parameters (lr 1e-4, betas (0.8, 0.9), weight
decay 1e-2, eps 1e-8), a LambdaLR schedule stepped after every optimiser step (linear warm-up from 0 over
``warmup_steps``, then linear decay to 0 at ``max_steps``), and the gradients' global L2 norm clipped to 0.5
before each step.

Ported from ace-step/ACE-Step@d612523 trainer.py (``configure_optimizers``; Lightning's ``gradient_clip_val``
with ``gradient_clip_algorithm="norm"``) (Apache-2.0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from .choices import OPTIMIZERS, OptimizerName

__all__ = ["OPTIMIZERS", "OptimConfig", "lr_multiplier", "make_optimizer"]


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser settings (the original's defaults). The schedule decays to 0 at the run's ``max_steps`` (the
    original's CLI default, 2,000,000, makes that a constant rate in practice)."""

    learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.8, 0.9)
    eps: float = 1e-8
    warmup_steps: int = 10
    grad_clip_norm: float = 0.5
    optimizer: OptimizerName = "adamw"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r}: choose one of {list(OPTIMIZERS)} (adamw = the original)")
        if not self.learning_rate > 0:
            raise ValueError(f"learning rate {self.learning_rate}: must be > 0 (the original uses 1e-4)")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps {self.warmup_steps}: must be >= 0")
        if not self.grad_clip_norm > 0:
            raise ValueError(f"gradient clip norm {self.grad_clip_norm}: must be > 0 (the original uses 0.5)")


def lr_multiplier(step: int, warmup_steps: int, max_steps: int) -> float:
    """The LambdaLR factor at optimiser step ``step`` (0-based): ``step / warmup`` during warm-up, then linear
    decay to 0 at ``max_steps``."""
    if step < warmup_steps:
        return float(step) / float(max(1, warmup_steps))
    progress = float(step - warmup_steps) / float(max(1, max_steps - warmup_steps))
    return max(0.0, 1.0 - progress)


def make_optimizer(params: Iterable[torch.nn.Parameter], config: OptimConfig, max_steps: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (or 8-bit AdamW) and its schedule over ``max_steps`` (step the schedule after every
    ``optimizer.step()``)."""
    optimizer: torch.optim.Optimizer
    if config.optimizer == "adamw8bit":
        from .adam8bit import AdamW8bit

        optimizer = AdamW8bit([{"params": list(params)}], lr=config.learning_rate, weight_decay=config.weight_decay,
                              betas=config.betas, eps=config.eps)
    else:
        optimizer = torch.optim.AdamW([{"params": list(params)}], lr=config.learning_rate,
                                      weight_decay=config.weight_decay, betas=config.betas, eps=config.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, config.warmup_steps, max_steps))
    return optimizer, scheduler

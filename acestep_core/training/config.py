"""Settings of a training run: one frozen dataclass, the faithful recipe by default, each fast/light option a
named switch. Stored in the run's ``training_state.json`` so ``--resume`` continues with the same settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .choices import CHECKPOINTING_CHOICES, PRECISIONS, REPA_CHOICES, Precision, Switch
from .lora import LoraConfig
from .optim import OptimConfig

__all__ = ["CHECKPOINTING_CHOICES", "PRECISIONS", "REPA_CHOICES", "TrainConfig"]

LYRIC_DROPOUT = 0.1  # the lyric Conformer's dropout in train mode (upstream dropout_rate / positional_dropout_rate)


@dataclass(frozen=True)
class TrainConfig:
    """What a run computes (the paths and devices it runs with are the caller's).

    Faithful defaults: fp32, batch 1, padding trained on (the original's all-ones mask), lyric Conformer dropout
    0.1, REPA with weight 1.0 when the teachers are available (``auto``), AdamW betas (0.8, 0.9) + warm-up 10 +
    clip 0.5, shift 3, logit-normal N(0, 1) timesteps.
    """

    max_steps: int = 2000
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 1  # clips per process per micro-batch
    accumulate: int = 1  # micro-batches per optimiser step
    seed: int = 0
    precision: Precision = "fp32"
    checkpointing: Switch = "auto"
    repa: Switch = "auto"
    ssl_coeff: float = 1.0
    shift: float = 3.0
    logit_mean: float = 0.0
    logit_std: float = 1.0
    lyric_dropout: float = LYRIC_DROPOUT
    mask_padding: bool = False  # ours: leave the padding of shorter clips out of the loss
    full: bool = False  # train every transformer weight (FSDP2) instead of a LoRA
    tf32: bool = True  # fp32 matmuls on CUDA in TF32, as the original's trainer.py sets (matmul precision "high")
    save_every: int = 500
    keep_checkpoints: int = 3
    preview_every: int = 0
    preview_seconds: float = 30.0
    preview_steps: int = 27

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "accumulate", "preview_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("save_every", "keep_checkpoints", "preview_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an integer >= 0 (0 = never), got {value!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: choose one of {list(PRECISIONS)}")
        for name, choices in (("checkpointing", CHECKPOINTING_CHOICES), ("repa", REPA_CHOICES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} {getattr(self, name)!r}: choose one of {list(choices)}")
        for name in ("ssl_coeff", "shift", "logit_std", "preview_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if self.full and self.precision == "fp8":
            raise ValueError("--full trains every weight, which fp8 storage cannot hold; use --precision fp32 or "
                             "bf16 (bf16 compute with fp32 master weights)")
        if self.full and self.preview_every:
            raise ValueError("previews are rendered for LoRA runs only; with --full leave --preview-every at 0 and "
                             "generate with the saved checkpoint folder")
        if not 0.0 <= self.lyric_dropout < 1.0:
            raise ValueError(f"lyric_dropout {self.lyric_dropout}: expected a value in [0, 1)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"training settings: unknown keys {unknown}")
        values = dict(data)
        if isinstance(values.get("lora"), dict):
            lora = dict(values["lora"])
            lora["target_modules"] = tuple(lora.get("target_modules", ()))
            values["lora"] = LoraConfig(**lora)
        if isinstance(values.get("optim"), dict):
            optim = dict(values["optim"])
            optim["betas"] = tuple(optim.get("betas", (0.8, 0.9)))
            values["optim"] = OptimConfig(**optim)
        return cls(**values)

    def resume_compatible(self, other: TrainConfig) -> list[str]:
        """Settings that must match to continue a run exactly (empty when ``other`` can continue this one);
        ``max_steps`` (which also moves the learning-rate decay), saving and preview settings may change."""
        free = {"max_steps", "save_every", "keep_checkpoints", "preview_every", "preview_seconds", "preview_steps"}
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in free and mine[k] != theirs[k])

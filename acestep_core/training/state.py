"""The training state that ``--resume`` continues from, without pickles: the optimiser's moments as safetensors,
everything else (step, settings, Adam step counts, schedule position) as JSON.

Random draws need no state: they are keyed by (seed, step, dataset index) (:mod:`.draws`), and so is the data
order, so restoring the LoRA, the optimiser and the step continues a run exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from .config import TrainConfig
from .distributed import local_tensor
from .save import atomic_write, atomic_write_text

__all__ = ["STATE_JSON", "STATE_TENSORS", "TrainingState", "load_state", "save_state", "save_state_json",
           "save_state_tensors", "shard_file"]

STATE_JSON = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
STATE_FORMAT = 1


@dataclass(frozen=True)
class TrainingState:
    """Where a run stands after ``step`` optimiser steps."""

    step: int
    config: TrainConfig
    param_names: tuple[str, ...]  # the LoRA parameters, in optimiser order
    moments: dict[str, torch.Tensor]  # "<name>.<optimiser state key>" (AdamW: exp_avg, exp_avg_sq)
    adam_steps: tuple[float, ...]
    loss_history: tuple[tuple[int, float], ...] = ()


def capture(step: int, config: TrainConfig, names: list[str], optimizer: torch.optim.Optimizer,
            loss_history: list[tuple[int, float]]) -> TrainingState:
    """Every tensor of the optimiser's per-parameter state (AdamW: ``exp_avg`` / ``exp_avg_sq``; 8-bit AdamW: its
    quantised moments and scales) under ``<name>.<key>``, and the step counts."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != len(names):
        raise ValueError(f"training state: {len(names)} names for {len(params)} optimiser parameters")
    moments: dict[str, torch.Tensor] = {}
    steps: list[float] = []
    for name, param in zip(names, params, strict=True):
        state = optimizer.state.get(param, {})
        if not state:  # not stepped yet: AdamW's zero moments
            zeros = torch.zeros_like(local_tensor(param))
            state = {"exp_avg": zeros, "exp_avg_sq": zeros}
        for key, value in state.items():
            if key != "step" and isinstance(value, torch.Tensor):
                moments[f"{name}.{key}"] = local_tensor(value).detach()
        steps.append(float(state["step"]) if "step" in state else 0.0)
    return TrainingState(step, config, tuple(names), moments, tuple(steps), tuple(loss_history))


def restore(state: TrainingState, optimizer: torch.optim.Optimizer) -> None:
    """Put the saved moments and step counts into ``optimizer`` (same parameters, same order)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(params) != len(state.param_names):
        raise CheckpointError(f"training state holds {len(state.param_names)} trained tensors, the run has "
                              f"{len(params)}: it belongs to another LoRA configuration")
    for name, param, count in zip(state.param_names, params, state.adam_steps, strict=True):
        local = local_tensor(param)
        entries = {key[len(name) + 1:]: value for key, value in state.moments.items()
                   if key.startswith(name + ".") and "." not in key[len(name) + 1:]}
        restored: dict[str, torch.Tensor] = {"step": torch.tensor(count)}
        for key, value in entries.items():
            if key in ("exp_avg", "exp_avg_sq") and value.shape != local.shape:
                raise CheckpointError(f"training state: {name} has shape {list(value.shape)}, the run "
                                      f"{list(local.shape)}")
            moment = key in ("exp_avg", "exp_avg_sq")
            tensor = value.to(device=local.device, dtype=local.dtype if value.is_floating_point() and moment
                              else value.dtype).clone()
            if moment and local is not param and not getattr(optimizer, "LOCAL_STATE", False):
                from torch.distributed.tensor import DTensor  # torch AdamW keeps DTensor moments for FSDP2

                tensor = DTensor.from_local(tensor, param.device_mesh, param.placements,
                                            shape=param.shape, stride=param.stride())
            restored[key] = tensor
        if count > 0:
            optimizer.state[param] = restored



def shard_file(shard: tuple[int, int] | None) -> str:
    """The tensor file of one rank's optimiser shard (FSDP2), or of the whole state."""
    if shard is None:
        return STATE_TENSORS
    rank, world = shard
    return f"training_state.rank{rank:05d}-of-{world:05d}.safetensors"


def save_state_tensors(folder: Path, state: TrainingState, *, shard: tuple[int, int] | None = None) -> None:
    """Write the state's tensors (this rank's shard of them with ``shard`` = (rank, world))."""
    tensors = {k: v.to(device="cpu", dtype=torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.moments.items()}
    atomic_write(folder / shard_file(shard), lambda tmp: save_file(tensors, str(tmp)))


def save_state_json(folder: Path, state: TrainingState, *, world: int | None = None) -> None:
    """Write the JSON that names the tensors, after them (a JSON present means a complete state). ``world``: the
    number of optimiser shards (FSDP2 runs), ``None`` for one tensor file."""
    doc = {"format": STATE_FORMAT, "step": state.step, "config": state.config.to_dict(),
           "param_names": list(state.param_names), "adam_steps": list(state.adam_steps),
           "loss_history": [list(entry) for entry in state.loss_history]}
    if world is not None:
        doc["shards"] = world
    atomic_write_text(folder / STATE_JSON, json.dumps(doc, indent=1) + "\n")


def save_state(folder: Path, state: TrainingState) -> None:
    """Write the whole state next to a LoRA (tensors first, then the JSON)."""
    save_state_tensors(folder, state)
    save_state_json(folder, state)


def load_state(folder: Path, *, shard: tuple[int, int] | None = None) -> TrainingState:
    """Read a state written by :func:`save_state` (``shard`` = (rank, world): this rank's optimiser shard of an
    FSDP2 run); a clear error names what is missing or broken."""
    json_path = folder / STATE_JSON
    try:
        doc: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{folder}: the training state cannot be read ({e}); resume from another "
                              "checkpoint folder (checkpoints/step_*) or start again with --overwrite") from e
    saved_world = doc.get("shards")
    world = shard[1] if shard is not None else None
    if saved_world != world:
        raise CheckpointError(f"{folder}: the training state was saved by {saved_world or 1} process(es) "
                              f"{'with sharded optimiser states' if saved_world else 'with one state file'}; "
                              f"this run has {world or 1}. Resume with the same number of processes "
                              f"(torchrun --nproc-per-node {saved_world or 1}) and the same --full setting")
    try:
        moments = load_file(str(folder / shard_file(shard)))
    except (OSError, SafetensorError) as e:
        raise CheckpointError(f"{folder}: the training state cannot be read ({e}); resume from another "
                              "checkpoint folder (checkpoints/step_*) or start again with --overwrite") from e
    if doc.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{json_path}: training state format {doc.get('format')!r}, expected {STATE_FORMAT}")
    history = tuple((int(s), float(v)) for s, v in doc.get("loss_history", []) if math.isfinite(float(v)))
    return TrainingState(step=int(doc["step"]), config=TrainConfig.from_dict(doc["config"]),
                         param_names=tuple(doc["param_names"]), moments=moments,
                         adam_steps=tuple(float(s) for s in doc["adam_steps"]), loss_history=history)

"""Trainable LoRA adapters on the transformer's Linear layers, without PEFT.

:class:`LoraConfig` is the original trainer's ``lora_config.json`` (PEFT ``LoraConfig`` keyword arguments);
:func:`attach_lora` matches its ``target_modules`` like PEFT (a module name equal to a target or ending in
``"." + target``) and adds ``lora_B(lora_A(x)) * scaling`` to each matched layer's output through a forward hook,
so the transformer, its state dict and its inference code are untouched. The adapter's own parameters live in a
:class:`LoraAdapter` module (``<module>.lora_A.weight`` [r, in], ``<module>.lora_B.weight`` [out, r], the file
layout the original writes with ``save_lora_adapter``). Initialisation is PEFT's (A Kaiming-uniform with
``a = sqrt(5)``, B zeros, so step 0 equals the base model) or an existing LoRA file (continue training).

The forward matches PEFT's ``Linear.forward`` with ``lora_dropout`` 0: ``result = base(x)``;
``result = (result + lora_B(lora_A(x.to(A.dtype))) * scaling).to(result.dtype)`` (fp32 adapters on bf16 base
weights add in fp32, then round once).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..lora.formats import ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, LoraError, read_lora

__all__ = ["ADAPTER_CONFIG_FILE", "PEFT_WEIGHTS_FILE", "RAPMACHINE_TARGETS", "LoraAdapter", "LoraConfig", "attach_lora",
           "target_linears"]

# The official RapMachine LoRA's targets (config/zh_rap_lora_config.json): DiT self- and cross-attention q/k/v/out,
# the lyric Conformer's q/k/v and the speaker embedder (211 modules).
RAPMACHINE_TARGETS: tuple[str, ...] = ("speaker_embedder", "linear_q", "linear_k", "linear_v", "to_q", "to_k",
                                       "to_v", "to_out.0")
# PEFT LoraConfig keys that do not change the adapter's math at these values (accepted, ignored).
_NEUTRAL_KEYS: dict[str, Any] = {
    "peft_type": "LORA", "task_type": None, "base_model_name_or_path": None, "revision": None, "inference_mode": None,
    "fan_in_fan_out": False, "bias": "none", "modules_to_save": None, "layers_to_transform": None,
    "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {}, "megatron_config": None,
    "megatron_core": "megatron.core", "loftq_config": {}, "use_dora": False, "layer_replication": None,
    "runtime_config": {"ephemeral_gpu_offload": False}, "lora_bias": False, "exclude_modules": None,
    "eva_config": None, "corda_config": None, "trainable_token_indices": None, "auto_mapping": None,
}


@dataclass(frozen=True)
class LoraConfig:
    """A LoRA's shape: rank ``r``, ``lora_alpha`` (default = r, so strength 1.0 means the same in our loader, the
    original app and ComfyUI), rsLoRA scaling, PEFT-style ``target_modules``."""

    r: int = 64
    lora_alpha: float | None = None
    use_rslora: bool = False
    target_modules: tuple[str, ...] = RAPMACHINE_TARGETS
    lora_dropout: float = 0.0
    init_lora_weights: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise LoraError(f"LoRA rank r: expected a positive integer, got {self.r!r}")
        if self.lora_alpha is None:
            object.__setattr__(self, "lora_alpha", float(self.r))
        elif not (isinstance(self.lora_alpha, (int, float)) and math.isfinite(self.lora_alpha)
                  and self.lora_alpha > 0):
            raise LoraError(f"lora_alpha: expected a positive number, got {self.lora_alpha!r}")
        if isinstance(self.target_modules, str):
            object.__setattr__(self, "target_modules", (self.target_modules,))
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if not self.target_modules:
            raise LoraError("target_modules: empty; name the layers to adapt (default: the RapMachine targets)")
        if self.lora_dropout != 0.0:
            raise LoraError(f"lora_dropout {self.lora_dropout}: only 0 is supported (the original trainer's "
                            "configs use none)")
        if self.init_lora_weights is not True:
            raise LoraError(f"init_lora_weights {self.init_lora_weights!r}: only PEFT's default (true: Kaiming A, "
                            "zero B) is supported; to start from another LoRA, pass it as the initial LoRA")

    @property
    def scaling(self) -> float:
        """The training-time scale: ``alpha / r``, or ``alpha / sqrt(r)`` with rsLoRA."""
        alpha = float(self.lora_alpha or self.r)
        return alpha / math.sqrt(self.r) if self.use_rslora else alpha / self.r

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "LoRA config") -> LoraConfig:
        """PEFT ``LoraConfig`` keyword arguments (the original's ``lora_config.json``, or an ``adapter_config.json``);
        keys that would change the math are refused, naming them."""
        ours = {f.name for f in fields(cls)}
        refused = sorted(k for k, v in data.items() if k not in ours and (k not in _NEUTRAL_KEYS or
                                                                          v != _NEUTRAL_KEYS[k]))
        if refused:
            raise LoraError(f"{source}: unsupported LoRA settings {refused} (supported: {sorted(ours)}; "
                            "PEFT defaults of the other LoraConfig fields are accepted)")
        return cls(**{k: v for k, v in data.items() if k in ours})

    @classmethod
    def from_json(cls, path: str | Path) -> LoraConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            example = '{"r": 64, "lora_alpha": 64, "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}'
            raise LoraError(f"{path}: cannot read the LoRA config ({e}); expected a JSON object like {example}") from e
        if not isinstance(data, dict):
            raise LoraError(f"{path}: expected a JSON object of LoraConfig arguments, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    def adapter_config(self) -> dict[str, Any]:
        """The ``adapter_config.json`` written next to the weights (PEFT's format; read by our LoRA loader)."""
        return {"peft_type": "LORA", "r": self.r, "lora_alpha": self.lora_alpha, "use_rslora": self.use_rslora,
                "target_modules": list(self.target_modules), "lora_dropout": self.lora_dropout, "bias": "none",
                "init_lora_weights": True, "fan_in_fan_out": False, "task_type": None}


def _matches(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def target_linears(model: nn.Module, config: LoraConfig) -> dict[str, nn.Linear]:
    """The Linear layers ``config.target_modules`` selects, by module name (PEFT's suffix rule)."""
    found = {name: module for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and _matches(name, config.target_modules)}
    if not found:
        raise LoraError(f"target_modules {list(config.target_modules)} match no Linear layer of the transformer; "
                        f"ACE-Step v1 layers are e.g. {list(RAPMACHINE_TARGETS)}")
    unmatched = [t for t in config.target_modules if not any(_matches(n, (t,)) for n in found)]
    if unmatched:
        raise LoraError(f"target_modules {unmatched} match no Linear layer of the transformer (the others match "
                        f"{len(found)} layers); remove them or fix their names")
    return found


def lora_param_count(model: nn.Module, config: LoraConfig) -> int:
    """Trainable values the LoRA of ``config`` adds to ``model`` (A [r, in] + B [out, r] per target layer)."""
    return sum(config.r * (m.in_features + m.out_features) for m in target_linears(model, config).values())


class _Pair(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, dtype: torch.dtype,
                 device: torch.device | None) -> None:
        super().__init__()
        self.lora_A = nn.Linear(in_features, rank, bias=False, dtype=dtype, device=device)
        self.lora_B = nn.Linear(rank, out_features, bias=False, dtype=dtype, device=device)


@dataclass
class LoraAdapter:
    """The trainable adapters attached to a transformer; ``module`` holds their parameters."""

    config: LoraConfig
    module: nn.ModuleDict
    names: dict[str, str]  # our module name -> key in ``module`` (dots are not allowed in ModuleDict keys)
    handles: list[Any] = field(default_factory=list)
    enabled: bool = True

    def pairs(self) -> Iterator[tuple[str, _Pair]]:
        for name, key in self.names.items():
            pair = self.module[key]
            assert isinstance(pair, _Pair)
            yield name, pair

    def parameters(self) -> list[nn.Parameter]:
        return list(self.module.parameters())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """File-layout tensors (``<module>.lora_A.weight``, ``<module>.lora_B.weight``), detached."""
        out: dict[str, torch.Tensor] = {}
        for name, pair in self.pairs():
            out[f"{name}.lora_A.weight"] = pair.lora_A.weight.detach()
            out[f"{name}.lora_B.weight"] = pair.lora_B.weight.detach()
        return out

    @torch.no_grad()
    def load_state_dict(self, tensors: Mapping[str, torch.Tensor], *, source: str) -> None:
        """Copy file-layout tensors in (continue training); every adapter must be given, with its shape."""
        own = self.state_dict()
        missing = sorted(set(own) - set(tensors))
        extra = sorted(set(tensors) - set(own))
        wrong = sorted(k for k in set(own) & set(tensors) if tuple(tensors[k].shape) != tuple(own[k].shape))
        if missing or extra or wrong:
            raise LoraError(f"{source}: does not fit this LoRA configuration (r {self.config.r}, targets "
                            f"{list(self.config.target_modules)}): missing {missing[:5]}, extra {extra[:5]}, "
                            f"wrong shapes {wrong[:5]}; train with the config it was made with")
        for name, pair in self.pairs():
            pair.lora_A.weight.copy_(tensors[f"{name}.lora_A.weight"])
            pair.lora_B.weight.copy_(tensors[f"{name}.lora_B.weight"])

    def detach(self) -> None:
        """Remove the hooks: the transformer computes without the adapters again."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _hook(pair: _Pair, scaling: float, adapter: LoraAdapter) -> Any:
    def add_lora(_module: nn.Module, inputs: tuple[torch.Tensor, ...], result: torch.Tensor) -> torch.Tensor:
        if not adapter.enabled:
            return result
        x = inputs[0].to(pair.lora_A.weight.dtype)
        return (result + pair.lora_B(pair.lora_A(x)) * scaling).to(result.dtype)
    return add_lora


def attach_lora(model: nn.Module, config: LoraConfig, *, dtype: torch.dtype = torch.float32,
                generator: torch.Generator | None = None, init_from: str | Path | None = None) -> LoraAdapter:
    """Add trainable adapters to ``model``'s target layers (on each layer's device, in ``dtype``).

    ``init_from`` (a LoRA folder or file, e.g. an earlier run's) sets the initial tensors; otherwise PEFT's
    initialisation draws A from ``generator``.
    """
    layers = target_linears(model, config)
    keys = {name: name.replace(".", "__") for name in layers}
    module = nn.ModuleDict({keys[name]: _Pair(layer.in_features, layer.out_features, config.r, dtype,
                                              layer.weight.device if not layer.weight.is_meta else None)
                            for name, layer in layers.items()})
    adapter = LoraAdapter(config, module, keys)
    for _, pair in adapter.pairs():  # drawn on the CPU (the generator's device): the same A on every device
        weight = torch.empty(pair.lora_A.weight.shape, dtype=pair.lora_A.weight.dtype)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        with torch.no_grad():
            pair.lora_A.weight.copy_(weight)
        nn.init.zeros_(pair.lora_B.weight)
    if init_from is not None:
        lora = read_lora(init_from)
        adapter.load_state_dict({f"{name}.lora_A.weight": m.down for name, m in lora.modules.items()}
                                | {f"{name}.lora_B.weight": m.up for name, m in lora.modules.items()},
                                source=str(init_from))
    pairs = dict(adapter.pairs())
    for name, layer in layers.items():
        adapter.handles.append(layer.register_forward_hook(_hook(pairs[name], config.scaling, adapter)))
    return adapter


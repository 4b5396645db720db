"""Opt-in fp8 weight storage for the ACE-Step v1 transformer (``torch.float8_e4m3fn``, per-output-channel scale).

:func:`quantize_fp8_` turns, in place, every eligible layer of the DiT blocks into an :class:`Fp8Linear` /
:class:`Fp8Conv1d` layer that stores the weight in fp8 and dequantises it to the activation dtype in ``forward``,
so the matmuls still run in bf16 (fp32 on CPU): only weight memory shrinks (about 2.4 GB of the 5.2 GB bf16
transformer), nothing gets faster.

Eligible layers (the rule): modules under ``transformer_blocks.`` that are ``nn.Linear`` or ``nn.Conv1d`` with
kernel size 1 and one group (the GLUMBConv ``inverted_conv``/``point_conv``), with at least
:data:`MIN_FP8_NUMEL` weights. Left alone: norms, embeddings, bare parameters (``scale_shift_table``), biases,
the depthwise 3-tap conv, everything outside the DiT blocks (patch embedding, timestep / condition / lyric
encoders, final layer) and tiny layers. The DiT blocks hold ~95 % of the kept parameters.

Quantisation: ``scale = amax(|W[o, :]|) / 448`` per output channel (float32; 448 = largest e4m3 value),
``W_fp8 = round_to_e4m3(W / scale)``. e4m3 keeps 3 mantissa bits, so each weight's rounding error is at most
``2**-4 * |W|`` (normal range) or ``2**-10 * scale`` (subnormals): roughly a 2-4 % relative error per layer.

How: each layer keeps its identity and attributes; its class becomes ``Fp8<its class>`` (the :class:`Fp8Linear`
/ :class:`Fp8Conv1d` mixin in front of the original class, like the channels-last conv classes of
:mod:`acestep_core.nn.blocks`), whose ``forward`` dequantises and then computes as the original does (a Conv1d
through its own ``_conv_forward``, so layout changes in the network code carry over). No wrapper module and no
forward pre-hook (a hook would have to swap a bf16 tensor into ``weight`` on every call and back): the state
dict reads ``<name>.weight`` (fp8) + ``<name>.weight_scale`` (float32 ``[out]``) + ``<name>.bias``, and the fp8
weight is a *buffer*, not a parameter, so ``next(transformer.parameters())`` (how the pipeline picks the
activation dtype) stays a bf16 tensor, and code writing through ``named_parameters()`` cannot reach an fp8
weight (:func:`acestep_core.lora.merge.merge_loras` refuses a quantised model up front with a ``LoraError``).

LoRA: merge LoRAs *before* quantising, with ``keep_originals=False`` (or ``restore()`` first):
:func:`quantize_fp8_` refuses a model with a pending :class:`~acestep_core.lora.merge.LoraMerge` passed as
``lora_merge`` because restoring it later would corrupt the fp8 weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["MIN_FP8_NUMEL", "Fp8Conv1d", "Fp8Linear", "QuantError", "QuantReport", "fp8_supported",
           "is_fp8_quantized", "quantize_fp8_"]

FP8_DTYPE_NAME = "float8_e4m3fn"
FP8_MAX = 448.0  # largest finite torch.float8_e4m3fn value
MIN_FP8_NUMEL = 1024  # below this the float32 per-row scales and the extra cast outweigh the saving
QUANT_PREFIX = "transformer_blocks."


class QuantError(RuntimeError):
    """fp8 quantisation cannot be applied (no float8 support, already quantised, pending LoRA restore)."""


@dataclass
class QuantReport:
    """What :func:`quantize_fp8_` did: layers converted and the transformer's tensor bytes before / after."""

    layers: list[str] = field(default_factory=list)
    quantized_params: int = 0
    bytes_before: int = 0  # all parameters + buffers of the transformer
    bytes_after: int = 0

    @property
    def saved_bytes(self) -> int:
        return self.bytes_before - self.bytes_after

    def summary(self) -> str:
        gib = 2**30
        return (f"fp8: {len(self.layers)} layers ({self.quantized_params / 1e6:.1f} M weights) quantised; "
                f"transformer {self.bytes_before / gib:.2f} -> {self.bytes_after / gib:.2f} GiB "
                f"(saved {self.saved_bytes / gib:.2f} GiB)")


def fp8_supported() -> bool:
    """Whether this torch build has ``torch.float8_e4m3fn`` (torch >= 2.1)."""
    return hasattr(torch, FP8_DTYPE_NAME)


def _fp8_dtype() -> torch.dtype:
    if not fp8_supported():
        raise QuantError(f"fp8 weights need torch.float8_e4m3fn, which torch {torch.__version__} lacks; "
                         "upgrade torch to 2.1 or newer, or run without --fp8")
    return getattr(torch, FP8_DTYPE_NAME)


def quantize_weight(weight: torch.Tensor, compute_device: torch.device | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` [out, ...] -> (fp8 weight, float32 scale [out]) on its own device; math on ``compute_device``."""
    home = weight.device
    w = weight.detach().to(compute_device or home, torch.float32)
    amax = w.abs().reshape(w.shape[0], -1).amax(dim=1)
    scale = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))  # all-zero rows: any scale works
    q = (w / scale.reshape(-1, *([1] * (w.ndim - 1)))).clamp(-FP8_MAX, FP8_MAX).to(_fp8_dtype())
    return q.to(home), scale.to(home)


class _Fp8Weight(nn.Module):
    """Mixed into a quantised layer's class: ``weight`` is an fp8 buffer, ``weight_scale`` a float32 [out] buffer."""

    weight: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None

    def dequantized_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight in ``dtype`` (float32 product, one rounding to ``dtype``)."""
        scale = self.weight_scale.reshape(-1, *([1] * (self.weight.ndim - 1)))
        return (self.weight.to(torch.float32) * scale).to(dtype)

    def _bias(self, x: torch.Tensor) -> torch.Tensor | None:
        return None if self.bias is None else self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight=float8_e4m3fn"


class Fp8Linear(_Fp8Weight):
    """Mixin of quantised ``nn.Linear`` layers (of any ``nn.Linear`` subclass): dequantise, then ``F.linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight(x.dtype), self._bias(x))


class Fp8Conv1d(_Fp8Weight):
    """Mixin of quantised 1x1 ``nn.Conv1d`` layers: dequantise, then the layer's own ``_conv_forward`` (so a
    subclass that changes the layout, e.g. channels-last pointwise convs, keeps its behaviour)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.dequantized_weight(x.dtype), self._bias(x))  # type: ignore[operator]


_FP8_CLASSES: dict[type, type] = {}


def _fp8_class(cls: type) -> type:
    """``Fp8<cls>``: the fp8 mixin in front of the layer's own class (one class per layer class, cached)."""
    if cls not in _FP8_CLASSES:
        mixin = Fp8Conv1d if issubclass(cls, nn.Conv1d) else Fp8Linear
        _FP8_CLASSES[cls] = type(f"Fp8{cls.__name__}", (mixin, cls), {"__module__": __name__})
    return _FP8_CLASSES[cls]


def _quantize_module_(module: nn.Module, compute_device: torch.device | None) -> None:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    q, scale = quantize_weight(weight, compute_device)
    del module.weight  # the Parameter goes; the same name comes back as an fp8 buffer
    module.register_buffer("weight", q)
    module.register_buffer("weight_scale", scale)
    module.__class__ = _fp8_class(type(module))


def is_fp8_quantized(model: nn.Module) -> bool:
    """Whether ``model`` already holds :func:`quantize_fp8_` layers."""
    return any(isinstance(m, _Fp8Weight) for m in model.modules())


def _eligible(name: str, module: nn.Module, min_numel: int) -> bool:
    if not name.startswith(QUANT_PREFIX):
        return False
    if isinstance(module, nn.Conv1d):
        if module.kernel_size != (1,) or module.groups != 1 or module.padding_mode != "zeros":
            return False
    elif not isinstance(module, nn.Linear):
        return False
    weight = module.weight
    return weight.is_floating_point() and weight.numel() >= min_numel and weight.device.type != "meta"


def _tensor_bytes(model: nn.Module) -> int:
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _check_can_quantize(model: nn.Module, lora_merge: Any) -> None:
    _fp8_dtype()
    if is_fp8_quantized(model):
        raise QuantError("the transformer is already fp8-quantised; quantising twice would compound the rounding: "
                         "load the model again to change its weights")
    if lora_merge is not None and getattr(lora_merge, "originals", None):
        raise QuantError(f"the transformer has a merged LoRA that will be restored later ({len(lora_merge.originals)} "
                         "weights kept): restoring bf16 originals into fp8 weights would corrupt them. Call "
                         "restore() before quantising, or merge with merge_loras(..., keep_originals=False)")


@torch.no_grad()
def quantize_fp8_(model: nn.Module, *, compute_device: torch.device | str | None = None,
                  min_numel: int = MIN_FP8_NUMEL, lora_merge: Any = None) -> QuantReport:
    """Store the DiT-block Linear / 1x1 Conv1d weights of ``model`` (an ``AceStepTransformer``) in fp8, in place.

    Args:
        model: the transformer; its layers are replaced where they are (same device, same state-dict names).
        compute_device: where the per-layer quantisation math runs (e.g. ``cuda`` for a CPU-resident model;
            default: the weight's device). Only one layer is there at a time.
        min_numel: layers with fewer weights are left alone (see the module docstring).
        lora_merge: a :class:`~acestep_core.lora.merge.LoraMerge` still holding originals is refused (see above).

    Raises:
        QuantError: no float8 support in torch, already quantised, or a pending LoRA restore.
    """
    _check_can_quantize(model, lora_merge)
    device = torch.device(compute_device) if compute_device is not None else None
    report = QuantReport(bytes_before=_tensor_bytes(model))
    targets = [(name, mod) for name, mod in model.named_modules() if _eligible(name, mod, min_numel)]
    for name, module in targets:
        report.quantized_params += module.weight.numel()
        _quantize_module_(module, device)
        report.layers.append(name)
    report.bytes_after = _tensor_bytes(model)
    logger.info("%s", report.summary())
    return report

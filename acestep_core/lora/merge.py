"""LoRA for the ACE-Step v1 transformer: load, match to our modules, scale, merge and remove without drift.

Files: the official ACE-Step / diffusers PEFT layout and ComfyUI's layouts (:mod:`acestep_core.lora.formats`).
LoRA module names are our module names, which are upstream's (``transformer_blocks.0.attn.to_q``,
``lyric_encoder.encoders.4.self_attn.linear_q``, ``speaker_embedder``, ...).

Scale rule (``scale`` multiplies ``up @ down``; ``W_eff = W + scale * (B @ A)``):

* ``rule="trained"`` (default; the node and ``--lora``): **strength 1.0 = the LoRA as trained**:
  ``scale = strength * alpha / r``, or ``strength * alpha / sqrt(r)`` with rsLoRA, where alpha comes from a
  per-module ``.alpha`` tensor (ComfyUI layout; alpha / r as ComfyUI does) or ``adapter_config.json``
  (``lora_alpha``, ``use_rslora``); when neither is present the scale is ``strength`` (alpha = r).
* ``rule="original_app"`` (``--params`` files): the original ACE-Step app (diffusers 0.33.1) ignores
  ``adapter_config.json`` and takes alpha = r, so ``scale = lora_weight`` whatever alpha, r and rsLoRA are
  (spec 6.7 and 8 item 10; measured in ``parity/lora``). A ``lora_weight`` w from an original JSON therefore
  reproduces the original run exactly. For a LoRA with a config, that equals ``rule="trained"`` at strength
  ``w * r / alpha`` (``w * sqrt(r) / alpha`` with rsLoRA): the official RapMachine LoRA (r 256, alpha 32, rsLoRA,
  trained at 2.0) runs in the original app at half its trained strength with the default weight 1.0.

Merging: ``W <- cast(float32(W) + sum_i scale_i * (B_i @ A_i))``, one pass for all LoRAs (stacking = sum of
deltas; a single LoRA's delta is PEFT's ``(B @ A) * scaling`` bit for bit). :class:`LoraMerge` keeps the
original tensors of the touched weights and :meth:`LoraMerge.restore` copies them back: bit-exact. Memory: one
copy of each touched weight in its own dtype, on ``backup_device`` (RapMachine-type targets on the 3.5B model:
1.28 G parameters = 2.56 GB in bf16, the same backup ComfyUI's ModelPatcher keeps); ``keep_originals=False``
keeps none. The reference runs the LoRA unmerged (``base(x) + B(A(x)) * scale``); merging changes its final
latents by <= 1.1e-4 (parity README 6.2), inside the pipeline tolerances. ERG scales the ``to_q``/``linear_q``
output, i.e. base + LoRA together, exactly as upstream's hooks on the PEFT wrapper.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..loading.checkpoint import format_key_list, mismatch_lines
from .formats import KOHYA_PREFIX, LoraError, LoraFile, LoraModule, looks_like, read_lora

logger = logging.getLogger(__name__)

__all__ = [
    "STRENGTH_RANGE", "LoraError", "LoraFile", "LoraMerge", "LoraPatch", "LoraSpec", "ScaleRule", "check_strength",
    "lora_patches", "match_lora", "merge_loras", "parse_lora_arg", "read_lora", "scale_note", "unit_scale",
]

ScaleRule = Literal["trained", "original_app"]
SCALE_RULES: tuple[str, ...] = ("trained", "original_app")


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA to apply: the file, its strength and the scale rule (see the module docstring)."""

    lora: LoraFile
    strength: float = 1.0
    rule: ScaleRule = "trained"


@dataclass(frozen=True)
class LoraPatch:
    """``delta = scale * (up @ down)`` for the model tensor ``key`` (``<module>.weight``)."""

    key: str
    up: torch.Tensor  # B [out, r]
    down: torch.Tensor  # A [r, in]
    scale: float


def unit_scale(lora: LoraFile, module: LoraModule, rule: ScaleRule = "trained") -> float:
    """The scale at strength 1.0: alpha / r (alpha / sqrt(r) with rsLoRA) as trained, or 1.0 for ``original_app``."""
    if rule not in SCALE_RULES:
        raise ValueError(f"rule must be one of {SCALE_RULES}, got {rule!r}")
    if rule == "original_app":
        return 1.0
    if module.alpha is not None:  # ComfyUI's .alpha tensors: alpha / rank
        return module.alpha / module.rank
    if lora.config_alpha is None:
        return 1.0
    rank = module.rank
    return lora.config_alpha / (math.sqrt(rank) if lora.use_rslora else rank)


STRENGTH_RANGE = (-3.0, 3.0)  # the original app's UI range; the node's widget range and the CLI's check


def check_strength(strength: float, what: str) -> float:
    """``strength`` as a float, or :class:`LoraError` when it is not finite or outside :data:`STRENGTH_RANGE`."""
    low, high = STRENGTH_RANGE
    if not isinstance(strength, (int, float)) or not math.isfinite(strength) or not low <= strength <= high:
        raise LoraError(f"{what}: strength {strength!r} is outside {low:g} .. {high:g} (1.0 = the LoRA as "
                        "trained, 0 = off, negative = inverted); use a value in that range")
    return float(strength)


def scale_note(spec: LoraSpec) -> tuple[str, bool]:
    """One line saying at which scale ``spec`` is applied and why, and whether alpha had to be assumed (a LoRA
    without ``adapter_config.json`` and without ``.alpha`` tensors, e.g. a bare downloaded weights file)."""
    lora, strength = spec.lora, spec.strength
    scales = sorted({unit_scale(lora, mod, spec.rule) for mod in lora.modules.values()})
    unit = f"{scales[0]:g}" if len(scales) == 1 else f"{scales[0]:g} .. {scales[-1]:g}"
    name = lora.source.parent.name if lora.source.name == "pytorch_lora_weights.safetensors" else lora.source.name
    if spec.rule == "original_app":
        return (f"LoRA {name}: scale {strength:g} (lora_weight {strength:g}, the original app's rule: alpha is "
                "ignored)", False)
    if any(mod.alpha is not None for mod in lora.modules.values()):
        why = "alpha / r from the file's .alpha tensors"
    elif lora.config_alpha is not None:
        rank = "sqrt(r)" if lora.use_rslora else "r"
        why = f"alpha {lora.config_alpha:g} / {rank} from adapter_config.json"
    else:
        return (f"LoRA {name}: scale {strength:g} = strength x 1: no adapter_config.json beside the weights and no "
                "alpha in the file, so alpha = r is assumed. If the LoRA came with an adapter_config.json (the "
                "official ACE-Step LoRAs do; RapMachine's gives scale 2 per unit of strength), put it next to the "
                "weights file, or raise the strength to compensate", True)
    return f"LoRA {name}: scale {strength:g} x {unit} = strength x {why}", False


def _model_linears(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Module name -> weight shape of every module with a 2-D ``weight`` (LoRA targets)."""
    return {name: tuple(mod.weight.shape) for name, mod in model.named_modules()
            if isinstance(getattr(mod, "weight", None), torch.Tensor) and mod.weight.ndim == 2}


def _unused_modules(model: nn.Module) -> set[str]:
    """Upstream modules inference never runs (declared by ``unused_checkpoint_shapes``): LoRA on them is a no-op."""
    unused = getattr(model, "unused_checkpoint_shapes", None)
    return {k[: -len(".weight")] for k in (unused() if unused else {}) if k.endswith(".weight")}


def _expected_targets(lora: LoraFile, linears: Mapping[str, tuple[int, ...]]) -> set[str]:
    """Modules ``adapter_config.json``'s ``target_modules`` selects (PEFT suffix match on a ``.`` boundary)."""
    targets = lora.target_modules
    return {name for name in linears
            if any(name == t or name.endswith("." + t) for t in targets)} if targets else set()


def match_lora(lora: LoraFile, model: nn.Module) -> dict[str, str]:
    """File module name -> our module name, checked strictly.

    Raises :class:`LoraError` naming the model the LoRA looks made for when no module matches, and listing
    (up to 10 each) extra keys (modules the model does not have, stray tensors), missing keys (half pairs,
    modules ``target_modules`` selects but the file lacks) and shape mismatches otherwise.
    Modules upstream has but inference never runs (``cross_attn.add_*``, ``projectors``) are skipped (logged).
    """
    linears = _model_linears(model)
    kohya = {KOHYA_PREFIX + name.replace(".", "_"): name for name in linears}
    unused = _unused_modules(model)
    mapping: dict[str, str] = {}
    extra, skipped, wrong = list(lora.stray_keys), list[str](), list[str]()
    for name, mod in lora.modules.items():
        ours = name if name in linears else kohya.get(name)
        if ours is None:
            (skipped if name in unused else extra).append(name)
            continue
        want = linears[ours]
        if (mod.up.shape[0], mod.down.shape[1]) != want or mod.up.shape[1] != mod.down.shape[0]:
            wrong.append(f"{name} (LoRA {list(mod.up.shape)} @ {list(mod.down.shape)}, weight {list(want)})")
            continue
        mapping[name] = ours
    if not mapping and not skipped:
        raise LoraError(
            f"{lora.source}: this is not an ACE-Step v1 LoRA: it looks like {looks_like(list(lora.modules))}; "
            f"none of its {len(lora.modules)} modules exists in the ACE-Step v1 transformer (file modules: "
            f"{format_key_list(list(lora.modules))}). Pick a LoRA trained for ACE-Step v1 (3.5B).")
    missing = list(lora.missing_keys)
    half_pairs = {m.split(" (")[0] for m in missing}
    absent = _expected_targets(lora, linears) - set(mapping.values()) - half_pairs
    missing += sorted(name for name in absent if not any(name.endswith(w.split(" (")[0]) for w in wrong))
    if extra or missing or wrong:
        parts = [f"{lora.source}: the LoRA does not fit the ACE-Step v1 transformer.",
                 *mismatch_lines(missing, extra, wrong, unexpected_label="Extra",
                                 unexpected_note=" (no such module in the model)", wrong_unit="module(s)")]
        parts.append("The file is incomplete, edited, or made for another model size/version.")
        raise LoraError(" ".join(parts))
    if skipped:
        logger.info("%s: %d LoRA module(s) target layers inference never runs, ignored: %s", lora.source,
                    len(skipped), format_key_list(skipped))
    return mapping


def lora_patches(model: nn.Module, spec: LoraSpec) -> list[LoraPatch]:
    """The checked patches of one LoRA for ``model`` (key = the model's state-dict key ``<module>.weight``)."""
    mapping = match_lora(spec.lora, model)
    return [LoraPatch(f"{ours}.weight", mod.up, mod.down, spec.strength * unit_scale(spec.lora, mod, spec.rule))
            for name, mod in spec.lora.modules.items() if (ours := mapping.get(name)) is not None]


@dataclass
class LoraMerge:
    """Record of a merge: the original tensors of the touched weights, to restore them bit-exactly."""

    model: nn.Module
    originals: dict[str, torch.Tensor] = field(default_factory=dict)  # state-dict key -> original weight

    @torch.no_grad()
    def restore(self) -> None:
        """Put the original weights back (bit-exact); the record is empty afterwards."""
        params = dict(self.model.named_parameters())
        for key, original in self.originals.items():
            params[key].copy_(original)
        self.originals.clear()

    @property
    def backup_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.originals.values())


def _delta(patches: Sequence[LoraPatch], device: torch.device) -> torch.Tensor:
    """Sum of ``scale * (up @ down)`` in float32 (single LoRA: PEFT's ``(B @ A) * scaling``, bit for bit)."""
    total: torch.Tensor | None = None
    for p in patches:
        delta = (p.up.to(device, torch.float32) @ p.down.to(device, torch.float32)) * p.scale
        total = delta if total is None else total + delta
    assert total is not None
    return total


@torch.no_grad()
def merge_loras(model: nn.Module, specs: Sequence[LoraSpec], *, backup_device: torch.device | str | None = None,
                keep_originals: bool = True) -> LoraMerge:
    """Merge several LoRAs into ``model``'s weights at once; returns the :class:`LoraMerge` that undoes it.

    Every LoRA is checked (:func:`match_lora`) before any weight changes. Weights whose total scale is 0 are
    left untouched (strength 0 is bit-identical to no LoRA). ``backup_device``: where the originals are kept
    (default: beside the weights); ``keep_originals=False`` keeps none (one-shot use such as the CLI: no
    extra memory, but the merge cannot be undone).

    Raises :class:`LoraError` for an fp8-quantised model (:func:`acestep_core.runtime.quant.quantize_fp8_`): merge the
    LoRAs first, then quantise.
    """
    from ..runtime.quant import is_fp8_quantized

    if is_fp8_quantized(model):
        raise LoraError("cannot merge a LoRA into an fp8-quantised transformer: its DiT weights are stored in "
                        "float8, which cannot take a merged low-rank delta without losing it to rounding (and a "
                        "merge could not be undone). Apply the LoRAs before quantising (the CLI merges --lora "
                        "before --fp8), or load the model without fp8")
    by_key: dict[str, list[LoraPatch]] = {}
    for spec in specs:
        for patch in lora_patches(model, spec):
            if patch.scale != 0.0:
                by_key.setdefault(patch.key, []).append(patch)
    params = dict(model.named_parameters())
    record = LoraMerge(model)
    for key, patches in by_key.items():
        weight = params[key]
        if keep_originals:
            record.originals[key] = weight.detach().to(backup_device or weight.device, copy=True)
        merged = weight.to(torch.float32) + _delta(patches, weight.device)
        weight.copy_(merged.to(weight.dtype))
    return record


def parse_lora_arg(text: str) -> tuple[Path, float]:
    """``PATH[:STRENGTH]`` -> (path, strength); a trailing ``:number`` is the strength (default 1.0).

    ``C:\\x.safetensors`` style paths keep their drive colon (only a final ``:<float>`` counts). A final
    ``:<not a number>`` after an existing path raises :class:`LoraError` naming the strength.
    """
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return Path(head).expanduser(), float(tail)
        except ValueError:
            if Path(head).expanduser().exists() and not Path(text).expanduser().exists():
                raise LoraError(f"{text}: the strength {tail!r} after the last ':' is not a number; write "
                                "PATH:0.5, or leave out ':STRENGTH' for 1.0") from None
    return Path(text).expanduser(), 1.0

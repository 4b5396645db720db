"""The injectable ``ops`` namespace and helpers for bare parameters.

Every core module takes ``ops`` (default :mod:`torch.nn`) and builds its layers as
``ops.Linear(..., dtype=dtype, device=device)`` using only plain ``torch.nn``
signatures, so ComfyUI's ``comfy.ops.manual_cast`` (which casts weights to the
activation dtype at call time) can be swapped in by ``nodes/`` without the core
knowing about ComfyUI.

Bare ``nn.Parameter`` tensors (``scale_shift_table``, ``pos_bias_u``, ``gamma``,
weight-norm ``weight_g``/``weight_v``...) are not covered by ``ops``; modules read
them through :func:`cast_like` so they follow the activation dtype and device the
same way.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

Ops = Any  # a namespace exposing torch.nn-compatible layer classes (Linear, Conv1d, ...)

DEFAULT_OPS: types.ModuleType = nn


def cast_like(param: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Return ``param`` on the device and in the dtype of ``reference`` (no copy if equal)."""
    return param.to(device=reference.device, dtype=reference.dtype)

"""Random tiny teachers written in the Hugging Face layout (no golden data needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from acestep_core.teachers import HubertConfig, HubertEncoder
from acestep_core.teachers.weights import POS_CONV_PREFIX, save_teacher_folder

TeacherFactory = Callable[..., Path]


def random_state_dict(cfg: HubertConfig, seed: int = 0, *, spelling: str = "legacy") -> dict[str, torch.Tensor]:
    """A random checkpoint of ``cfg`` with the positional conv as a weight-norm pair (``legacy``: weight_g /
    weight_v; ``parametrizations``: original0 / original1) or a plain ``weight`` (``plain``)."""
    gen = torch.Generator().manual_seed(seed)
    model = HubertEncoder(cfg)
    sd = {k: torch.randn(v.shape, generator=gen) * 0.2 for k, v in model.state_dict().items()}
    weight = sd.pop(POS_CONV_PREFIX + "weight")
    if spelling == "plain":
        sd[POS_CONV_PREFIX + "weight"] = weight
        return sd
    g = torch.rand((1, 1, weight.shape[2]), generator=gen) + 0.5
    names = {"legacy": ("weight_g", "weight_v"),
             "parametrizations": ("parametrizations.weight.original0", "parametrizations.weight.original1")}
    g_name, v_name = names[spelling]
    sd[POS_CONV_PREFIX + g_name], sd[POS_CONV_PREFIX + v_name] = g, weight
    return sd


@pytest.fixture
def make_teacher(tmp_path: Path) -> TeacherFactory:
    """``make_teacher(folder_name, cfg=None, seed=0, spelling="legacy")`` -> a teacher folder under tmp_path."""

    def make(folder_name: str, cfg: HubertConfig | None = None, seed: int = 0, spelling: str = "legacy") -> Path:
        cfg = cfg or HubertConfig.tiny()
        folder = tmp_path / folder_name
        save_teacher_folder(folder, cfg, random_state_dict(cfg, seed, spelling=spelling))
        return folder

    return make


@pytest.fixture
def teacher_pair(make_teacher: TeacherFactory, tmp_path: Path) -> Path:
    """A search folder with tiny ``MERT-v1-330M/`` (pre-LN) and ``mHuBERT-147/`` (post-LN) teachers, hidden 32."""
    make_teacher("models/MERT-v1-330M", HubertConfig.tiny(stable_layer_norm=True), seed=1)
    make_teacher("models/mHuBERT-147", HubertConfig.tiny(stable_layer_norm=False, num_attention_heads=4), seed=2)
    return tmp_path / "models"

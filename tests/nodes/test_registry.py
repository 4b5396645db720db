"""The node registry contract: stable prefixed ids, display names, category, a tooltip on every input, and an
import that needs neither ComfyUI nor a model nor the network."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from tests.parity import REPO_ROOT

EXPECTED_IDS = {
    "AceStepV1CheckpointLoader", "AceStepV1TextEncode", "AceStepV1GuidanceOptions", "AceStepV1EmptyLatent",
    "AceStepV1AudioToLatent", "AceStepV1RepaintWindow", "AceStepV1ExtendLatent", "AceStepV1Sampler",
    "AceStepV1FlowEdit", "AceStepV1LatentToAudio", "AceStepV1SaveAudio", "AceStepV1LoraLoader",
    "AceStepV1TrainingDataset", "AceStepV1TrainOptions", "AceStepV1TrainLoRA",
}
TRAINING_IDS = {"AceStepV1TrainingDataset", "AceStepV1TrainOptions", "AceStepV1TrainLoRA"}
CORE_IDS = {"TextEncodeAceStepAudio", "EmptyAceStepLatentAudio", "SaveAudio", "PreviewAudio", "LoadAudio"}


def test_ids_names_and_category(models_dir) -> None:
    assert set(NODE_CLASS_MAPPINGS) == EXPECTED_IDS and not set(NODE_CLASS_MAPPINGS) & CORE_IDS
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        assert NODE_DISPLAY_NAME_MAPPINGS[node_id].startswith("ACE-Step v1 ")
        category = "audio/ACE-Step/training" if node_id in TRAINING_IDS else "audio/ACE-Step"
        assert category == cls.CATEGORY and callable(getattr(cls, cls.FUNCTION))
        assert isinstance(cls.RETURN_TYPES, tuple)


@pytest.mark.parametrize("node_id", sorted(EXPECTED_IDS))
def test_every_input_has_a_tooltip(models_dir, node_id: str) -> None:
    spec = NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            assert len(entry) == 2 and entry[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_import_needs_no_comfyui_and_loads_no_model() -> None:
    code = ("import sys\n"
            "for name in ('comfy', 'folder_paths', 'server'): sys.modules[name] = None\n"
            "import nodes\n"
            "heavy = ('acestep_core.sampling.pipeline', 'acestep_core.loading.loader', 'huggingface_hub')\n"
            "heavy = [m for m in heavy if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "from nodes import comfy_adapter\n"
            "assert not comfy_adapter.comfy_available()\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=120)

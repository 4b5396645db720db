"""Fixtures of the node tests: the standalone adapter, a models folder holding the tiny checkpoint (as
``ace_step/tiny``), outputs in ``tmp_path``, and the model loaded once per session through the loader node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.parity import PARITY_DIR, TINY_CHECKPOINT, require_parity

VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"
SRC_WAV = PARITY_DIR / "pipeline" / "src_audio_44k_2s.wav"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Standalone mode with ``$ACESTEP_MODELS_DIR/ace_step/tiny`` -> the tiny checkpoint."""
    require_parity()
    root = tmp_path_factory.mktemp("models")
    (root / "ace_step").mkdir()
    (root / "ace_step" / "tiny").symlink_to(TINY_CHECKPOINT, target_is_directory=True)
    (root / "checkpoints").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACESTEP_NODES_STANDALONE", "1")
        mp.setenv("ACESTEP_MODELS_DIR", str(root))
        yield root


@pytest.fixture(autouse=True)
def output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test saves into its own ``tmp_path/output``."""
    out = tmp_path / "output"
    monkeypatch.setenv("ACESTEP_OUTPUT_DIR", str(out))
    return out


@pytest.fixture(scope="session")
def model(models_dir: Path) -> Any:
    from nodes.loaders import AceStepV1CheckpointLoader

    (loaded,) = AceStepV1CheckpointLoader().load("ace_step/tiny", "fp32", str(VOCAB))
    return loaded


@pytest.fixture(scope="session")
def conditioning(model: Any) -> Any:
    from nodes.conditioning import AceStepV1TextEncode

    out = AceStepV1TextEncode().encode(model, "pop, electronic", "[verse]\nCity lights are shining bright\n\n"
                                       "[chorus]\nLa la la")
    return out["result"][0]


@pytest.fixture(scope="session")
def source_latent(model: Any) -> dict[str, Any]:
    """The 2 s parity source song encoded with the Audio To Latent node."""
    import soundfile as sf
    import torch

    from nodes.audio import AceStepV1AudioToLatent

    data, rate = sf.read(str(SRC_WAV), dtype="float32", always_2d=True)
    audio = {"waveform": torch.from_numpy(data.T.copy())[None], "sample_rate": rate}
    return AceStepV1AudioToLatent().encode(model, audio)[0]

"""Fixtures of the opt-in real-ComfyUI suite (``-m comfy``): one server per module, with the tiny checkpoint.

Needs ``COMFYUI_ROOT`` (a ComfyUI source checkout, e.g. 0.3.64) and ``COMFYUI_PYTHON`` (the interpreter of a
venv with ComfyUI's requirements, ``requests``, ``av`` and this pack's requirements); every test skips with the
reason otherwise. Set-up: export ComfyUI's source (``git archive``) to a scratch folder, create a Python 3.11 venv,
``pip install torch torchaudio torchvision`` (matching builds), ``-r requirements.txt`` of ComfyUI, ``requests av``
and ``-r requirements.txt -r requirements-ja.txt`` of this pack. Example::

    COMFYUI_ROOT=/work/comfyui COMFYUI_PYTHON=/work/comfyui-venv/bin/python pytest -m comfy tests/comfy

The browser suite (``-m browser``, ``test_browser.py``) uses the same server fixture and also needs Debian's
``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.comfy.comfy_server import ComfyServer, prepare_base_dir
from tests.parity import PARITY_DIR, TINY_CHECKPOINT

ROOT_ENV = "COMFYUI_ROOT"
PYTHON_ENV = "COMFYUI_PYTHON"
SOURCE_AUDIO_NAME = "acestep_source.flac"  # the LoadAudio file name the example workflows use
SOURCE_SECONDS = 3.0
SOURCE_RATE = 44100
TINY_LORA = PARITY_DIR / "lora" / "lora_r4_a8"  # made for the tiny checkpoint; served under LORA_FOLDER_NAME
TRAINING_FOLDER = "acestep_dataset"  # the Training Dataset folder the training workflow names (in input/)


def comfy_paths() -> tuple[Path, Path]:
    """``(COMFYUI_ROOT, COMFYUI_PYTHON)``, or skip the test with the reason."""
    root, python = os.environ.get(ROOT_ENV, ""), os.environ.get(PYTHON_ENV, "")
    if not root or not python:
        pytest.skip(f"real-ComfyUI tests need {ROOT_ENV} (ComfyUI source checkout) and {PYTHON_ENV} (its venv's "
                    "python) set")
    root_path, python_path = Path(root), Path(python)
    if not (root_path / "main.py").is_file():
        pytest.skip(f"{ROOT_ENV}={root} has no main.py; point it at a ComfyUI source checkout")
    if not python_path.is_file():
        pytest.skip(f"{PYTHON_ENV}={python} does not exist")
    if not (TINY_CHECKPOINT.is_dir() and (PARITY_DIR / "tokenizer" / "vocab.json").is_file()
            and (TINY_LORA / "pytorch_lora_weights.safetensors").is_file()):
        pytest.skip(f"the tiny parity checkpoint, lyric vocab or tiny LoRA are missing under {PARITY_DIR}")
    return root_path, python_path


def write_source_audio(path: Path, seconds: float = SOURCE_SECONDS, sample_rate: int = SOURCE_RATE) -> Path:
    """A short stereo FLAC (two sines plus a little noise) as the source song of the audio workflows."""
    import soundfile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 220.0 * t) + 0.02 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 330.0 * t) + 0.02 * rng.standard_normal(t.size)
    soundfile.write(str(path), np.stack([left, right], axis=1).astype(np.float32), sample_rate, format="FLAC")
    return path


def write_training_songs(folder: Path) -> Path:
    """Two short songs for the training workflow: tones with tags, one with lyrics, one instrumental."""
    from tests.training.data_helpers import tone, write_song

    write_song(folder, "song_a", tags="pop, female vocals", lyrics="[verse]\nhello world", data=tone(3.1))
    write_song(folder, "song_b", tags="piano", lyrics="", data=tone(3.1, freq_hz=600))
    return folder


@pytest.fixture(scope="module")
def comfy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    """A running ComfyUI (CPU, loopback) with the pack, the tiny checkpoint and LoRA, the source audio and the
    training songs; always stopped."""
    root, python = comfy_paths()
    base = prepare_base_dir(tmp_path_factory.mktemp("comfyui_run"), TINY_CHECKPOINT,
                            PARITY_DIR / "tokenizer" / "vocab.json", TINY_LORA)
    write_source_audio(base / "input" / SOURCE_AUDIO_NAME)
    write_training_songs(base / "input" / TRAINING_FOLDER)
    server = ComfyServer(root, python, base)
    with server:
        yield server

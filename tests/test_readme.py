"""The README runs as printed on a fresh machine: its Python example (only the checkpoint path and the song
length are changed, to the tiny checkpoint and 2 s), with the lyric vocabulary found the documented way and no
network; its ``scripts/generate.sh`` command; the console script it names; its node table."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"


def _checkpoint_with_vocab(folder: Path) -> Path:
    """The tiny checkpoint laid out as a user's download, with ``vocab.json`` next to it (the documented place)."""
    folder.mkdir()
    for component in TINY_CHECKPOINT.iterdir():
        (folder / component.name).symlink_to(component.resolve(), target_is_directory=component.is_dir())
    shutil.copy(VOCAB, folder / "vocab.json")
    return folder


def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)


def test_readme_python_example_runs_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_parity()
    _no_network(monkeypatch)
    monkeypatch.setenv("ACESTEP_CACHE_DIR", str(tmp_path / "empty_cache"))  # a fresh machine: nothing cached
    checkpoint = _checkpoint_with_vocab(tmp_path / "ACE-Step-v1-3.5B")
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    replacements = {  # the tiny checkpoint, and a short song so the test stays fast
        '"/models/ACE-Step-v1-3.5B"': repr(str(checkpoint)),
        "audio_duration=30.0)": "audio_duration=2.0, infer_step=2)",
    }
    for old, new in replacements.items():
        assert old in code, f"README example changed: {old!r} not found; update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    audio = namespace["audio_48k"]
    assert isinstance(audio, torch.Tensor) and audio.shape[:2] == (1, 2) and torch.isfinite(audio).all()
    assert namespace["saved"] == Path("song.wav") and (tmp_path / "song.wav").is_file()


def _bash_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("scripts/generate.sh")]


@pytest.mark.slow
def test_readme_generate_command_runs_as_printed(tmp_path: Path) -> None:
    """The first command, from another folder, with a ``.venv`` already set up (the set-up itself downloads
    PyTorch): only the checkpoint path is the tiny one; the vocabulary is found next to it."""
    require_parity()
    (command,) = _bash_commands()[:1]
    root = tmp_path / "pack"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "generate.sh", root / "scripts" / "generate.sh")
    (root / "acestep_core").symlink_to(REPO_ROOT / "acestep_core", target_is_directory=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    python = root / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this test's venv stands in for .venv
    python.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "lyrics.txt").write_text("[verse]\nhello world\n\n[chorus]\nla la la\n", encoding="utf-8")
    checkpoint = _checkpoint_with_vocab(tmp_path / "ckpt")
    assert "/path/to/ACE-Step-v1-3.5B" in command
    command = command.replace("scripts/generate.sh", str(root / "scripts" / "generate.sh"), 1)
    command = command.replace("/path/to/ACE-Step-v1-3.5B", str(checkpoint))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ACESTEP_CACHE_DIR"] = str(tmp_path / "cache")
    result = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["song.wav"] and (work / "song.wav").is_file()
    assert (work / "song_input_params.json").is_file()


def test_console_script_and_editable_install() -> None:
    """``acestep-core`` (pyproject) points at a real function, and the set-up installs the package so that the
    command and ``python -m acestep_core`` work from any folder."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    target = re.search(r'^acestep-core = "([^"]+)"', pyproject, re.M).group(1)
    module, _, function = target.partition(":")
    import importlib

    assert callable(getattr(importlib.import_module(module), function))
    assert "pip install --quiet --no-deps -e ." in (REPO_ROOT / "scripts" / "setup_env.sh").read_text()
    assert "about 5 GB" in (REPO_ROOT / "scripts" / "generate.sh").read_text()
    assert "about 5 GB of downloads" in " ".join(README.split())


def test_node_table_lists_every_node() -> None:
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    for node_id, title in NODE_DISPLAY_NAME_MAPPINGS.items():
        assert f"| {title} (`{node_id}`) |" in README, node_id
    assert len(NODE_CLASS_MAPPINGS) == len(NODE_DISPLAY_NAME_MAPPINGS)


def _train_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    return [line for block in blocks for line in block.splitlines()
            if " -m acestep_core train " in line]


def test_readme_training_commands_run_as_printed(tmp_path: Path) -> None:
    """The training commands of the README (one process, then torchrun with 2 CPU processes instead of 4): only
    the checkpoint, the data folder and the step count are swapped for tiny ones."""
    require_parity()
    from tests.training.data_helpers import tone, write_song

    commands = _train_commands()
    assert len(commands) == 2 and commands[0].startswith(".venv/bin/python -m acestep_core train")
    checkpoint = _checkpoint_with_vocab(tmp_path / "ckpt")
    songs = tmp_path / "work" / "my_songs"
    write_song(songs, "a", tags="rock, guitar", lyrics="[verse]\nhold on", data=tone(3.1, freq_hz=300))
    write_song(songs, "b", tags="rock, guitar", lyrics="[verse]\nlet go", data=tone(3.1, freq_hz=600))
    (tmp_path / "work" / ".venv" / "bin").mkdir(parents=True)
    python = tmp_path / "work" / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this test's venv stands in for .venv
    python.chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ACESTEP_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    tiny = " --device cpu --repa off --max-steps 2 --save-every 0 --quiet"
    for command, output in zip(commands, ("my_lora", "my_lora_ddp"), strict=True):
        assert "/path/to/ACE-Step-v1-3.5B" in command and "my_songs/" in command and "--output my_lora/" in command
        command = command.replace("/path/to/ACE-Step-v1-3.5B", str(checkpoint)).replace(
            "--max-steps 2000", "").replace("--output my_lora/", f"--output {output}/")
        command = command.replace("torchrun --nproc-per-node 4", f"{sys.executable} -m torch.distributed.run "
                                  "--standalone --nproc-per-node 2") + tiny
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path / "work", capture_output=True, text=True,
                                timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (tmp_path / "work" / output / "pytorch_lora_weights.safetensors").is_file()

"""Every record we write re-runs to the same output: each task's ``_input_params.json`` sidecar goes back through
``--params`` (from another working folder, to another output) and gives bit-identical latents; the ComfyUI Save
Audio node's sidecar re-runs through the command line the same way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.core.test_cli import (  # noqa: F401 - _reuse_loaded_checkpoint: load the tiny model once here too
    LYRICS,
    SRC_WAV,
    VOCAB,
    _reuse_loaded_checkpoint,
    run,
)
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, require_parity

COMMON = ["--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab", str(VOCAB), "--device", "cpu", "--quiet"]
SRC = ["--src-audio", "song.wav"]  # relative to the first run's working folder

TASKS = {
    "text2music_batch": ["--tags", "pop", "--lyrics", LYRICS, "--duration", "2", "--batch-size", "2", "--seeds",
                         "1,2"],
    "instrumental": ["--tags", "ambient", "--duration", "2", "--seed", "3"],  # no --lyrics: recorded as ""
    "retake": ["--tags", "pop", "--lyrics", LYRICS, "--duration", "2", "--task", "retake", "--retake-variance",
               "0.4", "--seed", "5", "--retake-seeds", "6"],
    "repaint": ["--tags", "pop", "--lyrics", LYRICS, *SRC, "--task", "repaint", "--repaint-start", "0.5",
                "--repaint-end", "1.5", "--retake-variance", "0.7", "--seed", "7", "--retake-seeds", "8"],
    "extend": ["--tags", "pop", "--lyrics", LYRICS, *SRC, "--extend-left", "0.5", "--extend-right", "1.0",
               "--seed", "9", "--retake-seeds", "10"],
    "edit": ["--tags", "pop", "--lyrics", LYRICS, *SRC, "--task", "edit", "--edit-target-tags", "jazz, piano",
             "--edit-target-lyrics", "[verse]\nNew words", "--edit-n-min", "0.2", "--edit-n-max", "0.8",
             "--retake-seeds", "11"],
    "audio2audio": ["--tags", "pop", "--lyrics", LYRICS, "--ref-audio", "song.wav", "--ref-strength", "0.6",
                    "--seed", "12"],
    "lora": ["--tags", "pop", "--lyrics", LYRICS, "--duration", "2", "--seed", "13", "--lora",
             f"{PARITY_DIR / 'lora' / 'lora_r16_a8_rslora'}:0.7"],
}


@pytest.mark.parametrize("task", list(TASKS))
def test_sidecar_reruns_to_the_same_latents(task: str, tmp_path: Path, capsys, monkeypatch) -> None:
    require_parity()
    first, second = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    second.mkdir()
    shutil.copy(SRC_WAV, first / "song.wav")
    monkeypatch.chdir(first)
    out = tmp_path / "out"
    code, paths, err = run([*COMMON, *TASKS[task], "--infer-step", "3", "--output", str(out / f"{task}.flac"),
                            "--save-latents", str(out / "first.safetensors")], capsys)
    assert code == 0, err
    sidecar = Path(paths[0]).with_name(Path(paths[0]).stem + "_input_params.json")
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["lyrics"] is not None
    monkeypatch.chdir(second)  # the record must not depend on the folder the first run was started in
    code, again, err = run([*COMMON, "--params", str(sidecar), "--output", str(second / "again.flac"),
                            "--save-latents", str(second / "again.safetensors")], capsys)
    assert code == 0, err
    assert torch.equal(load_file(str(out / "first.safetensors"))["latents"],
                       load_file(str(second / "again.safetensors"))["latents"])
    rerun = json.loads(Path(again[0]).with_name(Path(again[0]).stem + "_input_params.json").read_text())
    differs = {k for k in record if record[k] != rerun[k]} - {"timecosts", "audio_path", "src_audio_path",
                                                              "ref_audio_input"}
    assert differs == set(), differs


def test_original_app_edit_record_needs_the_source_texts(tmp_path: Path, capsys) -> None:
    """An edit file in the original app's layout (targets under prompt/lyrics) cannot say what the source song's
    tags were: --params refuses it with the flags to add, and runs with them."""
    require_parity()
    shutil.copy(SRC_WAV, tmp_path / "song.wav")
    record = {"task": "edit", "prompt": "jazz", "lyrics": "[verse]\nNew", "edit_target_prompt": "jazz",
              "edit_target_lyrics": "[verse]\nNew", "src_audio_path": "song.wav", "infer_step": 2,
              "actual_seeds": [1], "retake_seeds": [2]}
    params = tmp_path / "edit_input_params.json"
    params.write_text(json.dumps(record), encoding="utf-8")
    code, out, err = run([*COMMON, "--params", str(params), "--output", str(tmp_path / "e.wav")], capsys)
    assert code == 2 and "holds only the target tags and lyrics" in err and "--tags and --lyrics" in err
    code, out, err = run([*COMMON, "--params", str(params), "--tags", "pop", "--lyrics", LYRICS,
                          "--output", str(tmp_path / "e.wav")], capsys)
    assert code == 0, err

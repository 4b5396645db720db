"""The training workflow (``workflows/api/train_lora.json``) in a real ComfyUI server (opt-in: ``-m comfy``).

Shortened for the tiny checkpoint on the CPU (a few steps, rank 4, no REPA, a checkpoint every 2 steps, a 1 s
preview) on the two short songs the fixture puts into ``input/acestep_dataset/``. One run trains, and the LoRA
Loader of the same prompt loads the new LoRA by Train LoRA's ``lora_path`` (its lora_name is the
"(from the lora_path input)" choice) for a song whose record names it. Another run is cancelled with
``POST /interrupt`` while it trains: the LoRA and the training state are saved, the server goes on, the same name is
refused without ``resume``, and ``resume`` continues the step count.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.comfy_server import ComfyServer
from tests.comfy.test_real_comfyui import RUN_TIMEOUT_S, SHORT, WORKFLOWS, shorten

pytestmark = pytest.mark.comfy

WEIGHTS = "pytorch_lora_weights.safetensors"
LONG_STEPS = 5000  # far more than a test waits for: the cancelled run is stopped after a few steps
TEXT = re.compile(r"(?P<name>.+): (?P<steps>\d+) steps, loss (?P<loss>\d+\.\d{4})")


def node_of(prompt: dict[str, Any], class_type: str) -> str:
    (node_id,) = [k for k, v in prompt.items() if v["class_type"] == class_type]
    return node_id


def training_prompt(name: str, steps: int, *, resume: bool = False) -> dict[str, Any]:
    """The training workflow, shortened (SHORT), training ``steps`` steps into ``models/loras/<name>/``."""
    prompt = shorten(json.loads((WORKFLOWS / "api" / "train_lora.json").read_text(encoding="utf-8")))
    train = prompt[node_of(prompt, "AceStepV1TrainLoRA")]["inputs"]
    assert {k: train[k] for k in SHORT["AceStepV1TrainLoRA"]} == SHORT["AceStepV1TrainLoRA"]
    train.update(name=name, steps=steps, resume=resume)
    return prompt


def logged_steps(folder: Path) -> list[int]:
    log = folder / "loss_log.jsonl"
    return [json.loads(line)["step"] for line in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []


def error_messages(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [body for event, body in entry["status"].get("messages", []) if event == "execution_error"]


def check_trained_text(entry: dict[str, Any], prompt: dict[str, Any], name: str, steps: int, folder: Path) -> None:
    """Train LoRA's UI text names the LoRA, the steps and the last loss of its loss log."""
    (text,) = entry["outputs"][node_of(prompt, "AceStepV1TrainLoRA")]["text"]
    match = TEXT.fullmatch(text)
    assert match and match["name"] == name and int(match["steps"]) == steps, text
    last = json.loads((folder / "loss_log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert math.isfinite(last["loss"]) and float(match["loss"]) == pytest.approx(last["loss"], abs=1e-4), text


def test_training_workflow_trains_a_lora_the_same_run_uses(comfy_server: ComfyServer) -> None:
    import soundfile

    from acestep_core.lora.formats import read_lora

    name = "comfy_lora"
    prompt = training_prompt(name, 4)
    entry = comfy_server.run(prompt, timeout_s=RUN_TIMEOUT_S)
    folder = comfy_server.base_dir / "models" / "loras" / name
    assert (folder / WEIGHTS).is_file() and (folder / "adapter_config.json").is_file()
    assert read_lora(folder).modules
    assert logged_steps(folder) == [1, 2, 3, 4]
    check_trained_text(entry, prompt, name, 4, folder)
    (report,) = entry["outputs"][node_of(prompt, "AceStepV1TrainingDataset")]["text"]
    assert "2 usable" in report and "song_a" in report and "song_b" in report
    info = comfy_server.get_json("/object_info/AceStepV1LoraLoader")
    assert f"{name}/{WEIGHTS}" in info["AceStepV1LoraLoader"]["input"]["required"]["lora_name"][0]  # no restart
    # the song made with it records the LoRA (relative to the models folder, as the original app's record)
    (song,) = entry["outputs"][node_of(prompt, "AceStepV1SaveAudio")]["audio"]
    path = comfy_server.base_dir / "output" / song["subfolder"] / song["filename"]
    assert path.is_file()
    record = json.loads(path.with_name(f"{path.stem}_input_params.json").read_text(encoding="utf-8"))
    assert record["lora_name_or_path"] == f"loras/{name}/{WEIGHTS}"
    # the loss curve and the final preview reach their output nodes
    (curve,) = entry["outputs"][node_of(prompt, "PreviewImage")]["images"]
    assert comfy_server.view(curve["filename"], curve["subfolder"], curve["type"])[:4] == b"\x89PNG"
    training_preview = next(k for k, v in prompt.items() if v["class_type"] == "PreviewAudio"
                            and v["inputs"]["audio"][0] == node_of(prompt, "AceStepV1TrainLoRA"))
    (preview,) = entry["outputs"][training_preview]["audio"]
    samples, rate = soundfile.read(io.BytesIO(comfy_server.view(preview["filename"], preview["subfolder"],
                                                                preview["type"])), always_2d=True)
    assert rate == 48000 and samples.shape[1] == 2 and 0.5 * rate < samples.shape[0] < 3 * rate
    assert float(abs(samples).max()) > 0  # a rendered preview, not the silent stand-in


def test_cancel_saves_the_lora_and_resume_continues(comfy_server: ComfyServer) -> None:
    from acestep_core.lora.formats import read_lora

    name = "comfy_cancelled"
    folder = comfy_server.base_dir / "models" / "loras" / name
    prompt_id = comfy_server.queue(training_prompt(name, LONG_STEPS))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while len(logged_steps(folder)) < 3:  # training is under way: cancel it mid-run
        assert time.monotonic() < deadline, f"training never reached step 3:\n{comfy_server.log_tail()}"
        assert not comfy_server.get_json(f"/history/{prompt_id}"), "the run ended before it was cancelled"
        time.sleep(0.05)
    comfy_server.interrupt()
    entry = comfy_server.wait(prompt_id, timeout_s=120.0)
    events = [event for event, _ in entry["status"].get("messages", [])]
    assert entry["status"]["status_str"] == "error" and "execution_interrupted" in events, entry["status"]
    state = json.loads((folder / "training_state.json").read_text(encoding="utf-8"))
    stopped = int(state["step"])
    assert 3 <= stopped < LONG_STEPS
    assert logged_steps(folder) == list(range(1, stopped + 1))
    assert read_lora(folder).modules  # the LoRA of the step it stopped at, loadable
    assert comfy_server.get_json("/system_stats")["system"]["comfyui_version"]
    song = shorten(json.loads((WORKFLOWS / "api" / "text2music.json").read_text(encoding="utf-8")))
    song[node_of(song, "AceStepV1Sampler")]["inputs"]["seed"] = 4242  # not cached
    comfy_server.run(song, timeout_s=RUN_TIMEOUT_S)  # the server goes on after the cancel

    refused = comfy_server.wait(comfy_server.queue(training_prompt(name, LONG_STEPS)), timeout_s=RUN_TIMEOUT_S)
    (error,) = error_messages(refused)
    assert error["node_type"] == "AceStepV1TrainLoRA", error
    assert "already holds a training run; continue it with resume on" in error["exception_message"], error
    assert logged_steps(folder) == list(range(1, stopped + 1))  # nothing was touched

    prompt = training_prompt(name, stopped + 3, resume=True)
    entry = comfy_server.run(copy.deepcopy(prompt), timeout_s=RUN_TIMEOUT_S)
    assert logged_steps(folder) == list(range(1, stopped + 4))
    assert json.loads((folder / "training_state.json").read_text(encoding="utf-8"))["step"] == stopped + 3
    check_trained_text(entry, prompt, name, stopped + 3, folder)

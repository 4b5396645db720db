"""The pack inside a real ComfyUI server (opt-in: ``-m comfy`` with ``COMFYUI_ROOT`` and ``COMFYUI_PYTHON`` set).

Checks that ``/object_info`` lists every node of ``NODE_CLASS_MAPPINGS`` with our input order, that the example
workflows convert the same way with the server's schemas as with the pinned ones, that every API workflow in
``workflows/api/`` runs (shortened: a few seconds, a few steps, on the tiny checkpoint; the training workflow in
``test_training_comfyui.py``) and its audio outputs decode with the right sample rate, length and batch count, and
that ``POST /interrupt`` stops a long run.
"""

from __future__ import annotations

import copy
import io
import json
import math
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from acestep_core.config import CodecConfig
from nodes import NODE_CLASS_MAPPINGS
from tests.comfy.comfy_server import LORA_FOLDER_NAME, TINY_CHECKPOINT_NAME, ComfyServer, ComfyServerError
from tests.comfy.conftest import SOURCE_AUDIO_NAME, SOURCE_RATE, SOURCE_SECONDS
from tests.workflows.ui_to_api import NON_BACKEND_NODES, api_name, convert, schema_from_object_info

pytestmark = pytest.mark.comfy

CODEC = CodecConfig()

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
API_FILES = sorted((WORKFLOWS / "api").glob("*.json"))
TRAINING_API = "train_lora"  # trains, loads and generates: run (and cancelled, resumed) by test_training_comfyui.py
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
TINY_CHOICE = f"ace_step/{TINY_CHECKPOINT_NAME}"
LORA_CHOICE = f"{LORA_FOLDER_NAME}/pytorch_lora_weights.safetensors"  # the LoRA workflow's lora_name
# Shortened settings for CPU runs of the tiny model (the workflows carry the original app's defaults).
SHORT = {
    "AceStepV1EmptyLatent": {"seconds": 2.0},
    "AceStepV1Sampler": {"steps": 3},
    "AceStepV1FlowEdit": {"steps": 5},
    "AceStepV1RepaintWindow": {"start_s": 0.5, "end_s": 1.5},
    "AceStepV1ExtendLatent": {"left_s": 0.0, "right_s": 1.0},
    "AceStepV1CheckpointLoader": {"ckpt_name": TINY_CHOICE},
    "AceStepV1TrainLoRA": {"steps": 4, "rank": 4, "repa": "off", "save_every": 2, "preview_every": 0},
    "AceStepV1TrainOptions": {"warmup_steps": 0, "preview_seconds": 1.0, "preview_steps": 2},
}
RUN_TIMEOUT_S = 300.0


def shorten(prompt: dict[str, Any]) -> dict[str, Any]:
    """A copy of an API prompt with short durations, few steps and the tiny checkpoint."""
    out = copy.deepcopy(prompt)
    for node in out.values():
        for name, value in SHORT.get(node["class_type"], {}).items():
            assert name in node["inputs"], f"{node['class_type']} has no input {name!r} any more"
            node["inputs"][name] = value
    return out


def expected_frames(prompt: dict[str, Any], node_id: str) -> tuple[int, int]:
    """``(latent frames, batch)`` that reach ``node_id``, traced through the graph from its sources."""
    from acestep_core.audio.codec import encoded_latent_frames, latent_frames_for_duration
    from acestep_core.timing import seconds_to_frames

    node = prompt[node_id]
    kind, inputs = node["class_type"], node["inputs"]
    if kind == "AceStepV1EmptyLatent":
        return latent_frames_for_duration(inputs["seconds"]), int(inputs["batch_size"])
    if kind == "AceStepV1AudioToLatent":
        # The codec encodes the padded tail too: ceil(N / 4096) frames at 44.1 kHz (like upstream).
        return encoded_latent_frames(int(SOURCE_SECONDS * SOURCE_RATE), SOURCE_RATE), 1
    upstream = next(v for k, v in inputs.items() if k in ("latent", "audio"))
    frames, batch = expected_frames(prompt, upstream[0])
    if kind == "AceStepV1ExtendLatent":
        frames += seconds_to_frames(inputs["left_s"]) + seconds_to_frames(inputs["right_s"])
    return frames, batch


def audio_outputs(entry: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """``{node_id: [file refs]}`` of every output node that produced audio."""
    return {node_id: out["audio"] for node_id, out in entry.get("outputs", {}).items() if out.get("audio")}


# ---------------------------------------------------------------------------------------------------- schema
def test_object_info_lists_every_node_with_our_input_order(comfy_server: ComfyServer) -> None:
    """Every node id of NODE_CLASS_MAPPINGS is registered, with the inputs (and order) INPUT_TYPES declares."""
    info = comfy_server.object_info()
    missing = sorted(set(NODE_CLASS_MAPPINGS) - set(info))
    assert not missing, f"not registered by ComfyUI (import failed?): {missing}\n{comfy_server.log_tail()}"
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        declared = cls.INPUT_TYPES()
        order = info[node_id]["input_order"]
        for section in ("required", "optional"):
            assert order.get(section, []) == list(declared.get(section, {})), (node_id, section)
        assert info[node_id]["output"] == list(cls.RETURN_TYPES), node_id
    choices = info["AceStepV1CheckpointLoader"]["input"]["required"]["ckpt_name"][0]
    assert TINY_CHOICE in choices, f"the tiny checkpoint folder is not listed: {choices}"
    loras = info["AceStepV1LoraLoader"]["input"]["required"]["lora_name"][0]
    assert LORA_CHOICE in loras, f"the tiny LoRA (sub-folder file of models/loras) is not listed: {loras}"


@pytest.mark.parametrize("ui_file", UI_FILES, ids=api_name)
def test_server_schemas_convert_workflows_like_pinned_ones(comfy_server: ComfyServer, ui_file: Path) -> None:
    """Converting with the live /object_info gives the checked-in API workflow (pinned core table is right)."""
    info = comfy_server.object_info()
    workflow = json.loads(ui_file.read_text(encoding="utf-8"))
    types = {n["type"] for n in workflow["nodes"]} - NON_BACKEND_NODES
    schemas = {t: schema_from_object_info(t, info[t]) for t in types}
    expected = json.loads((WORKFLOWS / "api" / f"{api_name(ui_file)}.json").read_text(encoding="utf-8"))
    assert convert(workflow, schemas) == expected


def test_workflows_are_served_as_templates(comfy_server: ComfyServer) -> None:
    """ComfyUI lists the pack's ``workflows/*.json`` in its template browser (``GET /workflow_templates``)."""
    from tests.comfy.comfy_server import PACK_LINK_NAME

    templates = comfy_server.get_json("/workflow_templates")
    assert sorted(templates.get(PACK_LINK_NAME, [])) == sorted(p.stem for p in UI_FILES), templates
    for stem in templates[PACK_LINK_NAME]:  # the thumbnail URL the frontend builds: /api/workflow_templates/...
        quoted = urllib.parse.quote(f"{stem}.jpg")
        assert comfy_server._request("GET", f"/api/workflow_templates/{PACK_LINK_NAME}/{quoted}")[:3] == b"\xff\xd8\xff"
    translations = comfy_server.get_json("/i18n")
    assert translations["en"]["templateWorkflows"]["category"][PACK_LINK_NAME] == "ACE-Step v1"


def test_lyric_report_route(comfy_server: ComfyServer) -> None:
    """The pack's route answers the Text Encode report for the loader's checkpoint (vocab found next to it), and a
    clear 400 for a bad body; the window nodes' timeline option reaches /object_info."""
    from nodes import web_events

    body = {"lyrics": "[verse]\nHola amigo, ¿cómo estás?\n[Verse 1]", "ckpt_name": TINY_CHOICE, "duration_s": 1.0}
    report = comfy_server.post_json(web_events.LYRIC_REPORT_ROUTE, body)
    assert [line["detected_language"] for line in report["lines"]] == [None, "gl", None]
    assert {w["code"] for w in report["warnings"]} >= {"language_fallback", "unknown_tag", "too_long_for_duration"}
    with pytest.raises(ComfyServerError, match="HTTP 400.*lyrics: expected text"):
        comfy_server.post_json(web_events.LYRIC_REPORT_ROUTE, {"lyrics": 3})
    info = comfy_server.object_info()
    assert info["AceStepV1RepaintWindow"]["input"]["required"]["start_s"][1][web_events.TIMELINE_OPTION] == (
        web_events.timeline_info())


# ------------------------------------------------------------------------------------------------- workflows
@pytest.mark.parametrize("api_file", [p for p in API_FILES if p.stem != TRAINING_API], ids=lambda p: p.stem)
def test_api_workflow_runs_and_outputs_decode(comfy_server: ComfyServer, api_file: Path) -> None:
    """Each example runs end to end; every audio output decodes with the expected rate, length and count."""
    import soundfile

    prompt = shorten(json.loads(api_file.read_text(encoding="utf-8")))
    for node in prompt.values():
        if node["class_type"] == "LoadAudio":
            assert node["inputs"]["audio"] == SOURCE_AUDIO_NAME, "workflows load the documented source file name"
    entry = comfy_server.run(prompt, timeout_s=RUN_TIMEOUT_S)
    outputs = audio_outputs(entry)
    sinks = [k for k, v in prompt.items() if v["class_type"] in ("AceStepV1SaveAudio", "SaveAudio", "PreviewAudio")]
    assert sorted(outputs) == sorted(sinks), f"audio outputs {sorted(outputs)} != output nodes {sorted(sinks)}"
    for node_id, files in outputs.items():
        frames, batch = expected_frames(prompt, node_id)
        decoder = prompt[prompt[node_id]["inputs"]["audio"][0]]
        rate = int(decoder["inputs"]["sample_rate"])
        assert len(files) == batch, f"node {node_id}: {len(files)} files for a batch of {batch}"
        for ref in files:
            data = comfy_server.view(ref["filename"], ref.get("subfolder", ""), ref.get("type", "output"))
            samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
            expected = math.ceil(CODEC.samples_per_latent_frame * frames * rate / CODEC.sample_rate)
            assert sample_rate == rate, f"{ref}: {sample_rate} Hz, expected {rate}"
            assert samples.shape[1] == 2, f"{ref}: {samples.shape[1]} channels, expected stereo"
            assert abs(samples.shape[0] - expected) <= 0.005 * rate, (
                f"{ref}: {samples.shape[0]} samples, expected {expected} ({frames} latent frames)")
            assert samples.size and bool((abs(samples) < 1.0 + 1e-4).all()), f"{ref}: samples out of [-1, 1]"


# ------------------------------------------------------------------------------------------------- interrupt
def test_interrupt_stops_a_long_run(comfy_server: ComfyServer) -> None:
    """POST /interrupt ends a long sampling run early with execution_interrupted, and the server keeps working."""
    prompt = shorten(json.loads((WORKFLOWS / "api" / "text2music.json").read_text(encoding="utf-8")))
    for node in prompt.values():
        if node["class_type"] == "AceStepV1EmptyLatent":
            node["inputs"]["seconds"] = 120.0
        if node["class_type"] == "AceStepV1Sampler":
            node["inputs"]["steps"] = 1000
            node["inputs"]["seed"] = 12345  # not cached from the workflow runs
    prompt_id = comfy_server.queue(prompt)
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:  # wait until it is executing, then a little longer (sampling)
        running = comfy_server.queue_state().get("queue_running", [])
        if any(item[1] == prompt_id for item in running):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"prompt {prompt_id} never started running:\n{comfy_server.log_tail()}")
    time.sleep(3.0)
    started = time.monotonic()
    comfy_server.interrupt()
    entry = comfy_server.wait(prompt_id, timeout_s=120.0)
    stopped_after = time.monotonic() - started
    events = [message[0] for message in entry["status"].get("messages", [])]
    assert entry["status"]["status_str"] == "error", entry["status"]
    assert "execution_interrupted" in events, events
    assert stopped_after < 60.0, f"the run took {stopped_after:.1f} s to stop after the interrupt"
    assert not audio_outputs(entry), "an interrupted run must not save audio"
    # The server is still usable afterwards.
    assert comfy_server.get_json("/system_stats")["system"]["comfyui_version"]


# ----------------------------------------------------------------------------------------------- drag-back
@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg"])
def test_saved_audio_restores_its_workflow_when_dropped(comfy_server: ComfyServer, tmp_path: Path, fmt: str) -> None:
    """A file saved by our Save Audio node in a real ComfyUI, read the way the frontend reads a dropped file, gives
    back the workflow the browser sent with the prompt (the "Unable to find workflow" of issue 14)."""
    from tests.frontend_metadata import load_workflow_from_file
    from tests.workflows.ui_to_api import TEMPLATES

    ui = json.loads((WORKFLOWS / f"{TEMPLATES['text2music']}.json").read_text(encoding="utf-8"))
    prompt = shorten(json.loads((WORKFLOWS / "api" / "text2music.json").read_text(encoding="utf-8")))
    save = next(k for k, v in prompt.items() if v["class_type"] == "AceStepV1SaveAudio")
    prompt[save]["inputs"].update(format=fmt, filename_prefix=f"dragback/{fmt}")
    for node in prompt.values():
        if node["class_type"] == "AceStepV1EmptyLatent":
            node["inputs"]["seconds"] = 8.0  # long enough for the frontend's MP3 reader (it reads growing chunks)
    answer = comfy_server.post_json("/prompt", {"prompt": prompt, "client_id": comfy_server.client_id,
                                                "extra_data": {"extra_pnginfo": {"workflow": ui}}})
    entry = comfy_server.wait(answer["prompt_id"], timeout_s=RUN_TIMEOUT_S)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (ref,) = entry["outputs"][save]["audio"]
    path = tmp_path / ref["filename"]
    path.write_bytes(comfy_server.view(ref["filename"], ref["subfolder"]))
    assert load_workflow_from_file(path) == ("workflow", ui)
    sidecar = json.loads(comfy_server.view(ref["filename"].rsplit(".", 1)[0] + "_input_params.json",
                                           ref["subfolder"]))
    assert sidecar["audio_path"] == f"{ref['subfolder']}/{ref['filename']}"  # no absolute server path

"""What the Python side hands the frontend (``nodes.web_events``, ``nodes.web_routes``): the lyric report JSON of
Text Encode and of the pre-run route, the window nodes' UI output and timeline option, the training payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nodes import comfy_adapter as adapter
from nodes import web_events
from nodes.conditioning import AceStepV1TextEncode
from nodes.latent import AceStepV1ExtendLatent, AceStepV1RepaintWindow
from nodes.loaders import DOWNLOAD_CHOICE
from nodes.web_routes import _checkpoint_path, lyric_report_response
from tests.nodes.conftest import VOCAB

MULTILINGUAL = "[verse]\nHello my friend, how are you\nHola amigo, ¿cómo estás?\n[Verse 1]\n你好世界\n[chorus]"


def strict_json(value: Any) -> Any:
    """``value`` through JSON as a browser parses it (no NaN / Infinity)."""
    return json.loads(json.dumps(value, allow_nan=False))


def test_text_encode_ui_carries_the_report_json(model: Any) -> None:
    out = AceStepV1TextEncode().encode(model, "pop", MULTILINGUAL)
    (report,) = out["ui"][web_events.LYRIC_REPORT_KEY]
    assert strict_json(report) == report
    lines = {line["line"]: line for line in report["lines"]}
    assert set(lines) == {1, 2, 3, 4, 5, 6}
    for tag_line in (1, 4, 6):  # structure tags: read as English, no detected language shown (issue 14)
        assert lines[tag_line]["structure_tag"] and lines[tag_line]["detected_language"] is None
        assert lines[tag_line]["encode_language"] == "en"
    assert (lines[3]["detected_language"], lines[3]["encode_language"]) == ("gl", "en")  # the fallback shown
    assert lines[5]["encode_language"] == "zh" and lines[5]["normalized"].startswith("ni3")
    assert sum(line["num_tokens"] for line in report["lines"]) + 1 == report["num_tokens"]  # + [START]
    codes = {(w["line"], w["code"]) for w in report["warnings"]}
    assert {(3, "language_fallback"), (4, "unknown_tag")} <= codes
    assert "did you mean [verse]?" in next(w["message"] for w in report["warnings"] if w["code"] == "unknown_tag")
    low, high = report["suits"]["typical_s"]
    assert report["suits"]["min_s"] < low < high
    assert "zh" not in out["ui"]["text"][0].split("\n")[1]  # the text report: "[en] [tag] [verse]"


def test_instrumental_report(model: Any) -> None:
    out = AceStepV1TextEncode().encode(model, "pop", "")
    assert out["ui"][web_events.LYRIC_REPORT_KEY] == [web_events.lyric_report_json(None)]
    assert web_events.lyric_report_json(None)["instrumental"] is True


def test_route_answers_the_text_encode_report(model: Any) -> None:
    status, answer = lyric_report_response({"lyrics": MULTILINGUAL, "lyric_vocab": str(VOCAB)})
    assert status == 200
    expected = AceStepV1TextEncode().encode(model, "pop", MULTILINGUAL)["ui"][web_events.LYRIC_REPORT_KEY][0]
    assert strict_json(answer) == expected


def test_route_duration_adds_the_length_warning() -> None:
    status, answer = lyric_report_response({"lyrics": "la " * 200, "lyric_vocab": str(VOCAB), "duration_s": 5})
    assert status == 200 and answer["duration_s"] == 5
    assert any(w["code"] == "too_long_for_duration" and w["line"] is None for w in answer["warnings"])
    assert lyric_report_response({"lyrics": "  \n", "lyric_vocab": str(VOCAB)}) == (
        200, web_events.lyric_report_json(None))


@pytest.mark.parametrize(("body", "needle"), [
    ([], "JSON object"),
    ({}, "lyrics: expected text"),
    ({"lyrics": 3}, "lyrics: expected text"),
    ({"lyrics": "a", "ckpt_name": 5}, "ckpt_name"),
    ({"lyrics": "a", "duration_s": -1}, "duration_s"),
    ({"lyrics": "a", "duration_s": True}, "duration_s"),
    ({"lyrics": "a", "lyric_vocab": "/nonexistent/vocab.json"}, "vocab"),
])
def test_route_refuses_bad_requests(body: Any, needle: str) -> None:
    status, answer = lyric_report_response(body)
    assert status == 400 and needle in answer["error"]


def test_route_never_downloads_a_checkpoint(models_dir: Any) -> None:
    assert _checkpoint_path(DOWNLOAD_CHOICE) is None
    assert _checkpoint_path("no_such_model.safetensors") is None
    assert _checkpoint_path("ace_step/tiny") is not None


def test_window_nodes_report_the_source_and_their_timeline(source_latent: dict[str, Any]) -> None:
    frames = source_latent["samples"].shape[-1]
    timeline = web_events.timeline_info()
    assert timeline["latent_rate_hz"] == 44100 / 4096 and timeline["max_frames"] == 2583
    for node, name in ((AceStepV1RepaintWindow, "start_s"), (AceStepV1ExtendLatent, "left_s")):
        assert node.INPUT_TYPES()["required"][name][1][web_events.TIMELINE_OPTION] == timeline
    out = AceStepV1RepaintWindow().mark(source_latent, 0.5, 1.5, 0.5)
    (info,) = out["ui"][web_events.WINDOW_KEY]
    assert info["source_frames"] == frames and info["source_s"] == frames / timeline["latent_rate_hz"]
    assert (info["start_frame"], info["end_frame"]) == (int(0.5 * 44100 / 4096), int(1.5 * 44100 / 4096))
    (info,) = AceStepV1ExtendLatent().extend(source_latent, 0.5, 1.0)["ui"][web_events.WINDOW_KEY]
    assert (info["left_frames"], info["right_frames"], info["source_frames"]) == (5, 10, frames)
    assert strict_json(info) == info


def test_train_payloads() -> None:
    progress = web_events.train_progress_payload(7, 10, 100, 0.25, 1e-4, 3.5)
    assert progress == {"node": "7", "step": 10, "max_steps": 100, "loss": 0.25, "lr": 1e-4, "elapsed_s": 3.5}
    diverged = web_events.train_progress_payload("7", 11, 100, float("nan"), float("inf"), 4.0)
    assert strict_json(diverged)["loss"] is None and diverged["lr"] is None
    preview = web_events.train_preview_payload("7", 50, "preview_00050_.flac", "lora/previews", "temp")
    assert preview["audio"] == {"filename": "preview_00050_.flac", "subfolder": "lora/previews", "type": "temp"}
    with pytest.raises(ValueError, match="max_steps"):
        web_events.train_progress_payload("7", 1, 0, 0.1, 0.1, 0.0)
    with pytest.raises(TypeError, match="loss"):
        web_events.train_progress_payload("7", 1, 2, "0.1", 0.1, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="file_type"):
        web_events.train_preview_payload("7", 1, "a.flac", file_type="input")
    with pytest.raises(ValueError, match="filename"):
        web_events.train_preview_payload("7", 1, "../a.flac")


def test_events_and_routes_are_no_ops_outside_comfyui(models_dir: Any) -> None:
    assert not adapter.comfy_available()
    assert web_events.send_event(web_events.TRAIN_PROGRESS_EVENT, {"node": "1"}) is False
    assert adapter.add_json_route(web_events.LYRIC_REPORT_ROUTE, lyric_report_response) is False

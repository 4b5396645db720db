"""The pack's frontend in the real ComfyUI frontend, in headless Chromium (opt-in: ``-m browser``).

Needs what the real-ComfyUI suite needs (``COMFYUI_ROOT``, ``COMFYUI_PYTHON``, the tiny checkpoint) plus Debian's
``chromium`` (or ``$CHROMIUM``); skips with the reason otherwise. One server and one page for the module, in
order: the page loads with no console error that a page without the pack's extensions does not show; the region
picker draws the Load Audio file for the repaint and extend workflows; scripted drags and key presses change the
widgets and the exported API prompt (numbers only); the lyric inspector shows the report of a multilingual lyric
before a run (button) and after one; every batch item of Save Audio gets a player; after a run without a Load
Audio file the picker draws the last run's audio; the training workflow's run draws its loss chart and preview
player. Screenshots go to ``$ACESTEP_ARTIFACTS_DIR`` (or a pytest temp folder, printed), e.g.
``pytest -m browser tests/comfy/test_browser.py -s``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.comfy.browser import BrowserError, Chromium, Page, chromium_path
from tests.comfy.comfy_server import PACK_LINK_NAME, ComfyServer
from tests.comfy.test_real_comfyui import SHORT

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
EXTENSIONS = ["AceStepPack.AudioPlayer", "AceStepPack.LyricInspector", "AceStepPack.RegionPicker",
              "AceStepPack.TrainChart"]
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.ShowMissingModelsWarning": False,
            "Comfy.Minimap.Visible": False}
MULTILINGUAL = ("[verse]\nHello my friend, how are you\nHola amigo, ¿cómo estás?\n[Verse 1]\n你好世界\n"
                "I ❤️ music\n[chorus]\nLa la la")
RATE = 44100 / 4096
RUN_TIMEOUT_S = 300.0
APP = "window.comfyAPI.app.app"
HELPERS = (Path(__file__).with_name("browser_helpers.js")).read_text(encoding="utf-8")  # window.acestepTest


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("ACESTEP_ARTIFACTS_DIR")
    path = Path(folder) / "browser" if folder else tmp_path_factory.mktemp("browser_screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser suite screenshots: {path}")
    return path


@pytest.fixture(scope="module")
def browser(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = chromium_path()
    if binary is None:
        pytest.skip("the browser suite needs Chromium: `apt-get install chromium` (or set $CHROMIUM)")
    with Chromium(binary, tmp_path_factory.mktemp("chromium_profile")) as chromium:
        yield chromium


def wait_ready(page: Page) -> None:
    page.wait_for("Boolean(window.comfyAPI?.app?.app?.graph && window.comfyAPI.app.app.vueAppReady)", timeout_s=120)
    time.sleep(2.0)  # extensions' setup and the first workflow load settle


def error_key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """A console error without the parts that change between page loads."""
    first = re.sub(r"\d+", "N", entry["text"].splitlines()[0] if entry["text"] else "")
    return entry["level"], entry["url"].split("?")[0], first


def errors(page: Page) -> list[dict[str, Any]]:
    return [e for e in page.console if e["level"] in ("error", "exception") or "[ACE-Step]" in e["text"]]


@pytest.fixture(scope="module")
def ui(comfy_server: ComfyServer, browser: Chromium) -> Page:
    """The ComfyUI page with the pack, after a baseline load of the same page with the pack's scripts blocked."""
    for key, value in SETTINGS.items():
        comfy_server.post_json(f"/settings/{key}", value)
    baseline = browser.new_page()
    baseline.call("Network.enable")
    baseline.call("Network.setBlockedURLs", {"urls": [f"*/extensions/{PACK_LINK_NAME}/*"]})
    baseline.goto(comfy_server.url)
    wait_ready(baseline)
    page = browser.new_page()
    page.baseline = {error_key(e) for e in errors(baseline)}  # type: ignore[attr-defined]
    page.goto(comfy_server.url)
    wait_ready(page)
    page.evaluate(HELPERS)
    return page


def new_errors(page: Page) -> list[dict[str, Any]]:
    """Console errors the page without the pack did not have, our warnings included (the blocked scripts' own
    load errors only appear in the baseline)."""
    return [e for e in errors(page) if error_key(e) not in page.baseline]  # type: ignore[attr-defined]


def load_workflow(page: Page, name: str, **widgets: dict[str, Any]) -> None:
    """Open the workflow ``name`` (its API name; the file is ``workflows/<title>.json``) shortened for the tiny CPU
    model (plus ``widgets`` per node type)."""
    from tests.workflows.ui_to_api import TEMPLATES

    workflow = json.loads((WORKFLOWS / f"{TEMPLATES[name]}.json").read_text(encoding="utf-8"))
    for node in workflow["nodes"]:
        node.get("properties", {}).pop("models", None)
    overrides = {kind: {**SHORT.get(kind, {}), **widgets.get(kind, {})} for kind in {*SHORT, *widgets}}
    page.evaluate(f"{APP}.loadGraphData({json.dumps(workflow)})")
    page.evaluate(f"""(() => {{
      const overrides = {json.dumps(overrides)};
      for (const node of acestepTest.app.graph.nodes) {{
        for (const [name, value] of Object.entries(overrides[node.comfyClass ?? node.type] ?? {{}})) {{
          const w = acestepTest.widget(node, name); if (w) w.value = value;
        }}
      }}
      acestepTest.app.graph.setDirtyCanvas(true, true); return true; }})()""")
    time.sleep(0.5)


def shoot(page: Page, artifacts: Path, name: str, node_type: str, grow_px: int = 0) -> Path:
    """A screenshot of one node (made ``grow_px`` taller first, as a user resizes it to read more)."""
    if grow_px:
        page.evaluate(f"(() => {{ const n = acestepTest.node({json.dumps(node_type)}); "
                      f"n.setSize([n.size[0], n.size[1] + {grow_px}]); return true; }})()")
    page.evaluate(f"acestepTest.frame({json.dumps(node_type)})")
    time.sleep(0.6)  # DOM widgets follow the canvas on the next frames
    clip = page.evaluate(f"acestepTest.nodeRect({json.dumps(node_type)})")
    return page.screenshot(artifacts / f"{name}.png", clip=clip)


def wait_source(page: Page, node_type: str) -> dict[str, Any]:
    return page.wait_for(f"""(() => {{ const p = acestepTest.node({json.dumps(node_type)}).acestepRegionPicker;
      return p.source?.buffer ? {{ origin: p.source.origin, frames: p.sourceFrames(), label: p.source.label,
        offset: p.source.offsetS }} : null; }})()""", timeout_s=60)


def run_workflow(page: Page) -> None:
    """Queue the open workflow from the frontend (its own graphToPrompt) and wait until the queue is empty."""
    page.evaluate(f"{APP}.queuePrompt(0, 1).then(() => true)")
    page.wait_for("fetch('/api/queue').then((r) => r.json()).then((q) => !q.queue_running.length && "
                  "!q.queue_pending.length)", timeout_s=RUN_TIMEOUT_S, poll_s=1.0)
    time.sleep(1.0)


def drag_picker(page: Page, node_type: str, from_s: float, to_s: float) -> None:
    kind = json.dumps(node_type)
    y = page.evaluate(f"(() => {{ const r = acestepTest.node({kind}).acestepRegionPicker.el.canvas"
                      f".getBoundingClientRect(); return r.top + r.height * 0.4; }})()")
    x0 = page.evaluate(f"acestepTest.pickerX({kind}, {from_s})")
    x1 = page.evaluate(f"acestepTest.pickerX({kind}, {to_s})")
    page.drag((x0, y), (x1, y))
    time.sleep(0.3)


def frame_of(seconds: float) -> int:
    return int(seconds * RATE)


# ---------------------------------------------------------------------------------------------------- tests
def test_page_loads_with_no_new_console_errors(ui: Page) -> None:
    registered = ui.evaluate(f"{APP}.extensionManager ? (window.comfyAPI.app.app.extensions ?? []).map((e) => e.name)"
                             " : []")
    assert sorted(n for n in registered if n.startswith("AceStepPack.")) == EXTENSIONS
    assert new_errors(ui) == []


def test_region_picker_draws_for_repaint(ui: Page, artifacts: Path) -> None:
    load_workflow(ui, "repaint", AceStepV1RepaintWindow={"start_s": 10.0, "end_s": 30.0})
    source = wait_source(ui, "AceStepV1RepaintWindow")
    assert source == {"origin": "file", "frames": 33, "label": "acestep_source.flac", "offset": 0}  # 3.0 s
    shot = shoot(ui, artifacts, "repaint_picker_loaded", "AceStepV1RepaintWindow")
    canvas = "acestepTest.node('AceStepV1RepaintWindow').acestepRegionPicker.el.canvas"
    assert ui.evaluate(f"acestepTest.inkedPixels({canvas})") > 2000, shot
    info = ui.evaluate("acestepTest.node('AceStepV1RepaintWindow').acestepRegionPicker.el.info.textContent")
    assert "past the end of the source (3.07 s)" in info  # the workflow's 10-30 s window does not fit a 3 s song
    assert new_errors(ui) == []


def test_drag_and_keys_change_the_widgets_and_the_api_prompt(ui: Page, artifacts: Path) -> None:
    kind = "AceStepV1RepaintWindow"
    drag_picker(ui, kind, 0.55, 2.0)  # outside the (off-source) window: a new selection
    values = ui.evaluate(f"acestepTest.values('{kind}', ['start_s', 'end_s'])")
    assert abs(frame_of(values["start_s"]) - round(0.55 * RATE)) <= 1
    assert abs(frame_of(values["end_s"]) - round(2.0 * RATE)) <= 1
    assert all(round(v, 1) == v for v in values.values()), values  # at the widget's precision
    inputs = ui.evaluate(f"acestepTest.promptInputs('{kind}')")
    assert {k: v for k, v in inputs.items() if k in values} == values
    assert set(inputs) == {"latent", "start_s", "end_s", "variance", "feather_s"}  # the picker is not an input
    saved = ui.evaluate(f"acestepTest.savedValues('{kind}')")
    assert saved == [values["start_s"], values["end_s"], 0.2, 0.0]  # the workflow stores only the numbers
    shoot(ui, artifacts, "repaint_picker_dragged", kind)
    drag_picker(ui, kind, (values["start_s"] + values["end_s"]) / 2, (values["start_s"] + values["end_s"]) / 2 + 0.5)
    moved = ui.evaluate(f"acestepTest.values('{kind}', ['start_s', 'end_s'])")
    assert moved["start_s"] > values["start_s"]
    assert frame_of(moved["end_s"]) - frame_of(moved["start_s"]) == frame_of(values["end_s"]) - frame_of(
        values["start_s"])  # moving the window keeps its length
    ui.key("]", "BracketRight", 221)
    ui.key("ArrowRight", "ArrowRight", 39)
    nudged = ui.evaluate(f"acestepTest.values('{kind}', ['start_s', 'end_s'])")
    assert nudged["start_s"] == moved["start_s"] and frame_of(nudged["end_s"]) in (
        frame_of(moved["end_s"]) + 1, frame_of(moved["end_s"]) + 2)  # one reachable frame later
    assert ui.evaluate(f"acestepTest.promptInputs('{kind}')")["end_s"] == nudged["end_s"]
    picker = f"acestepTest.node('{kind}').acestepRegionPicker"
    ui.evaluate(f"{picker}.el.playPart.click()")  # play the window: the playhead runs inside it
    playhead = ui.wait_for(f"{picker}.playback && {picker}.playheadS() > {picker}.playback.fromS + 0.05 "
                           f"&& {picker}.playheadS()", timeout_s=10)
    window = ui.evaluate(f"{picker}.geometry({picker}.spec()).region")
    assert window["startS"] < playhead <= window["endS"]
    ui.evaluate(f"{picker}.el.stop.click()")
    assert ui.evaluate(f"{picker}.playback") is None
    assert new_errors(ui) == []


def test_region_picker_extends_past_either_edge(ui: Page, artifacts: Path) -> None:
    kind = "AceStepV1ExtendLatent"
    load_workflow(ui, "extend", AceStepV1ExtendLatent={"left_s": 0.0, "right_s": 0.0})
    assert wait_source(ui, kind)["frames"] == 33
    source_s = 33 / RATE
    drag_picker(ui, kind, source_s, source_s + 1.5)
    drag_picker(ui, kind, 0.0, -0.8)
    values = ui.evaluate(f"acestepTest.values('{kind}', ['left_s', 'right_s'])")
    assert abs(frame_of(values["right_s"]) - round(1.5 * RATE)) <= 1
    assert abs(frame_of(values["left_s"]) - round(0.8 * RATE)) <= 1
    inputs = ui.evaluate(f"acestepTest.promptInputs('{kind}')")
    assert (inputs["left_s"], inputs["right_s"]) == (values["left_s"], values["right_s"])
    assert set(inputs) == {"latent", "left_s", "right_s", "variance"}
    drag_picker(ui, kind, source_s + 1.5, source_s + 30)  # past the limit: one source length per side
    assert frame_of(ui.evaluate(f"acestepTest.values('{kind}', ['right_s'])")["right_s"]) == 33
    shot = shoot(ui, artifacts, "extend_picker", kind)
    picker = f"acestepTest.node('{kind}').acestepRegionPicker.el"
    status, info = ui.evaluate(f"[{picker}.status.textContent, {picker}.info.className, {picker}.info.textContent]")[:2]
    assert re.fullmatch(r"\+0\.\d\d s · \+3\.07 s → 6\.\d\d s", status), status
    assert "is-problem" not in info, shot
    assert new_errors(ui) == []


def inspector_text(ui: Page) -> str:
    return ui.evaluate("acestepTest.node('AceStepV1TextEncode').acestepLyricInspector.root.innerText")


def check_multilingual_report(text: str) -> None:
    assert "gl → en" in text  # the Spanish line read as Galician, sung as English
    assert "did you mean [verse]?" in text  # the unknown structure tag with its suggestion
    assert "[UNK]" in text and "lyric tokens" in text and "suits a song of about" in text
    assert "tag (en)" in text and "zh → en" not in text  # structure tags are English (issue 14)
    assert "ni3hao3shi4jie4" in text  # the Chinese line, normalised


def test_lyric_inspector_before_a_run(ui: Page, artifacts: Path) -> None:
    load_workflow(ui, "text2music", AceStepV1TextEncode={"lyrics": MULTILINGUAL})
    ui.evaluate("acestepTest.frame('AceStepV1TextEncode')")
    time.sleep(0.6)
    button = ui.evaluate("acestepTest.rect(acestepTest.node('AceStepV1TextEncode').acestepLyricInspector.button)")
    x, y = button["x"] + button["width"] / 2, button["y"] + button["height"] / 2
    ui.mouse("mouseMoved", x, y)
    ui.mouse("mousePressed", x, y, buttons=1)
    ui.mouse("mouseReleased", x, y)
    ui.wait_for("acestepTest.node('AceStepV1TextEncode').acestepLyricInspector.origin.startsWith('checked')")
    text = inspector_text(ui)
    check_multilingual_report(text)
    assert "checked before running, for 2 s" in text  # the song length comes from the Empty Latent
    assert "lyric tokens for 2 s of audio" in text  # ... so the server warns that the lyrics are too long for it
    shoot(ui, artifacts, "lyric_inspector_before_run", "AceStepV1TextEncode", grow_px=260)
    assert new_errors(ui) == []


def test_a_run_shows_the_report_and_one_player_per_batch_item(ui: Page, artifacts: Path) -> None:
    load_workflow(ui, "batch_seeds", AceStepV1TextEncode={"lyrics": MULTILINGUAL})
    run_workflow(ui)
    players = ui.wait_for("acestepTest.batchPlayers('AceStepV1SaveAudio', 4)", timeout_s=60)
    assert len(set(players["srcs"])) == 4 and all("/view?" in s for s in players["srcs"])
    assert all(name in src for name, src in zip(players["items"], players["srcs"], strict=True))
    assert players["core"] == "none"  # the core player (first file only) gives way to the labelled list
    shoot(ui, artifacts, "save_audio_batch_players", "AceStepV1SaveAudio")
    assert ui.evaluate("acestepTest.node('AceStepV1TextEncode').acestepLyricInspector.origin") == "from the last run"
    check_multilingual_report(inspector_text(ui))
    shoot(ui, artifacts, "lyric_inspector_after_run", "AceStepV1TextEncode", grow_px=260)
    assert new_errors(ui) == []


def test_the_picker_draws_the_last_runs_audio_without_a_source_file(ui: Page, artifacts: Path) -> None:
    kind = "AceStepV1ExtendLatent"
    load_workflow(ui, "long_song_extend_chain")
    message = ui.evaluate(f"acestepTest.node('{kind}').acestepRegionPicker.el.canvas.getAttribute('aria-valuetext')")
    assert message is None  # nothing to draw yet: the source is a sampler's output
    run_workflow(ui)
    source = wait_source(ui, kind)
    assert source["origin"] == "last run" and source["frames"] == int(2.0 * RATE)  # the 2 s song (SHORT)
    assert source["offset"] == 0  # both extends only add on the right
    shoot(ui, artifacts, "extend_picker_last_run", kind)
    assert new_errors(ui) == []


def test_the_training_chart_draws_a_runs_loss_and_plays_its_preview(ui: Page, artifacts: Path) -> None:
    """The training workflow, run from the frontend on the two songs in input/acestep_dataset (4 steps, SHORT):
    the Train LoRA node's chart gets one point per step from the progress events, its status line ends at the
    last step, the curves are drawn, and the final preview gets a player."""
    kind = "AceStepV1TrainLoRA"
    load_workflow(ui, "train_lora")
    chart = f"acestepTest.node('{kind}').acestepTrainChart"
    assert ui.evaluate(f"{chart}.status.textContent") == "Waiting for the first training step…"
    run_workflow(ui)
    points = ui.wait_for(f"{chart}.state.points.length === 4 && {chart}.state.points", timeout_s=30)
    assert [p["step"] for p in points] == [1, 2, 3, 4] and all(p["loss"] > 0 and p["lr"] > 0 for p in points)
    status = ui.evaluate(f"{chart}.status.textContent")
    assert re.fullmatch(r"step 4/4 · loss \d\.\d+ · smoothed \d\.\d+ · lr \S+ · \d+:\d\d elapsed", status), status
    previews = ui.wait_for(f"{chart}.previews.querySelectorAll('audio').length === 1 && "
                           f"[...{chart}.previews.querySelectorAll('div')].map((d) => [d.textContent, "
                           "d.querySelector('audio').src])", timeout_s=30)
    assert previews[0][0] == "step 4" and "acestep_lora_previews" in previews[0][1], previews
    shot = shoot(ui, artifacts, "train_lora_chart", kind)
    assert ui.evaluate(f"acestepTest.inkedPixels({chart}.canvas)") > 500, shot
    assert new_errors(ui) == []


def test_no_errors_at_the_end(ui: Page) -> None:
    """Everything above together left no console error that the baseline page did not have."""
    found = new_errors(ui)
    if found:
        raise BrowserError(json.dumps(found, indent=1)[:4000])

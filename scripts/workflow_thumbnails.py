"""Make the template-browser pictures ``workflows/<title>.jpg``: each workflow opened in a real ComfyUI (the
tiny test checkpoint, headless Chromium at 1920x1080), and a square photograph of the nodes that tell it apart
(the browser's cards are square; the whole graph would be too small to read there).

    COMFYUI_ROOT=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/its/python python scripts/workflow_thumbnails.py [NAME ...]

Run it after changing a workflow's layout (``tests/workflows/test_workflows.py`` checks every workflow has one);
NAMEs (API names, e.g. ``train_lora``) re-take only those pictures.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.comfy.browser import Chromium, Page, chromium_path  # noqa: E402
from tests.comfy.comfy_server import ComfyServer, prepare_base_dir  # noqa: E402
from tests.parity import PARITY_DIR, TINY_CHECKPOINT  # noqa: E402
from tests.workflows.ui_to_api import TEMPLATES  # noqa: E402

WIDTH, HEIGHT = 1920, 1080
SIDE, OUT_SCALE = 800, 0.5  # a square of 800 page pixels around the workflow's key nodes, saved at 400 x 400
# the nodes that tell the workflows apart (ids in the UI files), shown large in the square picture
FOCUS = {"text2music": [2, 4], "retake": [4, 8], "batch_seeds": [3, 4], "repaint": [5, 6], "extend": [5, 6],
         "long_song_extend_chain": [5, 6, 7], "lyric_edit": [4, 5], "remix": [4, 5], "audio2audio": [2, 3],
         "lora": [2, 3], "train_lora": [2, 4]}
READY = "!!(window.app && window.app.graph && document.querySelector('.side-tool-bar-container'))"
CANVAS_LEFT, CANVAS_TOP = 64, 78


def close_dialogs(browser: Page) -> None:
    """Close what covers the canvas (the first-run template browser, toasts) with Escape, until none is left."""
    for _ in range(10):
        if not browser.evaluate("document.querySelectorAll('.p-dialog').length"):
            return
        browser.key("Escape", "Escape", 27)
        time.sleep(0.5)
    raise RuntimeError("a dialog stays open over the canvas")


def open_workflow(browser: Page, workflow: dict, name: str) -> None:
    """Load ``workflow`` the way the template browser does (its stored view restored), without the missing-model
    dialog (the real model is not installed on the test server)."""
    browser.evaluate(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}, "
                     "{showMissingModelsDialog: false})")
    time.sleep(1.5)
    close_dialogs(browser)
    browser.evaluate("window.app.canvas.setDirty(true, true); window.app.canvas.draw(true, true)")
    time.sleep(0.5)


def focus_view(workflow: dict, ids: list[int], margin: float = 30.0) -> tuple[float, list[float]]:
    """The canvas scale and offset that put the square around nodes ``ids`` on the page square
    (200, 150) .. (200 + SIDE, 150 + SIDE)."""
    boxes = [(n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in workflow["nodes"] if n["id"] in ids]
    x0, y0 = min(b[0] for b in boxes) - margin, min(b[1] for b in boxes) - margin
    x1, y1 = max(b[2] for b in boxes) + margin, max(b[3] for b in boxes) + margin
    side = max(x1 - x0, y1 - y0)
    x0, y0 = x0 - (side - (x1 - x0)) / 2, y0 - (side - (y1 - y0)) / 2
    scale = SIDE / side
    return scale, [(200 - CANVAS_LEFT) / scale - x0, (150 - CANVAS_TOP) / scale - y0]


def photograph(browser: Page, workflow: dict, ids: list[int], fmt: str = "jpeg") -> bytes:
    """A square picture of the workflow's key nodes (JPEG for the template browser, PNG to look at)."""
    scale, offset = focus_view(workflow, ids)
    browser.evaluate(f"(() => {{ const c = window.app.canvas; c.ds.scale = {scale}; c.ds.offset = {offset}; "
                     "c.setDirty(true, true); c.draw(true, true); })()")
    time.sleep(0.5)
    clip = {"x": 200, "y": 150, "width": SIDE, "height": SIDE, "scale": OUT_SCALE}
    params = {"format": fmt, "clip": clip, **({"quality": 80} if fmt == "jpeg" else {})}
    return base64.b64decode(browser.call("Page.captureScreenshot", params)["data"])


def main() -> int:
    root, python = os.environ.get("COMFYUI_ROOT"), os.environ.get("COMFYUI_PYTHON")
    if not root or not python:
        print("set COMFYUI_ROOT and COMFYUI_PYTHON (see tests/comfy/conftest.py)", file=sys.stderr)
        return 2
    only = set(sys.argv[1:])
    if only - set(TEMPLATES):
        print(f"unknown workflow names {sorted(only - set(TEMPLATES))}; choose from {list(TEMPLATES)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        base = prepare_base_dir(Path(scratch), TINY_CHECKPOINT, PARITY_DIR / "tokenizer" / "vocab.json")
        (Path(scratch) / "profile").mkdir()
        binary = chromium_path()
        if binary is None:
            print("needs Chromium (apt-get install chromium, or set $CHROMIUM)", file=sys.stderr)
            return 2
        with ComfyServer(Path(root), Path(python), base) as server, \
                Chromium(binary, Path(scratch) / "profile", WIDTH, HEIGHT) as chromium:
            browser = chromium.new_page()
            browser.goto(server.url)
            browser.wait_for(READY, 180)
            browser.evaluate("window.app.extensionManager.setting.set('Comfy.Minimap.Visible', false)")
            time.sleep(3.0)  # the first-run template browser opens a moment after the app
            for name, title in TEMPLATES.items():
                if only and name not in only:
                    continue
                workflow = json.loads((ROOT / "workflows" / f"{title}.json").read_text(encoding="utf-8"))
                open_workflow(browser, workflow, title)
                target = ROOT / "workflows" / f"{title}.jpg"
                target.write_bytes(photograph(browser, workflow, FOCUS[name]))
                print(target, target.stat().st_size)
                if os.environ.get("THUMBNAIL_PNG_DIR"):  # PNG copies to look at
                    png = photograph(browser, workflow, FOCUS[name], "png")
                    (Path(os.environ["THUMBNAIL_PNG_DIR"]) / f"{title}.png").write_bytes(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())

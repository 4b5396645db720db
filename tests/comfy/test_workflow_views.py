"""What a user sees in ComfyUI's real frontend (headless Chromium at 1920x1080, opt-in ``-m comfy``): every example
workflow opens framed (rendered node boxes inside the visible canvas, no overlaps, readable), the template browser
shows our cards with their pictures under the pack's title, and the frontend still reads audio tags the way
``tests/frontend_metadata.py`` mirrors. Opt-in: ``-m browser`` (needs what ``-m comfy`` needs plus Chromium)."""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.comfy.browser import Chromium, Page, chromium_path
from tests.comfy.comfy_server import ComfyServer
from tests.frontend_metadata import FRONTEND_SNIPPETS
from tests.workflows.ui_to_api import TEMPLATES
from tests.workflows.view import view_problems

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
READY = "!!(window.app && window.app.graph && document.querySelector('.side-tool-bar-container'))"
RENDERED = """(() => Object.fromEntries(window.app.graph._nodes.map(n => { const b = n.getBounding();
    return [n.id, [b[0], b[1], b[0] + b[2], b[1] + b[3]]]; })))()"""


@pytest.fixture(scope="module")
def browser(comfy_server: ComfyServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One 1920x1080 page of the real frontend (a fresh profile: the first-run template browser opens)."""
    binary = chromium_path()
    if binary is None:
        pytest.skip("needs Chromium: `apt-get install chromium` (or set $CHROMIUM)")
    with Chromium(binary, tmp_path_factory.mktemp("views_profile"), 1920, 1080) as chromium:
        page = chromium.new_page()
        page.goto(comfy_server.url)
        page.wait_for(READY, 180)
        yield page


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_workflow_opens_framed_in_the_real_frontend(browser: Page, name: str) -> None:
    workflow = json.loads((REPO / "workflows" / f"{TEMPLATES[name]}.json").read_text(encoding="utf-8"))
    browser.evaluate(f"window.app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}, "
                     "{showMissingModelsDialog: false})")
    time.sleep(1.0)
    ds = browser.evaluate("({scale: window.app.canvas.ds.scale, offset: [...window.app.canvas.ds.offset]})")
    assert ds == {"scale": workflow["extra"]["ds"]["scale"], "offset": workflow["extra"]["ds"]["offset"]}
    rendered = {int(k): tuple(v) for k, v in browser.evaluate(RENDERED).items()}
    assert view_problems(workflow, rendered) == []


def test_template_browser_shows_titles_pictures_and_the_pack_name(browser: Page) -> None:
    if not browser.evaluate("document.querySelectorAll('.p-dialog').length"):  # a fresh profile opens it by itself
        browser.evaluate("window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    click = ("(() => { const e = [...document.querySelectorAll('.p-dialog li, .p-dialog [role=option]')]"
             ".find(x => x.textContent.trim() === 'ACE-Step v1'); if (e) { e.click(); return true; } "
             "return false; })()")
    assert browser.wait_for(click, 60)  # the category is titled from locales/en/main.json
    first = json.dumps(f"template-workflow-{TEMPLATES['text2music']}")
    browser.wait_for(f"!!document.querySelector('[data-testid={json.dumps(first)[1:-1]}]')", 30)
    cards = browser.evaluate("[...document.querySelectorAll('[data-testid^=template-workflow-]')]"
                             ".map(e => e.getAttribute('data-testid'))")
    assert sorted(cards) == sorted(f"template-workflow-{title}" for title in TEMPLATES.values())
    images = []  # each card loads its picture (GET /api/workflow_templates/<pack>/<title>.jpg) once in view
    for index in range(len(cards)):
        card = f"document.querySelectorAll('[data-testid^=template-workflow-]')[{index}]"
        browser.evaluate(f"{card}.scrollIntoView()")
        image = f"{card}.querySelector('img')"
        browser.wait_for(f"!!({image} && {image}.naturalWidth)", 15)
        images.append(browser.evaluate(f"[{image}.alt, {image}.naturalWidth, {image}.naturalHeight]"))
    assert sorted(alt for alt, _, _ in images) == sorted(TEMPLATES.values())
    broken = [image for image in images if not image[1] == image[2] > 0]
    assert not broken, broken  # every picture loaded (no 404) and square like the cards


def test_the_frontend_still_reads_audio_tags_as_mirrored() -> None:
    """The JavaScript the tests' port relies on is in the installed frontend (else update frontend_metadata.py)."""
    from tests.comfy.conftest import comfy_paths

    _, python = comfy_paths()
    bundles = glob.glob(str(python.parent.parent / "lib" / "python*" / "site-packages" / "comfyui_frontend_package"
                            / "static" / "assets" / "index-*.js"))
    if not bundles:
        pytest.skip(f"no comfyui_frontend_package next to {python}")
    text = "".join(Path(b).read_text(encoding="utf-8", errors="replace") for b in bundles)
    missing = [snippet for snippet in FRONTEND_SNIPPETS if snippet not in text]
    assert not missing, missing

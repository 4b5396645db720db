"""The frontend extensions (``web/``): every file parses as an ES module, the node ids and names they use are the
Python side's (``nodes.web_events``), and their unit tests (``tests/web/*.test.mjs``, Node's built-in runner)
pass: time <-> pixel mapping, frame snapping, clamping, report rendering, chart scaling, loading without the
frontend API. The real-browser counterpart is ``tests/comfy/test_browser.py`` (opt-in)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nodes import NODE_CLASS_MAPPINGS, web_events
from tests.parity import REPO_ROOT

WEB = REPO_ROOT / "web"
WEB_FILES = sorted(WEB.rglob("*.js"))
FEATURE_FILES = sorted(WEB.glob("*.js"))
NODE_TESTS = sorted((REPO_ROOT / "tests" / "web").glob("*.test.mjs"))
CONTRACT = WEB / "lib" / "contract.js"
MIN_NODE = (20, 19)  # loads ES modules from .js files without a package.json "type": "module"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (needed for the web/ checks and unit tests)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    found = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if found < MIN_NODE:
        pytest.skip(f"Node.js {version} is too old; the web/ tests need {'.'.join(map(str, MIN_NODE))} or newer")
    return node


def js_exports(path: Path) -> dict[str, object]:
    """``export const NAME = <JSON literal>;`` declarations of a helper module."""
    found = re.findall(r"^export const (\w+) = (.+);$", path.read_text(encoding="utf-8"), flags=re.M)
    return {name: json.loads(value) for name, value in found}


@pytest.mark.parametrize("path", WEB_FILES, ids=lambda p: p.relative_to(WEB).as_posix())
def test_web_files_parse_as_es_modules(path: Path) -> None:
    result = subprocess.run([node_binary(), "--input-type=module", "--check"], input=path.read_text(), text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_web_unit_tests_pass() -> None:
    """``node --test tests/web/*.test.mjs``: the pure modules and the feature files' loading."""
    assert NODE_TESTS, "no tests/web/*.test.mjs"
    result = subprocess.run([node_binary(), "--test", *map(str, NODE_TESTS)], capture_output=True, text=True,
                            timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert re.search(r"^# fail 0$", result.stdout, flags=re.M), result.stdout[-4000:]


def test_contract_names_match_python() -> None:
    """Event names, UI-output keys, the route and the option name are the ones nodes/web_events.py defines."""
    exports = js_exports(CONTRACT)
    for name in ("LYRIC_REPORT_KEY", "WINDOW_KEY", "TIMELINE_OPTION", "LYRIC_REPORT_ROUTE", "TRAIN_NODE",
                 "TRAIN_PROGRESS_EVENT", "TRAIN_PREVIEW_EVENT"):
        assert exports[name] == getattr(web_events, name), name
    assert web_events.TRAIN_PROGRESS_EVENT == "acestep.train.progress"  # the training node's contract
    assert web_events.TRAIN_PREVIEW_EVENT == "acestep.train.preview"


def test_contract_node_ids_exist() -> None:
    """Every node id the frontend looks for is one of ours (the Train LoRA node is built in parallel)."""
    exports = js_exports(CONTRACT)
    ids = [v for k, v in exports.items() if k.endswith("_NODE") and k != "TRAIN_NODE"]
    ids += exports["SAMPLER_NODES"]
    assert len(ids) >= 8
    for node_id in ids:
        assert node_id in NODE_CLASS_MAPPINGS, node_id
    assert getattr(NODE_CLASS_MAPPINGS[exports["SAVE_AUDIO_NODE"]], "OUTPUT_NODE", False)


def test_no_constants_duplicated_from_python() -> None:
    """The latent frame rate reaches the frontend from Python (the node schema / UI output), never a copy."""
    for path in WEB_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"44100\s*/\s*(4096|512)|10\.76", text), f"{path.name} hard-codes the latent rate"


def test_one_extension_per_feature_file() -> None:
    for path in FEATURE_FILES:
        names = re.findall(r'const FEATURE = "(AceStepPack\.\w+)"', path.read_text(encoding="utf-8"))
        assert len(names) == 1, path.name
    for path in sorted((WEB / "lib").glob("*.js")):
        assert "registerExtension(" not in path.read_text(encoding="utf-8"), f"{path.name} is a helper module"


def test_lyric_report_renders_the_python_report(tmp_path: Path) -> None:
    """The HTML of a real multilingual report: languages (fallback highlighted), tags as English, warnings."""
    from acestep_core.lyrics import LyricTokenizer
    from tests.parity import PARITY_DIR, require_parity

    require_parity()
    tokenizer = LyricTokenizer.from_vocab(PARITY_DIR / "tokenizer" / "vocab.json")
    lyrics = "[verse]\nHello my friend, how are you\nHola amigo, ¿cómo estás?\n[Verse 1]\n你好世界\n[chorus]"
    report = web_events.lyric_report_json(tokenizer.inspect(lyrics, duration_s=4.0))
    source = tmp_path / "report.json"
    source.write_text(json.dumps(report, allow_nan=False), encoding="utf-8")
    script = (f"import {{ readFileSync }} from 'node:fs';"
              f"import {{ renderReportHtml }} from {json.dumps((WEB / 'lib' / 'lyric_report.js').as_uri())};"
              f"process.stdout.write(renderReportHtml(JSON.parse(readFileSync({json.dumps(str(source))}, 'utf8'))));")
    result = subprocess.run([node_binary(), "--input-type=module", "-e", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    html = result.stdout
    assert "gl → en" in html and "detected Galician, sung as English" in html
    assert html.count("tag (en)") == 3 and "zh → en" not in html
    assert "did you mean [verse]?" in html and "ni3hao3shi4jie4" in html
    assert "too_long_for_duration" in html  # 4 s is too short for these lyrics: a whole-lyrics warning
    assert f"{report['num_tokens']} lyric tokens" in html


def test_picker_frame_rule_matches_the_backend() -> None:
    """The picker's frame of a value, ``Math.trunc(s * latent_rate_hz)`` (web/lib/timeline.js frameOf), is the
    backend's ``seconds_to_frames(s)`` for every value it can write (up to 3 decimals, 0 to 240 s)."""
    from acestep_core.timing import seconds_to_frames

    rate = web_events.timeline_info()["latent_rate_hz"]
    assert "Math.trunc(seconds * rate)" in (WEB / "lib" / "timeline.js").read_text(encoding="utf-8")
    mismatches = [i for i in range(240_001) if int(i / 1000 * rate) != seconds_to_frames(i / 1000)]
    assert mismatches == []

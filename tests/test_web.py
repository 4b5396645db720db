"""The frontend extension: every web/*.js parses as an ES module, and the node ids it patches exist."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from nodes import NODE_CLASS_MAPPINGS
from tests.parity import REPO_ROOT

WEB_FILES = sorted((REPO_ROOT / "web").glob("*.js"))


@pytest.mark.parametrize("path", WEB_FILES, ids=lambda p: p.name)
def test_web_files_parse_as_es_modules(path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (needed only to syntax-check web/*.js)")
    result = subprocess.run([node, "--input-type=module", "--check"], input=path.read_text(), text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_audio_player_targets_our_output_nodes() -> None:
    source = (REPO_ROOT / "web" / "acestep_audio_player.js").read_text()
    ids = re.findall(r'"(AceStepV1\w+)"', source)
    assert ids, "no node ids found"
    for node_id in ids:
        assert node_id in NODE_CLASS_MAPPINGS, node_id
        assert getattr(NODE_CLASS_MAPPINGS[node_id], "OUTPUT_NODE", False), f"{node_id} is not an output node"

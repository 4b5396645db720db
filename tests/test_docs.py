"""Docs that must match the code: the divergence index and the environment-variable table of the README."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.parity import REPO_ROOT


def test_divergences_index_is_current() -> None:
    result = subprocess.run([sys.executable, "scripts/divergences_index.py", "--check"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_divergences_index_covers_every_module_that_diverges() -> None:
    index = (REPO_ROOT / "DIVERGENCES.md").read_text(encoding="utf-8")
    for path in (REPO_ROOT / "acestep_core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        docstring = text.split('"""')[1] if text.startswith('"""') else ""
        if re.search(r"^\s*(deliberate )?divergences?\b", docstring, re.IGNORECASE | re.MULTILINE):
            module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
            assert f"## `{module}`" in index, module


def test_every_environment_variable_is_documented() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    used = set()
    for folder in ("acestep_core", "nodes", "tests", "bench", "scripts"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used |= set(re.findall(r'(?:environ(?:\.get)?\(|environ\[|getenv\(|_ENV = )"([A-Z][A-Z0-9_]+)"', text))
    assert used, "found no environment variables: the scan is broken"
    used = {name for name in used if name.startswith(("ACESTEP_", "COMFYUI_"))}
    missing = sorted(name for name in used if f"`{name}`" not in readme)
    assert not missing, f"README's environment variable table lacks {missing}"

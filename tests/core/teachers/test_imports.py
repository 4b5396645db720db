"""The teachers package stays transformers-free and opens pickles in one place only."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

from tests.parity import REPO_ROOT


def test_teachers_import_without_transformers_or_hub() -> None:
    code = textwrap.dedent("""
        import sys
        for name in ["transformers", "diffusers", "peft", "accelerate", "lightning", "pytorch_lightning",
                     "huggingface_hub", "torchaudio", "comfy", "folder_paths"]:
            sys.modules[name] = None  # any import raises ImportError
        import torch
        from acestep_core.teachers import MERT_V1_330M_CONFIG, HubertEncoder, TeacherSet, resolve_repa
        with torch.device("meta"):
            HubertEncoder(MERT_V1_330M_CONFIG)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def _torch_load_calls(source: str) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]


def test_torch_load_only_in_convert_and_only_weights_only() -> None:
    calls = {path.name: _torch_load_calls(path.read_text(encoding="utf-8"))
             for path in (REPO_ROOT / "acestep_core" / "teachers").glob("*.py")}
    users = {name: found for name, found in calls.items() if found}
    assert list(users) == ["convert.py"], users
    for call in users["convert.py"]:
        flags = {kw.arg: kw.value for kw in call.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True

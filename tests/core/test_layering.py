"""acestep_core must import and work with ComfyUI absent (and never import it)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from tests.parity import REPO_ROOT

BLOCKED = ["comfy", "comfy.ops", "folder_paths", "server", "node_helpers", "comfy_api", "nodes", "diffusers",
           "transformers", "peft"]


def test_core_imports_without_comfyui_or_hf_model_libraries() -> None:
    code = textwrap.dedent(f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # any import of these raises ImportError
        import acestep_core
        from acestep_core import transformer, dcae, vocoder
        from acestep_core.audio import codec, mel
        from acestep_core.text import encoder
        from acestep_core.loading import loader
        from acestep_core import lyrics
        from acestep_core.text import prompt_tokenizer
        import torch
        with torch.device("meta"):
            transformer.AceStepTransformer(acestep_core.TransformerConfig.tiny())
        leaked = [m for m in sys.modules if m.split(".")[0] in {{"comfy", "folder_paths", "server", "nodes"}}
                  and sys.modules[m] is not None]
        assert not leaked, leaked
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_core_sources_never_import_comfyui() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(comfy|comfy_api|folder_paths|server|node_helpers|nodes)\b")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}: {line.strip()}"
        for path in (REPO_ROOT / "acestep_core").rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if pattern.match(line)
    ]
    assert not offenders, offenders

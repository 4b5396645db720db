"""The README's Python example runs (on the tiny checkpoint, CPU, 2 steps), so it stays true."""

from __future__ import annotations

import re

import torch

from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity


def test_readme_python_example_runs() -> None:
    require_parity()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    vocab = str(PARITY_DIR / "tokenizer" / "vocab.json")
    replacements = {  # the README targets a GPU and the real model; run it small
        '"/models/ACE-Step-v1-3.5B"': repr(str(TINY_CHECKPOINT)),
        'device="cuda", dtype=torch.bfloat16': 'device="cpu"',
        "resolve_lyric_vocab(checkpoint=path)": f"resolve_lyric_vocab({vocab!r})",
        "audio_duration=30.0)": "audio_duration=2.0, infer_step=2)",
    }
    for old, new in replacements.items():
        assert old in code, f"README example changed: {old!r} not found; update this test"
        code = code.replace(old, new)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    audio = namespace["audio_48k"]
    assert isinstance(audio, torch.Tensor) and audio.shape[:2] == (1, 2) and torch.isfinite(audio).all()

"""Preview songs during training: a short song rendered with the LoRA as it is at that step, with a fixed seed
and a prompt and lyrics taken from the dataset, so the previews of one run are comparable.

The original renders a 240 s song from the training batch itself at step 0 and every 2000 steps (60 Euler steps,
APG 15, no ERG); here the length, the number of steps and the song are settings (default 30 s, 27 steps, the
app's defaults otherwise), and nothing is rendered at step 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..audio.files import write_audio
from ..sampling.params import GenerationParams
from ..sampling.pipeline import generate

__all__ = ["PREVIEW_SAMPLE_RATE", "PreviewSpec", "render_preview"]

PREVIEW_SAMPLE_RATE = 48000


@dataclass(frozen=True)
class PreviewSpec:
    prompt: str
    lyrics: str
    seconds: float = 30.0
    steps: int = 27
    seed: int = 0


@torch.no_grad()
def render_preview(model: Any, spec: PreviewSpec, encode_prompt: Any, encode_lyrics: Any, path: Path) -> Path:
    """Generate ``spec`` with ``model`` (``.transformer`` with the LoRA attached, ``.text_encoder``, ``.codec``)
    and write it to ``path`` (48 kHz); a non-finite result raises instead of writing."""
    params = GenerationParams(prompt=spec.prompt, lyrics=spec.lyrics, audio_duration=spec.seconds,
                              infer_step=spec.steps, manual_seeds=[spec.seed])
    result = generate(model, params, encode_prompt=encode_prompt, encode_lyrics=encode_lyrics)
    audio = model.codec.decode(result.latents, sample_rate=PREVIEW_SAMPLE_RATE)[0].float().cpu()
    if not bool(torch.isfinite(audio).all()):
        raise FloatingPointError(f"the preview at {path.stem} is not finite (the LoRA has diverged); nothing written")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{path.suffix}")
    write_audio(temporary, audio, PREVIEW_SAMPLE_RATE, metadata={"preview_of": str(path.parent.parent),
                                                                "seconds": spec.seconds, "seed": spec.seed})
    temporary.replace(path)
    return path

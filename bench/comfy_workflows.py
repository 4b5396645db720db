"""The API-format prompts ``bench/bench_comfy.py`` queues: our text2music workflow, ComfyUI's native ACE-Step
graph (the ``audio_ace_step_1_t2a_song`` template of ComfyUI 0.3.64 with the step count of the comparison), and a
load-only prompt. Each run gets another seed and another last tag word, so ComfyUI's output cache never answers
and the text encoders run again (the condition length changes too, as between real prompts)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUR_WORKFLOW = REPO / "workflows" / "api" / "text2music.json"
CHECKPOINT_NAME = "ace_step_v1_3.5b.safetensors"
TAG_WORDS = ("pop", "electronic", "synth", "upbeat", "female vocals", "catchy", "120 bpm", "dance", "bright",
             "energetic", "bass", "drums", "piano", "guitar", "strings", "warm", "modern", "studio", "radio", "chorus",
             "hook", "melodic", "lively", "clean", "punchy", "wide", "stereo", "polished", "happy")
RUN_WORDS = ("summer", "night", "neon", "ocean", "city", "dream", "fire", "rain", "gold", "silver", "storm", "sky")
LYRIC_LINES = ("City lights are calling out my name", "Every street a rhythm, every step a flame",
               "We are dancing in the neon rain", "Nothing here will ever be the same",
               "Hold the moment, let the night begin", "Hearts are racing, let the music in")


def tags(run: int) -> str:
    """30 tag words, the last one changing with ``run``."""
    return ", ".join([*TAG_WORDS, RUN_WORDS[run % len(RUN_WORDS)]])


def lyrics() -> str:
    """Verses and choruses, about 300 lyric tokens."""
    blocks = []
    for part in ("verse", "chorus", "verse", "chorus", "bridge", "chorus"):
        blocks.append(f"[{part}]\n" + "\n".join(LYRIC_LINES[i % len(LYRIC_LINES)] for i in range(len(blocks),
                                                                                               len(blocks) + 4)))
    return "\n\n".join(blocks) + "\n"


def our_prompt(seconds: float, steps: int, acceleration: str, run: int, *, ckpt_name: str = CHECKPOINT_NAME,
               save_format: str = "wav") -> dict[str, Any]:
    """``workflows/api/text2music.json`` with the bench's settings (its APG / ERG guidance defaults kept; the
    PreviewAudio node dropped: it needs PyAV)."""
    prompt = copy.deepcopy(json.loads(OUR_WORKFLOW.read_text(encoding="utf-8")))
    prompt = {key: node for key, node in prompt.items() if node["class_type"] != "PreviewAudio"}
    by_type = {node["class_type"]: node["inputs"] for node in prompt.values()}
    by_type["AceStepV1CheckpointLoader"]["ckpt_name"] = ckpt_name
    by_type["AceStepV1TextEncode"].update(tags=tags(run), lyrics=lyrics())
    by_type["AceStepV1EmptyLatent"]["seconds"] = float(seconds)
    by_type["AceStepV1Sampler"].update(steps=steps, seed=1000 + run, acceleration=acceleration)
    by_type["AceStepV1SaveAudio"].update(format=save_format, filename_prefix="bench/ours")
    return prompt


def native_prompt(seconds: float, steps: int, run: int, *, ckpt_name: str = CHECKPOINT_NAME) -> dict[str, Any]:
    """ComfyUI's ACE-Step template: CheckpointLoaderSimple, TextEncodeAceStepAudio (lyrics strength 0.99),
    ConditioningZeroOut negative, ModelSamplingSD3 (shift 5), LatentApplyOperationCFG with Reinhard tonemap (1.0),
    KSampler (euler, simple, cfg 5), VAEDecodeAudio; saved as 16-bit WAV (``AceStepBenchSaveWAV``)."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "TextEncodeAceStepAudio",
              "inputs": {"clip": ["1", 1], "tags": tags(run), "lyrics": lyrics(), "lyrics_strength": 0.99}},
        "3": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["2", 0]}},
        "4": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["1", 0], "shift": 5.0}},
        "5": {"class_type": "LatentOperationTonemapReinhard", "inputs": {"multiplier": 1.0}},
        "6": {"class_type": "LatentApplyOperationCFG", "inputs": {"model": ["4", 0], "operation": ["5", 0]}},
        "7": {"class_type": "EmptyAceStepLatentAudio", "inputs": {"seconds": float(seconds), "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {"model": ["6", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                   "latent_image": ["7", 0], "seed": 1000 + run, "steps": steps,
                                                   "cfg": 5.0, "sampler_name": "euler", "scheduler": "simple",
                                                   "denoise": 1.0}},
        "9": {"class_type": "VAEDecodeAudio", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "AceStepBenchSaveWAV", "inputs": {"audio": ["9", 0], "filename_prefix": "bench/native"}},
    }


def load_only_prompt(route: str, *, ckpt_name: str = CHECKPOINT_NAME) -> dict[str, Any]:
    """Only the route's checkpoint loader, into a sink that also moves the models to the GPU: a first song's time
    then excludes reading the file and moving the weights (as later songs find them)."""
    loader = ({"class_type": "AceStepV1CheckpointLoader", "inputs": {"ckpt_name": ckpt_name, "dtype": "auto",
                                                                     "lyric_vocab": ""}}
              if route == "ours" else {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}})
    return {"1": loader, "2": {"class_type": "AceStepBenchSink", "inputs": {"value": ["1", 0], "to_gpu": True}}}

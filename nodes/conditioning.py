"""Text + lyrics -> ``ACESTEP_CONDITIONING`` (tokenized up front, with the lyric inspection), and the optional
``ACESTEP_GUIDANCE`` options node that keeps rarely used sampler knobs out of the default graph.

The conditioning is a dict: ``prompt``/``lyrics`` (the texts), ``prompt_tokens`` (UMT5 ids, mask ``[1, L]``),
``lyric_tokens`` (ids, mask lists, or None for no lyrics), ``report`` (the inspection text) and ``report_json``
(the same for the frontend's lyric inspector, :func:`nodes.web_events.lyric_report_json`). The sampler feeds the
tokens to :func:`acestep_core.sampling.pipeline.generate`, which runs the text encoder itself.
"""

from __future__ import annotations

import logging
from typing import Any

from .types import CATEGORY, CONDITIONING, GUIDANCE, MODEL
from .web_events import LYRIC_REPORT_KEY, lyric_report_json

logger = logging.getLogger(__name__)


def format_report(report: Any) -> str:
    """A :class:`~acestep_core.lyrics.LyricReport` as text: token count, one line per lyric line, warnings."""
    lines = [f"{report.num_tokens} lyric tokens"]
    for line in report.lines:
        if not line.stripped:
            continue
        if line.skipped:
            lines.append(f"{line.index + 1:>3} (skipped: {line.skip_reason}) {line.raw}")
            continue
        shown = line.reported_language  # None on structure-tag lines: they are read as English
        lang = (line.encode_language or "-") if shown is None else shown
        if shown is not None and line.encode_language and line.encode_language != shown:
            lang = f"{lang}->{line.encode_language}"
        tag = " [tag]" if line.is_structure_tag else ""
        lines.append(f"{line.index + 1:>3} [{lang}]{tag} {line.normalized or ''}")
    for warning in report.warnings:
        where = f"line {warning.line}: " if warning.line is not None else ""
        lines.append(f"{warning.severity}: {where}{warning.message}")
    return "\n".join(lines)


def encode_texts(model: Any, tags: str, lyrics: str) -> dict[str, Any]:
    """Tokenize ``tags`` and ``lyrics`` with the model's tokenizers (lyric errors raised here, not mid-sampling)."""
    if not isinstance(tags, str) or not isinstance(lyrics, str):
        raise ValueError("tags and lyrics must be text")
    tokenizer = model.prompt_tokenizer()
    tokens = tokenizer(tags)
    conditioning: dict[str, Any] = {
        "prompt": tags, "lyrics": lyrics,
        "prompt_tokens": (tokens.input_ids, tokens.attention_mask),
        "lyric_tokens": None, "report": "no lyrics (instrumental)", "report_json": lyric_report_json(None),
    }
    if lyrics.strip():
        lyric_tokenizer = model.lyric_tokenizer()
        report = lyric_tokenizer.inspect(lyrics)
        encoded = lyric_tokenizer.encode(lyrics)
        conditioning.update(lyric_tokens=(encoded.ids, encoded.mask), report=format_report(report),
                            report_json=lyric_report_json(report))
    cut = tokenizer.truncation_warning(tags)
    if cut:
        logger.warning("ACE-Step Text Encode: %s", cut)
        conditioning["report"] = f"warning: {cut}\n{conditioning['report']}"
    return conditioning


class AceStepV1TextEncode:
    """Tags (style prompt) and lyrics for ACE-Step v1, with the lyric front-end's inspection shown on the node:
    detected languages, normalized lines and warnings."""

    TITLE = "ACE-Step v1 Text Encode"
    CATEGORY = CATEGORY
    RETURN_TYPES = (CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Tags + lyrics, tokenized, for the ACE-Step v1 sampler / flow-edit.",)
    FUNCTION = "encode"
    OUTPUT_NODE = False
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        return {"required": {
            "model": (MODEL, {"tooltip": "The ACE-Step v1 model (its UMT5 and lyric tokenizers are used)."}),
            "tags": ("STRING", {"multiline": True, "default": "pop, electronic, upbeat, female vocal",
                                "tooltip": "Style prompt: comma-separated genres, instruments, moods."}),
            "lyrics": ("STRING", {"multiline": True, "default": "[verse]\n\n[chorus]\n",
                                  "tooltip": ("Lyrics with structure tags like [verse], [chorus]; any supported "
                                              "language (auto-detected per line, or a [xx] prefix). Empty or "
                                              "[instrumental] for music only.")}),
        }}

    def encode(self, model: Any, tags: str, lyrics: str) -> dict[str, Any]:
        conditioning = encode_texts(model, tags, lyrics)
        ui = {"text": [conditioning["report"]], LYRIC_REPORT_KEY: [conditioning["report_json"]]}
        return {"ui": ui, "result": (conditioning,)}


GUIDANCE_DEFAULTS: dict[str, Any] = {
    "guidance_interval": 0.5, "guidance_interval_decay": 0.0, "min_guidance_scale": 3.0,
    "use_erg_tag": True, "use_erg_lyric": True, "use_erg_diffusion": True,
    "guidance_scale_text": 0.0, "guidance_scale_lyric": 0.0, "oss_steps": "",
}


class AceStepV1GuidanceOptions:
    """Advanced guidance knobs of the original app (guidance interval / decay, ERG, double condition, oss steps).
    Without this node the sampler uses the original app's defaults."""

    TITLE = "ACE-Step v1 Guidance Options"
    CATEGORY = CATEGORY
    RETURN_TYPES = (GUIDANCE,)
    RETURN_NAMES = ("guidance",)
    OUTPUT_TOOLTIPS = ("Connect to the sampler's or flow-edit's optional 'guidance' input.",)
    FUNCTION = "build"
    DESCRIPTION = __doc__

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - ComfyUI API name
        d = GUIDANCE_DEFAULTS
        unit = {"min": 0.0, "max": 1.0, "step": 0.01}
        return {"required": {
            "guidance_interval": ("FLOAT", {"default": d["guidance_interval"], **unit, "tooltip": (
                "Fraction of the steps (centred) that get guidance; 1 = every step.")}),
            "guidance_interval_decay": ("FLOAT", {"default": d["guidance_interval_decay"], **unit, "tooltip": (
                "How far the guidance scale decays toward min_guidance_scale inside the interval (0 = constant).")}),
            "min_guidance_scale": ("FLOAT", {"default": d["min_guidance_scale"], "min": 0.0, "max": 200.0,
                                             "step": 0.1, "tooltip": "Floor of the guidance decay."}),
            "use_erg_tag": ("BOOLEAN", {"default": True, "tooltip": "Entropy-rectifying guidance on the tags."}),
            "use_erg_lyric": ("BOOLEAN", {"default": True, "tooltip": "Entropy-rectifying guidance on the lyrics."}),
            "use_erg_diffusion": ("BOOLEAN", {"default": True, "tooltip": (
                "Entropy-rectifying guidance in the diffusion transformer's unconditional pass.")}),
            "guidance_scale_text": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 200.0, "step": 0.1, "tooltip": (
                "Double-condition guidance: text scale (with guidance_scale_lyric > 0 replaces the normal guidance; "
                "0 = off).")}),
            "guidance_scale_lyric": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 200.0, "step": 0.1, "tooltip": (
                "Double-condition guidance: lyric scale (0 = off).")}),
            "oss_steps": ("STRING", {"default": "", "tooltip": (
                "Optimal-step subset of the schedule, 1-based step numbers like '16, 29, 52' (empty = all steps; "
                "not with heun).")}),
        }}

    def build(self, **options: Any) -> tuple[dict[str, Any]]:
        unknown = sorted(set(options) - set(GUIDANCE_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown guidance options {unknown}; known: {sorted(GUIDANCE_DEFAULTS)}")
        return ({**GUIDANCE_DEFAULTS, **options},)

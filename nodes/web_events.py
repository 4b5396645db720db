"""The contract between the pack's Python side and its frontend (``web/``), in one place.

``web/lib/contract.js`` repeats the names below; ``tests/test_web.py`` checks that both agree.

Server -> browser:

* node UI outputs (the ``"ui"`` dict a node returns; the frontend passes it to the node's ``onExecuted`` and keeps
  it with the workflow's outputs):

  - :data:`LYRIC_REPORT_KEY` on Text Encode: ``[lyric_report_json(report)]``;
  - :data:`WINDOW_KEY` on Repaint Window / Extend Latent: ``[window_info(...)]``, the source the node ran on;
  - ``"audio"`` on Save Audio: ComfyUI's own list of saved files (one per batch item);

* websocket events, sent with :func:`send_event` (``PromptServer.instance.send_sync``), for the Train LoRA node
  (:data:`TRAIN_NODE`):

  - :data:`TRAIN_PROGRESS_EVENT`, payload :func:`train_progress_payload`;
  - :data:`TRAIN_PREVIEW_EVENT`, payload :func:`train_preview_payload`;

* node schemas: the :data:`TIMELINE_OPTION` option of the first seconds widget of Repaint Window / Extend Latent
  holds :func:`timeline_info` (latent frame rate and limits), so the region picker snaps as the backend counts.

Browser -> server: ``POST`` :data:`LYRIC_REPORT_ROUTE` with ``{"lyrics": str, "ckpt_name"?: str,
"lyric_vocab"?: str, "duration_s"?: number}`` answers :func:`lyric_report_json` of the same tokenizer the
Text Encode node uses, or ``{"error": str}`` with HTTP 400 (see :mod:`nodes.web_routes`).
"""

from __future__ import annotations

import math
from typing import Any

from . import comfy_adapter as adapter

__all__ = [
    "LYRIC_REPORT_KEY",
    "LYRIC_REPORT_ROUTE",
    "TIMELINE_OPTION",
    "TRAIN_NODE",
    "TRAIN_PREVIEW_EVENT",
    "TRAIN_PROGRESS_EVENT",
    "WINDOW_KEY",
    "lyric_report_json",
    "send_event",
    "timeline_info",
    "train_preview_payload",
    "train_progress_payload",
    "window_info",
]

LYRIC_REPORT_KEY = "acestep_lyric_report"
WINDOW_KEY = "acestep_window"
TIMELINE_OPTION = "acestep_timeline"
LYRIC_REPORT_ROUTE = "/acestep/v1/lyric_report"
TRAIN_NODE = "AceStepV1TrainLoRA"
TRAIN_PROGRESS_EVENT = "acestep.train.progress"
TRAIN_PREVIEW_EVENT = "acestep.train.preview"
AUDIO_FILE_TYPES = ("output", "temp")


# ------------------------------------------------------------------------------------------------ timeline
def timeline_info() -> dict[str, Any]:
    """How the backend counts time: ``latent_rate_hz`` frames per second (a window edge at ``s`` seconds is frame
    ``int(s * latent_rate_hz)``), the codec's ``sample_rate`` and the longest generation window ``max_frames``."""
    from acestep_core.timing import CODEC, LATENT_FRAME_RATE_HZ, MAX_FRAMES

    return {"latent_rate_hz": LATENT_FRAME_RATE_HZ, "sample_rate": CODEC.sample_rate, "max_frames": MAX_FRAMES}


def window_info(source_frames: int, **used: float | int) -> dict[str, Any]:
    """The UI output of a window node: the source length in latent frames and seconds, plus the values it ran
    with (``start_s``/``end_s`` or ``left_s``/``right_s`` and their frames)."""
    info = timeline_info()
    return {**info, "source_frames": int(source_frames), "source_s": source_frames / info["latent_rate_hz"],
            **used}


# ----------------------------------------------------------------------------------------------- lyrics
def lyric_report_json(report: Any) -> dict[str, Any]:
    """A :class:`~acestep_core.lyrics.LyricReport` as JSON for the lyric inspector (``None``: instrumental).

    Lines are 1-based; ``detected_language`` is what a user should see (``None`` on structure-tag lines, which
    are read as English, see ``LyricLine.reported_language``); ``warnings`` of the whole lyrics have
    ``line: None``. ``suits`` is the song length the token count fits: at least ``min_s`` (above
    ``TOKENS_PER_SECOND_LIMIT`` tokens/s the report warns), typically ``typical_s`` (the official sung examples)."""
    from acestep_core.lyrics.report import SUNG_TOKENS_PER_SECOND, TOKENS_PER_SECOND_LIMIT

    if report is None:
        return {"instrumental": True, "num_tokens": 0, "duration_s": None, "lines": [], "warnings": [],
                "suits": None}
    lines = []
    for line in report.lines:
        if not line.stripped:
            continue
        lines.append({
            "line": line.index + 1, "text": line.stripped, "structure_tag": line.is_structure_tag,
            "detected_language": line.reported_language, "encode_language": line.encode_language,
            "normalized": line.normalized, "num_tokens": line.num_tokens, "unknown_pieces": list(line.unknown_pieces),
            "skipped": line.skip_reason,
        })
    warnings = [{"line": w.line, "code": w.code, "severity": w.severity, "message": w.message}
                for w in report.warnings]
    n = report.num_tokens
    low, high = SUNG_TOKENS_PER_SECOND
    suits = {"min_s": n / TOKENS_PER_SECOND_LIMIT, "typical_s": [n / high, n / low],
             "tokens_per_second_limit": TOKENS_PER_SECOND_LIMIT} if n else None
    return {"instrumental": False, "num_tokens": n, "duration_s": report.duration_s, "lines": lines,
            "warnings": warnings, "suits": suits}


# ------------------------------------------------------------------------------------------------ training
def _finite_or_none(value: float, name: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value) if math.isfinite(value) else None  # JSON has no NaN / inf: the chart shows a gap


def _count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def train_progress_payload(node: str, step: int, max_steps: int, loss: float, lr: float,
                           elapsed_s: float) -> dict[str, Any]:
    """The :data:`TRAIN_PROGRESS_EVENT` payload; ``node`` is the node's id (its ``UNIQUE_ID`` hidden input).
    A non-finite ``loss`` or ``lr`` becomes ``None`` (a diverged step shows as a gap, not a broken message)."""
    return {"node": str(node), "step": _count(step, "step", 0), "max_steps": _count(max_steps, "max_steps", 1),
            "loss": _finite_or_none(loss, "loss"), "lr": _finite_or_none(lr, "lr"),
            "elapsed_s": _finite_or_none(elapsed_s, "elapsed_s")}


def train_preview_payload(node: str, step: int, filename: str, subfolder: str = "",
                          file_type: str = "output") -> dict[str, Any]:
    """The :data:`TRAIN_PREVIEW_EVENT` payload: a preview rendered at ``step``, saved in ComfyUI's ``output`` or
    ``temp`` folder (``filename`` inside ``subfolder``, as ``/view`` takes them)."""
    if not isinstance(filename, str) or not filename or "/" in filename or "\\" in filename:
        raise ValueError(f"filename: expected a plain file name, got {filename!r}")
    if file_type not in AUDIO_FILE_TYPES:
        raise ValueError(f"file_type: expected one of {AUDIO_FILE_TYPES}, got {file_type!r}")
    return {"node": str(node), "step": _count(step, "step", 0),
            "audio": {"filename": filename, "subfolder": str(subfolder), "type": file_type}}


def send_event(event: str, payload: dict[str, Any]) -> bool:
    """Send ``payload`` to the browser that queued the running prompt; False outside ComfyUI."""
    return adapter.send_event(event, payload)

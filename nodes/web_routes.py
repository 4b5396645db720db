"""The pack's one HTTP route, for the lyric inspector's "check lyrics" button (before any run).

``POST /acestep/v1/lyric_report`` (:data:`nodes.web_events.LYRIC_REPORT_ROUTE`) with ``{"lyrics": str,
"ckpt_name"?: str, "lyric_vocab"?: str, "duration_s"?: number}`` answers the report the Text Encode node would
show for these lyrics (:func:`nodes.web_events.lyric_report_json`): the lyric vocabulary is found as the loader
node finds it (``lyric_vocab`` if given, else next to the checkpoint ``ckpt_name``, else ComfyUI's bundled copy)
without loading or downloading any model. Input errors answer HTTP 400 ``{"error": message}``.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

from . import comfy_adapter as adapter
from .web_events import LYRIC_REPORT_ROUTE, lyric_report_json

logger = logging.getLogger(__name__)

_tokenizers: dict[str, Any] = {}  # vocab path -> LyricTokenizer (keeps its per-line cache between requests)
_tokenizers_lock = threading.Lock()


def _checkpoint_path(ckpt_name: str) -> Path | None:
    """The checkpoint a loader choice names, without downloading (None for the download choice or a missing one)."""
    from .loaders import DOWNLOAD_CHOICE, resolve_checkpoint

    if not ckpt_name or ckpt_name == DOWNLOAD_CHOICE:
        return None
    try:
        return resolve_checkpoint(ckpt_name)
    except Exception:  # noqa: BLE001 - a missing checkpoint still has ComfyUI's bundled vocabulary
        return None


def _tokenizer(ckpt_name: str, lyric_vocab: str) -> Any:
    from acestep_core.lyrics import LyricTokenizer, resolve_lyric_vocab

    vocab = resolve_lyric_vocab(lyric_vocab.strip() or None, checkpoint=_checkpoint_path(ckpt_name),
                                comfyui_root=adapter.comfyui_root())
    key = str(vocab.resolve())
    with _tokenizers_lock:
        if key not in _tokenizers:
            _tokenizers[key] = LyricTokenizer.from_vocab(vocab)
        return _tokenizers[key]


def _error(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": message}


def lyric_report_response(body: Any) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON)`` for one request body (see the module docstring)."""
    from acestep_core.errors import AceStepInputError

    if not isinstance(body, dict):
        return _error("expected a JSON object like {\"lyrics\": \"...\"}")
    lyrics = body.get("lyrics")
    if not isinstance(lyrics, str):
        return _error(f"lyrics: expected text, got {type(lyrics).__name__}")
    options = {name: body.get(name) or "" for name in ("ckpt_name", "lyric_vocab")}
    if not all(isinstance(value, str) for value in options.values()):
        return _error("ckpt_name and lyric_vocab must be text (the loader node's widget values)")
    duration = body.get("duration_s")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                 or not math.isfinite(duration) or duration <= 0):
        return _error(f"duration_s: expected a positive number of seconds or null, got {duration!r}")
    if not lyrics.strip():
        return 200, lyric_report_json(None)
    try:
        report = _tokenizer(options["ckpt_name"], options["lyric_vocab"]).inspect(lyrics, duration_s=duration)
    except AceStepInputError as exc:
        return _error(str(exc))
    return 200, lyric_report_json(report)


def register_routes() -> bool:
    """Register the route on ComfyUI's server (called once by the pack's ``__init__``); False standalone."""
    registered = adapter.add_json_route(LYRIC_REPORT_ROUTE, lyric_report_response)
    if registered:
        logger.debug("ACE-Step: route %s registered", LYRIC_REPORT_ROUTE)
    return registered

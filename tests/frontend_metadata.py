"""ComfyUI's frontend reading a workflow out of a dropped audio file, ported line by line to Python for the tests.

Source: ``comfyui_frontend_package`` 1.27.10 (the frontend of ComfyUI 0.3.64), ``static/assets/index-*.js``:
``getFromFlacBuffer`` + ``parseVorbisComment`` (FLAC), ``getOggMetadata`` and ``getMp3Metadata``, and the
``handleFile`` branches that call them (``file.type`` comes from the extension; WAV has no branch, so a dropped
WAV never restores a workflow). Quirks are kept on purpose, because they decide whether a file works:

* bytes are turned into text one by one with ``String.fromCharCode`` (Latin-1), so non-ASCII JSON is garbled;
* Ogg and MP3 are searched with regular expressions over the first chunks of the file, read 4096, 8192, 16384...
  bytes at a time (``new Uint8Array(buf, header.length, header.length + 4096)``, a RangeError past the end);
* Ogg: ``/prompt=(\\{.*?(\\}.*?\\u0000))/s`` then ``/\\{.*\\}/`` on the group;
  MP3: ``/prompt\\u0000(\\{.*?\\})\\u0000/s``.

:data:`FRONTEND_SNIPPETS` are the literal JavaScript pieces this port relies on; ``tests/comfy`` checks they are
still in the installed frontend.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

__all__ = ["FRONTEND_SNIPPETS", "FrontendRangeError", "load_workflow_from_file"]

FRONTEND_SNIPPETS = (
    "let prompt_s = header.match(/prompt\\u0000(\\{.*?\\})\\u0000/s)?.[1];",
    "let prompt_s = header.match(/prompt=(\\{.*?(\\}.*?\\u0000))/s)?.[1]?.match(/\\{.*\\}/)?.[0];",
    "let workflow_s = header.match(/workflow=(\\{.*?(\\}.*?\\u0000))/s)?.[1]?.match(/\\{.*\\}/)?.[0];",
    "const workflow = pngInfo?.workflow || pngInfo?.Workflow;",
    'if (page.match("OggS\\0")) oggs++;',
    'if (page.match("ÿû")) break;',
    "...new Uint8Array(arrayBuffer, header.length, header.length + 4096)",
    'extensions: [".mp3", ".ogg", ".flac"],',
)
_JS_DOT = r"[^\n\r\u2028\u2029]"  # "." without the s flag


class FrontendRangeError(Exception):
    """``new Uint8Array(buffer, offset, length)`` past the end of the file: the frontend's read throws."""


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")


def _chunk(data: bytes, offset: int) -> str:
    length = offset + 4096
    if offset + length > len(data):
        raise FrontendRangeError(f"Uint8Array({offset}, {length}) past the end of {len(data)} bytes")
    return _latin1(data[offset:offset + length])


def _flac(data: bytes) -> dict[str, str] | None:
    if _latin1(data[:4]) != "fLaC":
        return None
    offset, comments = 4, None
    while offset < len(data):
        is_last, block_type = data[offset] & 128, data[offset] & 127
        block_size = struct.unpack(">I", data[offset:offset + 4])[0] & 16777215
        offset += 4
        if block_type == 4:
            comments = _vorbis(data[offset:offset + block_size])
        offset += block_size
        if is_last:
            break
    return comments


def _vorbis(view: bytes) -> dict[str, str]:
    offset = 0
    (vendor_length,) = struct.unpack_from("<I", view, offset)
    offset += 4 + vendor_length
    (count,) = struct.unpack_from("<I", view, offset)
    offset += 4
    comments: dict[str, str] = {}
    for _ in range(count):
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        comment = _latin1(view[offset:offset + length])
        offset += length
        index = comment.find("=")
        key = comment[:index] if index >= 0 else ""  # JS: substring(0, -1) is ""
        comments[key] = comment[index + 1:]
    return comments


def _ogg(data: bytes) -> tuple[Any, Any]:
    oggs, header = 0, ""
    while len(header) < len(data):
        page = _chunk(data, len(header))
        if "OggS\0" in page:
            oggs += 1
        header += page
        if oggs > 1:
            break

    def find(key: str) -> Any:
        match = re.search(key + r"=(\{.*?(\}.*?\x00))", header, re.S)
        inner = re.search(r"\{" + _JS_DOT + r"*\}", match.group(1)) if match else None
        return json.loads(inner.group(0)) if inner else None

    return find("workflow"), find("prompt")


def _mp3(data: bytes) -> tuple[Any, Any]:
    header = ""
    while len(header) < len(data):
        page = _chunk(data, len(header))
        header += page
        if "\xff\xfb" in page:
            break

    def find(key: str) -> Any:
        match = re.search(key + r"\x00(\{.*?\})\x00", header, re.S)
        return json.loads(match.group(1)) if match else None

    return find("workflow"), find("prompt")


def load_workflow_from_file(path: str | Path) -> tuple[str, Any]:
    """What dropping ``path`` on the canvas loads: ``("workflow", graph)``, ``("prompt", api_graph)`` or
    ``("error", None)`` ("Unable to find workflow in ...")."""
    path = Path(path)
    data = path.read_bytes()
    ext = path.suffix.lower()
    if ext == ".flac":
        info = _flac(data) or {}
        workflow, prompt = info.get("workflow") or info.get("Workflow"), info.get("prompt") or info.get("Prompt")
        workflow, prompt = (json.loads(workflow) if workflow else None), (json.loads(prompt) if prompt else None)
    elif ext == ".ogg":
        workflow, prompt = _ogg(data)
    elif ext == ".mp3":
        workflow, prompt = _mp3(data)
    else:  # .wav and others: no branch in handleFile
        return "error", None
    if workflow is not None:  # JavaScript: any object is truthy, {} included
        return "workflow", workflow
    if prompt is not None:
        return "prompt", prompt
    return "error", None

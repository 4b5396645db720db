"""Text tags of the audio files we write, in the containers' own places, readable by ComfyUI's frontend.

libsndfile writes only a fixed set of string fields (title, comment, ...), but ComfyUI restores a workflow from
an audio file dropped on its canvas by reading tags named ``prompt`` and ``workflow`` (frontend 1.27,
``getFlacMetadata`` / ``getOggMetadata`` / ``getMp3Metadata``). So after libsndfile has written the audio, the
tags are rewritten here:

* FLAC: the ``VORBIS_COMMENT`` metadata block is replaced (``KEY=value`` entries, UTF-8);
* Ogg Vorbis: the comment header packet is replaced and the header pages re-paginated (page sequence numbers
  and CRCs of the following pages updated); the comment packet gets pages of its own;
* MP3: an ID3v2.4 tag replaces libsndfile's tags: ``TIT2``/``TSSE`` text, ``COMM`` (the comment) and one
  ``TXXX`` frame per other key, value NUL-terminated as FFmpeg writes it (ComfyUI's core audio nodes use FFmpeg);
* WAV: a ``LIST/INFO`` chunk with ``INAM``/``ISFT``/``ICMT`` (ComfyUI's frontend reads no workflow from WAV).

Tag names: :data:`TITLE`, :data:`SOFTWARE`, :data:`COMMENT` (our parameter record) plus any other name
(``prompt``, ``workflow``). Values should be ASCII where ComfyUI reads them: its frontend decodes the bytes one by
one as Latin-1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["COMMENT", "SOFTWARE", "TITLE", "TagError", "read_tags", "write_tags"]

TITLE, SOFTWARE, COMMENT = "TITLE", "SOFTWARE", "COMMENT"
VENDOR = b"acestep_core"
_WAV_IDS = {TITLE: b"INAM", SOFTWARE: b"ISFT", COMMENT: b"ICMT"}
_ID3_TEXT = {TITLE: b"TIT2", SOFTWARE: b"TSSE"}
_FLAC_VORBIS_COMMENT, _FLAC_PADDING = 4, 1


class TagError(ValueError):
    """The file is not the container its extension says, or its header is damaged."""


# ------------------------------------------------------------------------------------------ Vorbis comments
def _vorbis_comments(tags: dict[str, str]) -> bytes:
    """The comment list (vendor + entries) shared by FLAC and Ogg Vorbis; the order of ``tags`` is kept."""
    entries = [f"{key}={value}".encode() for key, value in tags.items()]
    body = struct.pack("<I", len(VENDOR)) + VENDOR + struct.pack("<I", len(entries))
    return body + b"".join(struct.pack("<I", len(e)) + e for e in entries)


def _parse_vorbis_comments(data: bytes, where: str) -> dict[str, str]:
    try:
        (vendor_len,) = struct.unpack_from("<I", data, 0)
        offset = 4 + vendor_len
        (count,) = struct.unpack_from("<I", data, offset)
        offset += 4
        tags: dict[str, str] = {}
        for _ in range(count):
            (length,) = struct.unpack_from("<I", data, offset)
            entry = data[offset + 4:offset + 4 + length].decode("utf-8", errors="replace")
            offset += 4 + length
            key, _, value = entry.partition("=")
            tags.setdefault(key, value)
    except struct.error as e:
        raise TagError(f"{where}: damaged Vorbis comment block") from e
    return tags


def _ogg_safe(tags: dict[str, str]) -> dict[str, str]:
    """Pad values with trailing spaces so that no length field of the entry *after* a JSON value holds a ``}`` byte
    before its first zero byte: ComfyUI's Ogg reader finds ``key={...}`` with a regular expression that runs on to
    the next zero byte and then takes the text up to the last ``}``."""
    keys = list(tags)
    out = dict(tags)
    for index, key in enumerate(keys[1:], start=1):
        if not out[keys[index - 1]].startswith("{"):
            continue
        while True:
            size = struct.pack("<I", len(f"{key}={out[key]}".encode()))
            if 0x7D not in size.split(b"\0")[0]:
                break
            out[key] += " "
    return out


# -------------------------------------------------------------------------------------------------- FLAC
def _flac_blocks(data: bytes, where: str) -> tuple[list[tuple[int, bytes]], int]:
    if data[:4] != b"fLaC":
        raise TagError(f"{where}: not a FLAC file")
    blocks, offset = [], 4
    while True:
        if offset + 4 > len(data):
            raise TagError(f"{where}: truncated FLAC metadata")
        head = data[offset]
        length = int.from_bytes(data[offset + 1:offset + 4], "big")
        blocks.append((head & 0x7F, data[offset + 4:offset + 4 + length]))
        offset += 4 + length
        if head & 0x80:
            return blocks, offset


def _write_flac(path: Path, tags: dict[str, str]) -> None:
    data = path.read_bytes()
    blocks, audio_start = _flac_blocks(data, str(path))
    comment = _vorbis_comments(tags)
    if len(comment) >= 1 << 24:
        raise TagError(f"{path}: {len(comment)} bytes of tags exceed FLAC's 16 MiB block limit")
    kept = [b for b in blocks if b[0] not in (_FLAC_VORBIS_COMMENT, _FLAC_PADDING)]
    kept.insert(1, (_FLAC_VORBIS_COMMENT, comment))
    out = [b"fLaC"]
    for index, (kind, body) in enumerate(kept):
        last = 0x80 if index == len(kept) - 1 else 0
        out.append(bytes([last | kind]) + len(body).to_bytes(3, "big") + body)
    path.write_bytes(b"".join(out) + data[audio_start:])


def _read_flac(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        data = fh.read(1 << 25)
    blocks, _ = _flac_blocks(data, str(path))
    for kind, body in blocks:
        if kind == _FLAC_VORBIS_COMMENT:
            return _parse_vorbis_comments(body, str(path))
    return {}


# --------------------------------------------------------------------------------------------------- Ogg
def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _crc_table()


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _ogg_page(flags: int, granule: int, serial: int, seq: int, lacing: list[int], body: bytes) -> bytes:
    head = b"OggS\0" + struct.pack("<BqII", flags, granule, serial, seq) + b"\0\0\0\0" + bytes([len(lacing)])
    page = head + bytes(lacing) + body
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _ogg_pages(data: bytes, where: str) -> Iterator[tuple[int, int, int, int, int, list[int], bytes, int]]:
    """Every page: (offset, flags, granule, serial, sequence number, lacing values, body, end offset)."""
    offset = 0
    while offset < len(data):
        if data[offset:offset + 4] != b"OggS" or offset + 27 > len(data):
            raise TagError(f"{where}: damaged Ogg page at byte {offset}")
        flags, granule, serial, seq = struct.unpack_from("<BqII", data, offset + 5)
        count = data[offset + 26]
        lacing = list(data[offset + 27:offset + 27 + count])
        start = offset + 27 + count
        end = start + sum(lacing)
        yield offset, flags, granule, serial, seq, lacing, data[start:end], end
        offset = end


def _ogg_headers(data: bytes, where: str) -> tuple[list[bytes], int, int, int]:
    """The three Vorbis header packets, the byte offset where the audio pages start, their first sequence number
    and the stream serial."""
    packets, current = [], b""
    for _, _, _, serial, seq, lacing, body, end in _ogg_pages(data, where):
        position = 0
        for value in lacing:
            current += body[position:position + value]
            position += value
            if value < 255:
                packets.append(current)
                current = b""
        if len(packets) >= 3:
            if len(packets) > 3 or current:
                raise TagError(f"{where}: audio data shares a page with the Vorbis headers")
            return packets, end, seq + 1, serial
    raise TagError(f"{where}: incomplete Vorbis headers")


def _paginate(packet: bytes, serial: int, seq: int, flags: int) -> list[bytes]:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    pages: list[bytes] = []
    position, first = 0, True
    for chunk_start in range(0, len(lacing), 255):
        chunk = lacing[chunk_start:chunk_start + 255]
        size = sum(chunk)
        ends_packet = chunk_start + 255 >= len(lacing)
        page_flags = flags if first else 0x01  # 0x01: continues the packet of the previous page
        pages.append(_ogg_page(page_flags, 0 if ends_packet else -1, serial, seq + len(pages), chunk,
                               packet[position:position + size]))
        position += size
        first = False
    return pages


def _write_ogg(path: Path, tags: dict[str, str]) -> None:
    data = path.read_bytes()
    packets, audio_start, audio_seq, serial = _ogg_headers(data, str(path))
    if not packets[1].startswith(b"\x03vorbis"):
        raise TagError(f"{path}: not an Ogg Vorbis file")
    comment = b"\x03vorbis" + _vorbis_comments(_ogg_safe(tags)) + b"\x01"
    pages = _paginate(packets[0], serial, 0, 0x02)  # 0x02: first page of the stream
    pages += _paginate(comment, serial, len(pages), 0)
    pages += _paginate(packets[2], serial, len(pages), 0)
    shift = len(pages) - audio_seq
    for _, flags, granule, serial_, seq, lacing, body, _end in _ogg_pages(data[audio_start:], str(path)):
        pages.append(_ogg_page(flags, granule, serial_, seq + shift, lacing, body))
    path.write_bytes(b"".join(pages))


def _read_ogg(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        data = fh.read(1 << 25)
    packets, _, _, _ = _ogg_headers(data, str(path))
    if not packets[1].startswith(b"\x03vorbis"):
        return {}
    return _parse_vorbis_comments(packets[1][7:], str(path))


# --------------------------------------------------------------------------------------------------- MP3
def _syncsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _unsyncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _id3_frame(frame_id: bytes, body: bytes) -> bytes:
    return frame_id + _syncsafe(len(body)) + b"\0\0" + body


def _strip_id3(data: bytes) -> bytes:
    while data[:3] == b"ID3" and len(data) >= 10:
        size = _unsyncsafe(data[6:10]) + 10 + (10 if data[5] & 0x10 else 0)
        data = data[size:]
    if len(data) >= 128 and data[-128:-125] == b"TAG":  # ID3v1 at the end (libsndfile's truncated copy)
        data = data[:-128]
    return data


def _write_mp3(path: Path, tags: dict[str, str]) -> None:
    frames = []
    for key, value in tags.items():
        text = value.encode("utf-8")
        if key in _ID3_TEXT:
            frames.append(_id3_frame(_ID3_TEXT[key], b"\x03" + text))
        elif key == COMMENT:
            frames.append(_id3_frame(b"COMM", b"\x03eng\0" + text))
        else:  # encoding, description, value; both NUL-terminated (FFmpeg's TXXX, which ComfyUI's reader expects)
            frames.append(_id3_frame(b"TXXX", b"\x03" + key.encode("utf-8") + b"\0" + text + b"\0"))
    body = b"".join(frames)
    header = b"ID3\x04\x00\x00" + _syncsafe(len(body))
    path.write_bytes(header + body + _strip_id3(path.read_bytes()))


def _id3_text(body: bytes) -> str:
    encoding, text = body[:1], body[1:]
    if encoding in (b"\x01", b"\x02"):
        codec = "utf-16" if encoding == b"\x01" else "utf-16-be"
        return text.decode(codec, errors="replace").rstrip("\0")
    return text.decode("utf-8" if encoding == b"\x03" else "latin-1", errors="replace").rstrip("\0")


def _read_mp3(path: Path) -> dict[str, str]:
    with open(path, "rb") as fh:
        head = fh.read(10)
        if head[:3] != b"ID3":
            return {}
        data = fh.read(_unsyncsafe(head[6:10]))
    version, offset = head[3], 0
    tags: dict[str, str] = {}
    names = {v: k for k, v in _ID3_TEXT.items()}
    while offset + 10 <= len(data) and data[offset:offset + 4] != b"\0\0\0\0":
        frame_id = data[offset:offset + 4]
        raw = data[offset + 4:offset + 8]
        size = _unsyncsafe(raw) if version == 4 else struct.unpack(">I", raw)[0]
        body = data[offset + 10:offset + 10 + size]
        offset += 10 + size
        if frame_id in names:
            tags.setdefault(names[frame_id], _id3_text(body))
        elif frame_id == b"COMM" and len(body) > 4:
            text = _id3_text(body[:1] + body[4:])
            tags.setdefault(COMMENT, text.split("\0", 1)[-1])
        elif frame_id == b"TXXX":
            key, _, value = _id3_text(body).partition("\0")
            tags.setdefault(key, value.rstrip("\0"))
    return tags


# --------------------------------------------------------------------------------------------------- WAV
def _write_wav(path: Path, tags: dict[str, str]) -> None:
    """Append a ``LIST/INFO`` chunk (NUL-terminated UTF-8) and fix the RIFF size."""
    body = b"INFO"
    for name, value in tags.items():
        if name not in _WAV_IDS:
            continue
        data = value.encode("utf-8") + b"\0"
        body += _WAV_IDS[name] + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    chunk = b"LIST" + struct.pack("<I", len(body)) + body
    with open(path, "r+b") as fh:
        header = fh.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise TagError(f"{path}: not a RIFF/WAVE file")
        fh.seek(0, 2)
        size = fh.tell()
        if size % 2:
            fh.write(b"\0")
            size += 1
        if size + len(chunk) - 8 >= 2**32:
            raise TagError(f"{path}: WAV larger than 4 GiB; write .flac instead")
        fh.write(chunk)
        fh.seek(4)
        fh.write(struct.pack("<I", size + len(chunk) - 8))


def _read_wav(path: Path) -> dict[str, str]:
    names = {v: k for k, v in _WAV_IDS.items()}
    tags: dict[str, str] = {}
    with open(path, "rb") as fh:
        header = fh.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return tags
        while len(head := fh.read(8)) == 8:
            chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
            if chunk_id != b"LIST":
                fh.seek(size + size % 2, 1)
                continue
            body = fh.read(size + size % 2)[:size]
            offset = 4 if body[:4] == b"INFO" else len(body)
            while offset + 8 <= len(body):
                sub_id, sub_size = body[offset:offset + 4], struct.unpack("<I", body[offset + 4:offset + 8])[0]
                if sub_id in names:
                    text = body[offset + 8:offset + 8 + sub_size].rstrip(b"\0")
                    tags.setdefault(names[sub_id], text.decode("utf-8", errors="replace"))
                offset += 8 + sub_size + sub_size % 2
    return tags


_WRITERS = {"flac": _write_flac, "ogg": _write_ogg, "mp3": _write_mp3, "wav": _write_wav}
_READERS = {"flac": _read_flac, "ogg": _read_ogg, "mp3": _read_mp3, "wav": _read_wav}


def write_tags(path: str | Path, fmt: str, tags: dict[str, str]) -> None:
    """Replace the text tags of the ``fmt`` file ``path`` (written by libsndfile) with ``tags``, in order."""
    _WRITERS[fmt](Path(path), tags)


def read_tags(path: str | Path, fmt: str) -> dict[str, str]:
    """The text tags :func:`write_tags` writes (first value per name; ``{}`` for a file without tags)."""
    return _READERS[fmt](Path(path))

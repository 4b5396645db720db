"""A minimal reader for serialized SentencePiece models (``spiece.model`` bytes).

ComfyUI's single-file ACE-Step checkpoint stores the UMT5 prompt tokenizer as the raw bytes
of a SentencePiece ``ModelProto`` (tensor ``text_encoders.spiece_model``). This module decodes
the few fields a Unigram tokenizer needs, straight from the protobuf wire format, so the
product depends on neither the ``sentencepiece`` nor the ``protobuf`` package.

Field numbers follow ``sentencepiece_model.proto`` (google/sentencepiece): ModelProto
``pieces`` = 1, ``trainer_spec`` = 2, ``normalizer_spec`` = 3; SentencePiece ``piece`` = 1,
``score`` = 2, ``type`` = 3; TrainerSpec ``model_type`` = 3, ``vocab_size`` = 4,
``control_symbols`` = 30, ``user_defined_symbols`` = 31, ``byte_fallback`` = 35,
``unk_id``/``bos_id``/``eos_id``/``pad_id`` = 40..43, ``unk_piece``..``pad_piece`` = 45..48;
NormalizerSpec ``name`` = 1, ``precompiled_charsmap`` = 2, ``add_dummy_prefix`` = 3,
``remove_extra_whitespaces`` = 4, ``escape_whitespaces`` = 5. Defaults are the proto defaults.
Unknown fields are skipped, as protobuf readers do.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import CheckpointError

__all__ = [
    "PIECE_BYTE",
    "PIECE_CONTROL",
    "PIECE_NORMAL",
    "PIECE_UNKNOWN",
    "PIECE_UNUSED",
    "PIECE_USER_DEFINED",
    "SentencePieceModel",
    "SentencePieceModelError",
    "parse_sentencepiece_model",
]

# SentencePiece.Type
PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL, PIECE_USER_DEFINED, PIECE_UNUSED, PIECE_BYTE = 1, 2, 3, 4, 5, 6
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class SentencePieceModelError(CheckpointError):
    """The bytes are not a readable SentencePiece model (empty, truncated or another format)."""


@dataclass(frozen=True)
class Piece:
    piece: str
    score: float
    type: int = PIECE_NORMAL


@dataclass(frozen=True)
class SentencePieceModel:
    """The decoded subset of a SentencePiece ``ModelProto``."""

    pieces: tuple[Piece, ...]
    model_type: str = "unigram"
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_piece: str = "<unk>"
    bos_piece: str = "<s>"
    eos_piece: str = "</s>"
    pad_piece: str = "<pad>"
    byte_fallback: bool = False
    control_symbols: tuple[str, ...] = ()
    user_defined_symbols: tuple[str, ...] = ()
    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    extra: dict[str, object] = field(default_factory=dict, compare=False)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise SentencePieceModelError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise SentencePieceModelError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)``; value is an int, or bytes for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise SentencePieceModelError(f"invalid field number 0 at byte {pos}")
        value: object
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _FIXED64:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == _FIXED32:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise SentencePieceModelError(f"unsupported protobuf wire type {wire} at byte {pos}")
        if pos > len(buf):
            raise SentencePieceModelError("truncated field")
        yield number, wire, value


def _int32(value: object) -> int:
    """A protobuf int32 (negative values are sign-extended 64-bit varints)."""
    v = int(value)  # type: ignore[call-overload]
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(value: object) -> str:
    try:
        return bytes(value).decode("utf-8")  # type: ignore[call-overload]
    except UnicodeDecodeError as exc:
        raise SentencePieceModelError(f"invalid UTF-8 in a string field: {exc}") from None


def _parse_piece(buf: bytes) -> Piece:
    piece, score, kind = "", 0.0, PIECE_NORMAL
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            piece = _text(value)
        elif number == 2 and wire == _FIXED32:
            score = struct.unpack("<f", value)[0]  # type: ignore[arg-type]
        elif number == 3 and wire == _VARINT:
            kind = int(value)  # type: ignore[call-overload]
    return Piece(piece, score, kind)


_TRAINER_INTS = {40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}
_TRAINER_STRS = {45: "unk_piece", 46: "bos_piece", 47: "eos_piece", 48: "pad_piece"}


def _parse_trainer(buf: bytes, out: dict[str, object]) -> None:
    control: list[str] = []
    user: list[str] = []
    for number, wire, value in _fields(buf):
        if number == 3 and wire == _VARINT:
            out["model_type"] = MODEL_TYPES.get(int(value), f"unknown({value})")  # type: ignore[call-overload]
        elif number in _TRAINER_INTS and wire == _VARINT:
            out[_TRAINER_INTS[number]] = _int32(value)
        elif number in _TRAINER_STRS and wire == _LEN:
            out[_TRAINER_STRS[number]] = _text(value)
        elif number == 35 and wire == _VARINT:
            out["byte_fallback"] = bool(value)
        elif number == 30 and wire == _LEN:
            control.append(_text(value))
        elif number == 31 and wire == _LEN:
            user.append(_text(value))
    out["control_symbols"] = tuple(control)
    out["user_defined_symbols"] = tuple(user)


def _parse_normalizer(buf: bytes, out: dict[str, object]) -> None:
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            out["normalizer_name"] = _text(value)
        elif number == 2 and wire == _LEN:
            out["precompiled_charsmap"] = bytes(value)  # type: ignore[call-overload]
        elif number == 3 and wire == _VARINT:
            out["add_dummy_prefix"] = bool(value)
        elif number == 4 and wire == _VARINT:
            out["remove_extra_whitespaces"] = bool(value)
        elif number == 5 and wire == _VARINT:
            out["escape_whitespaces"] = bool(value)


def parse_sentencepiece_model(data: bytes | bytearray | memoryview, *, source: str = "SentencePiece model") -> (
    SentencePieceModel
):
    """Decode serialized SentencePiece ``ModelProto`` bytes.

    Raises :class:`SentencePieceModelError` (naming ``source``) for empty, truncated or
    non-SentencePiece data.
    """
    buf = bytes(data)
    if not buf:
        raise SentencePieceModelError(f"{source}: empty data (0 bytes); the checkpoint's tokenizer is missing")
    pieces: list[Piece] = []
    fields: dict[str, object] = {}
    try:
        for number, wire, value in _fields(buf):
            if number == 1 and wire == _LEN:
                pieces.append(_parse_piece(value))  # type: ignore[arg-type]
            elif number == 2 and wire == _LEN:
                _parse_trainer(value, fields)  # type: ignore[arg-type]
            elif number == 3 and wire == _LEN:
                _parse_normalizer(value, fields)  # type: ignore[arg-type]
    except SentencePieceModelError as exc:
        raise SentencePieceModelError(
            f"{source}: not a valid SentencePiece model ({exc}); the file is corrupt or truncated — "
            "re-download the checkpoint"
        ) from None
    if not pieces:
        raise SentencePieceModelError(
            f"{source}: no vocabulary pieces found ({len(buf)} bytes); this is not a SentencePiece model — "
            "re-download the checkpoint"
        )
    return SentencePieceModel(pieces=tuple(pieces), **fields)  # type: ignore[arg-type]

"""Lyrics -> lyric token ids, as ``ACEStepPipeline.tokenize_lyrics`` produces them, plus an inspection API.

Origin: ace-step/ACE-Step@d612523 ``acestep/pipeline_ace_step.py`` (``tokenize_lyrics``, and the caller's
empty-lyrics rule) and ``acestep/models/lyrics_utils/lyric_tokenizer.py`` (``VoiceBpeTokenizer.encode``).

Procedure: an empty string gives ids ``[[STOP]]`` with mask ``[0]`` (the caller's rule: the lyric slot is
fully masked). Otherwise ``[START]``, then for every line of ``lyrics.split("\\n")``, stripped: an empty
line adds ``[SPACE]``; else the line's language is detected, the encode language resolved (structure-tag
lines, i.e. lines *starting* with ``[...]``, are English; unsupported languages become English), the line
normalised for that language, and ``"[<lang>]" + text.replace(" ", "[SPACE]")`` (``[zh-cn]`` for zh) is
BPE-encoded with ``vocab.json``; the line's ids and one ``[SPACE]`` are appended. Special ids are looked up
by name in the vocabulary. The mask is all ones.

Divergences (documented choices; none affects well-formed lyrics):

* control characters other than ``\\t``, ``\\n`` and ``\\r`` (and lone surrogates, which ``tokenizers``
  cannot encode) are dropped before anything else; whitespace-like ones (``\\v``, ``\\f``, ``\\x1c``-``\\x1f``,
  ``\\x85``) become a space, which is what the normalisers' whitespace collapsing made of them. A warning
  is reported;
* lyrics longer than :data:`MAX_LYRICS_CHARS` characters are refused before any work, and :meth:`encode`
  refuses more than :data:`MAX_LYRIC_TOKENS` ids (the training length; the model never saw more);
* the original skipped a line silently ("tokenize error") when its normaliser raised; we skip it too (with
  a logged warning and a report entry), except for our own errors (:class:`AceStepInputError`, e.g. a
  missing Japanese extra), which propagate with the line number.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AceStepInputError
from .report import (
    MAX_LYRIC_TOKENS,
    STRUCTURE_PATTERN,
    TOKENS_PER_SECOND_LIMIT,
    LyricLine,
    LyricWarning,
    line_warnings,
    lyrics_warnings,
)
from .vocab import LANGUAGE_TOKENS, LyricVocabError, validate_lyric_vocab

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_LYRICS_CHARS",
    "MAX_LYRIC_TOKENS",
    "STRUCTURE_PATTERN",
    "TOKENS_PER_SECOND_LIMIT",
    "LyricLine",
    "LyricReport",
    "LyricTokenizer",
    "LyricTokens",
    "LyricWarning",
    "LyricsTooLongError",
    "clean_control_characters",
]

MAX_LYRICS_CHARS = 20_000  # ~8x a dense 4-minute song; refused before any work
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

_cache: dict[str, Tokenizer] = {}
_cache_lock = threading.Lock()


class LyricsTooLongError(AceStepInputError):
    """The lyrics exceed :data:`MAX_LYRICS_CHARS` characters or :data:`MAX_LYRIC_TOKENS` tokens."""


@dataclass(frozen=True)
class LyricTokens:
    """Lyric ``ids`` and ``mask`` of one lyrics string (mask 0 only for empty lyrics)."""

    ids: list[int]
    mask: list[int]

    def as_tensors(self, batch_size: int = 1, device: torch.device | str | None = None) -> tuple[
        torch.Tensor, torch.Tensor
    ]:
        """``(ids, mask)`` as ``[batch_size, L]`` int64 tensors, repeated over the batch as the pipeline does."""
        import torch

        ids = torch.tensor(self.ids, dtype=torch.int64, device=device).unsqueeze(0).repeat(batch_size, 1)
        mask = torch.tensor(self.mask, dtype=torch.int64, device=device).unsqueeze(0).repeat(batch_size, 1)
        return ids, mask


@dataclass(frozen=True)
class LyricReport:
    """Result of :meth:`LyricTokenizer.inspect`."""

    lines: tuple[LyricLine, ...]
    tokens: LyricTokens
    num_tokens: int  # 0 for empty lyrics (the slot is masked)
    duration_s: float | None
    warnings: tuple[LyricWarning, ...]  # whole-lyrics warnings first, then every line's


@dataclass
class _Pipeline:
    """The per-line language and normalisation functions (injectable for tests)."""

    detect: Callable[[str], str]
    resolve: Callable[[str, str], str]
    normalize: Callable[[str, str], str]


def _default_pipeline() -> _Pipeline:
    from .cleaners import normalize_lyric_line
    from .language import detect_line_language, resolve_encode_language

    return _Pipeline(detect_line_language, resolve_encode_language, normalize_lyric_line)


def _load_tokenizer(path: Path) -> Tokenizer:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    with _cache_lock:
        tok = _cache.get(key)
    if tok is None:
        from tokenizers import Tokenizer

        validate_lyric_vocab(path)
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise LyricVocabError(f"{path}: not a valid tokenizers JSON ({exc})") from None
        with _cache_lock:
            _cache[key] = tok
    return tok


def clean_control_characters(lyrics: str) -> tuple[str, int]:
    """Drop control characters (see module docstring); returns the text and how many were changed."""
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return " " if m.group(0).isspace() else ""

    return _CONTROL.sub(repl, lyrics), count


class LyricTokenizer:
    """The ACE-Step v1 lyric tokenizer (``tokenize_lyrics``) over a ``vocab.json``.

    Line results are memoised per line text (detection and normalisation are pure), so repeated lines
    (choruses) and re-tokenising the same lyrics cost almost nothing.
    """

    LINE_CACHE_SIZE = 4096

    def __init__(self, tokenizer: Tokenizer, *, source: str = "vocab.json", pipeline: _Pipeline | None = None):
        self._tok = tokenizer
        self.source = source
        self._pipeline = pipeline
        self._lines: OrderedDict[str, LyricLine] = OrderedDict()  # stripped text -> position-free result
        self._lines_lock = threading.Lock()
        ids = {name: tokenizer.token_to_id(name) for name in ("[START]", "[SPACE]", "[STOP]", "[UNK]")}
        missing = [name for name, i in ids.items() if i is None]
        if missing:
            raise LyricVocabError(f"{source}: tokens {missing} missing from the lyric vocabulary")
        found = {name: int(i) for name, i in ids.items() if i is not None}
        self.start_id, self.space_id = found["[START]"], found["[SPACE]"]
        self.stop_id, self.unk_id = found["[STOP]"], found["[UNK]"]
        languages = set(LANGUAGE_TOKENS)
        self.structure_tags: tuple[str, ...] = tuple(
            t.content for _, t in sorted(tokenizer.get_added_tokens_decoder().items())
            if STRUCTURE_PATTERN.fullmatch(t.content) and t.content.islower() and t.content not in languages
        )
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_vocab(cls, path: str | Path) -> LyricTokenizer:
        """Load (cached per file) the tokenizer of a lyric ``vocab.json``; see :func:`resolve_lyric_vocab`."""
        path = Path(path)
        if not path.is_file():
            validate_lyric_vocab(path)  # raises LyricVocabNotFoundError with the how-to
        return cls(_load_tokenizer(path), source=str(path))

    @property
    def pipeline(self) -> _Pipeline:
        if self._pipeline is None:
            self._pipeline = _default_pipeline()
        return self._pipeline

    def language_token(self, lang: str) -> str:
        """``[<lang>]`` as ``VoiceBpeTokenizer.encode`` writes it (region dropped, zh -> zh-cn)."""
        base = lang.split("-")[0]
        return "[zh-cn]" if base == "zh" else f"[{base}]"

    def encode_text(self, text: str, lang: str) -> list[int]:
        """``VoiceBpeTokenizer.encode(text, lang)``: one line's ids with the language forced (no framing)."""
        normalized = self.pipeline.normalize(text, lang.split("-")[0])
        return self._tok.encode(self._bpe_input(normalized, lang), add_special_tokens=False).ids

    def encode(self, lyrics: str) -> LyricTokens:
        """Token ids and mask exactly as the original pipeline feeds them to the model."""
        text, _ = self._prepare(lyrics)
        if text == "":
            return LyricTokens([self.stop_id], [0])
        ids = [self.start_id]
        for index, raw in enumerate(text.split("\n")):
            stripped = raw.strip()
            if not stripped:
                ids.append(self.space_id)
                continue
            line = self._analyse(index, stripped)
            if not line.skipped:
                ids += [*line.ids, self.space_id]
        if len(ids) > MAX_LYRIC_TOKENS:
            raise LyricsTooLongError(f"the lyrics give {len(ids)} tokens; at most {MAX_LYRIC_TOKENS} are allowed "
                                     "(the training length) — shorten the lyrics")
        return LyricTokens(ids, [1] * len(ids))

    def inspect(self, lyrics: str, *, duration_s: float | None = None) -> LyricReport:
        """Per-line detail (language, normalised text, ids) and warnings; ids equal :meth:`encode`'s.

        Never raises for too many tokens (that is a warning here); bad input raises as in :meth:`encode`.
        """
        text, changed = self._prepare(lyrics)
        lines = tuple(self._line(index, raw) for index, raw in enumerate(text.split("\n"))) if text else ()
        ids = [self.start_id] if text else [self.stop_id]
        for line in lines:
            if not line.skipped:
                ids += [*line.ids, self.space_id]
        num_tokens = len(ids) if text else 0
        warnings = lyrics_warnings(num_tokens, duration_s, changed) + [w for ln in lines for w in ln.warnings]
        return LyricReport(lines=lines, tokens=LyricTokens(ids, [1] * len(ids) if text else [0]),
                           num_tokens=num_tokens, duration_s=duration_s, warnings=tuple(warnings))

    def clear_cache(self) -> None:
        """Forget memoised line results (e.g. after changing the normalisation packages)."""
        with self._lines_lock:
            self._lines.clear()

    def _bpe_input(self, normalized: str, lang: str) -> str:
        return self.language_token(lang) + normalized.replace(" ", "[SPACE]")

    def _prepare(self, lyrics: str) -> tuple[str, int]:
        if not isinstance(lyrics, str):
            raise AceStepInputError(f"lyrics must be a string (use \"\" for instrumental music), got "
                                    f"{type(lyrics).__name__}")
        if len(lyrics) > MAX_LYRICS_CHARS:
            raise LyricsTooLongError(f"the lyrics have {len(lyrics)} characters; at most {MAX_LYRICS_CHARS} are "
                                     "accepted (a 4-minute song has about 1,000 to 3,000) — shorten the lyrics")
        text, changed = clean_control_characters(lyrics)
        if changed:
            logger.warning("lyrics: %d control character(s) removed", changed)
        return text, changed

    def _analyse(self, index: int, stripped: str) -> LyricLine:
        with self._lines_lock:
            found = self._lines.get(stripped)
            if found is not None:
                self._lines.move_to_end(stripped)
                return found
        found = self._analyse_uncached(index, stripped)
        with self._lines_lock:
            self._lines[stripped] = found
            if len(self._lines) > self.LINE_CACHE_SIZE:
                self._lines.popitem(last=False)
        return found

    def _analyse_uncached(self, index: int, stripped: str) -> LyricLine:
        p = self.pipeline
        detected = p.detect(stripped)
        lang = p.resolve(stripped, detected)
        line = LyricLine(index=index, raw=stripped, stripped=stripped, detected_language=detected,
                         encode_language=lang, is_structure_tag=STRUCTURE_PATTERN.match(stripped) is not None)
        try:
            normalized = p.normalize(stripped, lang.split("-")[0])
        except AceStepInputError as exc:  # ours (e.g. a missing Japanese extra): never silently dropped
            raise type(exc)(f"line {index + 1}: {exc}") from exc
        except Exception as exc:  # a library failure: the original skips the line ("tokenize error")
            logger.warning("lyrics line %d (%r) skipped: %s: %s", index + 1, stripped[:40], type(exc).__name__, exc)
            return replace(line, skip_reason=f"{type(exc).__name__}: {exc}")
        text = self._bpe_input(normalized, lang)
        enc = self._tok.encode(text, add_special_tokens=False)
        unknown = tuple(text[a:b] for i, (a, b) in zip(enc.ids, enc.offsets, strict=True) if i == self.unk_id)
        return replace(line, normalized=normalized, tokenizer_input=text, ids=tuple(enc.ids), unknown_pieces=unknown)

    def _line(self, index: int, raw: str) -> LyricLine:
        stripped = raw.strip()
        if not stripped:
            return LyricLine(index=index, raw=raw, stripped=stripped)
        line = replace(self._analyse(index, stripped), index=index, raw=raw)
        if line.skip_reason is not None:
            warns = [LyricWarning("line_skipped", f"line skipped: the normaliser failed ({line.skip_reason}); the "
                                  "original app drops such lines too", line=index + 1)]
        else:
            warns = line_warnings(line, self.structure_tags)
        return replace(line, warnings=tuple(warns))

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

STRUCTURE_PATTERN = re.compile(r"\[.*?\]")  # used with .match(): the line starts with a bracketed tag
MAX_LYRICS_CHARS = 20_000  # ~8x a dense 4-minute song; refused before any work
MAX_LYRIC_TOKENS = 4096  # lyric length used in training (longer sequences were truncated there)
# Above this many lyric tokens per second of audio, inspect() warns. The 19 official "default" examples
# (sung, 147-240 s) use 2.0-4.3 tokens/s (one markdown-formatted outlier 10); the 18 RapMachine-LoRA rap
# examples 3.2-10. 6 flags a full song squeezed into a minute (the pipeline's default duration) without
# flagging sung songs; dense rap may see it, which is why it is a warning, never an error.
TOKENS_PER_SECOND_LIMIT = 6.0
_LANGUAGE_TAG = re.compile(r"\[([a-z]{2})(?:[-_][a-z]{2,4})?\]")  # e.g. ComfyUI's "[ja]" line prefix
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
class LyricWarning:
    """One finding of :meth:`LyricTokenizer.inspect`; ``line`` is 1-based (``None``: the whole lyrics)."""

    code: str  # control_characters | too_many_tokens | too_long_for_duration | unknown_tag | language_tag
    #            | unsupported_script | language_fallback | line_skipped
    message: str
    line: int | None = None
    severity: str = "warning"  # "warning" or "info"

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class LyricLine:
    """One line of ``lyrics.split("\\n")`` as the tokenizer processed it (``index`` is 0-based)."""

    index: int
    raw: str
    stripped: str
    detected_language: str | None = None  # None for empty lines
    encode_language: str | None = None
    is_structure_tag: bool = False
    normalized: str | None = None  # normalised text, without the [lang] prefix and [SPACE] substitution
    tokenizer_input: str | None = None  # exact BPE input, e.g. "[en]hello[SPACE]world"
    ids: tuple[int, ...] = ()  # the line's ids, without the trailing [SPACE] separator
    unknown_pieces: tuple[str, ...] = ()  # the pieces of tokenizer_input that became [UNK]
    skip_reason: str | None = None  # set when the normaliser failed and the line was dropped
    warnings: tuple[LyricWarning, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None

    @property
    def num_tokens(self) -> int:
        """Ids this line adds to the sequence (its ids plus the separator; 0 when skipped)."""
        return 0 if self.skipped else len(self.ids) + 1


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


def _lyrics_warnings(num_tokens: int, duration_s: float | None, control_chars: int) -> list[LyricWarning]:
    out = []
    if control_chars:
        out.append(LyricWarning("control_characters", f"{control_chars} control character(s) removed (only tab, "
                                "newline and carriage return are kept)"))
    if num_tokens > MAX_LYRIC_TOKENS:
        out.append(LyricWarning("too_many_tokens", f"{num_tokens} lyric tokens exceed the maximum of "
                                f"{MAX_LYRIC_TOKENS} (the training length); generation will refuse these lyrics"))
    if duration_s is not None and duration_s > 0 and num_tokens > TOKENS_PER_SECOND_LIMIT * duration_s:
        fit = int(TOKENS_PER_SECOND_LIMIT * duration_s)
        out.append(LyricWarning("too_long_for_duration", f"{num_tokens} lyric tokens for {duration_s:g} s of audio "
                                f"(more than {fit}, i.e. {TOKENS_PER_SECOND_LIMIT:g} tokens per second; the official "
                                "sung examples use 2 to 4.5): the lyrics may be rushed or cut off — lengthen the "
                                "duration or shorten the lyrics"))
    return out


def _tag_warnings(line: LyricLine, known_tags: tuple[str, ...]) -> list[LyricWarning]:
    tag = STRUCTURE_PATTERN.match(line.stripped).group(0)  # type: ignore[union-attr]
    out = []
    n = line.index + 1
    if _is_language_tag(tag) and tag.lower() not in known_tags:
        out.append(LyricWarning("language_tag", f"{tag} does not select a language in ACE-Step v1: a line starting "
                                "with [...] is a structure-tag line and is normalised as English (the language is "
                                "detected per line; write the lyrics without the prefix)", line=n))
    elif tag.lower() not in known_tags:
        hint = _suggest_tag(tag, known_tags)
        out.append(LyricWarning("unknown_tag", f"unknown structure tag {tag}: it becomes [UNK] and text pieces"
                                + (f"; did you mean {hint}?" if hint else "")
                                + f" Known tags: {' '.join(known_tags)}", line=n))
    letters = [u for u in line.unknown_pieces if u not in ("[", "]")]
    if letters:
        out.append(LyricWarning("unsupported_script", f"text on a structure-tag line is normalised as English; "
                                f"{len(letters)} piece(s) become [UNK] ({_sample(letters)}) — put the lyrics on "
                                "their own line", line=n))
    return out


def _suggest_tag(tag: str, known_tags: tuple[str, ...]) -> str | None:
    """``[Verse 1]`` -> ``[verse]``, ``[instrumental]`` -> ``[inst]``, ``[Pre Chorus]`` -> ``[pre-chorus]``."""
    word = re.sub(r"[^a-z]", "", tag.lower())
    if not word:
        return None
    for known in known_tags:
        name = re.sub(r"[^a-z]", "", known)
        if word == name or word.startswith(name) or (len(word) >= 3 and name.startswith(word)):
            return known
    return None


def _is_language_tag(tag: str) -> bool:
    from .language_segment import LANGUAGE_FILTERS

    m = _LANGUAGE_TAG.fullmatch(tag.lower())
    return m is not None and m.group(1) in LANGUAGE_FILTERS


def _line_warnings(line: LyricLine, known_tags: tuple[str, ...]) -> list[LyricWarning]:
    if line.is_structure_tag:
        return _tag_warnings(line, known_tags)
    out = []
    unknown = list(line.unknown_pieces)
    if unknown:
        out.append(LyricWarning("unsupported_script", f"{len(unknown)} piece(s) are not in the lyric vocabulary and "
                                f"become [UNK] ({_sample(unknown)}; processed as {line.encode_language})",
                                line=line.index + 1))
    if line.encode_language == "en" and line.detected_language != "en":
        out.append(LyricWarning("language_fallback", f"detected language {line.detected_language!r} is not "
                                "supported; the line is processed as English", line=line.index + 1, severity="info"))
    return out


def _sample(pieces: list[str], limit: int = 5) -> str:
    uniq = list(dict.fromkeys(pieces))
    more = f" and {len(uniq) - limit} more" if len(uniq) > limit else ""
    return ", ".join(repr(p) for p in uniq[:limit]) + more


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
        self.start_id, self.space_id = int(ids["[START]"]), int(ids["[SPACE]"])
        self.stop_id, self.unk_id = int(ids["[STOP]"]), int(ids["[UNK]"])
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
        warnings = _lyrics_warnings(num_tokens, duration_s, changed) + [w for ln in lines for w in ln.warnings]
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
            warns = _line_warnings(line, self.structure_tags)
        return replace(line, warnings=tuple(warns))

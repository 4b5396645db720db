"""Inspection results of the lyric tokenizer: per-line records and the warnings shown to users.

Split from :mod:`acestep_core.lyrics.tokenizer` (which produces them); the warning texts explain what
happens to the lyrics and how to fix them (unknown structure tags, ``[xx]`` language prefixes, text the
vocabulary cannot represent, lyrics too long for the duration).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_LYRIC_TOKENS",
    "STRUCTURE_PATTERN",
    "SUNG_TOKENS_PER_SECOND",
    "TOKENS_PER_SECOND_LIMIT",
    "LyricLine",
    "LyricWarning",
    "line_warnings",
    "lyrics_warnings",
]

STRUCTURE_PATTERN = re.compile(r"\[.*?\]")  # used with .match(): the line starts with a bracketed tag
MAX_LYRIC_TOKENS = 4096  # lyric length used in training (longer sequences were truncated there)
# Above this many lyric tokens per second of audio, inspect() warns. The 19 official "default" examples
# (sung, 147-240 s) use 2.0-4.3 tokens/s (one markdown-formatted outlier 10); the 18 RapMachine-LoRA rap
# examples 3.2-10. 6 flags a full song squeezed into a minute (the pipeline's default duration) without
# flagging sung songs; dense rap may see it, which is why it is a warning, never an error.
TOKENS_PER_SECOND_LIMIT = 6.0
SUNG_TOKENS_PER_SECOND = (2.0, 4.5)  # the range of the official sung examples (see above), for length hints
_LANGUAGE_TAG = re.compile(r"\[([a-z]{2})(?:[-_][a-z]{2,4})?\]")  # e.g. ComfyUI's "[ja]" line prefix


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
    def reported_language(self) -> str | None:
        """The detected language to show users: ``None`` for structure-tag lines and empty lines.

        A structure-tag line is always encoded as English, so the detector's answer there means nothing to a
        user, and it is misleading: the reference detector reads ``[verse]`` or ``[chorus]`` as ``zh``
        (LangSegment drops the bracketed tag, and a line with nothing left counts as Chinese). It stays in
        ``detected_language`` for parity with the reference."""
        return None if self.is_structure_tag else self.detected_language

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None

    @property
    def num_tokens(self) -> int:
        """Ids this line adds to the sequence (its ids plus the separator; 0 when skipped)."""
        return 0 if self.skipped else len(self.ids) + 1


def lyrics_warnings(num_tokens: int, duration_s: float | None, control_chars: int) -> list[LyricWarning]:
    out = []
    if control_chars:
        out.append(LyricWarning("control_characters", f"{control_chars} control character(s) removed (only tab, "
                                "newline and carriage return are kept)"))
    if num_tokens > MAX_LYRIC_TOKENS:
        out.append(LyricWarning("too_many_tokens", f"{num_tokens} lyric tokens exceed the maximum of "
                                f"{MAX_LYRIC_TOKENS} (the training length); generation will refuse these lyrics"))
    if duration_s is not None and duration_s > 0 and num_tokens > TOKENS_PER_SECOND_LIMIT * duration_s:
        fit = int(TOKENS_PER_SECOND_LIMIT * duration_s)
        low, high = SUNG_TOKENS_PER_SECOND
        out.append(LyricWarning("too_long_for_duration", f"{num_tokens} lyric tokens for {duration_s:g} s of audio "
                                f"(more than {fit}, i.e. {TOKENS_PER_SECOND_LIMIT:g} tokens per second; the official "
                                f"sung examples use {low:g} to {high:g}): the lyrics may be rushed or cut off — "
                                "lengthen the duration or shorten the lyrics"))
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


def line_warnings(line: LyricLine, known_tags: tuple[str, ...]) -> list[LyricWarning]:
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

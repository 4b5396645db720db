"""Lyric front-end: language handling, per-language normalisation and the lyric BPE tokenizer.

Public API:

* :func:`resolve_lyric_vocab` -> path of the user's ``vocab.json`` (explicit path, next to the checkpoint,
  ComfyUI's bundled copy, our cache, or an opt-in download); :func:`validate_lyric_vocab`;
* :class:`LyricTokenizer` (``from_vocab(path)``): ``encode(lyrics)`` -> :class:`LyricTokens` exactly as the
  original pipeline, ``inspect(lyrics, duration_s=...)`` -> :class:`LyricReport` (per-line
  :class:`LyricLine` detail and :class:`LyricWarning` findings);
* :func:`detect_line_language`, :func:`resolve_encode_language`, ``SUPPORTED_LANGUAGES``;
* :func:`normalize_lyric_line`;
* errors (all :class:`~acestep_core.errors.AceStepInputError`): :class:`LyricVocabError`,
  :class:`LyricVocabNotFoundError`, :class:`LyricsTooLongError`, :class:`MissingLyricsExtraError`.

Heavy or optional packages (tokenizers, py3langid, pypinyin, num2words, cutlet...) load on first use.
"""

from __future__ import annotations

from .cleaners import MissingLyricsExtraError, normalize_lyric_line
from .language import SUPPORTED_LANGUAGES, detect_line_language, resolve_encode_language
from .tokenizer import (
    MAX_LYRIC_TOKENS,
    MAX_LYRICS_CHARS,
    TOKENS_PER_SECOND_LIMIT,
    LyricLine,
    LyricReport,
    LyricsTooLongError,
    LyricTokenizer,
    LyricTokens,
    LyricWarning,
)
from .vocab import LyricVocabError, LyricVocabNotFoundError, resolve_lyric_vocab, validate_lyric_vocab

__all__ = [
    "MAX_LYRICS_CHARS",
    "MAX_LYRIC_TOKENS",
    "SUPPORTED_LANGUAGES",
    "TOKENS_PER_SECOND_LIMIT",
    "LyricLine",
    "LyricReport",
    "LyricTokenizer",
    "LyricTokens",
    "LyricVocabError",
    "LyricVocabNotFoundError",
    "LyricWarning",
    "LyricsTooLongError",
    "MissingLyricsExtraError",
    "detect_line_language",
    "normalize_lyric_line",
    "resolve_encode_language",
    "resolve_lyric_vocab",
    "validate_lyric_vocab",
]

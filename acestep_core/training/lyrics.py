"""Training-time lyric tokenization, as the original trainer's dataset does it (``tokenize_lyrics_map``).

It differs from inference (:meth:`acestep_core.lyrics.LyricTokenizer.encode`) on purpose, because the model was
trained this way: one language detection over the whole text (LangSegment, 97-language filter list) instead of
one per line; the most common language encodes every line, a line that yields ``[UNK]`` is re-encoded with its
segment's language, structure tags (``[verse]``) encode as English; the detected segments (a code-switched line
becomes several "lines") are split on newlines and not stripped; an empty line adds ``[SPACE]``, every line
ends with one; the ids start with ``[START]``. Lyrics matching ``write a .* song that genre is`` and empty
lyrics become ``[0]`` (mask ``[1]``, unlike inference's mask ``[0]``).

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).

Divergences:
- A text whose most common language is not one of the 17 with a language token (the original raises
  ``ValueError`` and its dataset silently trains on another random song instead) is kept: it is encoded with
  the inference tokenizer (per-line detection) and the result says so (``fallback``), for the dataset report.
- A line the normaliser cannot handle is dropped as in the original, and named in ``dropped_lines``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from ..lyrics import SUPPORTED_LANGUAGES, LyricTokenizer
from ..lyrics.language import STRUCTURE_TAG_PATTERN, _language_classifier
from ..lyrics.language_segment import LineSegmenter

logger = logging.getLogger(__name__)

__all__ = ["NO_LYRICS_ID", "SONG_PROMPT_PATTERN", "TrainingLyrics", "tokenize_training_lyrics"]

SONG_PROMPT_PATTERN = re.compile(r"write a .* song that genre is")  # prompt-like "lyrics" of some datasets
NO_LYRICS_ID = 0  # the id the original trains instrumental songs with (mask 1)
FALLBACK_LANGUAGE = "en"


@dataclass(frozen=True)
class TrainingLyrics:
    """Token ids of one song's lyrics as the original trainer feeds them, and what the detection found.

    ``main_language`` is the most common detected language (``None`` for no lyrics); ``fallback`` is set when the
    main language has no language token and the inference tokenizer encoded the lyrics instead.
    """

    ids: tuple[int, ...]
    main_language: str | None = None
    language_counts: tuple[tuple[str, int], ...] = ()
    segments: tuple[tuple[str, str], ...] = ()
    fallback: str | None = None
    dropped_lines: tuple[str, ...] = ()

    @property
    def instrumental(self) -> bool:
        return self.ids == (NO_LYRICS_ID,)


def _segment_language(lang: str) -> str:
    """The original's remapping of a segment's language code before encoding."""
    if lang not in SUPPORTED_LANGUAGES:
        lang = FALLBACK_LANGUAGE
    if "zh" in lang:
        lang = "zh"
    if "spa" in lang:
        lang = "es"
    return lang


def _encode_line(tokenizer: LyricTokenizer, line: str, main: str, segment_lang: str) -> list[int]:
    if STRUCTURE_TAG_PATTERN.match(line):
        return tokenizer.encode_text(line, FALLBACK_LANGUAGE)
    ids = tokenizer.encode_text(line, main)
    if tokenizer.unk_id in ids:
        ids = tokenizer.encode_text(line, segment_lang)
    return ids


def tokenize_training_lyrics(tokenizer: LyricTokenizer, lyrics: str) -> TrainingLyrics:
    """The original trainer's lyric ids for ``lyrics`` (not truncated; the dataset cuts them to 4096)."""
    if SONG_PROMPT_PATTERN.search(lyrics) or not lyrics.strip():
        return TrainingLyrics(ids=(NO_LYRICS_ID,))
    segments, counts = LineSegmenter(_language_classifier()).segment(lyrics)
    main = counts[0][0] if counts else FALLBACK_LANGUAGE
    main = main or FALLBACK_LANGUAGE
    found = TrainingLyrics(ids=(), main_language=main, language_counts=tuple(counts), segments=tuple(segments))
    if main not in SUPPORTED_LANGUAGES:
        reason = (f"the lyrics read as '{main}' overall, a language ACE-Step has no token for (the original trainer "
                  "skips such songs); encoded line by line as at inference instead")
        return replace(found, ids=tuple(tokenizer.inspect(lyrics).tokens.ids), fallback=reason)
    ids = [tokenizer.start_id]
    dropped: list[str] = []
    for segment_lang, text in segments:
        segment_lang = _segment_language(segment_lang)
        for line in text.split("\n"):
            if not line.strip():
                ids.append(tokenizer.space_id)
                continue
            try:
                ids += [*_encode_line(tokenizer, line, main, segment_lang), tokenizer.space_id]
            except Exception as error:  # noqa: BLE001 - the original logs and drops the line
                logger.warning("lyrics line %r dropped: %s: %s", line[:40], type(error).__name__, error)
                dropped.append(line)
    return replace(found, ids=tuple(ids), dropped_lines=tuple(dropped))

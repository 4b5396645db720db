"""Per-line language of lyrics, exactly as the ACE-Step v1 app detects it.

Ported from ace-step/ACE-Step@d612523 acestep/language_segmentation/LangSegment.py (juntaosun/LangSegment 0.3.5,
Apache-2.0 per ACE-Step) and the ``get_lang`` / ``tokenize_lyrics`` language rules of acestep/pipeline_ace_step.py.
The segmentation itself lives in :mod:`.language_segment`; identification uses py3langid's bundled model
(``LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)``, all 97 languages: upstream never
restricts the identifier, its filter list ``language_filters.default`` only filters LangSegment's segments).

Deliberate divergences:
- Re-entrant and thread-safe: each call segments with its own state (upstream shares one mutable instance).
- ``classify`` is evaluated on the active n-gram features only (see :class:`_LanguageClassifier`): same model and
  float32 arithmetic, different summation order (probabilities move by < 5e-5, like between BLAS thread counts).
- The model loads lazily on first use and is cached per process; a missing py3langid raises instead of
  silently detecting English (upstream's ``get_lang`` turns every exception into ``"en"``; we keep that only
  for errors inside the segmentation itself).
- A line on which the segmentation raises (only seen with ``<currency>``/``<date>`` tags holding non-ASCII digits)
  always gives ``"en"``. Upstream, an identical *next* line hits its last-text cache and reports the segments of
  the last line that did not raise: a state leak we do not reproduce.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from .language_segment import LANGUAGE_FILTERS, LineSegmenter

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

logger = logging.getLogger(__name__)

# Languages with a language token in the lyric vocabulary (pipeline_ace_step.py SUPPORT_LANGUAGES).
SUPPORTED_LANGUAGES: tuple[str, ...] = (
    "en", "de", "fr", "es", "it", "pt", "pl", "tr", "ru", "cs", "nl", "ar", "zh", "ja", "hu", "ko", "hi",
)  # fmt: skip
# Lines *starting* with a bracketed tag ("[verse]", "[Chorus 2] ...") are structure lines, always encoded as English.
STRUCTURE_TAG_PATTERN = re.compile(r"\[.*?\]")
# What the reference detector returns for a line with nothing to segment (empty or whitespace only).
EMPTY_LINE_LANGUAGE = "zh"
# What the reference returns when segmentation raises (upstream get_lang's blanket fallback).
FALLBACK_LANGUAGE = "en"

# py3langid stores feature counts as uint16; numpy >= 2 (the reference ran 2.2.6) raises above this.
_MAX_FEATURE_COUNT = 65535

_classifier: _LanguageClassifier | None = None
_classifier_lock = threading.Lock()


class _LanguageClassifier:
    """py3langid's ``LanguageIdentifier.classify`` (normalised probabilities) computed on the active features only.

    py3langid multiplies a dense 7480-feature count vector by the [7480, 97] float32 weight matrix; a lyric
    segment has a few dozen active features, so only those rows are gathered. That avoids a BLAS call that costs
    ~0.2 ms single-threaded and several ms when OpenBLAS spreads it over threads (552 ms vs 13 ms for a 60-line
    song on a shared 2-core machine). Same float32 arithmetic otherwise; the summation order differs, moving
    probabilities by < 5e-5, as much as the dense product moves between BLAS thread counts; the label never
    changed on 30k test strings.
    """

    def __init__(self, identifier: LanguageIdentifier) -> None:
        self._next_state = identifier.tk_nextmove  # byte-trie transitions: [(state << 8) + byte] -> state
        self._state_features = identifier.tk_output  # state -> feature indices completed there
        self._weights = identifier.nb_ptc  # [features, languages] float32 log-probabilities
        self._prior = identifier.nb_pc  # [languages] float32
        self._labels: list[str] = list(identifier.nb_classes)

    def __call__(self, text: str) -> tuple[str, float]:
        """``(language, probability rounded to 3 places)``, as upstream's ``LangSegment._lang_classify``."""
        state, active = 0, Counter[int]()
        for byte in text.encode("utf8", errors="surrogatepass"):
            state = self._next_state[(state << 8) + byte]
            features = self._state_features.get(state)
            if features:
                active.update(features)
        log_probs = self._prior
        if active:
            if max(active.values()) > _MAX_FEATURE_COUNT:
                raise OverflowError("n-gram count exceeds py3langid's uint16 feature vector")
            rows = np.fromiter(active.keys(), dtype=np.intp, count=len(active))
            counts = np.fromiter(active.values(), dtype=np.float32, count=len(active))
            log_probs = counts @ self._weights[rows] + self._prior
        with np.errstate(over="ignore"):  # exp overflow -> inf -> probability 0, as in py3langid
            probs = 1.0 / np.exp(log_probs[None, :] - log_probs[:, None]).sum(1)
        best = int(np.argmax(probs))
        return self._labels[best], round(float(probs[best]), 3)  # upstream rounds the Python float


def _language_classifier() -> _LanguageClassifier:
    """The classifier over py3langid's bundled model, loaded once per process (~0.15 s)."""
    global _classifier
    if _classifier is None:
        with _classifier_lock:
            if _classifier is None:
                _classifier = _LanguageClassifier(_load_identifier())
    return _classifier


def _load_identifier() -> LanguageIdentifier:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as e:
        raise ImportError(
            "lyrics language detection needs the 'py3langid' package (the reference used py3langid==0.3.0): "
            "install it with `pip install py3langid==0.3.0`"
        ) from e
    identifier = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    unknown = sorted(set(identifier.nb_classes) - set(LANGUAGE_FILTERS))
    if unknown:
        # The segmenter drops upstream's handling of labels outside the filter list; it must stay unreachable.
        raise RuntimeError(
            f"py3langid model has labels outside LangSegment's filter list: {unknown}; "
            "ACE-Step parity needs py3langid==0.3.0"
        )
    return identifier


def detect_line_language(line: str) -> str:
    """The language the ACE-Step app's ``get_lang`` finds for one lyric line.

    Characters are counted per detected language (Chinese counts double); the most frequent wins, except that
    English yields to the runner-up. The code is py3langid's, so it may be unsupported by the tokenizer (e.g.
    "Hello world" -> ``"xh"``); pass it to :func:`resolve_encode_language`.

    Args:
        line: one line of the lyrics, stripped (as the pipeline passes it).

    Returns:
        An ISO 639-1 code. An empty or whitespace-only line gives ``"zh"`` (:data:`EMPTY_LINE_LANGUAGE`, what the
        reference returns; the pipeline itself never asks for such lines).

    Raises:
        TypeError: ``line`` is not a ``str``.
    """
    if not isinstance(line, str):
        raise TypeError(
            f"detect_line_language: line must be a str, got {type(line).__name__}; "
            "pass one line of the lyrics text (lyrics.split('\\n'), stripped)"
        )
    classify = _language_classifier()  # load errors must surface, not become the "en" fallback below
    try:
        counts = LineSegmenter(classify).language_counts(line)
    except Exception as e:  # upstream get_lang: any segmentation error means English
        logger.debug(
            "language segmentation failed on %r (%s: %s); using %r", line, type(e).__name__, e, FALLBACK_LANGUAGE
        )
        return FALLBACK_LANGUAGE
    language = counts[0][0]
    if language == "en" and len(counts) > 1:
        language = counts[1][0]
    return language


def resolve_encode_language(line: str, detected: str) -> str:
    """The language the lyric tokenizer encodes ``line`` with, given ``detect_line_language(line)``.

    Structure-tag lines (starting with ``[...]``) are English; a detected language outside
    :data:`SUPPORTED_LANGUAGES` falls back to English.
    """
    for name, value in (("line", line), ("detected", detected)):
        if not isinstance(value, str):
            raise TypeError(f"resolve_encode_language: {name} must be a str, got {type(value).__name__}")
    if STRUCTURE_TAG_PATTERN.match(line):
        return "en"
    # Upstream then maps codes containing "zh" to zh and "spa" to es: identities once the code is supported.
    return detected if detected in SUPPORTED_LANGUAGES else "en"

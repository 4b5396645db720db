"""Script/punctuation segmentation of one lyric line and per-language character counts.

Ported from ace-step/ACE-Step@d612523 acestep/language_segmentation/LangSegment.py (juntaosun/LangSegment 0.3.5,
Apache-2.0 per ACE-Step) and, for the Chinese SSML tags, acestep/language_segmentation/utils/num.py (PaddleSpeech via
GPT-SoVITS, Apache-2.0). Only the configuration the ACE-Step pipeline uses is ported: filter list
``language_filters.default`` (97 codes, equal to py3langid's label set), preview letters (French/Vietnamese) on,
pinyin tags off, priority threshold 0.89.

Deliberate divergences (none changes a result):
- State lives in one :class:`LineSegmenter` per call instead of a shared instance with a last-text cache, so
  detection is re-entrant and thread-safe.
- Segment scores are not stored (never read); :meth:`LineSegmenter.segment` returns upstream's merged segment
  list (``getTexts``) as ``(language, text)`` pairs, which the training tokenizer reads.
- Branches that cannot run with this filter list are dropped: the word-vote fallback for languages outside the
  filters (every py3langid label is in the list; checked when the model loads), the overrides keyed on the first
  filter (``"af"``), the non-positive score skip (normalised probabilities are >= 1/97) and the cross-line merge
  guarded by ``symbol == False`` (never true). Numeric SSML amounts never contain a decimal point, so the decimal
  half of ``num2str`` is not ported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

# acestep/language_segmentation/language_filters.py `default` (ISO 639-1), in upstream order.
LANGUAGE_FILTERS: tuple[str, ...] = (
    "af", "am", "an", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de", "dz", "el",
    "en", "eo", "es", "et", "eu", "fa", "fi", "fo", "fr", "ga", "gl", "gu", "he", "hi", "hr", "ht", "hu", "hy",
    "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lb", "lo", "lt", "lv", "mg",
    "mk", "ml", "mn", "mr", "ms", "mt", "nb", "ne", "nl", "nn", "no", "oc", "or", "pa", "pl", "ps", "pt", "qu",
    "ro", "ru", "rw", "se", "si", "sk", "sl", "sq", "sr", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk",
    "ur", "vi", "vo", "wa", "xh", "zh", "zu",
)  # fmt: skip
# Upstream tests many codes against the filters joined into one string, i.e. as a *substring*.
FILTERS_JOINED = "-".join(LANGUAGE_FILTERS)
# Short Han-only text scoring below this gets the language listed first among ja/zh in the filters.
HAN_PRIORITY_THRESHOLD = 0.89
# ...unless langid is at least this sure of short (3-5 character) Han text.
HAN_CONFIDENT_SCORE = 0.90
_JA_POS, _ZH_POS = FILTERS_JOINED.find("ja"), FILTERS_JOINED.find("zh")
_HAN_FALLBACK = "ja" if -1 < _JA_POS < _ZH_POS else "zh" if -1 < _ZH_POS < _JA_POS else None
_UNSURE_SUFFIX = "|…"  # marks a ja/zh guess that waits for the next segment to decide

Classifier = Callable[[str], tuple[str, float]]  # text -> (language code, probability rounded to 3 places)

# Placeholders "⑥<tag><6-digit index>⑥" stand for matched spans while the line is being split.
_KEY_RE = re.compile(r"(⑥\$*\d+[\d]{6,}⑥)")
_NUMBER_KEY_RE = re.compile(r"(⑥\d{6,}⑥)")
_PUNCT_RUN_RE = re.compile(r"([^\w\s]+)")
_NEWLINES_RE = re.compile(r"\n+")
_DIGIT_RUN_RE = re.compile(r"\d+")
_LINE_PIECE_RE = re.compile(r".*\n*")
_SENTENCE_RE = re.compile(r"(.*?[。.?？!！]+[\n]{,1})")
_INNER_CAPITAL_RE = re.compile(r"(?<!\b)([A-Z])")
_WORD_THEN_SEPARATOR_RE = re.compile(r"(.*?)([^\w]+)")
_REPEATED_CHAR_RE = re.compile(r"(.)\1+")
_WHITESPACE_RE = re.compile(r"\s+")
_KANA_RE = re.compile(r"[\u3040-\u309F\u30A0-\u30FF]+")
_ENDING_CHARS = "。."

_FRENCH_LETTERS = "àáâãäåæçèéêëìíîïðñòóôõöùúûüýþÿ"
_VIETNAMESE_LETTERS = "đơưăáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựôâêơưỷỹ"


def _script_run(letters: str) -> re.Pattern[str]:
    """A run of words in one script with opening quotes before and punctuation/space after each word."""
    return re.compile(r"(([【《（(“‘\"']*[" + letters + r"]+[\W\s]*)+)")


@dataclass(slots=True)
class _Segment:
    lang: str
    text: str
    tagged: bool  # from an explicit <tag>...</tag>: never merged with a neighbouring segment


def clean_for_langid(text: str) -> str:
    """Punctuation runs become one space and repeated characters collapse ("hello!!" -> "helo")."""
    text = _WORD_THEN_SEPARATOR_RE.sub(r"\1 ", text)
    return _REPEATED_CHAR_RE.sub(r"\1", text).strip()


def _is_digits_only(text: str) -> bool:
    """Whether only digits remain without newlines, punctuation and edge spaces (true for empty; not for "\\n")."""
    if text == "\n":
        return False
    core = _PUNCT_RUN_RE.sub("", _NEWLINES_RE.sub("", text)).strip()
    return not _DIGIT_RUN_RE.sub("", core)


def _is_punctuation(text: str) -> bool:
    return not _PUNCT_RUN_RE.sub("", _NEWLINES_RE.sub("", text)).strip()


def _space_inner_capitals(text: str) -> str:
    """English text as upstream counts it: "iPhone" -> "i Phone ", "HEY" -> "H E Y "."""
    return _INNER_CAPITAL_RE.sub(r" \1", text).strip("-") + " "


class LineSegmenter:
    """Splits text into same-language segments and counts characters per language (Chinese counts double).

    An instance holds the working state of one segmentation: do not share it between threads.

    Args:
        classify: py3langid-style classifier, ``text -> (code, probability rounded to 3 places)``.
    """

    def __init__(self, classify: Classifier) -> None:
        self._classify = classify
        self._words: list[_Segment] = []
        self._waiting: list[_Segment] = []  # ja/zh guesses decided by the next segment
        self._counts: dict[str, int] = {}  # insertion order breaks ties, as upstream's defaultdict does
        self._stash: dict[str, tuple[Callable[[Any], None], Any]] = {}
        self._at_line_end = False

    def language_counts(self, text: str) -> list[tuple[str, int]]:
        """``[(language, characters), ...]`` sorted by count, descending; ``[("zh", 0)]`` when nothing is found."""
        return self.segment(text)[1]

    def segment(self, text: str) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
        """``(segments, counts)``: upstream ``getTexts`` (``[(language, text), ...]``, neighbours of one language
        merged) and ``getCounts`` (as :meth:`language_counts`) of the whole ``text``, lines included."""
        self._waiting, self._counts = [], {}
        if not text.strip():
            return [], [("zh", 0)]
        found: list[_Segment] = []
        passes = (
            ("$1", _SYMBOL_TAG_RE, self._on_symbol_tag),
            ("$6", _KOREAN_RE, partial(self._on_script_run, "ko")),
            ("$8", _THAI_RE, partial(self._on_script_run, "th")),
            ("$7", _RUSSIAN_RE, partial(self._on_script_run, "ru")),
            ("00", _NUMBER_RE, self._on_number),
            ("$5", _LATIN_RE, self._on_latin),
            ("$3", _QUOTED_RE, self._on_quoted),
            ("$4", _BRACKETED_RE, self._on_quoted),
        )
        for piece in _LINE_PIECE_RE.findall(_KEY_RE.sub("", text)):
            if not piece.strip():
                continue
            self._words = []  # upstream segments each line piece into a fresh list (pending guesses carry over)
            self._at_line_end = False
            self._stash = {}
            for tag, pattern, handler in passes:
                piece = self._stash_matches(piece, tag, pattern, handler)
            self._walk(piece, root=True)
            found += self._words
        merged: list[tuple[str, str]] = []
        for segment in found:  # upstream _merge_results
            if merged and merged[-1][0] == segment.lang:
                merged[-1] = (segment.lang, merged[-1][1] + segment.text)
            else:
                merged.append((segment.lang, segment.text))
        if not self._counts:
            return merged, [("zh", 0)]
        return merged, sorted(self._counts.items(), key=lambda item: item[1], reverse=True)

    # -- splitting ---------------------------------------------------------------------------------------------

    def _stash_matches(self, text: str, tag: str, pattern: re.Pattern[str], handler: Callable[[Any], None]) -> str:
        """Replace each match of ``pattern`` by a placeholder key, unless the whole text is one match."""
        matches = pattern.findall(text)
        if len(matches) == 1 and "".join(matches[0]) == text:
            return text
        for index, match in enumerate(matches):
            key = f"⑥{tag}{index:06d}⑥"
            text = pattern.sub(key, text, count=1)  # the key holds no backslash: literal replacement
            self._stash[key] = (handler, match)
        return text

    def _walk(self, text: str, *, root: bool) -> None:
        parts = _KEY_RE.split(text)
        for index, part in enumerate(parts):
            if root:
                self._at_line_end = index >= len(parts) - 1
            if _KEY_RE.match(part):
                handler, match = self._stash[part]
                handler(match)
            else:
                self._classify_plain(part)

    def _classify_plain(self, segment: str) -> None:
        """Text outside script runs: split at punctuation, glue short pieces forward, classify each piece."""
        pieces = _PUNCT_RUN_RE.split(segment)
        at_line_end = self._at_line_end
        for index, text in enumerate(pieces):  # reads pieces live: gluing rewrites the next entry
            if not text:
                continue
            is_last = index >= len(pieces) - 1
            next_text = "" if is_last else pieces[index + 1]
            if not is_last and (_is_punctuation(text) or _is_punctuation(next_text)):
                pieces[index + 1] = text + next_text
                continue
            cleaned = clean_for_langid(_DIGIT_RUN_RE.sub("", _NUMBER_KEY_RE.sub("", text)))
            if not is_last and len(cleaned) <= 2:  # langid is unreliable on very short text
                pieces[index + 1] = text + next_text
                continue
            language, score = self._classify(cleaned)
            language = self._resolve_han(text, cleaned, language, score, is_last and at_line_end)
            self._add(language, text)

    def _resolve_han(self, text: str, cleaned: str, language: str, score: float, line_end: bool) -> str:
        """Chinese/Japanese disambiguation of Han text (kanji and hanzi share code points)."""
        prev_lang = self._words[-1].lang if self._words else None
        if language != "zh" and all("\u4e00" <= c <= "\u9fff" for c in _WHITESPACE_RE.sub("", cleaned)):
            language, score = "zh", 1.0
        if len(cleaned) > 5 or not any("\u4e00" <= c <= "\u9fff" for c in cleaned):
            return language
        if score < HAN_PRIORITY_THRESHOLD and _HAN_FALLBACK is not None:
            language = _HAN_FALLBACK
        if _KANA_RE.search(cleaned):
            return "ja"
        if len(cleaned) > 2 and score > HAN_CONFIDENT_SCORE:
            return language
        if line_end:
            return "zh" if len(cleaned) <= 1 else language
        short_after_zh = len(cleaned) <= 2 and prev_lang == "zh"
        unsure = "zh|ja" if language == "zh" or short_after_zh else "ja|zh"
        last_char = _WHITESPACE_RE.sub("", text)[-1]  # text holds Han here, never blank
        if last_char in _ENDING_CHARS:
            # A sentence end keeps the previous segment's language when that was a ja/zh (guess).
            if prev_lang and (prev_lang in unsure or unsure in prev_lang):
                return prev_lang
            return language
        return unsure + _UNSURE_SUFFIX

    # -- handlers of stashed matches ---------------------------------------------------------------------------

    def _on_symbol_tag(self, match: tuple[str, str, str]) -> None:
        _, name, content = match
        if name in FILTERS_JOINED:
            self._add(name, content, tagged=True)
            return
        verbalize = _SSML_VERBALIZERS.get(name)
        self._add("zh" if verbalize else name, verbalize(content) if verbalize else content, tagged=True)

    def _on_script_run(self, language: str, match: tuple[str, str]) -> None:
        self._add(language, match[0])  # Korean, Thai and Cyrillic runs need no identification

    def _on_number(self, match: str) -> None:
        # Digits are universal: they take the language of the line's first segment.
        self._add(self._words[0].lang if self._words else "zh", match)

    def _on_latin(self, match: tuple[str, str]) -> None:
        for sentence in _SENTENCE_RE.split(match[0]):
            if sentence.strip():
                language, _ = self._classify(clean_for_langid(sentence))
                self._add(language, sentence)

    def _on_quoted(self, match: tuple[str, str, str]) -> None:
        text = "".join(match)
        if _KEY_RE.search(text):
            self._walk(text, root=False)
            return
        cleaned = clean_for_langid(match[1])
        if len(cleaned) <= 5:
            self._classify_plain(text)
        else:
            self._add(self._classify(cleaned)[0], text)

    # -- accumulation ------------------------------------------------------------------------------------------

    def _add(self, language: str, text: str, *, tagged: bool = False) -> None:
        """Queue a ``"ja|zh|…"`` guess or save the segment, first settling a guess left by the previous call."""
        if text != "\n" and not text.strip():
            return
        language = language.lower()
        if language == "en":
            text = _space_inner_capitals(text)
        waiting = self._waiting.pop() if self._waiting else None
        previous = waiting if waiting is not None else (self._words[-1] if self._words else None)
        if previous is not None and "|" in previous.lang:
            if language in previous.lang:
                previous.lang = language = language.split("|")[0]
            else:
                previous.lang = previous.lang.split("|")[0]
            if waiting is not None:
                previous = self._save(previous.lang, previous.text, previous.tagged)
        prev_lang = previous.lang if previous is not None else None
        if "|" in language and prev_lang and prev_lang not in language and "…" not in language:
            language = language.split("|")[0]
        if "|" in language:
            self._waiting.append(_Segment(language, text, tagged))
        else:
            self._save(language, text, tagged)

    def _save(self, language: str, text: str, tagged: bool) -> _Segment:
        """Append (or merge into the previous segment) and count; digit-only text joins its neighbour."""
        is_number = _is_digits_only(text)
        previous = self._words[-1] if self._words else None
        if not tagged and previous is not None and not previous.tagged:
            if is_number:
                language = previous.lang
            if previous.lang == language:
                self._count(language, text)
                previous.text += text
                return previous
            if _is_digits_only(previous.text):
                text = previous.text + text
                self._words.pop()
        segment = _Segment(language, text, tagged)
        if "?" in language or language in LANGUAGE_FILTERS or language in LANGUAGE_FILTERS[0]:
            self._words.append(segment)
            self._count(language, text)
        return segment

    def _count(self, language: str, text: str) -> None:
        if "|" not in language:
            self._counts[language] = self._counts.get(language, 0) + len(text) * (2 if language == "zh" else 1)


_SYMBOL_TAG_RE = re.compile(r"(<([a-zA-Z|-]*)>(.*?)<\/*[a-zA-Z|-]*>)")
_KOREAN_RE = _script_run("\uac00-\ud7a3")
_THAI_RE = _script_run("\u0e00-\u0e7f")
_RUSSIAN_RE = _script_run("А-Яа-яЁё")
_NUMBER_RE = re.compile(r"(\W*\d+\W+\d*\W*\d*)")
_LATIN_RE = _script_run("a-zA-Z" + _FRENCH_LETTERS + _VIETNAMESE_LETTERS)
_QUOTED_RE = re.compile(r"([\"'])(.*?)(\1)")
_BRACKETED_RE = re.compile(r"([\n]*[【《（(“‘])([^【《（(“‘’”)）》】]{3,})([’”)）》】][\W\s]*[\n]{,1})")


# -- Chinese readings of the SSML tags <number>, <telephone>, <currency>, <date> (upstream LangSSML + num.py) ------

_ZH_DIGIT = {str(value): char for value, char in enumerate("零一二三四五六七八九")}
_ZH_UNIT = {8: "亿", 4: "万", 3: "千", 2: "百", 1: "十"}  # digits below the unit -> unit; largest first
_DIGIT_SPLIT_RE = re.compile(r"(\d+)")
_DATE_SEPARATOR_RE = re.compile(r"[\/\._|年|月]")
_TIME_SEPARATOR_RE = re.compile(r"[\/\.\-：_]")
_DATE_UNIT_RUN_RE = re.compile(r"([年|月|日])+")
_TIME_UNIT_RUN_RE = re.compile(r"([点|分|秒])+")


def _zh_each_digit(text: str) -> str:
    """``<number>``: every ASCII digit read alone ("2024" -> "二零二四"); other decimal digits vanish."""
    parts = _DIGIT_SPLIT_RE.split(text)
    read = ("".join(_ZH_DIGIT.get(d, "") for d in p) if _DIGIT_SPLIT_RE.match(p) else p for p in parts)
    return "".join(read).replace(".", "点")


def _zh_cardinal_symbols(digits: str) -> list[str]:
    stripped = digits.lstrip("0")
    if not stripped:
        return []
    if len(stripped) == 1:
        return ["零", _ZH_DIGIT[stripped]] if len(stripped) < len(digits) else [_ZH_DIGIT[stripped]]
    power = next(p for p in _ZH_UNIT if p < len(stripped))
    return _zh_cardinal_symbols(digits[:-power]) + [_ZH_UNIT[power]] + _zh_cardinal_symbols(digits[-power:])


def _zh_cardinal(digits: str) -> str:
    """A digit run read as a number ("1200" -> "一千二百", "15" -> "十五"); KeyError on non-ASCII digits."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return "零"
    symbols = _zh_cardinal_symbols(digits)
    if symbols[:2] == ["一", "十"]:
        symbols = symbols[1:]
    return "".join(symbols)


def _zh_amount(text: str) -> str:
    """``<currency>``: every digit run read as a number."""
    parts = _DIGIT_SPLIT_RE.split(text)
    return "".join(_zh_cardinal(p) if _DIGIT_SPLIT_RE.match(p) else p for p in parts).replace(".", "点")


def _with_unit(value: str, unit: str, read: Callable[[str], str]) -> str:
    value = read(value)
    return f"{value}{unit}" if value not in ("", "0") else ""


def _zh_date(text: str) -> str:
    """``<date>``: "2024-08-24", "2024/8/24 10:30", "08-24", "24" ... read with 年/月/日 and 点/分/秒."""
    if not text.strip():
        return ""
    fields = _DATE_SEPARATOR_RE.sub("-", text).replace("日", "").split(" ")
    if len(fields) == 1 and ":" in fields[0]:
        time_text, fields = fields[0], []
    else:
        time_text = fields[1] if len(fields) >= 2 else ""
    ymd = ""
    if fields:
        year = month = day = ""
        parts = fields[0].split("-")
        if len(parts) == 3:
            year, month, day = parts
        elif len(parts) == 2:
            year, month, day = (parts[0], parts[1], "") if len(parts[0]) == 4 else ("", parts[0], parts[1])
        elif parts[0]:
            year, day = (parts[0], "") if len(parts[0]) == 4 else ("", parts[0])
        ymd = f"{_with_unit(year, '年', _zh_each_digit)}{_with_unit(month, '月', _zh_amount)}"
        ymd = _DATE_UNIT_RUN_RE.sub(r"\1", ymd + _with_unit(day, "日", _zh_amount))
    times = _TIME_SEPARATOR_RE.sub(":", time_text).split(":")
    hours, minutes, seconds = (times + ["", ""])[:3] if len(times) in (2, 3) else ("", "", "")
    if len(times) not in (2, 3) and times[0]:
        hours = f"{times[0]}点"
    if len(times) > 1:
        units = zip((hours, minutes, seconds), "点分秒", strict=True)
        hours, minutes, seconds = (_with_unit(value, unit, _zh_amount) for value, unit in units)
    return ymd + _TIME_UNIT_RUN_RE.sub(r"\1", f"{hours}{minutes}{seconds}")


_SSML_VERBALIZERS: dict[str, Callable[[str], str]] = {
    "number": _zh_each_digit,
    "telephone": lambda text: _zh_each_digit(text.replace("+86", "")).replace("一", "幺"),
    "currency": _zh_amount,
    "date": _zh_date,
}

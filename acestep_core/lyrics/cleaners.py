"""Per-language lyric normalisation: the text the lyric BPE sees, identical to the original ACE-Step app.

Ported from ace-step/ACE-Step@d612523 acestep/models/lyrics_utils/lyric_tokenizer.py (``preprocess_text``,
``multilingual_cleaners``, abbreviation and symbol tables). That file has no licence header; it states it copies
coqui-ai TTS ``TTS/tts/layers/xtts/tokenizer.py`` (coqui-ai TTS is MPL-2.0, the ACE-Step repository Apache-2.0).
Number helpers live in :mod:`.numbers` and :mod:`.zh_numbers` (SpeechIO/WeNet TextNorm port).

Per language (``lang`` is one of :data:`CLEANER_LANGUAGES`):

* en de fr es it pt pl tr ru cs nl ar hu ko zh: drop ``"``; tr maps İ Ö Ü to i ö ü; lower-case; spell numbers;
  expand abbreviations; expand the symbols & @ % # $ £ ° with the language's own words; collapse whitespace.
  Then zh -> tone-numbered pinyin without separators (pypinyin), ko -> academic romanisation (hangul-romanize).
* ja: cutlet romaji (MeCab through fugashi + unidic-lite), lower-cased; nothing else.
* hi: lower-case and collapse whitespace only (Devanagari stays, mostly ``[UNK]`` for the BPE).

Upstream behaviour kept because it changes the output:

* number spelling runs inside a catch-all: any failure leaves the line exactly as before the number step (the
  thousands-separator removal included). Czech always fails that way when it has digits (num2words is called
  with ``"cz"``), so Czech digits stay digits; Chinese keeps its punctuation if TextNorm fails;
* symbol expansion is per language for all 15 languages above (spec 4.2.3's "only an en table" describes an
  older XTTS copy; the goldens confirm per-language words), runs on every occurrence, squeezes double spaces
  after each symbol and strips the line; for zh the ASCII symbols have already become ``","`` (TextNorm), so only
  £ and ° reach it (-> 英镑, 度 -> pinyin);
* abbreviations need a trailing dot (ru: a word boundary) and follow each language's table order;
* ja and hi keep ``"`` and digits; ja output depends on cutlet/fugashi/unidic-lite versions (は particle -> "wa").

Divergences: the catch-alls catch ``Exception`` (upstream: bare ``except``), so Ctrl-C is not swallowed; a missing
package raises :class:`MissingLyricsExtraError` on first use instead of ``ImportError`` at import; an unknown
language raises :class:`~acestep_core.errors.AceStepInputError` instead of ``NotImplementedError``.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

from ..errors import AceStepInputError
from .numbers import expand_numbers
from .zh_numbers import normalize_chinese_numbers

__all__ = ["CLEANER_LANGUAGES", "MissingLyricsExtraError", "normalize_lyric_line"]

CLEANER_LANGUAGES: tuple[str, ...] = (
    "en", "de", "fr", "es", "it", "pt", "pl", "tr", "ru", "cs", "nl", "ar", "zh", "ja", "hu", "ko", "hi",
)  # fmt: skip

JAPANESE_PIP = "pip install cutlet==0.5.2 fugashi==1.5.2 unidic-lite==1.0.8"

# (abbreviation, expansion) in the order they are tried; upstream requires a trailing "." except for ru.
_ABBREVIATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("mrs", "misess"), ("mr", "mister"), ("dr", "doctor"), ("st", "saint"), ("co", "company"),
           ("jr", "junior"), ("maj", "major"), ("gen", "general"), ("drs", "doctors"), ("rev", "reverend"),
           ("lt", "lieutenant"), ("hon", "honorable"), ("sgt", "sergeant"), ("capt", "captain"),
           ("esq", "esquire"), ("ltd", "limited"), ("col", "colonel"), ("ft", "fort")),
    "es": (("sra", "señora"), ("sr", "señor"), ("dr", "doctor"), ("dra", "doctora"), ("st", "santo"),
           ("co", "compañía"), ("jr", "junior"), ("ltd", "limitada")),
    "fr": (("mme", "madame"), ("mr", "monsieur"), ("dr", "docteur"), ("st", "saint"), ("co", "compagnie"),
           ("jr", "junior"), ("ltd", "limitée")),
    "de": (("fr", "frau"), ("dr", "doktor"), ("st", "sankt"), ("co", "firma"), ("jr", "junior")),
    "pt": (("sra", "senhora"), ("sr", "senhor"), ("dr", "doutor"), ("dra", "doutora"), ("st", "santo"),
           ("co", "companhia"), ("jr", "júnior"), ("ltd", "limitada")),
    "it": (("sig", "signore"), ("dr", "dottore"), ("st", "santo"), ("co", "compagnia"), ("jr", "junior"),
           ("ltd", "limitata")),
    "pl": (("p", "pani"), ("m", "pan"), ("dr", "doktor"), ("sw", "święty"), ("jr", "junior")),
    "cs": (("dr", "doktor"), ("ing", "inženýr"), ("p", "pan")),
    "ru": (("г-жа", "госпожа"), ("г-н", "господин"), ("д-р", "доктор")),
    "nl": (("dhr", "de heer"), ("mevr", "mevrouw"), ("dr", "dokter"), ("jhr", "jonkheer")),
    "tr": (("b", "bay"), ("byk", "büyük"), ("dr", "doktor")),
    "hu": (("dr", "doktor"), ("b", "bácsi"), ("nőv", "nővér")),
    "ar": (), "zh": (), "ko": (),
}  # fmt: skip

# Spoken words for these symbols, replaced in this order.
_SYMBOLS = ("&", "@", "%", "#", "$", "£", "°")
_SYMBOL_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("and", "at", "percent", "hash", "dollar", "pound", "degree"),
    "es": ("y", "arroba", "por ciento", "numeral", "dolar", "libra", "grados"),
    "fr": ("et", "arobase", "pour cent", "dièse", "dollar", "livre", "degrés"),
    "de": ("und", "at", "prozent", "raute", "dollar", "pfund", "grad"),
    "pt": ("e", "arroba", "por cento", "cardinal", "dólar", "libra", "graus"),
    "it": ("e", "chiocciola", "per cento", "cancelletto", "dollaro", "sterlina", "gradi"),
    "pl": ("i", "małpa", "procent", "krzyżyk", "dolar", "funt", "stopnie"),
    "ar": ("و", "على", "في المئة", "رقم", "دولار", "جنيه", "درجة"),
    "zh": ("和", "在", "百分之", "号", "美元", "英镑", "度"),
    "cs": ("a", "na", "procento", "křížek", "dolar", "libra", "stupně"),
    "ru": ("и", "собака", "процентов", "номер", "доллар", "фунт", "градус"),
    "nl": ("en", "bij", "procent", "hekje", "dollar", "pond", "graden"),
    "tr": ("ve", "at", "yüzde", "diyez", "dolar", "sterlin", "derece"),
    "hu": ("és", "kukac", "százalék", "kettőskereszt", "dollár", "font", "fok"),
    "ko": ("그리고", "에", "퍼센트", "번호", "달러", "파운드", "도"),
}

_TURKISH_CAPITALS = str.maketrans({"İ": "i", "Ö": "ö", "Ü": "ü"})  # before lower(): "İ".lower() is "i̇"
_WHITESPACE = re.compile(r"\s+")


class MissingLyricsExtraError(AceStepInputError):
    """A package needed to normalise lyrics in some language is not installed (Japanese needs the optional
    cutlet + fugashi + unidic-lite)."""


# ---------------------------------------------------------------------------------------------------------------
# Third-party engines: imported on first use, then kept for the process (creation is serialised by a lock).


def _load_num2words() -> Callable[..., str]:
    from num2words import num2words

    return num2words


def _load_pinyin() -> Callable[[str], list[list[str]]]:
    import pypinyin

    return functools.partial(pypinyin.pinyin, style=pypinyin.Style.TONE3, heteronym=False, neutral_tone_with_five=True)


def _load_hangul() -> Callable[[str], str]:
    from hangul_romanize import Transliter
    from hangul_romanize.rule import academic

    return Transliter(academic).translit


def _load_cutlet() -> Any:
    import cutlet

    return cutlet.Cutlet()  # default: Hepburn, foreign spellings on, as upstream


# name -> (loader, what it is for, pip command, exceptions meaning "not installed")
_ENGINE_SPECS: dict[str, tuple[Callable[[], Any], str, str, tuple[type[Exception], ...]]] = {
    "num2words": (_load_num2words, "number spelling", "pip install num2words==0.5.14", (ImportError,)),
    "pinyin": (_load_pinyin, "Chinese lyrics (pinyin)", "pip install pypinyin==0.53.0", (ImportError,)),
    "hangul": (_load_hangul, "Korean lyrics (romanisation)", "pip install hangul-romanize==0.1.0", (ImportError,)),
    # fugashi raises RuntimeError when MeCab finds no dictionary (unidic-lite missing).
    "cutlet": (
        _load_cutlet,
        "Japanese lyrics (romaji: packages cutlet, fugashi and unidic-lite, about 50 MB)",
        JAPANESE_PIP,
        (ImportError, RuntimeError),
    ),
}
_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()
_CUTLET_LOCK = threading.Lock()  # a MeCab tagger must not be used by two threads at once


def _engine(name: str, line: str) -> Any:
    engine = _ENGINES.get(name)
    if engine is not None:
        return engine
    loader, purpose, pip_command, missing_errors = _ENGINE_SPECS[name]
    with _ENGINES_LOCK:
        engine = _ENGINES.get(name)
        if engine is None:
            try:
                engine = loader()
            except missing_errors as e:
                shown = line if len(line) <= 80 else line[:77] + "..."
                raise MissingLyricsExtraError(
                    f"lyrics line {shown!r}: {purpose} needs packages that are not installed ({e}); "
                    f"install them with `{pip_command}` and retry"
                    + (", or tag the line with another language" if name == "cutlet" else "")
                ) from e
            _ENGINES[name] = engine
    return engine


# ---------------------------------------------------------------------------------------------------------------
# Cleaning steps.


@functools.cache
def _abbreviation_rules(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    end = r"\b" if lang == "ru" else r"\."
    return tuple(
        (re.compile(r"\b" + re.escape(short) + end, re.IGNORECASE), long) for short, long in _ABBREVIATIONS[lang]
    )


def _expand_abbreviations(text: str, lang: str) -> str:
    for pattern, expansion in _abbreviation_rules(lang):
        text = pattern.sub(expansion, text)  # expansions contain no backslashes
    return text


def _expand_symbols(text: str, lang: str) -> str:
    for symbol, word in zip(_SYMBOLS, _SYMBOL_WORDS[lang], strict=True):
        text = text.replace(symbol, f" {word} ").replace("  ", " ")
    return text.strip()


def _spell_numbers(text: str, lang: str) -> str:
    if lang == "zh":
        spell = normalize_chinese_numbers
    else:
        spell = functools.partial(expand_numbers, lang=lang, num2words=_engine("num2words", text))
    try:
        return spell(text)
    except Exception:  # upstream swallows every failure of this step and keeps the line (module docstring)
        return text


def _clean_multilingual(text: str, lang: str) -> str:
    text = text.replace('"', "")
    if lang == "tr":
        text = text.translate(_TURKISH_CAPITALS)
    text = _spell_numbers(text.lower(), lang)
    text = _expand_abbreviations(text, lang)
    text = _expand_symbols(text, lang)
    return _WHITESPACE.sub(" ", text)


def _to_romaji(text: str) -> str:
    katsu = _engine("cutlet", text)
    with _CUTLET_LOCK:
        return str(katsu.romaji(text)).lower()


def normalize_lyric_line(text: str, lang: str) -> str:
    """Normalise one stripped lyric line the way the original app does before BPE encoding.

    Args:
        text: the line (already stripped by the caller; structure-tag lines are passed with ``lang="en"``).
        lang: one of :data:`CLEANER_LANGUAGES` (``"zh"``, not ``"zh-cn"``).

    Returns:
        The normalised text, without the ``[lang]`` prefix and with plain spaces (the tokenizer adds the prefix
        and turns spaces into ``[SPACE]``). Example: ``("我爱你 123", "zh")`` -> ``"wo3ai4ni3 yi1bai3er4shi2san1"``.

    Raises:
        AceStepInputError: ``text`` is not a string or ``lang`` is not supported.
        MissingLyricsExtraError: a package this language needs is missing (Japanese: cutlet, fugashi, unidic-lite).
    """
    if not isinstance(text, str):
        raise AceStepInputError(f"lyrics line: expected a str, got {type(text).__name__}; pass the line's text")
    if lang not in CLEANER_LANGUAGES:
        raise AceStepInputError(
            f"lyrics line {text[:80]!r}: unknown language {lang!r}; supported: {', '.join(CLEANER_LANGUAGES)}"
        )
    if lang == "ja":
        return _to_romaji(text)
    if lang == "hi":
        return _WHITESPACE.sub(" ", text.lower())
    text = _clean_multilingual(text, lang)
    if lang == "zh":
        return "".join(syllables[0] for syllables in _engine("pinyin", text)(text))
    if lang == "ko":
        return str(_engine("hangul", text)(text))
    return text

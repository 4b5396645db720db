"""Number expansion for the alphabetic languages (and ar, ko) through ``num2words``.

Ported from ace-step/ACE-Step@d612523 acestep/models/lyrics_utils/lyric_tokenizer.py
(``expand_numbers_multilingual`` and helpers), which copies coqui-ai TTS ``TTS/tts/layers/xtts/tokenizer.py``
(MPL-2.0; the ACE-Step repository is Apache-2.0).

Steps, in upstream order: drop thousands separators (``,`` for en/ru, ``.`` otherwise), spell £/$/€ amounts,
decimals (not for tr), per-language ordinals, then every remaining integer. ``num2words`` is passed in by the
caller (loaded lazily there), so this module imports nothing heavy.

Behaviour kept on purpose (it changes the output):

* currency spelling runs GBP, USD, EUR in turn inside one ``try``: when ``num2words`` rejects an amount the
  currencies already spelled stay spelled and the rest is left for the decimal/integer steps;
* any other failure propagates; the caller then keeps the text from before *all* number steps (so Czech, which
  upstream passes to ``num2words`` as ``"cz"`` -- a code num2words 0.5.14 rejects -- never has digits spelled);
* the "dot-grouped" thousands pattern has an unescaped ``.`` (any character between digit groups);
* an integer amount drops the cents part after the *last* language-specific "and" (``", "``, ``" und "`` ...).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable

__all__ = ["expand_numbers"]

# Upstream passes Czech to num2words under the wrong code (it raises NotImplementedError): kept for parity.
_NUM2WORDS_CODES = {"cs": "cz"}

_COMMA_GROUPED = re.compile(r"\b\d{1,3}(,\d{3})*(\.\d+)?\b")
_DOT_GROUPED = re.compile(r"\b\d{1,3}(.\d{3})*(\,\d+)?\b")
_DECIMAL = re.compile(r"([0-9]+[.,][0-9]+)")
_INTEGER = re.compile(r"[0-9]+")
_AMOUNT_JUNK = re.compile(r"[^\d.]")
# Order matters: pounds, then dollars, then euros.
_CURRENCIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GBP", re.compile(r"((£[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+£))")),
    ("USD", re.compile(r"((\$[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+\$))")),
    ("EUR", re.compile(r"(([0-9\.\,]*[0-9]+€)|((€[0-9\.\,]*[0-9]+)))")),
)
# The word joining units and cents in num2words' currency output, per language.
_CURRENCY_AND = {
    "en": ", ", "es": " con ", "fr": " et ", "de": " und ", "pt": " e ", "it": " e ", "pl": ", ", "cs": ", ",
    "ru": ", ", "nl": ", ", "ar": ", ", "tr": ", ", "hu": ", ", "ko": ", ",
}  # fmt: skip
# Ordinal suffixes; group 1 is the number.
_ORDINALS = {
    "en": re.compile(r"([0-9]+)(st|nd|rd|th)"),
    "es": re.compile(r"([0-9]+)(º|ª|er|o|a|os|as)"),
    "fr": re.compile(r"([0-9]+)(º|ª|er|re|e|ème)"),
    "de": re.compile(r"([0-9]+)(st|nd|rd|th|º|ª|\.(?=\s|$))"),
    "pt": re.compile(r"([0-9]+)(º|ª|o|a|os|as)"),
    "it": re.compile(r"([0-9]+)(º|°|ª|o|a|i|e)"),
    "pl": re.compile(r"([0-9]+)(º|ª|st|nd|rd|th)"),
    "ar": re.compile(r"([0-9]+)(ون|ين|ث|ر|ى)"),
    "cs": re.compile(r"([0-9]+)\.(?=\s|$)"),
    "ru": re.compile(r"([0-9]+)(-й|-я|-е|-ое|-ье|-го)"),
    "nl": re.compile(r"([0-9]+)(de|ste|e)"),
    "tr": re.compile(r"([0-9]+)(\.|inci|nci|uncu|üncü)"),
    "hu": re.compile(r"([0-9]+)(\.|adik|edik|odik|ödik|ödike|ik)"),
    "ko": re.compile(r"([0-9]+)(번째|번|차|째)"),
}

Num2Words = Callable[..., str]


def _spell_amount(match: re.Match[str], *, spell: Num2Words, currency: str, joiner: str) -> str:
    amount = float(_AMOUNT_JUNK.sub("", match.group(0).replace(",", ".")))
    words = spell(amount, to="currency", currency=currency)
    if amount.is_integer():
        cut = words.rfind(joiner)
        if cut != -1:
            words = words[:cut]  # "ten dollars, zero cents" -> "ten dollars"
    return words


def _expand_currencies(text: str, spell: Num2Words, lang: str) -> str:
    # Upstream ignores any failure here, keeping the currencies spelled so far (see module docstring).
    with contextlib.suppress(Exception):
        for currency, pattern in _CURRENCIES:
            rewrite = functools.partial(_spell_amount, spell=spell, currency=currency, joiner=_CURRENCY_AND[lang])
            text = pattern.sub(rewrite, text)
    return text


def expand_numbers(text: str, lang: str, num2words: Num2Words) -> str:
    """Spell the numbers of a lower-cased line in ``lang`` (any language of ``_ORDINALS``).

    Args:
        text: the line, already lower-cased.
        lang: one of en, de, fr, es, it, pt, pl, tr, ru, cs, nl, ar, hu, ko.
        num2words: the ``num2words.num2words`` function.

    Raises whatever ``num2words`` raises outside the currency step (the caller keeps the original text then).
    """
    spell: Num2Words = functools.partial(num2words, lang=_NUM2WORDS_CODES.get(lang, lang))
    if lang in ("en", "ru"):
        text = _COMMA_GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    else:
        text = _DOT_GROUPED.sub(lambda m: m.group(0).replace(".", ""), text)
    text = _expand_currencies(text, spell, lang)
    if lang != "tr":
        text = _DECIMAL.sub(lambda m: spell(float(m.group(1).replace(",", "."))), text)
    text = _ORDINALS[lang].sub(lambda m: spell(int(m.group(1)), ordinal=True), text)
    return _INTEGER.sub(lambda m: spell(int(m.group(0))), text)

"""Chinese number normaliser: digits, dates, money, phone numbers, fractions and percentages -> Chinese numerals.

Ported from ace-step/ACE-Step@d612523 acestep/models/lyrics_utils/zh_num2words.py, itself a copy of coqui-ai TTS
``TTS/tts/layers/xtts/zh_num2words.py`` (the SpeechIO/WeNet "TextNorm" Chinese normaliser by Zhiyang Zhou and Jiayu
Du; no licence header in the file, the ACE-Step repository is Apache-2.0, coqui-ai TTS is MPL-2.0).

Only the path the app reaches is ported: ``TextNorm()`` with every option off, i.e. the non-standard-word rewriting
(``normalize_nsw``) followed by mapping every ASCII and CJK punctuation mark to ``","``. Simplified characters, the
"mid" numbering system (万 = 10^4, 亿 = 10^8, 兆 = 10^12, ...), 两 for a leading 2 before 百/千/万/亿.

Behaviour kept on purpose (it changes the output):

* each rule first collects all its matches, then replaces the *first occurrence* of each matched string in the
  current text, which is not always the occurrence that matched (``"1块10"`` -> money rule rewrites every ``"1"``);
* the text is framed as ``"^" + text + "$"`` for the rules and those sentinels are removed with
  ``lstrip("^")``/``rstrip("$")``, so a user ``^`` at the start or ``$`` at the end disappears instead of
  becoming ``","``;
* the rules use ``\\d`` (any Unicode decimal digit), not only ASCII digits.

Divergences: the unused options (full-/half-width conversion, case folding, filler and erhua removal, character
check, OpenCC) and the reverse conversions are not ported.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

__all__ = ["chinese_cardinal", "chinese_digits", "normalize_chinese_numbers"]

_DIGIT_NAMES = "零一二三四五六七八九"
_TWO_BEFORE_BIG_UNIT = "两"
_POINT = "点"
# (power of ten, character), ascending: 十 百 千 万 then the "mid" system's larger units (10^(4k), k >= 2).
_UNITS: tuple[tuple[int, str], ...] = ((1, "十"), (2, "百"), (3, "千"), (4, "万")) + tuple(
    ((k + 2) * 4, name) for k, name in enumerate("亿兆京垓秭穰沟涧正载")
)

# A symbol of a spelled number: ("digit", value, text), ("unit", power, text) or ("point", 0, text).
_Symbol = tuple[str, int, str]

# Measure words after which a number is read as a cardinal (order kept from the upstream alternation).
_QUANTIFIER_LINES = (
    "匹 张 座 回 场 尾 条 个 首 阙 阵 网 炮 顶 丘 棵 只 支 袭 辆 挑 担 颗 壳 窠 曲 墙 群 腔 砣 客 贯 扎",
    "捆 刀 令 打 手 罗 坡 山 岭 江 溪 钟 队 单 双 对 出 口 头 脚 板 跳 枝 件 贴 针 线 管 名 位 身 堂 课",
    "本 页 家 户 层 丝 毫 厘 分 钱 两 斤 铢 石 钧 锱 忽 千克 毫克 微克 寸 尺 丈 里 寻 常 铺 程 千米 分米",
    "厘米 毫米 微米 撮 勺 合 升 斗 盘 碗 碟 叠 桶 笼 盆 盒 杯 斛 锅 簋 篮 罐 瓶 壶 卮 盏 箩 箱 煲 啖 袋",
    "钵 年 月 日 季 刻 时 周 天 秒 旬 纪 岁 世 更 夜 春 夏 秋 冬 代 伏 辈 丸 泡 粒 幢 堆 根 道 面 片 块",
)
_QUANTIFIERS = tuple(word for line in _QUANTIFIER_LINES for word in line.split())
_QUANTIFIER_RE = "(?:" + "|".join(_QUANTIFIERS) + ")"
_MAGNITUDE_RE = "(?:亿|千万|百万|万|千|百)"
_CURRENCY_UNIT_RE = f"(?:{_MAGNITUDE_RE}|(?:亿|千万|百万|万|千|百|)元|(?:亿|千万|百万|万|千|百|)块|角|毛|分)"

# Every CJK and ASCII punctuation mark becomes an ASCII comma after the number rules (zhon's punctuation sets).
_CJK_PUNCTUATION = (
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿"
    "\u2013\u2014‘’‛“”„‟…‧﹏·〈〉-"
)
_PUNCTUATION_TO_COMMA = str.maketrans(dict.fromkeys(_CJK_PUNCTUATION + string.punctuation, ","))

_NUMBER_RE = re.compile(r"(\d+(\.\d+)?)")


def _digit(value: int) -> _Symbol:
    return ("digit", value, _DIGIT_NAMES[value])


def _grouped(digits: str) -> list[_Symbol]:
    """Spell an integer string with units; a zero run inside the number is read as one 零."""
    significant = digits.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        head = [_digit(0)] if len(digits) != len(significant) else []
        return head + [_digit(int(significant))]
    power, name = max(unit for unit in _UNITS if unit[0] < len(significant))
    return _grouped(digits[:-power]) + [("unit", power, name)] + _grouped(significant[-power:])


def _use_liang(symbols: list[_Symbol]) -> list[_Symbol]:
    """二 -> 两 when it is followed by a unit above 十 and preceded by nothing or by a unit above 十."""
    result = list(symbols)
    for i, (kind, value, _) in enumerate(symbols):
        if kind != "digit" or value != 2:
            continue
        after = symbols[i + 1] if i + 1 < len(symbols) else None
        before = symbols[i - 1] if i > 0 else None
        if after is None or after[0] != "unit" or after[1] == 1:
            continue
        if before is None or (before[0] == "unit" and before[1] != 1):
            result[i] = ("digit", 2, _TWO_BEFORE_BIG_UNIT)
    return result


def _spell(number: str, *, use_units: bool, liang: bool) -> str:
    parts = number.split(".")
    if len(parts) > 2:
        raise ValueError(f"invalid number string with more than one dot: {number}")
    integer, decimals = parts[0], (parts[1] if len(parts) == 2 else "")
    symbols = _grouped(integer) if use_units and len(integer) > 1 else [_digit(int(c)) for c in integer]
    if decimals:
        symbols += [("point", 0, _POINT)] + [_digit(int(c)) for c in decimals]
    if liang:
        symbols = _use_liang(symbols)
    text = "".join(symbol[2] for symbol in symbols)
    if text.startswith(_POINT):
        return _DIGIT_NAMES[0] + text
    if len(text) >= 2 and text[0] == "一" and text[1] == "十":
        text = text[1:]  # 10..19 are read 十, 十一, ... not 一十
    return text


def chinese_cardinal(number: str) -> str:
    """``"234"`` -> ``"两百三十四"``, ``"10.5"`` -> ``"十点五"`` (digits with units, optional decimals)."""
    return _spell(number, use_units=True, liang=True)


def chinese_digits(number: str) -> str:
    """``"2024"`` -> ``"二零二四"`` (digit by digit, no units, no 两)."""
    return _spell(number, use_units=False, liang=False)


def _date(raw: str) -> str:
    try:
        year, rest = raw.strip().split("年", 1)
        year = chinese_digits(year) + "年"
    except ValueError:
        rest, year = raw, ""
    month = day = ""
    if rest:
        try:
            month, day = rest.strip().split("月", 1)
            month = chinese_cardinal(month) + "月"
        except ValueError:
            day, month = raw, ""
        if day:
            day = chinese_cardinal(day[:-1]) + day[-1]
    return year + month + day


def _money(raw: str) -> str:
    for match in _NUMBER_RE.findall(raw):
        raw = raw.replace(match[0], chinese_cardinal(match[0]))  # every occurrence, as upstream
    return raw


def _mobile_phone(raw: str) -> str:
    return "".join(chinese_digits(part) for part in raw.strip("+").split())


def _landline(raw: str) -> str:
    return "".join(chinese_digits(part) for part in raw.split("-"))


def _fraction(raw: str) -> str:
    numerator, denominator = raw.split("/")
    return chinese_cardinal(denominator) + "分之" + chinese_cardinal(numerator)


def _percentage(raw: str) -> str:
    return "百分之" + chinese_cardinal(raw.strip().strip("%"))


def _restore_latin_two(raw: str) -> str:
    """``p二p`` -> ``p2p`` (P2P, B2B, O2O ...)."""
    head, _, tail = raw.partition("二")
    return head + "2" + tail


# (pattern whose group 1 is the span to rewrite, rewrite), applied in this order.
_RULES: tuple[tuple[re.Pattern[str], Callable[[str], str]], ...] = (
    (re.compile(r"\D+((([089]\d|(19|20)\d{2})年)?(\d{1,2}月(\d{1,2}[日号])?)?)"), _date),
    (re.compile(rf"\D+((\d+(\.\d+)?)[多余几]?{_CURRENCY_UNIT_RE}(\d{_CURRENCY_UNIT_RE}?)?)"), _money),
    (re.compile(r"\D((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})\D"), _mobile_phone),
    (re.compile(r"\D((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})\D"), _landline),
    (re.compile(r"(\d+/\d+)"), _fraction),
    (re.compile(r"(\d+(\.\d+)?%)"), _percentage),
    (re.compile(rf"(\d+(\.\d+)?)[多余几]?{_QUANTIFIER_RE}"), chinese_cardinal),
    (re.compile(r"(\d{4,32})"), chinese_digits),
    (_NUMBER_RE, chinese_cardinal),
    (re.compile(r"(([a-zA-Z]+)二([a-zA-Z]+))"), _restore_latin_two),
)


def _rewrite_non_standard_words(text: str) -> str:
    text = "^" + text + "$"
    for pattern, rewrite in _RULES:
        if rewrite is _percentage:
            text = text.replace("％", "%")
        for found in [match.group(1) for match in pattern.finditer(text)]:
            if found:
                text = text.replace(found, rewrite(found), 1)
    return text.lstrip("^").rstrip("$")


def normalize_chinese_numbers(text: str) -> str:
    """Upstream ``TextNorm()(text)``: spell numbers in Chinese, then turn all punctuation into ``","``.

    Raises ``ValueError`` on the rare malformed numbers upstream also rejects (the caller then keeps the text).
    """
    return _rewrite_non_standard_words(text).translate(_PUNCTUATION_TO_COMMA)

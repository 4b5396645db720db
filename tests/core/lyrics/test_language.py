"""Per-line lyric language detection: parity with the reference app's LangSegment + get_lang."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from acestep_core.lyrics import language
from acestep_core.lyrics.language import (
    EMPTY_LINE_LANGUAGE,
    SUPPORTED_LANGUAGES,
    detect_line_language,
    resolve_encode_language,
)
from acestep_core.lyrics.language_segment import LANGUAGE_FILTERS, LineSegmenter
from tests.parity import PARITY_DIR, require_parity, require_parity_module

require_parity_module()

GOLDEN = PARITY_DIR / "tokenizer" / "lyrics_cases.json"


def _golden_cases() -> list[Any]:
    if not GOLDEN.is_file():
        return [pytest.param(None, id="golden-missing")]
    cases = json.loads(GOLDEN.read_text())["cases"]
    return [pytest.param(case, id=case["id"]) for case in cases]


def _detected_lines(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in case["lines"] if "detected_lang" in line]


@pytest.mark.parametrize("case", _golden_cases())
def test_golden_lines_detect_and_resolve_like_the_reference(case: dict[str, Any] | None) -> None:
    """Every non-empty line of every golden case: detected and encode language equal the reference's."""
    require_parity()
    assert case is not None
    mismatches = []
    for line in _detected_lines(case):
        detected = detect_line_language(line["stripped"])
        encode = resolve_encode_language(line["stripped"], detected)
        if (detected, encode) != (line["detected_lang"], line["encode_lang"]):
            mismatches.append((line["stripped"], detected, encode, line["detected_lang"], line["encode_lang"]))
    assert not mismatches, f"(line, detected, encode, golden detected, golden encode): {mismatches}"


def test_golden_covers_every_non_empty_line() -> None:
    """The parity test above checks all 153 non-empty lines: no line lacks a detected language."""
    require_parity()
    cases = json.loads(GOLDEN.read_text())["cases"]
    lines = [line for case in cases for line in case["lines"] if line["stripped"]]
    assert all("detected_lang" in line for line in lines)
    assert len(lines) == 153


# Reference outputs of the original LangSegment (ace-step/ACE-Step@d612523, py3langid 0.3.0) on paths the golden
# does not reach: SSML tags, <xx> language tags, kana/kanji disambiguation, Thai, quotes, multi-line text.
REFERENCE_COUNTS = [
    ("<date>2024-08-24 10:30</date>", [("zh", 32)]),
    ("<currency>1200</currency>块", [("zh", 10)]),
    ("<telephone>+8613812345678</telephone>", [("zh", 22)]),
    ("<number>3.14</number>", [("zh", 8)]),
    ("<date>2024年8月</date>", [("zh", 14)]),
    ("<en>hi</en> 你好", [("zh", 6), ("en", 3)]),
    ("<br>yo<br> la", [("en", 3), ("br", 2)]),
    ("<i>hey</i> 你", [("zh", 4)]),
    ("漢字", [("zh", 4)]),
    ("日本", [("ja", 2)]),
    ("的。", [("zh", 4)]),
    ("我的 iPhone 15", [("en", 11), ("zh", 6)]),
    ("東京タワー", [("ja", 5)]),
    ("佐々木さん", [("ja", 5)]),
    ("「你好」", [("zh", 8)]),
    ('"我们一起" 唱歌', [("zh", 18)]),
    ("你好吗? 我很好", [("zh", 16)]),
    ("漢字。漢字", [("zh", 10)]),
    ("ฉันชอบฟังเพลง", [("th", 13)]),
    ("Мне 25 лет", [("ru", 10)]),
    ("first line\nsecond 行", [("en", 20), ("zh", 2)]),
    ("2024", [("zh", 8)]),
    ("!!!", [("zh", 6)]),
]


@pytest.mark.parametrize(("text", "counts"), REFERENCE_COUNTS, ids=[t for t, _ in REFERENCE_COUNTS])
def test_language_counts_match_reference(text: str, counts: list[tuple[str, int]]) -> None:
    """Per-language character counts equal the original LangSegment.getCounts() (Chinese counted double)."""
    classify = language._language_classifier()
    assert LineSegmenter(classify).language_counts(text) == counts
    expected = counts[1][0] if counts[0][0] == "en" and len(counts) > 1 else counts[0][0]
    assert detect_line_language(text) == expected


def test_segmentation_error_falls_back_to_english() -> None:
    """Like upstream get_lang: a <currency> tag with Arabic-Indic digits raises inside LangSegment -> "en"."""
    with pytest.raises(KeyError):
        LineSegmenter(language._language_classifier()).language_counts("<currency>٣</currency>")
    assert detect_line_language("<currency>٣</currency>") == "en"


@pytest.mark.parametrize(
    ("line", "detected", "expected"),
    [
        ("[verse]", "zh", "en"),  # structure-tag line: always English
        ("[verse] la la la", "es", "en"),
        ("la la [chorus] la", "it", "it"),  # a tag later in the line does not count
        ("Hello world", "xh", "en"),  # unsupported language
        ("我爱你", "zh", "zh"),
        ("こんにちは", "ja", "ja"),
        ("x", "sk", "en"),
    ],
)
def test_resolve_encode_language(line: str, detected: str, expected: str) -> None:
    assert resolve_encode_language(line, detected) == expected


def test_supported_languages_are_the_17_vocab_language_tokens() -> None:
    assert SUPPORTED_LANGUAGES == (
        "en", "de", "fr", "es", "it", "pt", "pl", "tr", "ru", "cs", "nl", "ar", "zh", "ja", "hu", "ko", "hi",
    )  # fmt: skip
    assert set(SUPPORTED_LANGUAGES) <= set(LANGUAGE_FILTERS)


def test_sparse_classifier_agrees_with_py3langid() -> None:
    """Our active-feature classify gives py3langid's label and its probability to within float32 summation noise."""
    identifier = language._load_identifier()
    classify = language._language_classifier()
    texts = [
        "",
        "a",
        "Hello world",
        "I walk alone beneath the silver moon",
        "我爱你",
        "さくら",
        "사랑해",
        "Привет",
        "Je t'aime",
        "Kocham cię bardzo",
        "ab" * 50,
        "东京",
        "أحبك كثيرا",
        "🎵",
        "1234",
    ]
    for text in texts:
        expected_label, expected_prob = identifier.classify(text)
        label, prob = classify(text)
        assert label == expected_label, text
        assert abs(prob - float(expected_prob)) <= 1e-3, text  # rounded to 3 places on both sides


def test_reentrant_alternating_calls() -> None:
    """Interleaving two lines gives the same answers as calling each alone (no state leaks between calls)."""
    first, second = "君の名前は Baby I love you", "Oh baby 사랑해 forever"
    alone = [detect_line_language(first), detect_line_language(second)]
    interleaved = [detect_line_language(line) for line in (first, second, first, second, second, first)]
    assert interleaved == [alone[0], alone[1], alone[0], alone[1], alone[1], alone[0]]
    assert alone == ["ja", "ko"]


def test_thread_safe() -> None:
    lines = [
        "Hello world",
        "我爱你",
        "さくらさくら やよいのそらは",
        "Te quiero mucho",
        "[verse]",
        "Ich liebe dich",
    ] * 20
    sequential = [detect_line_language(line) for line in lines]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(detect_line_language, lines)) == sequential


def test_sixty_lines_are_fast() -> None:
    """A 4-minute song (~60 lines) takes ~15 ms after the model is loaded; the bound is generous, not a benchmark."""
    lines = [f"Line {i} of the long song, we sing it {i + 1} times" for i in range(30)]
    lines += ["我们一起唱这首歌", "[chorus]", "君の名前は Baby I love you"] * 10
    detect_line_language(lines[0])  # first use loads the model
    start = time.perf_counter()
    for line in lines:
        detect_line_language(line)
    elapsed_s = time.perf_counter() - start
    assert elapsed_s < 1.0, f"60 lines took {elapsed_s * 1000:.1f} ms"


def test_empty_line_returns_the_reference_default() -> None:
    """The pipeline never asks for empty lines; the reference's answer for them is zh."""
    assert EMPTY_LINE_LANGUAGE == "zh"
    assert detect_line_language("") == "zh"
    assert detect_line_language("   \t") == "zh"


@pytest.mark.parametrize("bad", [None, b"Hello", 42, ["Hello"]])
def test_non_str_input_is_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="line must be a str"):
        detect_line_language(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        resolve_encode_language(bad, "en")  # type: ignore[arg-type]


def test_import_does_no_work() -> None:
    """Importing the module loads no model and not even py3langid (first use does, once per process)."""
    lyrics_dir = Path(language.__file__).parent
    code = textwrap.dedent(f"""
        import sys, types
        package = types.ModuleType("lyrics_alone")  # skip acestep_core/__init__ (torch) to keep this test fast
        package.__path__ = [{str(lyrics_dir)!r}]
        sys.modules["lyrics_alone"] = package
        import lyrics_alone.language as m
        print(m._classifier is None, "py3langid" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["True", "False"]


def test_model_is_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    real_load = language._load_identifier
    monkeypatch.setattr(language, "_classifier", None)
    monkeypatch.setattr(language, "_load_identifier", lambda: loads.append(1) or real_load())
    detect_line_language("Hello world")
    detect_line_language("我爱你")
    assert loads == [1]

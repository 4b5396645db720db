"""Training-time lyric tokenization against ``training/lyrics_train.json`` (the original dataset's ids)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from acestep_core.lyrics import LyricTokenizer
from acestep_core.training.lyrics import NO_LYRICS_ID, tokenize_training_lyrics
from tests.parity import PARITY_DIR, require_parity_module

require_parity_module()

CASES: list[dict[str, Any]] = json.loads((PARITY_DIR / "training" / "lyrics_train.json").read_text())["cases"]
OK = [c for c in CASES if "error" not in c]
ERRORS = [c for c in CASES if "error" in c]


@pytest.fixture(scope="module")
def tokenizer() -> LyricTokenizer:
    return LyricTokenizer.from_vocab(PARITY_DIR / "tokenizer" / "vocab.json")


def test_every_case_is_covered() -> None:
    assert len(OK) + len(ERRORS) == len(CASES) and OK and ERRORS


@pytest.mark.parametrize("case", OK, ids=[f"{i}-{c['id']}" for i, c in enumerate(OK)])
def test_ids_equal_the_original_dataset(case: dict[str, Any], tokenizer: LyricTokenizer) -> None:
    got = tokenize_training_lyrics(tokenizer, case["lyrics"])
    assert list(got.ids) == case["ids"]
    if got.instrumental:
        assert case["ids"] == [NO_LYRICS_ID]
        return
    assert got.main_language == case["most_common_language"]
    assert [list(c) for c in got.language_counts] == case["language_counts"]
    assert [{"lang": lang, "text": text} for lang, text in got.segments] == case["segments"]
    assert got.fallback is None and not got.dropped_lines


@pytest.mark.parametrize("case", ERRORS, ids=[c["id"] for c in ERRORS])
def test_unsupported_main_language_falls_back_to_the_inference_tokenizer(case: dict[str, Any],
                                                                          tokenizer: LyricTokenizer) -> None:
    language = case["error"].rsplit(" ", 1)[-1]  # "ValueError: Unsupported language: xh"
    got = tokenize_training_lyrics(tokenizer, case["lyrics"])
    assert got.main_language == language
    assert got.fallback is not None and f"'{language}'" in got.fallback
    assert list(got.ids) == tokenizer.encode(case["lyrics"]).ids

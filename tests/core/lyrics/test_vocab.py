"""Lyric vocabulary resolution order, validation and the (mocked) download fallback."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from acestep_core.errors import AceStepInputError
from acestep_core.lyrics import vocab as vocab_mod
from acestep_core.lyrics.vocab import (
    COMFYUI_VOCAB_RELPATH,
    VOCAB_SHA256,
    LyricVocabError,
    LyricVocabNotFoundError,
    resolve_lyric_vocab,
    validate_lyric_vocab,
)
from tests.parity import PARITY_DIR, require_parity

GOLDEN_VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"
_REAL_FIND_COMFY = vocab_mod._find_comfy_package


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real cache, no importable ComfyUI, no network."""
    require_parity()
    monkeypatch.setenv("ACESTEP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(vocab_mod, "_find_comfy_package", lambda: None)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr("urllib.request.urlopen", no_network)


def _copy(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GOLDEN_VOCAB, dest)
    return dest


def test_golden_vocab_hash_matches_constant() -> None:
    assert hashlib.sha256(GOLDEN_VOCAB.read_bytes()).hexdigest() == VOCAB_SHA256
    cases = json.loads((PARITY_DIR / "tokenizer" / "lyrics_cases.json").read_text(encoding="utf-8"))
    assert cases["vocab_sha256"] == VOCAB_SHA256


def test_explicit_path_wins(tmp_path: Path) -> None:
    explicit = _copy(tmp_path / "mine" / "v.json")
    ckpt = tmp_path / "ckpt"
    _copy(ckpt / "vocab.json")
    assert resolve_lyric_vocab(explicit, checkpoint=ckpt) == explicit


def test_explicit_missing_or_invalid_is_an_error(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    _copy(ckpt / "vocab.json")
    with pytest.raises(LyricVocabNotFoundError, match="not found"):
        resolve_lyric_vocab(tmp_path / "nope.json", checkpoint=ckpt)  # no silent fallback
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2", encoding="utf-8")
    with pytest.raises(LyricVocabError, match="corrupt"):
        resolve_lyric_vocab(bad)


def test_checkpoint_folder(tmp_path: Path) -> None:
    ckpt = tmp_path / "ACE-Step-v1-3.5B"
    found = _copy(ckpt / "vocab.json")
    assert resolve_lyric_vocab(checkpoint=ckpt) == found


def test_single_file_same_dir_then_stem(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints" / "ace_step_v1_3.5b.safetensors"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"")
    stem = _copy(ckpt.parent / "ace_step_v1_3.5b.vocab.json")
    assert resolve_lyric_vocab(checkpoint=ckpt) == stem
    plain = _copy(ckpt.parent / "vocab.json")
    assert resolve_lyric_vocab(checkpoint=ckpt) == plain


def test_comfyui_root_layout(tmp_path: Path) -> None:
    root = tmp_path / "ComfyUI"
    bundled = _copy(root / COMFYUI_VOCAB_RELPATH)
    assert resolve_lyric_vocab(checkpoint=tmp_path / "empty", comfyui_root=root) == bundled


def test_comfyui_reformatted_copy_is_accepted(tmp_path: Path) -> None:
    """ComfyUI's copy is the same vocabulary pretty-printed (other bytes): validation is by content."""
    root = tmp_path / "ComfyUI"
    dest = root / COMFYUI_VOCAB_RELPATH
    dest.parent.mkdir(parents=True)
    dest.write_text(json.dumps(json.loads(GOLDEN_VOCAB.read_text(encoding="utf-8")), indent=4), encoding="utf-8")
    assert resolve_lyric_vocab(comfyui_root=root) == dest


def test_importable_comfy_package_found_without_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ComfyUI"
    bundled = _copy(root / COMFYUI_VOCAB_RELPATH)

    monkeypatch.setattr(vocab_mod, "_find_comfy_package", lambda: root / "comfy")
    assert resolve_lyric_vocab() == bundled


def test_find_comfy_package_does_not_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``comfy`` package on sys.path is located by its spec only (its __init__ would raise if imported)."""
    import sys

    pkg = tmp_path / "site" / "comfy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "comfy", raising=False)
    assert _REAL_FIND_COMFY() == pkg
    assert "comfy" not in sys.modules


def test_checkpoint_before_comfyui(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    first = _copy(ckpt / "vocab.json")
    _copy(tmp_path / "ComfyUI" / COMFYUI_VOCAB_RELPATH)
    assert resolve_lyric_vocab(checkpoint=ckpt, comfyui_root=tmp_path / "ComfyUI") == first


def test_invalid_candidate_skipped(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "vocab.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {"a": 0}}}), encoding="utf-8")
    bundled = _copy(tmp_path / "ComfyUI" / COMFYUI_VOCAB_RELPATH)
    assert resolve_lyric_vocab(checkpoint=ckpt, comfyui_root=tmp_path / "ComfyUI") == bundled


def test_cache_is_a_place(tmp_path: Path) -> None:
    cached = _copy(tmp_path / "cache" / "lyrics_vocab.json")
    assert resolve_lyric_vocab(checkpoint=tmp_path / "nothing") == cached


def test_not_found_lists_every_place(tmp_path: Path) -> None:
    ckpt = tmp_path / "dir" / "model.safetensors"
    with pytest.raises(LyricVocabNotFoundError) as info:
        resolve_lyric_vocab(checkpoint=ckpt, comfyui_root=tmp_path / "ComfyUI")
    msg = str(info.value)
    for place in (ckpt.parent / "vocab.json", ckpt.parent / "model.vocab.json",
                  tmp_path / "ComfyUI" / COMFYUI_VOCAB_RELPATH, tmp_path / "cache" / "lyrics_vocab.json"):
        assert str(place) in msg
    assert "allow_download=False" in msg and "github.com/ace-step/ACE-Step" in msg
    assert isinstance(info.value, AceStepInputError)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"version": "1.0"}, "no 'model' section"),
        ({"model": {"type": "Unigram", "vocab": []}}, "expected a BPE tokenizer"),
        ({"model": {"type": "BPE", "vocab": {"[START]": 0, "[SPACE]": 1}}}, "missing"),
    ],
)
def test_validation_errors(tmp_path: Path, doc: dict, match: str) -> None:
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(LyricVocabError, match=match):
        validate_lyric_vocab(path)


def test_missing_language_token_named(tmp_path: Path) -> None:
    doc = json.loads(GOLDEN_VOCAB.read_text(encoding="utf-8"))
    doc["added_tokens"] = [t for t in doc["added_tokens"] if t["content"] != "[ko]"]
    del doc["model"]["vocab"]["[ko]"]
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(LyricVocabError, match=r"\[ko\]"):
        validate_lyric_vocab(path)


class _Response:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, n: int = -1) -> bytes:
        return self._data


def test_download_when_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, float]] = []

    def fake_urlopen(url: str, timeout: float) -> _Response:
        calls.append((url, timeout))
        return _Response(GOLDEN_VOCAB.read_bytes())

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    path = resolve_lyric_vocab(checkpoint=tmp_path / "none", allow_download=True)
    assert path == tmp_path / "cache" / "lyrics_vocab.json"
    assert path.read_bytes() == GOLDEN_VOCAB.read_bytes()
    assert calls and calls[0][0] == vocab_mod.VOCAB_DOWNLOAD_URL and calls[0][1] > 0
    assert not list(path.parent.glob(".*tmp"))


def test_download_checksum_mismatch_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: _Response(b"<html>rate limited</html>"))
    with pytest.raises(LyricVocabError, match="sha256"):
        resolve_lyric_vocab(allow_download=True)
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_download_network_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(url: str, timeout: float) -> _Response:
        raise OSError("no route to host")

    monkeypatch.setattr("urllib.request.urlopen", fail)
    with pytest.raises(LyricVocabNotFoundError, match="no route to host"):
        resolve_lyric_vocab(allow_download=True)

"""Find and validate the lyric vocabulary (``vocab.json``) that the user's model needs.

Origin: the original pipeline loads ``acestep/models/lyrics_utils/vocab.json`` from its own code
repository (ace-step/ACE-Step); the Hugging Face checkpoint repo does not contain it. The file is
model data that users already have, so we never ship or write our own copy. It is looked for, in
this order (first valid file wins; every place tried is listed when none is found):

1. an explicit path given by the user (if given, it must exist and be valid; ``""`` counts as not given);
2. next to the checkpoint: ``<folder>/vocab.json`` for the folder layout; for a single file
   ``<dir>/vocab.json`` and ``<dir>/<stem>.vocab.json``;
3. the copy bundled with ComfyUI (``comfy/text_encoders/ace_lyrics_tokenizer/vocab.json``, in
   every ComfyUI since native ACE-Step support), under ``comfyui_root`` or, when that is ``None``,
   the directory of an importable ``comfy`` package (found with ``importlib.util.find_spec``,
   without importing it);
4. our download cache ``$ACESTEP_CACHE_DIR/lyrics_vocab.json`` (default ``~/.cache/acestep``);
5. only with ``allow_download=True``: a download of the file from the ace-step/ACE-Step GitHub
   repository at the reference commit, checked against its sha256 before it is written to the
   cache (atomically; a mismatch leaves no file).

Validation is by content (ComfyUI's copy is the same vocabulary re-formatted, so its bytes differ):
a ``tokenizers`` JSON with a BPE model holding ``[START]``, ``[SPACE]``, ``[STOP]``, ``[UNK]`` and
the 17 language tokens.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from pathlib import Path

from ..errors import AceStepInputError

logger = logging.getLogger(__name__)

__all__ = [
    "COMFYUI_VOCAB_RELPATH",
    "LANGUAGE_TOKENS",
    "LyricVocabError",
    "LyricVocabNotFoundError",
    "REQUIRED_SPECIAL_TOKENS",
    "VOCAB_DOWNLOAD_URL",
    "VOCAB_SHA256",
    "VOCAB_SOURCE",
    "default_cache_path",
    "download_lyric_vocab",
    "resolve_lyric_vocab",
    "validate_lyric_vocab",
    "vocab_message",
]

REQUIRED_SPECIAL_TOKENS = ("[START]", "[SPACE]", "[STOP]", "[UNK]")
# The 17 language tokens of the vocabulary (zh is written "[zh-cn]").
LANGUAGE_TOKENS = ("[en]", "[de]", "[fr]", "[es]", "[it]", "[pt]", "[pl]", "[tr]", "[ru]", "[cs]", "[nl]", "[ar]",
                   "[zh-cn]", "[ja]", "[hu]", "[ko]", "[hi]")
COMFYUI_VOCAB_RELPATH = Path("comfy", "text_encoders", "ace_lyrics_tokenizer", "vocab.json")
REFERENCE_COMMIT = "d612523f50e252c0e138e68ae75b06223f96e934"
VOCAB_DOWNLOAD_URL = (f"https://raw.githubusercontent.com/ace-step/ACE-Step/{REFERENCE_COMMIT}/"
                      "acestep/models/lyrics_utils/vocab.json")
VOCAB_SHA256 = "c2a66ea48c478c0bb9acb5497144b926acdeaa37128faa799508d40f2b9cc558"
DOWNLOAD_TIMEOUT_S = 30.0
_MAX_VOCAB_BYTES = 16 * 1024 * 1024
VOCAB_SOURCE = (
    "The lyric vocabulary is the file acestep/models/lyrics_utils/vocab.json of the ACE-Step code repository "
    "(https://github.com/ace-step/ACE-Step); ComfyUI ships the same vocabulary as "
    "comfy/text_encoders/ace_lyrics_tokenizer/vocab.json."
)
API_HOW_TO_FIX = ("Put it next to your checkpoint as vocab.json, pass its path explicitly, point comfyui_root at your "
                  "ComfyUI folder, or allow the download (resolve_lyric_vocab(..., allow_download=True)).")
_HOW_TO_GET = f"{VOCAB_SOURCE} {API_HOW_TO_FIX}"


def vocab_message(error: BaseException, how_to_fix: str) -> str:
    """A vocabulary error's message with the Python API's advice replaced by ``how_to_fix``, the same advice in
    the words of the interface the user used (a CLI flag, a node input)."""
    return str(error).replace(API_HOW_TO_FIX, how_to_fix)


class LyricVocabError(AceStepInputError):
    """The lyric vocabulary file is unusable (not a tokenizer JSON, or tokens missing)."""


class LyricVocabNotFoundError(LyricVocabError):
    """No lyric vocabulary file was found in any of the places tried."""


def default_cache_path() -> Path:
    """Where a downloaded vocabulary is kept: ``$ACESTEP_CACHE_DIR`` or ``~/.cache/acestep``."""
    from ..hub import cache_root

    return cache_root() / "lyrics_vocab.json"


def _check_document(doc: object, source: str) -> None:
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise LyricVocabError(f"{source}: not a Hugging Face tokenizers JSON (no 'model' section). {_HOW_TO_GET}")
    model = doc["model"]
    if model.get("type", "BPE") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise LyricVocabError(f"{source}: expected a BPE tokenizer with a vocab table, got model type "
                              f"{model.get('type')!r}; this is not the ACE-Step lyric vocabulary. {_HOW_TO_GET}")
    names = set(model["vocab"])
    names.update(t.get("content") for t in doc.get("added_tokens") or [] if isinstance(t, dict))
    missing = [t for t in REQUIRED_SPECIAL_TOKENS + LANGUAGE_TOKENS if t not in names]
    if missing:
        raise LyricVocabError(f"{source}: tokens {missing} are missing; this is not the ACE-Step lyric vocabulary. "
                              f"{_HOW_TO_GET}")


def validate_lyric_vocab(path: str | Path) -> Path:
    """Return ``path`` if it is a readable ACE-Step lyric vocabulary, else raise :class:`LyricVocabError`."""
    path = Path(path)
    if not path.is_file():
        raise LyricVocabNotFoundError(f"{path}: lyric vocabulary file not found. {_HOW_TO_GET}")
    try:
        size = path.stat().st_size
        if size > _MAX_VOCAB_BYTES:
            raise LyricVocabError(f"{path}: {size} bytes is far too large for the lyric vocabulary. {_HOW_TO_GET}")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LyricVocabError(f"{path}: cannot read the lyric vocabulary ({exc}); the file is corrupt or "
                              f"truncated. {_HOW_TO_GET}") from None
    _check_document(doc, str(path))
    return path


def _checkpoint_candidates(checkpoint: Path) -> list[Path]:
    if checkpoint.is_dir():
        return [checkpoint / "vocab.json"]
    return [checkpoint.parent / "vocab.json", checkpoint.parent / f"{checkpoint.stem}.vocab.json"]


def _find_comfy_package() -> Path | None:
    """Directory of an importable ``comfy`` package, located without importing it."""
    try:
        spec = importlib.util.find_spec("comfy")
    except (ImportError, ValueError):  # a broken or half-initialised 'comfy' entry in sys.modules
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def _comfyui_candidate(comfyui_root: Path | None) -> Path | None:
    if comfyui_root is not None:
        return comfyui_root / COMFYUI_VOCAB_RELPATH
    package = _find_comfy_package()
    return package.parent / COMFYUI_VOCAB_RELPATH if package is not None else None


def download_lyric_vocab(dest: Path, *, url: str = VOCAB_DOWNLOAD_URL, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download the reference vocabulary to ``dest`` after checking its sha256 (nothing is written on mismatch)."""
    import urllib.request

    logger.info("downloading the ACE-Step lyric vocabulary from %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
            data = response.read(_MAX_VOCAB_BYTES + 1)
    except OSError as exc:
        raise LyricVocabNotFoundError(f"downloading the lyric vocabulary from {url} failed ({exc}). "
                                      f"{_HOW_TO_GET}") from None
    return _store_download(data, dest, url)


def _store_download(data: bytes, dest: Path, url: str) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    if digest != VOCAB_SHA256:
        raise LyricVocabError(f"the lyric vocabulary downloaded from {url} has sha256 {digest}, expected "
                              f"{VOCAB_SHA256}; it was not saved. {_HOW_TO_GET}")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LyricVocabError(f"cannot save the downloaded lyric vocabulary to {dest} ({exc}); set "
                              "ACESTEP_CACHE_DIR to a writable folder") from None
    return dest


def resolve_lyric_vocab(
    explicit: str | Path | None = None,
    *,
    checkpoint: str | Path | None = None,
    comfyui_root: str | Path | None = None,
    allow_download: bool = False,
) -> Path:
    """Return the path of a valid lyric ``vocab.json`` (search order in the module docstring).

    Raises :class:`LyricVocabNotFoundError` listing every place tried, or :class:`LyricVocabError`
    when an explicitly given file is invalid.
    """
    if explicit is not None and str(explicit) != "":
        return validate_lyric_vocab(Path(explicit).expanduser())
    candidates: list[Path] = []
    if checkpoint is not None:
        candidates += _checkpoint_candidates(Path(checkpoint).expanduser())
    comfy = _comfyui_candidate(None if comfyui_root is None else Path(comfyui_root).expanduser())
    candidates += [comfy] if comfy is not None else []
    cache = default_cache_path()
    candidates.append(cache)
    tried: list[str] = []
    for path in candidates:
        if not path.is_file():
            tried.append(f"{path} (not found)")
            continue
        try:
            return validate_lyric_vocab(path)
        except LyricVocabError as exc:
            logger.warning("skipping invalid lyric vocabulary %s: %s", path, exc)
            tried.append(f"{path} (invalid: {str(exc).replace(_HOW_TO_GET, '').strip()})")
    if allow_download:
        return validate_lyric_vocab(download_lyric_vocab(cache))
    tried.append(f"download from {VOCAB_DOWNLOAD_URL} (not allowed: allow_download=False)")
    places = "\n  - ".join(tried)
    raise LyricVocabNotFoundError(f"ACE-Step lyric vocabulary (vocab.json) not found. Tried:\n  - {places}\n"
                                  f"{_HOW_TO_GET}")

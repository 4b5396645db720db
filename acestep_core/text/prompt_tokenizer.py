"""Tag prompt -> UMT5 token ids, as the original pipeline tokenizes the text prompt.

Origin: ``ACEStepPipeline.get_text_embeddings`` calls the Hugging Face fast tokenizer of the
checkpoint's ``umt5-base`` folder as ``tokenizer(texts, padding=True, truncation=True,
max_length=256, return_tensors="pt")``. :class:`PromptTokenizer` reproduces that call with the
``tokenizers`` library alone (no ``transformers``): T5 conventions, no BOS, the post-processor
appends ``</s>``, truncation keeps room for it, right padding with ``<pad>`` and mask 0.

Two sources, as :func:`acestep_core.loading.loader.load_checkpoint` reports them
(:class:`~acestep_core.loading.loader.TokenizerSource`):

* the folder layout's ``umt5-base/tokenizer.json`` is loaded as is;
* ComfyUI's single file embeds the raw SentencePiece model instead. It is decoded by
  :mod:`acestep_core.text.sentencepiece_model` and converted to the same ``tokenizers`` Unigram
  pipeline that Hugging Face's slow->fast converter (``T5Converter``, transformers 4.50) writes:
  normalizer ``Precompiled(charsmap)`` + ``Strip(right)`` + ``Replace(" {2,}", "▁")``,
  pre-tokenizer and decoder ``Metaspace("▁", prepend_scheme="always", split=True)``, 300
  ``<extra_id_N>`` tokens appended in reverse order (score 0), control/user-defined pieces,
  ``<unk>`` and the extra ids as added tokens, template ``$A </s>``, byte fallback off.

Divergence: none intended. As the parity README notes, a converted Unigram tokenizer differs from
raw SentencePiece only on exact score ties; what we build equals the converter's output.
"""

from __future__ import annotations

import hashlib
import json
import threading
from base64 import b64encode
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AceStepInputError, CheckpointError
from .sentencepiece_model import PIECE_CONTROL, PIECE_USER_DEFINED, SentencePieceModel, parse_sentencepiece_model

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

    from ..loading.loader import TokenizerSource

__all__ = ["DEFAULT_MAX_LENGTH", "UMT5_EXTRA_IDS", "PromptTokenizer", "PromptTokens", "sentencepiece_to_tokenizer_json"]

DEFAULT_MAX_LENGTH = 256  # text_max_length of the original pipeline
UMT5_EXTRA_IDS = 300  # <extra_id_0..299> appended by the T5/umT5 tokenizer (tokenizer_config "extra_ids")
_MAX_PROMPT_CHARS = 1_000_000  # refuse absurd inputs before tokenizing; 256 tokens are kept anyway
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, str], Tokenizer] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class PromptTokens:
    """``input_ids`` and ``attention_mask``, both ``[B, L]`` int64 (right padded)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


def _added_token(content: str, token_id: int, *, special: bool) -> dict[str, Any]:
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def sentencepiece_to_tokenizer_json(model: SentencePieceModel, *, extra_ids: int = UMT5_EXTRA_IDS) -> dict[str, Any]:
    """The ``tokenizer.json`` document Hugging Face's T5 converter writes for ``model``."""
    if model.model_type != "unigram":
        raise CheckpointError(f"UMT5 tokenizer: expected a Unigram SentencePiece model, got {model.model_type!r}")
    vocab = [[p.piece, p.score] for p in model.pieces]
    if any(p.piece.startswith("<extra_id_") for p in model.pieces):
        extra_ids = 0  # already part of the model
    vocab += [[f"<extra_id_{i}>", 0.0] for i in range(extra_ids - 1, -1, -1)]
    added = [_added_token(p.piece, i, special=p.type == PIECE_CONTROL) for i, p in enumerate(model.pieces)
             if p.type in (PIECE_CONTROL, PIECE_USER_DEFINED)]
    if 0 <= model.unk_id < len(model.pieces):
        added.append(_added_token(model.pieces[model.unk_id].piece, model.unk_id, special=True))
    added += [_added_token(str(v[0]), len(model.pieces) + k, special=True)
              for k, v in enumerate(vocab[len(model.pieces):])]
    added = sorted({a["id"]: a for a in added}.values(), key=lambda a: a["id"])
    normalizers: list[dict[str, Any]] = []
    if model.precompiled_charsmap:
        charsmap = b64encode(model.precompiled_charsmap).decode()
        normalizers.append({"type": "Precompiled", "precompiled_charsmap": charsmap})
    normalizers += [{"type": "Strip", "strip_left": False, "strip_right": True},
                    {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "\u2581"}]
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    eos = model.eos_piece
    eos_id = next((i for i, p in enumerate(model.pieces) if p.piece == eos), model.eos_id)
    seq_a, seq_b = ({"Sequence": {"id": s, "type_id": 0}} for s in ("A", "B"))
    eos_tok = {"SpecialToken": {"id": eos, "type_id": 0}}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": {"type": "TemplateProcessing", "single": [seq_a, eos_tok],
                           "pair": [seq_a, eos_tok, seq_b, eos_tok],
                           "special_tokens": {eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}}},
        "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": model.unk_id, "vocab": vocab, "byte_fallback": False},
    }


def _cached(key: tuple[str, str], build: Callable[[], Tokenizer]) -> Tokenizer:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    tok = build()
    with _cache_lock:
        _cache[key] = tok
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return tok


class PromptTokenizer:
    """UMT5 prompt tokenizer; ``tok(prompts)`` equals HF ``tokenizer(prompts, padding=True, truncation=True,
    max_length=256, return_tensors="pt")``."""

    def __init__(self, tokenizer: Tokenizer, *, source: str = "UMT5 tokenizer") -> None:
        self._tok = tokenizer
        self.source = source
        pad = tokenizer.token_to_id("<pad>")
        self.pad_id = 0 if pad is None else pad
        self.num_special = tokenizer.num_special_tokens_to_add(is_pair=False)

    @classmethod
    def from_source(cls, source: TokenizerSource) -> PromptTokenizer:
        """Build from what :func:`~acestep_core.loading.loader.load_checkpoint` returned as ``tokenizer``."""
        if source.kind == "tokenizer_json" and source.path is not None:
            return cls.from_tokenizer_json(source.path)
        if source.kind == "sentencepiece" and source.data is not None:
            return cls.from_sentencepiece(source.data)
        raise AceStepInputError(f"unusable tokenizer source: kind={source.kind!r} without its path/data")

    @classmethod
    def from_tokenizer_json(cls, path: str | Path) -> PromptTokenizer:
        """Load a Hugging Face ``tokenizer.json`` (the folder layout's ``umt5-base/tokenizer.json``)."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: UMT5 tokenizer.json not found; the checkpoint's umt5-base folder is "
                                  "incomplete — download umt5-base/tokenizer.json of ACE-Step/ACE-Step-v1-3.5B")
        stat = path.stat()

        def build() -> Tokenizer:
            from tokenizers import Tokenizer

            try:
                return Tokenizer.from_file(str(path))
            except Exception as exc:  # tokenizers raises a bare Exception for bad JSON
                raise CheckpointError(f"{path}: not a valid tokenizer.json ({exc}); the file is corrupt or "
                                      "truncated — re-download it") from None

        key = ("json", f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
        return cls(_cached(key, build), source=str(path))

    @classmethod
    def from_sentencepiece(
        cls, data: bytes | bytearray | memoryview, *, source: str = "embedded SentencePiece model"
    ) -> PromptTokenizer:
        """Build from serialized SentencePiece model bytes (ComfyUI's ``text_encoders.spiece_model``)."""
        raw = bytes(data)
        key = ("spiece", hashlib.sha1(raw).hexdigest())

        def build() -> Tokenizer:
            from tokenizers import Tokenizer

            doc = sentencepiece_to_tokenizer_json(parse_sentencepiece_model(raw, source=source))
            try:
                return Tokenizer.from_str(json.dumps(doc))
            except Exception as exc:
                raise CheckpointError(f"{source}: cannot build a tokenizer from the SentencePiece model ({exc})"
                                      ) from None

        return cls(_cached(key, build), source=source)

    @property
    def tokenizer(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer`` (shared; do not mutate)."""
        return self._tok

    def truncation_warning(self, text: str, *, max_length: int = DEFAULT_MAX_LENGTH) -> str | None:
        """A sentence saying which part of ``text`` the model never sees (the tokens past ``max_length``, which
        the original pipeline cuts off silently), or ``None`` when it fits."""
        enc = self._tok.encode(text, add_special_tokens=False)
        keep = max_length - self.num_special
        if len(enc.ids) <= keep:
            return None
        cut = enc.offsets[keep][0]
        return (f"the tags are {len(enc.ids) + self.num_special} tokens; the model reads only the first {max_length}, "
                f"so {text[cut:cut + 40]!r}... ({len(text) - cut} characters) is ignored: shorten the tags")

    def __call__(self, prompts: str | Sequence[str], *, max_length: int = DEFAULT_MAX_LENGTH) -> PromptTokens:
        import torch

        texts = _check_prompts(prompts)
        if not isinstance(max_length, int) or max_length <= self.num_special:
            raise AceStepInputError(f"max_length must be an int > {self.num_special}, got {max_length!r}")
        rows = []
        for text in texts:  # one by one: encode_batch would start tokenizers' thread pool (fork warnings)
            enc = self._tok.encode(text, add_special_tokens=False)
            enc.truncate(max_length - self.num_special)  # HF truncation reserves room for </s>
            rows.append(self._tok.post_process(enc).ids)
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(rows), width), dtype=torch.int64)
        for b, row in enumerate(rows):
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.int64)
            mask[b, : len(row)] = 1
        return PromptTokens(input_ids=ids, attention_mask=mask)


def _check_prompts(prompts: str | Sequence[str]) -> list[str]:
    texts = [prompts] if isinstance(prompts, str) else prompts
    if not isinstance(texts, (list, tuple)) or not texts:
        raise AceStepInputError(
            f"prompts must be a string or a non-empty list of strings, got {type(prompts).__name__}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise AceStepInputError(f"prompt {i} must be a string, got {type(text).__name__}")
        if len(text) > _MAX_PROMPT_CHARS:
            raise AceStepInputError(f"prompt {i} has {len(text)} characters (limit {_MAX_PROMPT_CHARS}); only the "
                                    f"first {DEFAULT_MAX_LENGTH} tokens are used — shorten it")
    return list(texts)

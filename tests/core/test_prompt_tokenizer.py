"""UMT5 prompt tokenizer: folder tokenizer.json and ComfyUI's embedded SentencePiece model against the goldens."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import torch

from acestep_core.errors import AceStepInputError, CheckpointError
from acestep_core.loading.loader import TokenizerSource
from acestep_core.text.prompt_tokenizer import PromptTokenizer, PromptTokens, sentencepiece_to_tokenizer_json
from acestep_core.text.sentencepiece_model import SentencePieceModelError, parse_sentencepiece_model
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, load_golden, require_parity

TOKENIZER_JSON = TINY_CHECKPOINT / "umt5-base" / "tokenizer.json"
SPIECE = PARITY_DIR / "tokenizer" / "umt5_standin_spiece.model"


@cache
def _prompts() -> dict:
    require_parity()
    return json.loads((PARITY_DIR / "tokenizer" / "umt5_prompts.json").read_text(encoding="utf-8"))


@cache
def _tokenizer(kind: str) -> PromptTokenizer:
    require_parity()
    if kind == "json":
        return PromptTokenizer.from_tokenizer_json(TOKENIZER_JSON)
    return PromptTokenizer.from_sentencepiece(SPIECE.read_bytes())


KINDS = ["json", "spiece"]
PROMPT_INDICES = list(range(21))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("i", PROMPT_INDICES)
def test_prompt_ids_match_golden(kind: str, i: int) -> None:
    """Every recorded prompt gives exactly the recorded ids and mask (single-prompt call, as the pipeline)."""
    prompts = _prompts()["prompts"]
    assert len(prompts) == len(PROMPT_INDICES)
    case = prompts[i]
    out = _tokenizer(kind)(case["text"])
    assert isinstance(out, PromptTokens)
    assert out.input_ids.dtype == torch.int64 and out.attention_mask.dtype == torch.int64
    assert out.input_ids.tolist() == [case["input_ids"]]
    assert out.attention_mask.tolist() == [case["attention_mask"]]


@pytest.mark.parametrize("kind", KINDS)
def test_long_prompt_truncated_to_256_keeping_eos(kind: str) -> None:
    """The 2638-character prompt is cut to 256 ids, the last being </s>."""
    case = max(_prompts()["prompts"], key=lambda c: len(c["text"]))
    assert len(case["text"]) == 2638
    ids = _tokenizer(kind)(case["text"]).input_ids
    assert ids.shape == (1, 256) and int(ids[0, -1]) == 1
    assert _tokenizer(kind)(case["text"], max_length=10).input_ids[0].tolist() == case["input_ids"][:9] + [1]


@pytest.mark.parametrize("kind", KINDS)
def test_empty_prompt_is_only_eos(kind: str) -> None:
    out = _tokenizer(kind)("")
    assert out.input_ids.tolist() == [[1]] and out.attention_mask.tolist() == [[1]]


@pytest.mark.parametrize("kind", KINDS)
def test_padded_batch_matches_golden(kind: str) -> None:
    batch = _prompts()["batch"]
    out = _tokenizer(kind)(batch["texts"])
    assert out.input_ids.tolist() == batch["input_ids"]
    assert out.attention_mask.tolist() == batch["attention_mask"]


@pytest.mark.parametrize("kind", KINDS)
def test_umt5_encoder_golden_ids(kind: str) -> None:
    """The ids stored with the UMT5 encoder goldens (module index lists the prompts)."""
    golden = load_golden("modules/umt5_encoder.safetensors")
    index = json.loads((PARITY_DIR / "modules" / "index.json").read_text(encoding="utf-8"))
    params = index["files"]["umt5_encoder.safetensors"]["params"]
    tok = _tokenizer(kind)
    assert params["single_prompts"], "umt5_encoder.safetensors lists no single prompts"
    for name, prompt in params["single_prompts"].items():
        out = tok(prompt)
        assert torch.equal(out.input_ids, golden[f"{name}.input_ids"]), name
        assert torch.equal(out.attention_mask, golden[f"{name}.attention_mask"]), name
    out = tok(params["batch_prompts"])
    assert torch.equal(out.input_ids, golden["batch.input_ids"])
    assert torch.equal(out.attention_mask, golden["batch.attention_mask"])


def test_converted_spiece_equals_checkpoint_tokenizer_json() -> None:
    """Our SentencePiece -> tokenizer.json conversion reproduces the stand-in's file field by field."""
    require_parity()
    doc = sentencepiece_to_tokenizer_json(parse_sentencepiece_model(SPIECE.read_bytes()))
    assert doc == json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))


def test_sentencepiece_fields_decoded() -> None:
    require_parity()
    model = parse_sentencepiece_model(SPIECE.read_bytes())
    assert (model.pad_id, model.eos_id, model.bos_id, model.unk_id) == (0, 1, 2, 3)
    assert len(model.pieces) == 712 and model.model_type == "unigram"
    assert model.normalizer_name == "nmt_nfkc" and model.add_dummy_prefix and model.precompiled_charsmap


def test_matches_sentencepiece_library() -> None:
    """Cross-check with the sentencepiece package (test-only dependency): ids agree on every prompt."""
    require_parity()
    spm = pytest.importorskip("sentencepiece")
    proc = spm.SentencePieceProcessor(model_file=str(SPIECE))
    tok = _tokenizer("spiece")
    for case in _prompts()["prompts"][:20]:  # the 2638-char prompt has score ties (README 1.4)
        assert tok(case["text"]).input_ids[0].tolist() == proc.encode(case["text"]) + [1], case["text"]


def test_from_source_both_kinds() -> None:
    require_parity()
    a = PromptTokenizer.from_source(TokenizerSource(kind="tokenizer_json", path=TOKENIZER_JSON))
    b = PromptTokenizer.from_source(TokenizerSource(kind="sentencepiece", data=SPIECE.read_bytes()))
    text = _prompts()["prompts"][12]["text"]
    assert torch.equal(a(text).input_ids, b(text).input_ids)
    with pytest.raises(AceStepInputError):
        PromptTokenizer.from_source(TokenizerSource(kind="sentencepiece"))


@pytest.mark.parametrize("blob", [b"", b"\x00\x01\x02garbage", b"\x0a\xff\xff\xff\xff\x0f", b"{\"not\": \"spm\"}"])
def test_corrupt_sentencepiece_blob(blob: bytes) -> None:
    with pytest.raises(SentencePieceModelError, match="SentencePiece|empty"):
        PromptTokenizer.from_sentencepiece(blob)


def test_truncated_sentencepiece_blob() -> None:
    require_parity()
    with pytest.raises(SentencePieceModelError, match="corrupt or truncated"):
        PromptTokenizer.from_sentencepiece(SPIECE.read_bytes()[:1000])


def test_missing_and_corrupt_tokenizer_json(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        PromptTokenizer.from_tokenizer_json(tmp_path / "tokenizer.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"version\": ", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a valid tokenizer.json"):
        PromptTokenizer.from_tokenizer_json(bad)


@pytest.mark.parametrize("bad", [None, 3, b"pop", [], ["pop", 1]])
def test_bad_prompt_input(bad: object) -> None:
    with pytest.raises(AceStepInputError):
        _tokenizer("json")(bad)  # type: ignore[arg-type]


def test_bad_max_length() -> None:
    with pytest.raises(AceStepInputError, match="max_length"):
        _tokenizer("json")("pop", max_length=1)

"""The prompt (tags) side: the UMT5 tokenizer (:mod:`.prompt_tokenizer`, with a reader for ComfyUI's embedded
SentencePiece model in :mod:`.sentencepiece_model`) and the UMT5 encoder (:mod:`.encoder`). Lyrics live in
:mod:`acestep_core.lyrics`."""

from .encoder import UMT5Encoder
from .prompt_tokenizer import PromptTokenizer, PromptTokens

__all__ = ["PromptTokenizer", "PromptTokens", "UMT5Encoder"]

"""Frozen config of a HuBERT-family teacher encoder, mirroring its Hugging Face ``config.json``.

One dataclass covers both REPA teachers: MERT-v1-330M (``model_type`` ``mert_model``, its own
``MERTConfig`` with a few extra keys) and mHuBERT-147 (stock ``hubert``). Field names are the upstream
keys (an external contract); lists become tuples. ``from_json``/``from_dict`` sort every other key of
such a file into one of three documented groups:

* :data:`IGNORED_KEYS`: bookkeeping of ``transformers.PretrainedConfig`` and settings that only act in
  training or in task heads (dropouts, SpecAugment masking, CTC, classifier) - no effect on the
  eval-mode ``last_hidden_state`` that REPA uses;
* MERT keys that change nothing while their value is the released one (``attention_relax`` is only read
  by MERT's deepnorm encoder, ``feature_extractor_cqt_bins`` only with the CQT branch): fields here;
* keys whose other values would change the math we do not implement (``deepnorm``,
  ``feature_extractor_cqt``, ``conv_pos_batch_norm`` true, a non-GELU activation): fields that
  ``__post_init__`` refuses with a message naming the key.

Any key in none of these groups raises :class:`TeacherConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError

__all__ = ["IGNORED_KEYS", "MERT_V1_330M_CONFIG", "MHUBERT_147_CONFIG", "HubertConfig", "TeacherConfigError"]

# transformers.PretrainedConfig bookkeeping (older exports write all of these out).
_PRETRAINED_CONFIG_KEYS = frozenset({
    "_name_or_path", "architectures", "auto_map", "transformers_version", "torch_dtype", "model_type",
    "tokenizer_class", "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
    "return_dict", "output_hidden_states", "output_attentions", "torchscript", "use_bfloat16", "pruned_heads",
    "tie_word_embeddings", "chunk_size_feed_forward", "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size",
    "add_cross_attention", "tie_encoder_decoder", "max_length", "min_length", "do_sample", "early_stopping",
    "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
    "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
    "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
    "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "finetuning_task", "id2label", "label2id", "prefix", "problem_type",
    "task_specific_params", "tf_legacy_loss", "use_cache", "_attn_implementation_autoset", "gradient_checkpointing",
})
# Training-only or task-head settings of HubertConfig / Wav2Vec2Config / MERTConfig: no effect in eval mode.
_TRAINING_ONLY_KEYS = frozenset({
    "hidden_dropout", "activation_dropout", "attention_dropout", "feat_proj_dropout", "feat_extract_dropout",
    "feat_quantizer_dropout", "final_dropout", "layerdrop", "initializer_range", "apply_spec_augment",
    "mask_time_length", "mask_time_min_masks", "mask_time_min_space", "mask_time_other", "mask_time_selection",
    "mask_feature_length", "mask_feature_min_masks", "mask_channel_length", "mask_channel_min_space",
    "mask_channel_other", "mask_channel_prob", "mask_channel_selection", "no_mask_channel_overlap",
    "no_mask_time_overlap", "ctc_loss_reduction", "ctc_zero_infinity", "use_weighted_layer_sum",
    "classifier_proj_size", "vocab_size",
})
IGNORED_KEYS: frozenset[str] = _PRETRAINED_CONFIG_KEYS | _TRAINING_ONLY_KEYS
KNOWN_MODEL_TYPES = ("hubert", "mert_model")
SUPPORTED_ACTIVATIONS = ("gelu",)  # transformers ACT2FN["gelu"]: exact (erf) GELU


class TeacherConfigError(ConfigError):
    """A teacher ``config.json`` is unreadable or describes an encoder this package does not implement."""


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class HubertConfig:
    """A HuBERT-family encoder (transformers ``HubertConfig`` / MERT's ``MERTConfig``); defaults = HuBERT base."""

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    feat_extract_norm: str = "group"  # "group": GroupNorm on conv 0 only; "layer": LayerNorm after every conv
    feat_extract_activation: str = "gelu"  # conv front-end and positional conv
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_feat_extract_layers: int | None = None  # derived upstream; must equal len(conv_dim) when written
    feat_proj_layer_norm: bool = True
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    conv_pos_batch_norm: bool = False  # transformers >= 4.48; true (BatchNorm instead of weight norm) unsupported
    do_stable_layer_norm: bool = False  # true: pre-LN encoder + final LayerNorm (MERT); false: post-LN (HuBERT base)
    # Decide only whether the checkpoint holds the (eval-unused) ``masked_spec_embed`` vector.
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0
    # MERTConfig extras.
    sample_rate: int | None = None
    deepnorm: bool = False
    attention_relax: float = -1.0  # read only by MERT's deepnorm encoder, which is refused
    feature_extractor_cqt: bool = False
    feature_extractor_cqt_bins: int = 336  # read only with feature_extractor_cqt

    def __post_init__(self) -> None:
        _check_unsupported(self)
        _check_shapes(self)

    @property
    def samples_per_frame(self) -> int:
        """Hop of the conv front-end in input samples (320 for both teachers)."""
        return math.prod(self.conv_stride)

    @property
    def has_masked_spec_embed(self) -> bool:
        """Whether transformers' ``HubertModel`` of this config owns ``masked_spec_embed`` [hidden_size]."""
        return self.mask_time_prob > 0.0 or self.mask_feature_prob > 0.0

    def frames_for_samples(self, num_samples: int) -> int:
        """Frames the conv front-end yields for ``num_samples`` inputs (no padding: ``(L - k) // s + 1`` per conv)."""
        frames = num_samples
        for kernel, stride in zip(self.conv_kernel, self.conv_stride, strict=True):
            frames = (frames - kernel) // stride + 1
        return max(frames, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (tuples become lists) that :meth:`from_dict` reads back."""
        items = dataclasses.asdict(self).items()
        return {"model_type": "hubert", **{k: list(v) if isinstance(v, tuple) else v for k, v in items
                                           if v is not None}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> HubertConfig:
        model_type = data.get("model_type", "hubert")
        if model_type not in KNOWN_MODEL_TYPES:
            raise TeacherConfigError(
                f"{source}: model_type {model_type!r} is not a HuBERT-family encoder (expected one of "
                f"{list(KNOWN_MODEL_TYPES)}); the REPA teachers are MERT-v1-330M and mHuBERT-147.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in names and k not in IGNORED_KEYS)
        if unknown:
            raise TeacherConfigError(
                f"{source}: unknown key(s) {unknown} for a HuBERT-family teacher config. This file is not a "
                "MERT-v1-330M / mHuBERT-147 config.json, or it comes from a newer transformers release; if those "
                "keys do not change the encoder's output, add them to acestep_core.teachers.config.IGNORED_KEYS.")
        try:
            return cls(**{k: _freeze(v) for k, v in data.items() if k in names})
        except (TypeError, ValueError) as e:
            raise TeacherConfigError(f"{source}: {e}") from e

    @classmethod
    def from_json(cls, path: str | Path) -> HubertConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise TeacherConfigError(f"teacher config file not found: {path}") from e
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TeacherConfigError(f"{path}: not a readable JSON file ({e}); it is corrupt or truncated: "
                                     "download it again") from e
        if not isinstance(data, dict):
            raise TeacherConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def tiny(cls, *, hidden_size: int = 32, stable_layer_norm: bool = True, num_hidden_layers: int = 2,
             num_attention_heads: int = 2, intermediate_size: int = 64, conv_pos_groups: int = 16) -> HubertConfig:
        """A tiny random-weight teacher for tests: the real conv front-end shape (320 samples per frame) with
        16-channel convs (like ``shared/parity/teachers/*_tiny``); widths and depths as given."""
        return cls(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                   num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
                   conv_dim=(16,) * 7, num_conv_pos_embedding_groups=conv_pos_groups,
                   do_stable_layer_norm=stable_layer_norm, mask_time_prob=0.0)


def _check_unsupported(cfg: HubertConfig) -> None:
    refused = {
        "deepnorm": (cfg.deepnorm, "MERT's deepnorm encoder (scaled residuals) is not implemented"),
        "feature_extractor_cqt": (cfg.feature_extractor_cqt, "MERT's CQT front-end branch is not implemented"),
        "conv_pos_batch_norm": (cfg.conv_pos_batch_norm,
                                "a BatchNorm positional conv (instead of weight norm) is not implemented"),
    }
    for key, (on, why) in refused.items():
        if on:
            raise ValueError(f"{key} is true: {why}. MERT-v1-330M and mHuBERT-147 have it false; this is another "
                             "model")
    for key in ("hidden_act", "feat_extract_activation"):
        if getattr(cfg, key) not in SUPPORTED_ACTIVATIONS:
            raise ValueError(f"{key} {getattr(cfg, key)!r} is not supported (only {list(SUPPORTED_ACTIVATIONS)}, "
                             "as in both REPA teachers)")
    if cfg.feat_extract_norm not in ("group", "layer"):
        raise ValueError(f"feat_extract_norm {cfg.feat_extract_norm!r} must be 'group' or 'layer'")


def _check_shapes(cfg: HubertConfig) -> None:
    n_convs = len(cfg.conv_dim)
    if not (len(cfg.conv_stride) == len(cfg.conv_kernel) == n_convs) or n_convs == 0:
        raise ValueError(f"conv_dim {cfg.conv_dim}, conv_stride {cfg.conv_stride} and conv_kernel {cfg.conv_kernel} "
                         "must be non-empty and of the same length")
    if cfg.num_feat_extract_layers is not None and cfg.num_feat_extract_layers != n_convs:
        raise ValueError(f"num_feat_extract_layers {cfg.num_feat_extract_layers} != len(conv_dim) {n_convs}")
    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "num_conv_pos_embeddings", "num_conv_pos_embedding_groups"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ValueError(f"hidden_size {cfg.hidden_size} is not divisible by num_attention_heads "
                         f"{cfg.num_attention_heads}")
    if cfg.hidden_size % cfg.num_conv_pos_embedding_groups:
        raise ValueError(f"hidden_size {cfg.hidden_size} is not divisible by num_conv_pos_embedding_groups "
                         f"{cfg.num_conv_pos_embedding_groups}")


# Full-size teachers (shapes of the released checkpoints; training-only keys left at their defaults).
# MERT-v1-330M: m-a-p/MERT-v1-330M config.json (24 x 1024, 16 heads, FF 4096, pre-LN, 24 kHz).
MERT_V1_330M_CONFIG = HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                   intermediate_size=4096, do_stable_layer_norm=True, sample_rate=24000,
                                   attention_relax=32.0)
# mHuBERT-147: utter-project/mHuBERT-147, HuBERT base shape (12 x 768, 12 heads, FF 3072, post-LN, 16 kHz).
MHUBERT_147_CONFIG = HubertConfig()

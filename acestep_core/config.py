"""Frozen configuration dataclasses mirroring the checkpoint ``config.json`` files.

Field names are the upstream ones (they are an external contract); defaults are the
released ACE-Step v1 3.5B values, lists become tuples. ``from_json``/``from_dict``
raise on any key they do not know, except the documented metadata keys of each
format (``_class_name``/``_diffusers_version`` for diffusers configs and the
Hugging Face ``transformers`` bookkeeping keys for the UMT5 config).

Latent/mel constants of the waveform<->latent codec live in :class:`CodecConfig`
with their upstream source noted.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="_JsonConfig")

DIFFUSERS_METADATA_KEYS = frozenset({"_class_name", "_diffusers_version", "_name_or_path"})


class ConfigError(ValueError):
    """A config file or value is invalid for the ACE-Step v1 architecture."""


def _freeze(value: Any) -> Any:
    """Turn JSON lists (also nested) into tuples so configs stay hashable."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _JsonConfig:
    """Mixin: strict construction from a config.json mapping."""

    IGNORED_KEYS: ClassVar[frozenset[str]] = DIFFUSERS_METADATA_KEYS

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any], *, source: str = "<dict>") -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(k for k in data if k not in names and k not in cls.IGNORED_KEYS)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {unknown} for {cls.__name__}. This config does not "
                f"look like an ACE-Step v1 {cls.__name__.removesuffix('Config')} config; check that "
                "the file belongs to the right sub-folder of the checkpoint."
            )
        kwargs = {k: _freeze(v) for k, v in data.items() if k in names}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from e

    @classmethod
    def from_json(cls: type[T], path: str | Path) -> T:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {path}") from e
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e}); the file is corrupt or truncated") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _check_positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{type(cfg).__name__}.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class TransformerConfig(_JsonConfig):
    """``ace_step_transformer/config.json`` (upstream ``ACEStepTransformer2DModel``).

    ``inner_dim`` is informational: the model width is ``num_attention_heads *
    attention_head_dim``. The three ``lyric_encoder_*`` keys exist only in the tiny
    parity checkpoint; absent (released file) they take the fixed upstream values.
    """

    in_channels: int = 8
    num_layers: int = 24
    inner_dim: int = 2560
    attention_head_dim: int = 128
    num_attention_heads: int = 20
    mlp_ratio: float = 2.5
    out_channels: int = 8
    max_position: int = 32768
    rope_theta: float = 1_000_000.0
    speaker_embedding_dim: int = 512
    text_embedding_dim: int = 768
    ssl_encoder_depths: tuple[int, ...] = (8, 8)
    ssl_names: tuple[str, ...] = ("mert", "m-hubert")
    ssl_latent_dims: tuple[int, ...] = (1024, 768)
    lyric_encoder_vocab_size: int = 6693
    lyric_hidden_size: int = 1024
    patch_size: tuple[int, int] = (16, 1)
    max_height: int = 16
    max_width: int = 32768
    lyric_encoder_attention_heads: int = 16
    lyric_encoder_linear_units: int = 4096
    lyric_encoder_num_blocks: int = 6

    def __post_init__(self) -> None:
        _check_positive(self, "in_channels", "num_layers", "attention_head_dim", "num_attention_heads",
                        "out_channels", "text_embedding_dim", "lyric_hidden_size",
                        "lyric_encoder_attention_heads", "lyric_encoder_num_blocks")
        if len(self.patch_size) != 2:
            raise ValueError(f"TransformerConfig.patch_size must have 2 entries, got {self.patch_size!r}")
        if len(self.ssl_latent_dims) != len(self.ssl_encoder_depths):
            raise ValueError(
                f"TransformerConfig: ssl_latent_dims {self.ssl_latent_dims} and ssl_encoder_depths "
                f"{self.ssl_encoder_depths} must have the same length"
            )
        if self.lyric_hidden_size % self.lyric_encoder_attention_heads:
            raise ValueError(
                f"TransformerConfig: lyric_hidden_size {self.lyric_hidden_size} is not divisible by "
                f"lyric_encoder_attention_heads {self.lyric_encoder_attention_heads}"
            )

    @property
    def model_dim(self) -> int:
        """Width of the DiT residual stream (heads x head_dim)."""
        return self.num_attention_heads * self.attention_head_dim

    @classmethod
    def tiny(cls) -> TransformerConfig:
        """The configuration of ``shared/parity/tiny_checkpoint`` (real depths, tiny widths)."""
        return cls(inner_dim=32, attention_head_dim=16, num_attention_heads=2, text_embedding_dim=64,
                   lyric_hidden_size=32, ssl_latent_dims=(16, 12), lyric_encoder_attention_heads=2,
                   lyric_encoder_linear_units=64, lyric_encoder_num_blocks=6)


@dataclass(frozen=True)
class DCAEConfig(_JsonConfig):
    """``music_dcae_f8c8/config.json`` (diffusers ``AutoencoderDC``)."""

    in_channels: int = 2
    latent_channels: int = 8
    attention_head_dim: int = 32
    encoder_block_types: tuple[str, ...] = ("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock")
    decoder_block_types: tuple[str, ...] = ("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock")
    encoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 1024)
    decoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 1024)
    encoder_layers_per_block: tuple[int, ...] = (2, 2, 3, 3)
    decoder_layers_per_block: tuple[int, ...] = (3, 3, 3, 3)
    encoder_qkv_multiscales: tuple[tuple[int, ...], ...] = ((), (), (5,), (5,))
    decoder_qkv_multiscales: tuple[tuple[int, ...], ...] = ((), (), (5,), (5,))
    upsample_block_type: str = "interpolate"
    downsample_block_type: str = "Conv"
    decoder_norm_types: str = "rms_norm"
    decoder_act_fns: str = "silu"
    scaling_factor: float = 0.41407  # unused by ACE-Step (it applies its own shift/scale)

    def __post_init__(self) -> None:
        _check_positive(self, "in_channels", "latent_channels", "attention_head_dim")
        allowed = {"ResBlock", "EfficientViTBlock"}
        for name in ("encoder_block_types", "decoder_block_types"):
            bad = [t for t in getattr(self, name) if t not in allowed]
            if bad:
                raise ValueError(
                    f"DCAEConfig.{name}: unsupported block type(s) {bad}; ACE-Step uses {sorted(allowed)}"
                )
        n = len(self.encoder_block_types)
        for name in ("encoder_block_out_channels", "encoder_layers_per_block", "encoder_qkv_multiscales",
                     "decoder_block_types", "decoder_block_out_channels", "decoder_layers_per_block",
                     "decoder_qkv_multiscales"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"DCAEConfig.{name} must have {n} entries, got {getattr(self, name)!r}")
        if self.downsample_block_type != "Conv" or self.upsample_block_type != "interpolate":
            raise ValueError(
                "DCAEConfig: only downsample_block_type='Conv' and upsample_block_type='interpolate' "
                f"(the ACE-Step music DCAE) are supported, got {self.downsample_block_type!r}/"
                f"{self.upsample_block_type!r}"
            )
        if self.decoder_norm_types != "rms_norm" or self.decoder_act_fns != "silu":
            raise ValueError("DCAEConfig: only decoder_norm_types='rms_norm' and decoder_act_fns='silu' are supported")

    @classmethod
    def tiny(cls) -> DCAEConfig:
        return cls(attention_head_dim=8, encoder_block_out_channels=(8, 16, 32, 32),
                   decoder_block_out_channels=(8, 16, 32, 32))


@dataclass(frozen=True)
class VocoderConfig(_JsonConfig):
    """``music_vocoder/config.json`` (upstream ``ADaMoSHiFiGANV1``)."""

    input_channels: int = 128
    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (128, 256, 384, 512)
    drop_path_rate: float = 0.0
    kernel_sizes: tuple[int, ...] = (7,)
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11, 13)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5), (1, 3, 5))
    num_mels: int = 512
    upsample_initial_channel: int = 1024
    use_template: bool = False
    pre_conv_kernel_size: int = 13
    post_conv_kernel_size: int = 13
    sampling_rate: int = 44100
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    f_min: float = 40.0
    f_max: float = 16000.0
    n_mels: int = 128

    def __post_init__(self) -> None:
        _check_positive(self, "input_channels", "num_mels", "upsample_initial_channel", "sampling_rate",
                        "n_fft", "win_length", "hop_length", "n_mels")
        if len(self.depths) != len(self.dims):
            raise ValueError(f"VocoderConfig: depths {self.depths} and dims {self.dims} differ in length")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("VocoderConfig: upsample_rates and upsample_kernel_sizes differ in length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("VocoderConfig: resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.use_template:
            raise ValueError("VocoderConfig.use_template=True is not supported (ACE-Step ships use_template=false)")
        if self.num_mels != self.dims[-1]:
            raise ValueError(f"VocoderConfig.num_mels ({self.num_mels}) must equal dims[-1] ({self.dims[-1]})")
        hop = math.prod(self.upsample_rates)
        if hop != self.hop_length:
            raise ValueError(
                f"VocoderConfig: product of upsample_rates ({hop}) must equal hop_length ({self.hop_length})"
            )

    @classmethod
    def tiny(cls) -> VocoderConfig:
        return cls(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), num_mels=32, upsample_initial_channel=128)


UMT5_HF_METADATA_KEYS = frozenset({
    "_name_or_path", "architectures", "transformers_version", "torch_dtype", "model_type",
    "tokenizer_class", "use_cache", "is_encoder_decoder", "output_past", "initializer_factor",
    "dropout_rate", "classifier_dropout", "num_decoder_layers", "decoder_start_token_id",
    "scalable_attention", "task_specific_params", "n_positions", "gradient_checkpointing",
})


@dataclass(frozen=True)
class UMT5Config(_JsonConfig):
    """``umt5-base/config.json`` (Hugging Face ``UMT5EncoderModel``), encoder fields only.

    Decoder, dropout and bookkeeping keys of the Hugging Face file are accepted and
    ignored (``UMT5_HF_METADATA_KEYS``): they do not affect the encoder forward.
    """

    IGNORED_KEYS: ClassVar[frozenset[str]] = UMT5_HF_METADATA_KEYS

    vocab_size: int = 256384
    d_model: int = 768
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 12
    num_heads: int = 12
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "gated-gelu"
    dense_act_fn: str = "gelu_new"
    is_gated_act: bool = True
    tie_word_embeddings: bool = False
    pad_token_id: int = 0
    eos_token_id: int = 1

    def __post_init__(self) -> None:
        _check_positive(self, "vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads",
                        "relative_attention_num_buckets", "relative_attention_max_distance")
        if self.feed_forward_proj != "gated-gelu" or self.dense_act_fn != "gelu_new":
            raise ValueError(
                f"UMT5Config: only feed_forward_proj='gated-gelu' with dense_act_fn='gelu_new' (umt5-base) "
                f"is supported, got {self.feed_forward_proj!r}/{self.dense_act_fn!r}"
            )

    @classmethod
    def tiny(cls) -> UMT5Config:
        return cls(vocab_size=1024, d_model=64, d_kv=16, d_ff=128, num_heads=4)


@dataclass(frozen=True)
class CodecConfig:
    """Constants of the waveform <-> latent codec (upstream ``music_dcae_pipeline.py``)."""

    sample_rate: int = 44100  # internal rate of the mel front-end and vocoder
    output_sample_rate: int = 48000  # rate of the waveform the pipeline returns
    latent_shift: float = -1.9091  # z_model = (z_dcae - shift) * scale
    latent_scale: float = 0.1786
    mel_min: float = -11.0  # log-mel normalisation range: ((mel - min) / (max - min) - 0.5) / 0.5
    mel_max: float = 3.0
    samples_per_latent_frame: int = 4096  # hop 512 x DCAE time compression 8
    time_compression: int = 8
    overlap_window_frames: int = 512  # overlapped DCAE decode window (latent frames)
    overlap_margin_frames: int = 128
    vocoder_block_mel_frames: int = 512
    vocoder_overlap_samples: int = 1024
    vocoder_crossfade_samples: int = 128

    @property
    def latent_frame_rate_hz(self) -> float:
        """Latent frames per second (44100 / 4096 = 10.77: mel hop 512, DCAE time compression 8)."""
        return self.sample_rate / self.samples_per_latent_frame

    def seconds_to_frames(self, seconds: float) -> int:
        """Upstream's ``int(seconds * 44100 / 512 / 8)``, in upstream's float operation order (truncation)."""
        hop = self.samples_per_latent_frame // self.time_compression
        return int(seconds * self.sample_rate / hop / self.time_compression)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines one released ACE-Step variant."""

    name: str
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    dcae: DCAEConfig = field(default_factory=DCAEConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    umt5: UMT5Config = field(default_factory=UMT5Config)
    codec: CodecConfig = field(default_factory=CodecConfig)


MODEL_SPECS: dict[str, ModelSpec] = {"ace-step-v1-3.5b": ModelSpec(name="ace-step-v1-3.5b")}

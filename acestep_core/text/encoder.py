"""UMT5-base text encoder (encoder stack only), without ``transformers``.

Re-implements the encoder half of Hugging Face ``transformers``' UMT5 model
(``UMT5EncoderModel``, transformers 4.50, Apache-2.0), the google/umt5 architecture
(Apache-2.0), as ACE-Step v1 uses it for the tag prompt (ace-step/ACE-Step@d612523,
``ACEStepPipeline.get_text_embeddings`` / ``get_text_embeddings_null``, Apache-2.0).

Math (spec 4.1): pre-norm blocks ``x += o(attn(norm(x)))``, ``x += wo(gelu_new(wi_0(n)) * wi_1(n))``;
unscaled dot-product attention (no ``1/sqrt(d_kv)``) plus a per-layer learned relative
position bias (bidirectional T5 bucketing) plus ``finfo.min`` on padded keys; T5 RMS norm
(no mean, no bias, variance in float32). No biases anywhere, no embedding scaling.

Deliberate divergences from the reference:

* ERG tag ("Entropy Rectifying Guidance", spec 5.8) is the ``query_scale`` argument of
  :meth:`UMT5Encoder.forward`, applied to the ``SelfAttention.q`` output of the blocks in
  :data:`ERG_TAG_LAYERS`, instead of forward hooks that scale that output in place.
* No decoder, no dropout, no KV cache, no head masks, no ``inputs_embeds`` path.
* The relative-position buckets are computed once per forward and shared by all
  layers (each layer still looks them up in its own ``relative_attention_bias`` table).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import UMT5Config
from ..errors import AceStepInputError
from ..ops import Ops, cast_like

# Blocks whose query projection is scaled by ``query_scale`` (upstream get_text_embeddings_null:
# l_min=8, l_max=10, i.e. range(8, 10)).
ERG_TAG_LAYERS: tuple[int, ...] = (8, 9)
# Upstream ERG temperature for the tag encoder (get_text_embeddings_null default tau).
ERG_TAG_QUERY_SCALE = 0.01

_GELU_TANH_COEF = math.sqrt(2.0 / math.pi)


def relative_position_bucket(relative_position: torch.Tensor, *, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Map ``key_pos - query_pos`` to a bucket in ``[0, num_buckets)``, bidirectional T5 scheme.

    Half of the buckets are for keys after the query (positive offsets), half for keys at or
    before it. Within a half, offsets below ``num_buckets // 4`` get their own bucket; larger
    ones share log-spaced buckets up to ``max_distance``, beyond which everything falls into
    the last bucket of the half.
    """
    half = num_buckets // 2
    buckets = (relative_position > 0).to(torch.long) * half
    distance = relative_position.abs()
    max_exact = half // 2
    is_small = distance < max_exact
    # float32 log, truncated toward zero: the exact rounding of the reference (log(0) for the
    # small offsets is discarded by the where below).
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (half - max_exact)).to(torch.long)
    large = large.clamp(max=half - 1)
    return buckets + torch.where(is_small, distance, large)


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation, written out like the reference ``gelu_new`` (same rounding)."""
    return 0.5 * x * (1.0 + torch.tanh(_GELU_TANH_COEF * (x + 0.044715 * torch.pow(x, 3.0))))


def _clamp_fp16(x: torch.Tensor) -> torch.Tensor:
    """Keep float16 activations finite like the reference (no-op for other dtypes)."""
    if x.dtype != torch.float16:
        return x
    limit = torch.finfo(torch.float16).max
    clamp_value = torch.where(torch.isinf(x).any(), limit - 1000, limit)
    return torch.clamp(x, min=-clamp_value, max=clamp_value)


class T5LayerNorm(nn.Module):
    """RMS norm without mean subtraction or bias; variance accumulated in float32."""

    def __init__(self, dim: int, *, eps: float, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, dtype=dtype, device=device))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., dim] -> [..., dim]
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        normed = (x * torch.rsqrt(variance + self.eps)).to(x.dtype)
        return cast_like(self.weight, x) * normed


class UMT5Attention(nn.Module):
    """Unscaled multi-head self-attention with this layer's own relative position bias.

    Attribute names (``q``, ``k``, ``v``, ``o``, ``relative_attention_bias``) are the
    checkpoint's key names, an external contract.
    """

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.d_kv = cfg.d_kv
        inner = cfg.num_heads * cfg.d_kv
        self.q = ops.Linear(cfg.d_model, inner, bias=False, dtype=dtype, device=device)
        self.k = ops.Linear(cfg.d_model, inner, bias=False, dtype=dtype, device=device)
        self.v = ops.Linear(cfg.d_model, inner, bias=False, dtype=dtype, device=device)
        self.o = ops.Linear(inner, cfg.d_model, bias=False, dtype=dtype, device=device)
        self.relative_attention_bias = ops.Embedding(cfg.relative_attention_num_buckets, cfg.num_heads,
                                                     dtype=dtype, device=device)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, H*D] -> [B, H, L, D]
        return x.unflatten(-1, (self.num_heads, self.d_kv)).transpose(1, 2)

    def forward(self, x: torch.Tensor, buckets: torch.Tensor, mask_bias: torch.Tensor,
                query_scale: float = 1.0) -> torch.Tensor:
        """``x`` [B, L, d_model] (normed), ``buckets`` [L, L] long, ``mask_bias`` [B, 1, 1, L] -> [B, L, d_model]."""
        query = self.q(x)  # [B, L, H*D]
        if query_scale != 1.0:
            query = query * query_scale
        query, key, value = self._heads(query), self._heads(self.k(x)), self._heads(self.v(x))
        scores = torch.matmul(query, key.transpose(-1, -2))  # [B, H, L, L], no 1/sqrt(D) (T5)
        position_bias = self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)  # [1, H, L, L]
        scores = scores + (position_bias.to(scores.dtype) + mask_bias)
        # explicit matmul/softmax as in the reference: fused SDPA rounds differently (4.9e-5 on the goldens)
        weights = torch.softmax(scores.float(), dim=-1).to(scores.dtype)
        context = torch.matmul(weights, value).transpose(1, 2).flatten(2)  # [B, L, H*D]
        return self.o(context)


class UMT5LayerSelfAttention(nn.Module):
    """Pre-norm residual self-attention sub-layer (``layer.0`` of a block)."""

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.SelfAttention = UMT5Attention(cfg, dtype=dtype, device=device, ops=ops)
        self.layer_norm = T5LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, buckets: torch.Tensor, mask_bias: torch.Tensor,
                query_scale: float = 1.0) -> torch.Tensor:  # [B, L, d_model]
        return x + self.SelfAttention(self.layer_norm(x), buckets, mask_bias, query_scale)


class UMT5DenseGatedActDense(nn.Module):
    """Gated-GELU feed-forward ``wo(gelu_new(wi_0(x)) * wi_1(x))``; names match the checkpoint."""

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.wi_0 = ops.Linear(cfg.d_model, cfg.d_ff, bias=False, dtype=dtype, device=device)
        self.wi_1 = ops.Linear(cfg.d_model, cfg.d_ff, bias=False, dtype=dtype, device=device)
        self.wo = ops.Linear(cfg.d_ff, cfg.d_model, bias=False, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, d_model] -> [B, L, d_model]
        return self.wo(_gelu_new(self.wi_0(x)) * self.wi_1(x))  # hidden [B, L, d_ff]


class UMT5LayerFF(nn.Module):
    """Pre-norm residual feed-forward sub-layer (``layer.1`` of a block)."""

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.DenseReluDense = UMT5DenseGatedActDense(cfg, dtype=dtype, device=device, ops=ops)
        self.layer_norm = T5LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, d_model]
        return x + self.DenseReluDense(self.layer_norm(x))


class UMT5Block(nn.Module):
    """One encoder block: ``layer[0]`` self-attention, ``layer[1]`` feed-forward."""

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.layer = nn.ModuleList([
            UMT5LayerSelfAttention(cfg, dtype=dtype, device=device, ops=ops),
            UMT5LayerFF(cfg, dtype=dtype, device=device, ops=ops),
        ])

    def forward(self, x: torch.Tensor, buckets: torch.Tensor, mask_bias: torch.Tensor,
                query_scale: float = 1.0) -> torch.Tensor:  # [B, L, d_model]
        x = _clamp_fp16(self.layer[0](x, buckets, mask_bias, query_scale))
        return _clamp_fp16(self.layer[1](x))


class UMT5Stack(nn.Module):
    """The ``encoder.`` sub-tree: ``block.{i}`` and ``final_layer_norm`` (no own embedding)."""

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            [UMT5Block(cfg, dtype=dtype, device=device, ops=ops) for _ in range(cfg.num_layers)]
        )
        self.final_layer_norm = T5LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon, dtype=dtype, device=device)


class UMT5Encoder(nn.Module):
    """UMT5 encoder (Xue et al. 2021, mT5; Chung et al. 2023, UniMax/umT5) returning ``last_hidden_state``.

    Submodule names (``shared``, ``encoder.block.{i}.layer.{0,1}...``, ``encoder.final_layer_norm``)
    equal the Hugging Face ``UMT5EncoderModel`` checkpoint keys, an external contract; the
    token embedding lives only in ``shared`` (no ``encoder.embed_tokens``). The module has no
    buffers, so it can be built on the ``meta`` device and filled with ``load_state_dict(...,
    assign=True)``.

    Args:
        cfg: encoder hyper-parameters (``umt5-base/config.json``).
        dtype: parameter dtype at construction.
        device: parameter device at construction.
        ops: namespace providing ``Linear`` and ``Embedding`` (``torch.nn`` or ComfyUI ops).
    """

    def __init__(self, cfg: UMT5Config, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn) -> None:
        super().__init__()
        self.cfg = cfg
        self.shared = ops.Embedding(cfg.vocab_size, cfg.d_model, dtype=dtype, device=device)
        self.encoder = UMT5Stack(cfg, dtype=dtype, device=device, ops=ops)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                query_scale: float = 1.0) -> torch.Tensor:
        """Encode token ids.

        Args:
            input_ids: [B, L] integer token ids in ``[0, vocab_size)`` (``</s>`` appended, no BOS).
            attention_mask: [B, L], 1 for tokens and 0 for padding; ``None`` means all tokens.
            query_scale: factor on the query projection of the blocks in :data:`ERG_TAG_LAYERS`
                (1.0 = plain forward; :data:`ERG_TAG_QUERY_SCALE` = the ERG-tag "weak" prompt).

        Returns:
            ``last_hidden_state`` [B, L, d_model] in the embedding's dtype, after the final norm.
        """
        self._check_inputs(input_ids, attention_mask)
        hidden = self.shared(input_ids)  # [B, L, d_model]
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, dtype=torch.long, device=input_ids.device)
        buckets = relative_position_bucket(
            positions[None, :] - positions[:, None],  # [L_query, L_key]: key - query
            num_buckets=self.cfg.relative_attention_num_buckets,
            max_distance=self.cfg.relative_attention_max_distance,
        )
        mask_bias = self._mask_bias(attention_mask, hidden)  # [B, 1, 1, L]
        for index, block in enumerate(self.encoder.block):
            scale = query_scale if index in ERG_TAG_LAYERS else 1.0
            hidden = block(hidden, buckets, mask_bias, scale)
        return self.encoder.final_layer_norm(hidden)

    @staticmethod
    def _mask_bias(attention_mask: torch.Tensor | None, hidden: torch.Tensor) -> torch.Tensor:
        """Additive key mask [B, 1, 1, L]: 0 for tokens, ``finfo(dtype).min`` for padding."""
        if attention_mask is None:
            return hidden.new_zeros(hidden.shape[0], 1, 1, hidden.shape[1])
        keep = attention_mask.to(device=hidden.device, dtype=hidden.dtype)[:, None, None, :]
        return (1.0 - keep) * torch.finfo(hidden.dtype).min

    def _check_inputs(self, input_ids: object, attention_mask: object) -> None:
        """Raise :class:`AceStepInputError` for ids/mask the encoder cannot take."""
        if not isinstance(input_ids, torch.Tensor):
            raise AceStepInputError(
                f"UMT5Encoder input_ids: expected a torch.Tensor [B, L] of token ids, got {type(input_ids).__name__}"
            )
        if input_ids.ndim != 2 or input_ids.dtype.is_floating_point or input_ids.dtype.is_complex \
                or input_ids.dtype == torch.bool:
            hint = " (add a batch dimension with input_ids[None])" if input_ids.ndim == 1 else ""
            raise AceStepInputError(
                f"UMT5Encoder input_ids: expected a 2-D integer tensor [B, L], got dtype {input_ids.dtype} "
                f"shape {list(input_ids.shape)}{hint}; pass the tokenizer's ids as torch.long"
            )
        if input_ids.numel() == 0:
            raise AceStepInputError(
                f"UMT5Encoder input_ids: empty sequence (shape {list(input_ids.shape)}); tokenize the prompt "
                "with the checkpoint's tokenizer, which appends '</s>' so even an empty prompt gives one id"
            )
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= self.cfg.vocab_size:
            bad = low if low < 0 else high
            raise AceStepInputError(
                f"UMT5Encoder input_ids: token id {bad} is outside [0, {self.cfg.vocab_size}) (vocab_size of "
                "this text encoder); the tokenizer does not belong to this checkpoint, use its tokenizer.json"
            )
        if attention_mask is not None and (
            not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != tuple(input_ids.shape)
        ):
            got = list(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)
            raise AceStepInputError(
                f"UMT5Encoder attention_mask: expected a tensor of the input_ids shape {list(input_ids.shape)} "
                f"(1 = token, 0 = padding), got {got}; pass the mask returned with the ids, or None"
            )

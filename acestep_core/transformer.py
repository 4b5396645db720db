"""The ACE-Step v1 diffusion transformer: condition encoder (``encode``) and linear DiT denoiser (``decode``).

Ported from ace-step/ACE-Step@d612523 acestep/models/ace_step_transformer.py (``ACEStepTransformer2DModel``)
(Apache-2.0). Submodules live in :mod:`acestep_core.nn`.

Deliberate divergences:
- No registered buffers: RoPE tables, timestep frequencies and the lyric relative-position table are
  computed in ``forward`` (the loader builds the model on the meta device and assigns checkpoint tensors).
- ERG ("Entropy Rectifying Guidance") is exposed as ``lyric_query_scale`` (lyric-encoder layers
  ``ERG_LYRIC_LAYERS``) and ``query_scale`` (DiT blocks ``ERG_DIFFUSION_BLOCKS``) arguments that multiply
  the query projection outputs, instead of upstream's in-place forward hooks (same numbers; spec 5.8).
- The SSL/REPA branch is not part of ``decode``: training declares ``projectors`` (``repa_heads=True``)
  and runs them on the block outputs it captures (:mod:`acestep_core.training.repa`). ``projectors`` and the
  unused ``cross_attn.add_*``/``to_add_out`` layers (717 M of the 3.3 B parameters) are otherwise only declared
  with ``keep_unused=True``; :meth:`AceStepTransformer.unused_checkpoint_shapes` lists what is not declared so
  the strict loader checks their shapes in the released file and drops them. No ControlNet input.
- No dropout modules (training passes the lyric Conformer's dropout to :meth:`encode`); gradient
  checkpointing is a ``block_forward`` the caller passes to :meth:`decode`.
- ``forward``/``decode`` return the sample tensor (no output dataclass, no projection losses).
- ``decode`` with ``output_length=None`` keeps the input length (upstream's default 0 would crop to nothing).
- Inputs are validated up front and raise :class:`AceStepInputError` with a how-to-fix message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from .config import TransformerConfig
from .errors import AceStepInputError, check_latent_shape
from .nn.attention import cross_attention_bias
from .nn.blocks import TIMESTEP_CHANNELS, FinalLayer, LinearTransformerBlock, PatchEmbed, TimestepEmbedding, Timesteps
from .nn.conformer import Dropout, LyricConformerEncoder
from .nn.rope import rope_tables
from .ops import Ops

ERG_LYRIC_LAYERS: tuple[int, ...] = (4, 5)  # upstream ERG hooks: lyric_encoder.encoders[4, 5].self_attn.linear_q
ERG_DIFFUSION_BLOCKS: tuple[int, ...] = tuple(range(15, 20))  # transformer_blocks[15..19] attn/cross_attn .to_q
ERG_TEMPERATURE = 0.01  # the query scale upstream's ERG hooks apply (spec 5.8)


def _fmt_shape(expected: tuple[int | str, ...]) -> str:
    return "[" + ", ".join(str(d) for d in expected) + "]"


def _expect(name: str, value: object, expected: tuple[int | str, ...], meaning: str) -> torch.Tensor:
    """Check ``value`` is a tensor of shape ``expected`` (str entries are free); raise with a fix hint."""
    if not isinstance(value, torch.Tensor):
        raise AceStepInputError(f"{name}: expected a torch.Tensor {_fmt_shape(expected)} ({meaning}), "
                                f"got {type(value).__name__}")
    shape = tuple(value.shape)
    if len(shape) != len(expected):
        raise AceStepInputError(f"{name}: expected a {len(expected)}-D tensor {_fmt_shape(expected)} ({meaning}), "
                                f"got shape {list(shape)}; reshape it to {_fmt_shape(expected)}")
    for axis, (got, want) in enumerate(zip(shape, expected, strict=True)):
        if isinstance(want, int) and got != want:
            fix = ("all inputs must share the batch size; repeat or split the conditioning to match the latents"
                   if axis == 0 else f"axis {axis} must be {want}")
            raise AceStepInputError(f"{name}: expected shape {_fmt_shape(expected)} ({meaning}), "
                                    f"got {list(shape)}; {fix}")
    return value


def _timestep_batch(timestep: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """Accept a number, a 0-d tensor, a [1] or a [B] tensor of t = 1000 * sigma; return fp32 [B]."""
    if not isinstance(timestep, torch.Tensor):
        if not isinstance(timestep, (int, float)):
            raise AceStepInputError(f"timestep: expected a float, a 0-d tensor or a [B] tensor, "
                                    f"got {type(timestep).__name__}")
        timestep = torch.tensor(float(timestep))
    if timestep.ndim > 1 or (timestep.ndim == 1 and timestep.shape[0] not in (1, batch)):
        raise AceStepInputError(f"timestep: expected a scalar, [1] or [{batch}] (one t = 1000 * sigma per batch "
                                f"item), got shape {list(timestep.shape)}")
    return timestep.to(device=device, dtype=torch.float32).reshape(-1).expand(batch)


def _scale_tensors(query_scale: float | torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ERG blocks' factors, ones)`` as [B] fp32 tensors on ``x``'s device, for compiled blocks."""
    batch = x.shape[0]
    ones = torch.ones(batch, dtype=torch.float32, device=x.device)
    if isinstance(query_scale, torch.Tensor):
        return query_scale.to(device=x.device, dtype=torch.float32), ones
    return torch.full((batch,), float(query_scale), dtype=torch.float32, device=x.device), ones


class AceStepTransformer(nn.Module):
    """ACE-Step v1 linear DiT (Gong et al. 2025, "ACE-Step: A Step Towards Music Generation Foundation Model",
    arXiv:2506.00045), a Sana-style linear-attention transformer over latent frames, cross-attending to
    [speaker, UMT5 text, lyric Conformer] condition tokens.

    Attribute names (``transformer_blocks``, ``timestep_embedder``, ``t_block``, ``speaker_embedder``,
    ``genre_embedder``, ``lyric_embs``, ``lyric_encoder``, ``lyric_proj``, ``projectors``, ``proj_in``,
    ``final_layer``) are the upstream checkpoint keys: they are an external contract, keep them.

    Args:
        cfg: the ``ace_step_transformer/config.json`` values.
        dtype: parameter dtype (activations follow the input dtype).
        device: parameter device (``"meta"`` for a weightless skeleton).
        ops: namespace of layer classes with ``torch.nn`` signatures (``comfy.ops.manual_cast`` in ComfyUI).
        keep_unused: also declare the checkpoint tensors inference never uses (``projectors.*`` and
            ``cross_attn.{add_q_proj,add_k_proj,add_v_proj,to_add_out}``), e.g. to re-save a full file.
        repa_heads: declare ``projectors.*`` only (the REPA heads training runs; the unused cross-attention
            layers are still checked and dropped).
    """

    def __init__(self, cfg: TransformerConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, ops: Ops = nn, keep_unused: bool = False,
                 repa_heads: bool = False) -> None:
        super().__init__()
        if tuple(cfg.patch_size) != (cfg.max_height, 1):
            raise ValueError(f"AceStepTransformer supports patch_size (max_height, 1) = ({cfg.max_height}, 1) only "
                             f"(one token per latent frame), got patch_size {cfg.patch_size}")
        self.cfg = cfg
        self.keep_unused = keep_unused
        self.repa_heads = keep_unused or repa_heads
        dim = cfg.model_dim
        heads, head_dim = cfg.num_attention_heads, cfg.attention_head_dim
        self.transformer_blocks = nn.ModuleList([
            LinearTransformerBlock(dim, heads, head_dim, cfg.mlp_ratio, dtype=dtype, device=device, ops=ops,
                                   keep_unused=keep_unused)
            for _ in range(cfg.num_layers)
        ])
        self.time_proj = Timesteps(TIMESTEP_CHANNELS)
        self.timestep_embedder = TimestepEmbedding(TIMESTEP_CHANNELS, dim, dtype=dtype, device=device, ops=ops)
        self.t_block = nn.Sequential(nn.SiLU(), ops.Linear(dim, 6 * dim, dtype=dtype, device=device))
        self.speaker_embedder = ops.Linear(cfg.speaker_embedding_dim, dim, dtype=dtype, device=device)
        self.genre_embedder = ops.Linear(cfg.text_embedding_dim, dim, dtype=dtype, device=device)
        self.lyric_embs = ops.Embedding(cfg.lyric_encoder_vocab_size, cfg.lyric_hidden_size, dtype=dtype, device=device)
        self.lyric_encoder = LyricConformerEncoder(
            cfg.lyric_hidden_size, cfg.lyric_hidden_size, cfg.lyric_encoder_attention_heads,
            cfg.lyric_encoder_linear_units, cfg.lyric_encoder_num_blocks, dtype=dtype, device=device, ops=ops,
        )
        self.lyric_proj = ops.Linear(cfg.lyric_hidden_size, dim, dtype=dtype, device=device)
        if self.repa_heads:  # REPA heads (training only)
            self.projectors = nn.ModuleList([
                nn.Sequential(ops.Linear(dim, 2 * dim, dtype=dtype, device=device), nn.SiLU(),
                              ops.Linear(2 * dim, 2 * dim, dtype=dtype, device=device), nn.SiLU(),
                              ops.Linear(2 * dim, ssl_dim, dtype=dtype, device=device))
                for ssl_dim in cfg.ssl_latent_dims
            ])
        patch_size = (cfg.patch_size[0], cfg.patch_size[1])
        self.proj_in = PatchEmbed(cfg.in_channels, dim, patch_size, dtype=dtype, device=device, ops=ops)
        self.final_layer = FinalLayer(dim, patch_size, cfg.out_channels, dtype=dtype, device=device, ops=ops)

    def unused_checkpoint_shapes(self) -> dict[str, tuple[int, ...]]:
        """Key -> shape of released-checkpoint tensors this module does not declare (empty with keep_unused)."""
        if self.keep_unused:
            return {}
        dim, inner = self.cfg.model_dim, self.cfg.model_dim
        shapes: dict[str, tuple[int, ...]] = {}
        layer_shapes = {"add_q_proj": (inner, dim), "add_k_proj": (inner, dim), "add_v_proj": (inner, dim),
                        "to_add_out": (dim, inner)}
        for i in range(self.cfg.num_layers):
            for name, (n_out, n_in) in layer_shapes.items():
                shapes[f"transformer_blocks.{i}.cross_attn.{name}.weight"] = (n_out, n_in)
                shapes[f"transformer_blocks.{i}.cross_attn.{name}.bias"] = (n_out,)
        if self.repa_heads:
            return shapes
        for k, ssl_dim in enumerate(self.cfg.ssl_latent_dims):
            layers = {0: (2 * dim, dim), 2: (2 * dim, 2 * dim), 4: (ssl_dim, 2 * dim)}  # Linear, SiLU, Linear, ...
            for index, (n_out, n_in) in layers.items():
                shapes[f"projectors.{k}.{index}.weight"] = (n_out, n_in)
                shapes[f"projectors.{k}.{index}.bias"] = (n_out,)
        return shapes

    def encode(self, encoder_text_hidden_states: torch.Tensor, text_attention_mask: torch.Tensor,
               speaker_embeds: torch.Tensor | None, lyric_token_idx: torch.Tensor, lyric_mask: torch.Tensor, *,
               lyric_query_scale: float = 1.0, lyric_dropout: Dropout | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Build the condition sequence ``C = [speaker, text, lyrics]`` and its mask.

        The activation dtype is the dtype of ``encoder_text_hidden_states``.

        Args:
            encoder_text_hidden_states: [B, L_t, text_embedding_dim] UMT5 last hidden state.
            text_attention_mask: [B, L_t] (1 = token, 0 = padding), any numeric/bool dtype.
            speaker_embeds: [B, speaker_embedding_dim]; ``None`` means zeros (the released model's value).
            lyric_token_idx: [B, L_l] integer lyric token ids (no lyrics: ``[[0]]`` with mask ``[[0]]``).
            lyric_mask: [B, L_l] (1 = token, 0 = padding).
            lyric_query_scale: multiplies the ``linear_q`` output of lyric-encoder layers ``ERG_LYRIC_LAYERS``
                (``ERG_TEMPERATURE`` = 0.01 reproduces upstream's ERG-lyric hooks; 1.0 = off).
            lyric_dropout: training only: the lyric Conformer's dropout, ``dropout(tensor, site)``.

        Returns:
            ``encoder_hidden_states`` [B, 1 + L_t + L_l, D] and ``encoder_hidden_mask`` [B, 1 + L_t + L_l] fp32.
        """
        speaker_embeds = self._check_encode_inputs(encoder_text_hidden_states, text_attention_mask, speaker_embeds,
                                                   lyric_token_idx, lyric_mask)
        batch = encoder_text_hidden_states.shape[0]
        speaker = self.speaker_embedder(speaker_embeds)[:, None, :]  # [B, 1, D]
        text = self.genre_embedder(encoder_text_hidden_states)  # [B, L_t, D]
        # The embedding output follows its weight dtype; move it to the activation dtype (the text states').
        lyric_embs = self.lyric_embs(lyric_token_idx).to(encoder_text_hidden_states.dtype)  # [B, L_l, lyric_hidden]
        lyrics = self.lyric_encoder(lyric_embs, lyric_mask, query_scale=lyric_query_scale,
                                    scaled_layers=ERG_LYRIC_LAYERS, dropout=lyric_dropout)  # [B, L_l, lyric_hidden]
        lyrics = self.lyric_proj(lyrics)  # [B, L_l, D]
        states = torch.cat([speaker, text, lyrics], dim=1)
        speaker_mask = torch.ones(batch, 1, dtype=torch.float32, device=states.device)
        mask = torch.cat([speaker_mask, text_attention_mask.to(speaker_mask), lyric_mask.to(speaker_mask)], dim=1)
        return states, mask

    def decode(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None,
               encoder_hidden_states: torch.Tensor, encoder_hidden_mask: torch.Tensor, timestep: torch.Tensor | float,
               *, output_length: int | None = None, query_scale: float | torch.Tensor = 1.0,
               block_forward: Callable[..., torch.Tensor] | None = None) -> torch.Tensor:
        """Predict the flow velocity for noisy latents.

        Args:
            hidden_states: [B, 8, 16, T] noisy latents (activation dtype = this dtype).
            attention_mask: [B, T] latent frame mask, or ``None`` when every frame is valid (what sampling
                passes: same result as all ones, without the per-frame masking work).
            encoder_hidden_states: [B, S, D] and ``encoder_hidden_mask`` [B, S] from :meth:`encode`.
            timestep: ``t = 1000 * sigma``; a number, a 0-d or [1] tensor (shared by the batch) or [B].
            output_length: frames of the output (zero pad / crop the time axis); ``None`` = T.
            query_scale: multiplies the ``attn.to_q`` and ``cross_attn.to_q`` outputs of blocks
                ``ERG_DIFFUSION_BLOCKS`` (``ERG_TEMPERATURE`` reproduces upstream's ERG-diffusion hooks); a number,
                or a [B] tensor with one factor per item (batched cond / uncond guidance passes).
            block_forward: runs one block instead of ``block(...)``, called as ``block_forward(block, ...)``
                (``torch.compile`` of ``LinearTransformerBlock.forward``, see :mod:`acestep_core.runtime.accel`); it
                gets every block's query scale as a [B] fp32 tensor (ones outside ``ERG_DIFFUSION_BLOCKS``), the
                same products as the number form, so a compiled block holds no guard on a Python float.

        Returns:
            [B, 8, 16, output_length or T] velocity, in the activation dtype.
        """
        timestep = self._check_decode_inputs(hidden_states, attention_mask, encoder_hidden_states,
                                             encoder_hidden_mask, timestep, output_length)
        frames = hidden_states.shape[-1]
        embedded_timestep = self.timestep_embedder(self.time_proj(timestep).to(hidden_states.dtype))  # [B, D]
        temb = self.t_block(embedded_timestep)  # [B, 6D]
        x = self.proj_in(hidden_states)  # [B, T, D]
        head_dim, theta = self.cfg.attention_head_dim, self.cfg.rope_theta
        rope = rope_tables(x.shape[1], head_dim, theta, device=x.device, dtype=x.dtype)
        context_rope = rope_tables(encoder_hidden_states.shape[1], head_dim, theta,
                                   device=x.device, dtype=encoder_hidden_states.dtype)
        mask = None if attention_mask is None else attention_mask.to(torch.float32)
        cross_bias = cross_attention_bias(mask, encoder_hidden_mask, self.cfg.num_attention_heads, x.shape[1],
                                          x.dtype)
        run = block_forward or LinearTransformerBlock.__call__
        erg_scale, plain_scale = (query_scale, 1.0) if block_forward is None else _scale_tensors(query_scale, x)
        for index, block in enumerate(self.transformer_blocks):
            scale = erg_scale if index in ERG_DIFFUSION_BLOCKS else plain_scale
            x = run(block, x, temb, encoder_hidden_states, mask, cross_bias, rope, context_rope, query_scale=scale)
        return self.final_layer(x, embedded_timestep, frames if output_length is None else output_length)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                encoder_text_hidden_states: torch.Tensor, text_attention_mask: torch.Tensor,
                speaker_embeds: torch.Tensor | None, lyric_token_idx: torch.Tensor, lyric_mask: torch.Tensor,
                timestep: torch.Tensor | float, *, output_length: int | None = None) -> torch.Tensor:
        """``decode(hidden_states, ..., *encode(...), timestep)`` -> [B, 8, 16, output_length or T]."""
        encoder_hidden_states, encoder_hidden_mask = self.encode(
            encoder_text_hidden_states, text_attention_mask, speaker_embeds, lyric_token_idx, lyric_mask)
        return self.decode(hidden_states, attention_mask, encoder_hidden_states, encoder_hidden_mask, timestep,
                           output_length=output_length)

    def _check_encode_inputs(self, text_states: object, text_mask: object, speaker_embeds: object,
                             lyric_ids: object, lyric_mask: object) -> torch.Tensor:
        """Validate :meth:`encode` inputs; returns the speaker embeddings (zeros when ``None``)."""
        cfg = self.cfg
        text_states = _expect("encoder_text_hidden_states", text_states, ("B", "L_text", cfg.text_embedding_dim),
                              "UMT5 last hidden state")
        batch, text_len, _ = text_states.shape
        if batch < 1:
            raise AceStepInputError("encoder_text_hidden_states: got batch size 0; encode needs at least one item")
        _expect("text_attention_mask", text_mask, (batch, text_len), "text token mask, same length as the text states")
        if speaker_embeds is None:
            speaker_embeds = text_states.new_zeros(batch, cfg.speaker_embedding_dim)
        _expect("speaker_embeds", speaker_embeds, (batch, cfg.speaker_embedding_dim),
                "speaker embedding; pass zeros or None for the released checkpoint")
        lyric_ids = _expect("lyric_token_idx", lyric_ids, (batch, "L_lyric"), "lyric token ids")
        if lyric_ids.dtype.is_floating_point or lyric_ids.dtype.is_complex or lyric_ids.dtype == torch.bool:
            raise AceStepInputError(f"lyric_token_idx: expected an integer tensor (int64 token ids), got "
                                    f"{lyric_ids.dtype}; convert with .long()")
        if lyric_ids.shape[1] < 1:
            raise AceStepInputError("lyric_token_idx: got 0 lyric tokens; for no lyrics pass ids [[0]] with "
                                    "lyric_mask [[0]] (what the reference pipeline does)")
        _expect("lyric_mask", lyric_mask, tuple(lyric_ids.shape), "lyric token mask, same shape as lyric_token_idx")
        vocab = cfg.lyric_encoder_vocab_size
        low, high = int(lyric_ids.min()), int(lyric_ids.max())
        if low < 0 or high >= vocab:
            bad = high if high >= vocab else low
            raise AceStepInputError(f"lyric_token_idx: token id {bad} is outside the lyric vocabulary [0, {vocab}); "
                                    "tokenize lyrics with the ACE-Step v1 lyric tokenizer (vocab.json of this "
                                    "checkpoint), not another model's tokenizer")
        return cast(torch.Tensor, speaker_embeds)

    def _check_decode_inputs(self, latents: object, frame_mask: object, context: object, context_mask: object,
                             timestep: torch.Tensor | float, output_length: int | None) -> torch.Tensor:
        """Validate :meth:`decode` inputs; returns the timestep as fp32 [B]."""
        cfg = self.cfg
        check_latent_shape(latents, channels=cfg.in_channels, height=cfg.max_height, name="hidden_states")
        latents = cast(torch.Tensor, latents)  # check_latent_shape raised unless it is a tensor
        batch, frames = latents.shape[0], latents.shape[-1]
        if frame_mask is not None:
            _expect("attention_mask", frame_mask, (batch, frames), "latent frame mask, one entry per latent frame "
                    "(or None: every frame valid)")
        context = _expect("encoder_hidden_states", context, (batch, "S", cfg.model_dim),
                          "condition sequence from AceStepTransformer.encode")
        _expect("encoder_hidden_mask", context_mask, (batch, context.shape[1]),
                "condition mask from AceStepTransformer.encode")
        if output_length is not None and (not isinstance(output_length, int) or output_length < 1):
            raise AceStepInputError(f"output_length: expected a positive int number of latent frames or None "
                                    f"(keep the input length {frames}), got {output_length!r}")
        return _timestep_batch(timestep, batch, latents.device)

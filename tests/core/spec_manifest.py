"""Checkpoint key -> shape manifests written from the spec tables, independently of our modules.

``acestep-v1-spec.md`` sections 2.1 (DiT), 3.5 (DCAE), 3.6 (vocoder) and 4.1 (UMT5) list
every tensor of the released files. These functions rebuild those lists for any config,
so the same code is checked twice: against the tiny parity checkpoint's real safetensors
headers, and (for the 3.5B configs) against the tensor counts and parameter totals of the
spec. Our modules built on ``meta`` must then produce exactly these maps.
"""

from __future__ import annotations

from acestep_core.config import DCAEConfig, TransformerConfig, UMT5Config, VocoderConfig

Shapes = dict[str, tuple[int, ...]]


def _linear(out: Shapes, name: str, n_out: int, n_in: int, bias: bool = True) -> None:
    out[f"{name}.weight"] = (n_out, n_in)
    if bias:
        out[f"{name}.bias"] = (n_out,)


def _norm(out: Shapes, name: str, dim: int, bias: bool = True) -> None:
    out[f"{name}.weight"] = (dim,)
    if bias:
        out[f"{name}.bias"] = (dim,)


def transformer_manifest(cfg: TransformerConfig) -> Shapes:
    d, h_lyr = cfg.num_attention_heads * cfg.attention_head_dim, cfg.lyric_hidden_size
    ph, pw = cfg.patch_size
    out: Shapes = {}
    hid = cfg.in_channels * 256  # upstream PatchEmbed: early conv width = in_channels * 256 (2048)
    out["proj_in.early_conv_layers.0.weight"] = (hid, cfg.in_channels, ph, pw)
    out["proj_in.early_conv_layers.0.bias"] = (hid,)
    _norm(out, "proj_in.early_conv_layers.1", hid)
    out["proj_in.early_conv_layers.2.weight"] = (d, hid, 1, 1)
    out["proj_in.early_conv_layers.2.bias"] = (d,)
    _linear(out, "timestep_embedder.linear_1", d, 256)
    _linear(out, "timestep_embedder.linear_2", d, d)
    _linear(out, "t_block.1", 6 * d, d)
    _linear(out, "speaker_embedder", d, cfg.speaker_embedding_dim)
    _linear(out, "genre_embedder", d, cfg.text_embedding_dim)
    out["lyric_embs.weight"] = (cfg.lyric_encoder_vocab_size, h_lyr)
    _linear(out, "lyric_encoder.embed.out.0", h_lyr, h_lyr)
    _norm(out, "lyric_encoder.embed.out.1", h_lyr)
    heads, dk = cfg.lyric_encoder_attention_heads, h_lyr // cfg.lyric_encoder_attention_heads
    for j in range(cfg.lyric_encoder_num_blocks):
        p = f"lyric_encoder.encoders.{j}"
        for name in ("linear_q", "linear_k", "linear_v", "linear_out"):
            _linear(out, f"{p}.self_attn.{name}", h_lyr, h_lyr)
        _linear(out, f"{p}.self_attn.linear_pos", h_lyr, h_lyr, bias=False)
        out[f"{p}.self_attn.pos_bias_u"] = (heads, dk)
        out[f"{p}.self_attn.pos_bias_v"] = (heads, dk)
        _linear(out, f"{p}.feed_forward.w_1", cfg.lyric_encoder_linear_units, h_lyr)
        _linear(out, f"{p}.feed_forward.w_2", h_lyr, cfg.lyric_encoder_linear_units)
        _norm(out, f"{p}.norm_ff", h_lyr)
        _norm(out, f"{p}.norm_mha", h_lyr)
    _norm(out, "lyric_encoder.after_norm", h_lyr)
    _linear(out, "lyric_proj", d, h_lyr)
    ff_hidden = int(d * cfg.mlp_ratio)
    for i in range(cfg.num_layers):
        p = f"transformer_blocks.{i}"
        out[f"{p}.scale_shift_table"] = (6, d)
        for name in ("to_q", "to_k", "to_v", "to_out.0"):
            _linear(out, f"{p}.attn.{name}", d, d)
        for name in ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"):
            _linear(out, f"{p}.cross_attn.{name}", d, d)
        out[f"{p}.ff.inverted_conv.conv.weight"] = (2 * ff_hidden, d, 1)
        out[f"{p}.ff.inverted_conv.conv.bias"] = (2 * ff_hidden,)
        out[f"{p}.ff.depth_conv.conv.weight"] = (2 * ff_hidden, 1, 3)
        out[f"{p}.ff.depth_conv.conv.bias"] = (2 * ff_hidden,)
        out[f"{p}.ff.point_conv.conv.weight"] = (d, ff_hidden, 1)
    out["final_layer.scale_shift_table"] = (2, d)
    _linear(out, "final_layer.linear", ph * pw * cfg.out_channels, d)
    for k, ssl_dim in enumerate(cfg.ssl_latent_dims):
        _linear(out, f"projectors.{k}.0", 2 * d, d)
        _linear(out, f"projectors.{k}.2", 2 * d, 2 * d)
        _linear(out, f"projectors.{k}.4", ssl_dim, 2 * d)
    return out



def _resblock(out: Shapes, p: str, c: int) -> None:
    out[f"{p}.conv1.weight"] = (c, c, 3, 3)
    out[f"{p}.conv1.bias"] = (c,)
    out[f"{p}.conv2.weight"] = (c, c, 3, 3)
    _norm(out, f"{p}.norm", c)


def _vit_block(out: Shapes, p: str, c: int, head_dim: int) -> None:
    for name in ("to_q", "to_k", "to_v"):
        out[f"{p}.attn.{name}.weight"] = (c, c)
    out[f"{p}.attn.to_qkv_multiscale.0.proj_in.weight"] = (3 * c, 1, 5, 5)
    out[f"{p}.attn.to_qkv_multiscale.0.proj_out.weight"] = (3 * c, head_dim, 1, 1)
    out[f"{p}.attn.to_out.weight"] = (c, 2 * c)
    _norm(out, f"{p}.attn.norm_out", c)
    out[f"{p}.conv_out.conv_inverted.weight"] = (8 * c, c, 1, 1)
    out[f"{p}.conv_out.conv_inverted.bias"] = (8 * c,)
    out[f"{p}.conv_out.conv_depth.weight"] = (8 * c, 1, 3, 3)
    out[f"{p}.conv_out.conv_depth.bias"] = (8 * c,)
    out[f"{p}.conv_out.conv_point.weight"] = (c, 4 * c, 1, 1)
    _norm(out, f"{p}.conv_out.norm", c)


def dcae_manifest(cfg: DCAEConfig) -> Shapes:
    out: Shapes = {}
    enc, dec = cfg.encoder_block_out_channels, cfg.decoder_block_out_channels
    out["encoder.conv_in.weight"] = (enc[0], cfg.in_channels, 3, 3)
    out["encoder.conv_in.bias"] = (enc[0],)
    for s, (kind, n) in enumerate(zip(cfg.encoder_block_types, cfg.encoder_layers_per_block, strict=False)):
        for b in range(n):
            if kind == "ResBlock":
                _resblock(out, f"encoder.down_blocks.{s}.{b}", enc[s])
            else:
                _vit_block(out, f"encoder.down_blocks.{s}.{b}", enc[s], cfg.attention_head_dim)
        if s + 1 < len(enc):
            out[f"encoder.down_blocks.{s}.{n}.conv.weight"] = (enc[s + 1], enc[s], 3, 3)
            out[f"encoder.down_blocks.{s}.{n}.conv.bias"] = (enc[s + 1],)
    out["encoder.conv_out.weight"] = (cfg.latent_channels, enc[-1], 3, 3)
    out["encoder.conv_out.bias"] = (cfg.latent_channels,)
    out["decoder.conv_in.weight"] = (dec[-1], cfg.latent_channels, 3, 3)
    out["decoder.conv_in.bias"] = (dec[-1],)
    for s, (kind, n) in enumerate(zip(cfg.decoder_block_types, cfg.decoder_layers_per_block, strict=False)):
        offset = 0
        if s + 1 < len(dec):
            out[f"decoder.up_blocks.{s}.0.conv.weight"] = (dec[s], dec[s + 1], 3, 3)
            out[f"decoder.up_blocks.{s}.0.conv.bias"] = (dec[s],)
            offset = 1
        for b in range(n):
            if kind == "ResBlock":
                _resblock(out, f"decoder.up_blocks.{s}.{b + offset}", dec[s])
            else:
                _vit_block(out, f"decoder.up_blocks.{s}.{b + offset}", dec[s], cfg.attention_head_dim)
    _norm(out, "decoder.norm_out", dec[0])
    out["decoder.conv_out.weight"] = (cfg.in_channels, dec[0], 3, 3)
    out["decoder.conv_out.bias"] = (cfg.in_channels,)
    return out


def _wn_conv(out: Shapes, p: str, weight_shape: tuple[int, ...], bias_dim: int) -> None:
    out[f"{p}.weight_g"] = (weight_shape[0], 1, 1)
    out[f"{p}.weight_v"] = weight_shape
    out[f"{p}.bias"] = (bias_dim,)


def vocoder_manifest(cfg: VocoderConfig) -> Shapes:
    out: Shapes = {}
    dims = cfg.dims
    out["backbone.channel_layers.0.0.weight"] = (dims[0], cfg.input_channels, cfg.kernel_sizes[0])
    out["backbone.channel_layers.0.0.bias"] = (dims[0],)
    _norm(out, "backbone.channel_layers.0.1", dims[0])
    for s in range(1, len(dims)):
        _norm(out, f"backbone.channel_layers.{s}.0", dims[s - 1])
        out[f"backbone.channel_layers.{s}.1.weight"] = (dims[s], dims[s - 1], 1)
        out[f"backbone.channel_layers.{s}.1.bias"] = (dims[s],)
    for s, depth in enumerate(cfg.depths):
        for b in range(depth):
            p, c = f"backbone.stages.{s}.{b}", dims[s]
            out[f"{p}.gamma"] = (c,)
            out[f"{p}.dwconv.weight"] = (c, 1, cfg.kernel_sizes[0])
            out[f"{p}.dwconv.bias"] = (c,)
            _norm(out, f"{p}.norm", c)
            _linear(out, f"{p}.pwconv1", 4 * c, c)
            _linear(out, f"{p}.pwconv2", c, 4 * c)
    _norm(out, "backbone.norm", dims[-1])
    ch = cfg.upsample_initial_channel
    _wn_conv(out, "head.conv_pre", (ch, cfg.num_mels, cfg.pre_conv_kernel_size), ch)
    n_kernels = len(cfg.resblock_kernel_sizes)
    for u, (_rate, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=False)):
        c_in, c_out = ch // 2**u, ch // 2 ** (u + 1)
        _wn_conv(out, f"head.ups.{u}", (c_in, c_out, k), c_out)
        for j, rk in enumerate(cfg.resblock_kernel_sizes):
            r = u * n_kernels + j
            for conv in ("convs1", "convs2"):
                for m in range(len(cfg.resblock_dilation_sizes[j])):
                    _wn_conv(out, f"head.resblocks.{r}.{conv}.{m}", (c_out, c_out, rk), c_out)
    final = ch // 2 ** len(cfg.upsample_rates)
    _wn_conv(out, "head.conv_post", (1, final, cfg.post_conv_kernel_size), 1)
    out["mel_transform.spectrogram.window"] = (cfg.win_length,)
    out["mel_transform.mel_scale.fb"] = (cfg.n_fft // 2 + 1, cfg.n_mels)
    return out


def umt5_manifest(cfg: UMT5Config) -> Shapes:
    out: Shapes = {"shared.weight": (cfg.vocab_size, cfg.d_model)}
    inner = cfg.num_heads * cfg.d_kv
    for i in range(cfg.num_layers):
        p = f"encoder.block.{i}.layer"
        for name in ("q", "k", "v"):
            out[f"{p}.0.SelfAttention.{name}.weight"] = (inner, cfg.d_model)
        out[f"{p}.0.SelfAttention.o.weight"] = (cfg.d_model, inner)
        out[f"{p}.0.SelfAttention.relative_attention_bias.weight"] = (cfg.relative_attention_num_buckets, cfg.num_heads)
        out[f"{p}.0.layer_norm.weight"] = (cfg.d_model,)
        out[f"{p}.1.DenseReluDense.wi_0.weight"] = (cfg.d_ff, cfg.d_model)
        out[f"{p}.1.DenseReluDense.wi_1.weight"] = (cfg.d_ff, cfg.d_model)
        out[f"{p}.1.DenseReluDense.wo.weight"] = (cfg.d_model, cfg.d_ff)
        out[f"{p}.1.layer_norm.weight"] = (cfg.d_model,)
    out["encoder.final_layer_norm.weight"] = (cfg.d_model,)
    return out

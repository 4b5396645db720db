"""fp8 weight storage (:mod:`acestep_core.runtime.quant`) on the tiny checkpoint, CPU, float32 activations.

Error bound: e4m3 keeps 3 mantissa bits, so rounding a weight (scaled by its row's amax / 448) costs at most
half a step: ``2**-4 * |w|`` in the normal range, ``2**-10 * scale`` among the subnormals (step ``2**-9``).
Rounding errors are independent, so one layer's output moves by about ``2**-4 / sqrt(3) ~ 3.6 %`` (rms of a
uniform error), below ``2**-4``. Through the network the per-block errors add like a random walk: for L blocks
about ``3.6 % * sqrt(L)`` (24 blocks: 18 %); the tiny checkpoint measures 9.4 % (float32, fixed inputs).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from acestep_core import load_checkpoint
from acestep_core.lora.merge import LoraError, LoraSpec, merge_loras, read_lora
from acestep_core.runtime.quant import (
    FP8_MAX,
    Fp8Conv1d,
    Fp8Linear,
    QuantError,
    is_fp8_quantized,
    quantize_fp8_,
    quantize_weight,
)
from tests.core.test_lora import _matrices, _output, write_peft
from tests.parity import TINY_CHECKPOINT, require_parity

LAYER_BOUND = 2.0**-4


def network_bound(blocks: int) -> float:
    """The random-walk bound of the module docstring for ``blocks`` DiT blocks."""
    return 2.0**-4 / math.sqrt(3) * math.sqrt(blocks)


pytestmark = pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="torch without float8")


def _fresh(dtype: torch.dtype = torch.float32) -> nn.Module:
    require_parity()
    return load_checkpoint(TINY_CHECKPOINT, components=["transformer"], dtype=dtype).transformer


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_weight_rounding_is_within_the_e4m3_bound() -> None:
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 96, generator=gen) * torch.logspace(-3, 1, 64)[:, None]  # rows of very different size
    weight[3] = 0.0  # an all-zero row must survive
    q, scale = quantize_weight(weight)
    assert q.dtype == torch.float8_e4m3fn and q.element_size() == 1 and scale.dtype == torch.float32
    back = q.float() * scale[:, None]
    bound = 2.0**-4 * weight.abs() + 2.0**-10 * scale[:, None]
    assert ((back - weight).abs() <= bound * (1 + 1e-6)).all()
    assert torch.equal(back[3], weight[3])
    assert torch.allclose(q.float().abs().amax(dim=1)[scale != 1], torch.full((63,), FP8_MAX))


def test_tiny_transformer_output_close_and_weights_in_fp8() -> None:
    model = _fresh()
    before_state = model.state_dict()
    reference = _output(model)
    report = quantize_fp8_(model)
    out = _output(model)
    assert _rel(out, reference) < network_bound(model.cfg.num_layers), _rel(out, reference)
    assert _rel(out, reference) > 0  # it did change something
    blocks = model.cfg.num_layers
    assert len(report.layers) == blocks * 10  # 4 self-attn + 4 cross-attn linears + 2 1x1 convs per block
    assert report.saved_bytes > 0 and report.bytes_after == sum(
        t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    state = model.state_dict()
    for name in report.layers:
        module = model.get_submodule(name)
        assert isinstance(module, (Fp8Linear, Fp8Conv1d))
        assert state[f"{name}.weight"].dtype == torch.float8_e4m3fn and state[f"{name}.weight"].element_size() == 1
        assert state[f"{name}.weight_scale"].shape == (state[f"{name}.weight"].shape[0],)
        assert state[f"{name}.weight"].shape == before_state[f"{name}.weight"].shape
    assert set(state) == set(before_state) | {f"{n}.weight_scale" for n in report.layers}
    assert next(model.parameters()).dtype == torch.float32  # the pipeline reads the activation dtype from here


def test_only_dit_block_matmuls_are_quantised() -> None:
    model = _fresh()
    report = quantize_fp8_(model)
    assert all(n.startswith("transformer_blocks.") for n in report.layers)
    assert not any("depth_conv" in n or "norm" in n for n in report.layers)
    assert not is_fp8_quantized(model.transformer_blocks[0].ff.depth_conv)
    assert model.lyric_embs.weight.dtype == torch.float32 and model.final_layer.linear.weight.dtype == torch.float32


def test_bf16_model_stays_bf16_in_its_math() -> None:
    model = _fresh(torch.bfloat16)
    layer = model.transformer_blocks[0].attn.to_q
    x = torch.randn(2, 5, layer.in_features).to(torch.bfloat16)
    expected = layer(x)
    quantize_fp8_(model)
    got = model.transformer_blocks[0].attn.to_q(x)
    assert got.dtype == torch.bfloat16 and _rel(got, expected) < LAYER_BOUND


def test_each_layer_output_within_the_layer_bound() -> None:
    """Every quantised layer of block 0, fed the inputs it sees in a real forward (whatever its layout)."""
    model = _fresh()
    layers = {name: mod for name, mod in model.named_modules() if name.startswith("transformer_blocks.0.")
              and (isinstance(mod, nn.Linear) or (isinstance(mod, nn.Conv1d) and mod.kernel_size == (1,)))}
    inputs: dict[str, torch.Tensor] = {}
    hooks = [mod.register_forward_pre_hook(lambda m, args, n=name: inputs.setdefault(n, args[0].clone()))
             for name, mod in layers.items()]
    _output(model)
    for hook in hooks:
        hook.remove()
    expected = {name: layers[name](x) for name, x in inputs.items()}
    report = quantize_fp8_(model)
    assert set(inputs) <= set(report.layers)
    for name, x in inputs.items():
        assert _rel(model.get_submodule(name)(x), expected[name]) < LAYER_BOUND, name


def test_double_quantisation_is_refused() -> None:
    model = _fresh()
    quantize_fp8_(model)
    assert is_fp8_quantized(model)
    with pytest.raises(QuantError, match="already fp8-quantised"):
        quantize_fp8_(model)


def test_pending_lora_restore_is_refused_and_one_shot_merge_works(tmp_path) -> None:
    model = _fresh()
    lora = read_lora(write_peft(tmp_path / "l", _matrices(model, 4, 1), alpha=8))
    merge = merge_loras(model, [LoraSpec(lora, 1.0)], backup_device="cpu")
    with pytest.raises(QuantError, match="restore\\(\\) before quantising"):
        quantize_fp8_(model, lora_merge=merge)
    assert not is_fp8_quantized(model)  # nothing changed
    merged = _output(model)
    merge.restore()
    plain = _output(model)
    one_shot = merge_loras(model, [LoraSpec(lora, 1.0)], keep_originals=False)
    quantize_fp8_(model, lora_merge=one_shot)
    out = _output(model)
    assert _rel(out, merged) < _rel(plain, merged) / 2  # the LoRA survived the quantisation


def test_lora_after_quantisation_fails_loudly_instead_of_corrupting(tmp_path) -> None:
    """merge_loras refuses an fp8 model with a LoraError naming the fix, and no weight changes."""
    model = _fresh()
    lora = read_lora(write_peft(tmp_path / "l", _matrices(model, 4, 1), alpha=8))
    quantize_fp8_(model)
    weight = model.transformer_blocks[0].attn.to_q.weight.clone()
    with pytest.raises(LoraError, match="fp8"):
        merge_loras(model, [LoraSpec(lora, 1.0)])
    assert torch.equal(model.transformer_blocks[0].attn.to_q.weight.view(torch.uint8), weight.view(torch.uint8))


def test_compute_device_and_min_numel() -> None:
    model = _fresh()
    report = quantize_fp8_(model, compute_device="cpu", min_numel=10**9)
    assert report.layers == [] and report.saved_bytes == 0

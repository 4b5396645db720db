"""LoRA loading, matching, scaling, merging and removal on the tiny checkpoint, with tiny LoRAs built here in
the official PEFT layout and ComfyUI's layouts (``diffusion_model.*.lora_up/down`` + ``.alpha``, kohya
``lora_unet_*``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from acestep_core import load_checkpoint
from acestep_core.lora.merge import LoraError, LoraSpec, merge_loras, parse_lora_arg, read_lora, unit_scale
from tests.parity import TINY_CHECKPOINT, require_parity

TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "cross_attn.to_q", "cross_attn.to_out.0",
           "self_attn.linear_q", "speaker_embedder")


@pytest.fixture(scope="module")
def transformer():
    require_parity()
    return load_checkpoint(TINY_CHECKPOINT, components=["transformer"]).transformer


def _targets(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    return {name: tuple(mod.weight.shape) for name, mod in model.named_modules()
            if name.endswith(TARGETS) and getattr(mod, "weight", None) is not None}


def _matrices(model: torch.nn.Module, rank: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module -> (down [r, in], up [out, r]), random, big enough to move outputs."""
    gen = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(rank, n_in, generator=gen) / math.sqrt(n_in),
                   0.25 * torch.randn(n_out, rank, generator=gen) / math.sqrt(rank))
            for name, (n_out, n_in) in _targets(model).items()}


def write_peft(folder: Path, mats, *, alpha: float | None = None, rslora: bool = False, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, (down, up) in mats.items():
        tensors[f"{prefix}{name}.lora_A.weight"] = down
        tensors[f"{prefix}{name}.lora_B.weight"] = up
    save_file(tensors, str(folder / "pytorch_lora_weights.safetensors"), metadata={"format": "pt"})
    if alpha is not None:
        rank = next(iter(mats.values()))[0].shape[0]
        config = {"r": rank, "lora_alpha": alpha, "use_rslora": rslora, "peft_type": "LORA",
                  "target_modules": ["speaker_embedder", "linear_q", "to_q", "to_k", "to_v", "to_out.0"]}
        (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def write_comfy(path: Path, mats, *, alpha: float | None = None, kohya: bool = False) -> Path:
    tensors = {}
    for name, (down, up) in mats.items():
        key = "lora_unet_" + name.replace(".", "_") if kohya else f"diffusion_model.{name}"
        tensors[f"{key}.lora_down.weight"] = down
        tensors[f"{key}.lora_up.weight"] = up
        if alpha is not None:
            tensors[f"{key}.alpha"] = torch.tensor(float(alpha))
    save_file(tensors, str(path))
    return path


def _output(model: torch.nn.Module) -> torch.Tensor:
    """Transformer forward (conditioning + denoiser) on fixed inputs, speaker embedding non-zero."""
    gen = torch.Generator().manual_seed(0)
    cfg = model.cfg
    x = torch.randn(1, 8, 16, 12, generator=gen)
    text = torch.randn(1, 5, cfg.text_embedding_dim, generator=gen)
    speaker = torch.randn(1, cfg.speaker_embedding_dim, generator=gen)
    lyrics = torch.randint(1, 100, (1, 7), generator=gen)
    with torch.no_grad():
        return model(x, torch.ones(1, 12), text, torch.ones(1, 5), speaker, lyrics,
                     torch.ones(1, 7, dtype=torch.long), torch.tensor([500.0]))


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_strength_zero_is_bit_identical(transformer, tmp_path) -> None:
    lora = read_lora(write_peft(tmp_path / "l", _matrices(transformer, 4, 1), alpha=8))
    before = _output(transformer)
    merge = merge_loras(transformer, [LoraSpec(lora, 0.0)])
    assert merge.originals == {}
    assert torch.equal(_output(transformer), before)
    merge.restore()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_apply_then_remove_restores_exactly(tmp_path, dtype) -> None:
    require_parity()
    model = load_checkpoint(TINY_CHECKPOINT, components=["transformer"], dtype=dtype).transformer
    lora = read_lora(write_peft(tmp_path / "l", _matrices(model, 4, 2), alpha=8))
    before = _state(model)
    for _ in range(3):
        merge = merge_loras(model, [LoraSpec(lora, 0.7), LoraSpec(lora, -0.3)], backup_device="cpu")
        assert merge.backup_bytes == sum(before[k].numel() * before[k].element_size() for k in merge.originals)
        assert not torch.equal(model.state_dict()["transformer_blocks.0.attn.to_q.weight"],
                               before["transformer_blocks.0.attn.to_q.weight"])
        merge.restore()
        after = model.state_dict()
        assert all(torch.equal(after[k], v) for k, v in before.items())


def test_two_stacked_loras_equal_their_sum(transformer, tmp_path) -> None:
    m1, m2 = _matrices(transformer, 4, 3), _matrices(transformer, 2, 4)
    l1 = read_lora(write_peft(tmp_path / "a", m1, alpha=8))  # scale 2 per unit strength
    l2 = read_lora(write_comfy(tmp_path / "b.safetensors", m2))  # no alpha: scale 1
    s1, s2 = 0.6, -1.3
    # one rank-6 LoRA holding both, the scales folded into up: its delta is the sum of the two deltas
    summed = {name: (torch.cat([m1[name][0], m2[name][0]]),
                     torch.cat([2.0 * s1 * m1[name][1], s2 * m2[name][1]], dim=1)) for name in m1}
    l_sum = read_lora(write_comfy(tmp_path / "sum.safetensors", summed))
    merge = merge_loras(transformer, [LoraSpec(l1, s1), LoraSpec(l2, s2)])
    stacked_w, stacked_out = _state(transformer), _output(transformer)
    merge.restore()
    merge = merge_loras(transformer, [LoraSpec(l_sum, 1.0)])
    sum_w, sum_out = _state(transformer), _output(transformer)
    merge.restore()
    for key in stacked_w:
        torch.testing.assert_close(stacked_w[key], sum_w[key], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(stacked_out, sum_out, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(stacked_out, _output(transformer), atol=1e-3)


@pytest.mark.parametrize("layout", ["comfyui", "kohya", "peft_prefixed", "diffusers_prefixed", "bare_file"])
def test_layouts_give_the_same_output(transformer, tmp_path, layout) -> None:
    mats = _matrices(transformer, 4, 5)
    reference = read_lora(write_peft(tmp_path / "peft", mats, alpha=8))
    if layout in ("comfyui", "kohya"):
        other = read_lora(write_comfy(tmp_path / "c.safetensors", mats, alpha=8, kohya=layout == "kohya"))
        assert other.layout == "comfyui"
    elif layout == "bare_file":
        other = read_lora(write_peft(tmp_path / "bare", mats) / "pytorch_lora_weights.safetensors")
        assert other.config_alpha is None
        other = LoraSpec(other, 2.0).lora  # no config: strength 2.0 = alpha/r of the reference
    else:
        prefix = "base_model.model." if layout == "peft_prefixed" else "transformer."
        other = read_lora(write_peft(tmp_path / "p", mats, alpha=8, prefix=prefix))
    strength = 2.0 if layout == "bare_file" else 1.0
    outputs = []
    for spec in (LoraSpec(reference, 1.0), LoraSpec(other, strength)):
        merge = merge_loras(transformer, [spec])
        outputs.append((_output(transformer), _state(transformer)))
        merge.restore()
    assert torch.equal(outputs[0][0], outputs[1][0])
    assert all(torch.equal(outputs[0][1][k], outputs[1][1][k]) for k in outputs[0][1])


def test_scale_rule(transformer, tmp_path) -> None:
    """alpha / r; alpha / sqrt(r) with rsLoRA; 1.0 without alpha; ComfyUI .alpha = alpha / r; original_app = 1."""
    cases = [
        (write_peft(tmp_path / "a", _matrices(transformer, 4, 6), alpha=8), 2.0),
        (write_peft(tmp_path / "b", _matrices(transformer, 16, 6), alpha=8), 0.5),
        (write_peft(tmp_path / "c", _matrices(transformer, 16, 6), alpha=8, rslora=True), 2.0),
        (write_peft(tmp_path / "d", _matrices(transformer, 4, 6)), 1.0),
        (write_comfy(tmp_path / "e.safetensors", _matrices(transformer, 4, 6), alpha=2), 0.5),
        (write_comfy(tmp_path / "f.safetensors", _matrices(transformer, 4, 6)), 1.0),
    ]
    key = "transformer_blocks.3.cross_attn.to_v"
    base = transformer.state_dict()[key + ".weight"].clone()
    for path, expected in cases:
        lora = read_lora(path)
        module = lora.modules.get(key) or lora.modules[key]
        assert unit_scale(lora, module) == pytest.approx(expected), path
        assert unit_scale(lora, module, "original_app") == 1.0
        for rule, scale in (("trained", expected), ("original_app", 1.0)):
            merge = merge_loras(transformer, [LoraSpec(lora, 0.75, rule)])
            got = transformer.state_dict()[key + ".weight"] - base
            merge.restore()
            torch.testing.assert_close(got, 0.75 * scale * module.up @ module.down, atol=1e-6, rtol=1e-5)


def test_missing_and_extra_keys_are_listed(transformer, tmp_path) -> None:
    mats = _matrices(transformer, 4, 7)
    write_peft(tmp_path / "l", mats, alpha=8)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "l" / "pytorch_lora_weights.safetensors"))
    del tensors["transformer_blocks.2.attn.to_k.lora_B.weight"]  # half a pair
    del tensors["transformer_blocks.5.attn.to_v.lora_A.weight"], tensors["transformer_blocks.5.attn.to_v.lora_B.weight"]
    tensors["transformer_blocks.99.attn.to_q.lora_A.weight"] = torch.zeros(4, 32)
    tensors["transformer_blocks.99.attn.to_q.lora_B.weight"] = torch.zeros(32, 4)
    tensors["some_other.thing"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "l" / "pytorch_lora_weights.safetensors"))
    with pytest.raises(LoraError) as info:
        merge_loras(transformer, [LoraSpec(read_lora(tmp_path / "l"), 1.0)])
    message = str(info.value)
    for part in ("Missing 2 key(s)", "transformer_blocks.2.attn.to_k (up/lora_B missing)",
                 "transformer_blocks.5.attn.to_v", "Extra 2 key(s)", "transformer_blocks.99.attn.to_q",
                 "some_other.thing"):
        assert part in message, (part, message)


def test_wrong_shapes_are_listed(transformer, tmp_path) -> None:
    mats = _matrices(transformer, 4, 8)
    mats["speaker_embedder"] = (torch.zeros(4, 256), torch.zeros(32, 4))
    with pytest.raises(LoraError, match=r"Wrong shape for 1 module\(s\): speaker_embedder"):
        merge_loras(transformer, [LoraSpec(read_lora(write_peft(tmp_path / "l", mats)), 1.0)])


@pytest.mark.parametrize(("keys", "named"), [
    (["lora_unet_down_blocks_0_attentions_0_proj_in", "lora_unet_mid_block_attentions_0_proj_out"], "SDXL"),
    (["lora_unet_input_blocks_4_1_proj_in"], "SDXL"),
    (["diffusion_model.double_blocks.0.img_attn.qkv"], "Flux"),
    (["base_model.model.decoder.layers.0.self_attn.q_proj", "decoder.layers.0.mlp.gate_proj"], "ACE-Step 1.5"),
])
def test_lora_for_another_model_is_refused(transformer, tmp_path, keys, named) -> None:
    tensors = {}
    for key in keys:
        tensors[f"{key}.lora_down.weight"] = torch.zeros(4, 64)
        tensors[f"{key}.lora_up.weight"] = torch.zeros(64, 4)
    save_file(tensors, str(tmp_path / "x.safetensors"))
    with pytest.raises(LoraError, match=f"not an ACE-Step v1 LoRA: it looks like .*{named}"):
        merge_loras(transformer, [LoraSpec(read_lora(tmp_path / "x.safetensors"), 1.0)])
    assert all(not p.is_meta for p in transformer.parameters())


def test_unused_upstream_modules_are_ignored(transformer, tmp_path) -> None:
    mats = _matrices(transformer, 4, 9)
    mats["transformer_blocks.0.cross_attn.add_q_proj"] = (torch.ones(4, 32), torch.ones(32, 4))
    merge = merge_loras(transformer, [LoraSpec(read_lora(write_peft(tmp_path / "l", mats)), 1.0)])
    assert "transformer_blocks.0.cross_attn.add_q_proj.weight" not in merge.originals
    merge.restore()


def test_not_a_lora_and_missing_files(tmp_path) -> None:
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(LoraError, match="no LoRA tensors"):
        read_lora(tmp_path / "w.safetensors")
    with pytest.raises(OSError, match="LoRA not found"):
        read_lora(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="not a LoRA folder"):
        read_lora(tmp_path / "empty")


def test_parse_lora_arg() -> None:
    assert parse_lora_arg("a/b.safetensors") == (Path("a/b.safetensors"), 1.0)
    assert parse_lora_arg("a/b:0.5") == (Path("a/b"), 0.5)
    assert parse_lora_arg("C:\\x\\l.safetensors") == (Path("C:\\x\\l.safetensors"), 1.0)
    assert parse_lora_arg("C:\\x\\l.safetensors:-1") == (Path("C:\\x\\l.safetensors"), -1.0)


def test_merge_into_fp8_model_is_refused(tmp_path) -> None:
    """fp8 weights cannot take a merged delta: the error says what to do instead, and nothing changes."""
    from acestep_core.runtime import quant

    if not quant.fp8_supported():
        pytest.skip("torch without float8")
    require_parity()
    model = load_checkpoint(TINY_CHECKPOINT, components=["transformer"]).transformer
    lora = read_lora(write_peft(tmp_path / "l", _matrices(model, 4, 5), alpha=8))
    quant.quantize_fp8_(model, min_numel=0)
    before = _state(model)
    with pytest.raises(LoraError, match="fp8-quantised") as info:
        merge_loras(model, [LoraSpec(lora, 1.0)])
    message = " ".join(str(info.value).split())
    assert "before quantising" in message and "without fp8" in message
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())

"""Music-DCAE: checkpoint layout, golden parity of the raw encoder/decoder, meta construction, input checks."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from acestep_core.config import DCAEConfig
from acestep_core.dcae import MusicDCAE
from acestep_core.dcae.blocks import relu_linear_attention, relu_quadratic_attention
from acestep_core.errors import AceStepInputError
from tests.parity import TINY_CHECKPOINT, assert_golden, load_golden, require_parity

DCAE_DIR = TINY_CHECKPOINT / "music_dcae_f8c8"
DCAE_WEIGHTS = DCAE_DIR / "diffusion_pytorch_model.safetensors"
LATENT_SHIFT, LATENT_SCALE = -1.9091, 0.1786  # upstream music_dcae_pipeline.py


def _tiny_cfg() -> DCAEConfig:
    return DCAEConfig.from_json(DCAE_DIR / "config.json")


@pytest.fixture(scope="module")
def dcae() -> MusicDCAE:
    require_parity()
    model = MusicDCAE(_tiny_cfg()).eval()
    model.load_state_dict(load_file(str(DCAE_WEIGHTS)), strict=True)
    return model


def test_tiny_config_file_equals_tiny_classmethod() -> None:
    require_parity()
    assert _tiny_cfg() == DCAEConfig.tiny()


def test_state_dict_equals_checkpoint_file() -> None:
    require_parity()
    with safe_open(str(DCAE_WEIGHTS), framework="pt") as fh:
        expected = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    with torch.device("meta"):
        model = MusicDCAE(_tiny_cfg())
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert actual == expected
    assert not list(model.buffers()), "the DCAE has no buffers"


def test_full_size_builds_on_meta_with_released_layout() -> None:
    with torch.device("meta"):
        model = MusicDCAE(DCAEConfig())
    sd = model.state_dict()
    assert len(sd) == 192 and all(t.is_meta for t in sd.values())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(model), count(model.encoder), count(model.decoder)) == (156_812_426, 77_668_232, 79_144_194)
    assert sd["encoder.down_blocks.3.0.attn.to_qkv_multiscale.0.proj_out.weight"].shape == (3072, 32, 1, 1)
    assert sd["decoder.up_blocks.0.0.conv.weight"].shape == (128, 256, 3, 3)


def test_meta_build_and_assign_load_matches_regular_build(dcae: MusicDCAE) -> None:
    with torch.device("meta"):
        model = MusicDCAE(_tiny_cfg())
    model.load_state_dict(load_file(str(DCAE_WEIGHTS)), strict=True, assign=True)
    z = torch.randn(1, 8, 16, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval().decode(z), dcae.decode(z), rtol=0, atol=0)


@pytest.mark.parametrize("golden_file", ["dcae_encode_sr44100", "dcae_encode_sr48000"])
def test_encoder_matches_golden(dcae: MusicDCAE, golden_file: str) -> None:
    golden = load_golden(f"modules/{golden_file}.safetensors")
    with torch.no_grad():
        out = dcae.encode(golden["mid.dcae_encoder_in"])
    assert_golden(out, golden["mid.dcae_encoder_out"], "module_outputs", f"{golden_file}:mid.dcae_encoder_out")


def test_decoder_matches_golden(dcae: MusicDCAE) -> None:
    golden = load_golden("modules/dcae_decode.safetensors")
    latents = golden["in.latents"]
    for b in range(latents.shape[0]):
        z = latents[b:b + 1] / LATENT_SCALE + LATENT_SHIFT
        with torch.no_grad():
            out = dcae.decode(z)
        key = f"mid.dcae_decoder_out.{b}"
        assert_golden(out, golden[key], "module_outputs", f"dcae_decode:{key}")


def test_decoder_batch_of_two_equals_two_batches_of_one(dcae: MusicDCAE) -> None:
    z = torch.randn(2, 8, 16, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        both = dcae.decode(z)
        single = torch.cat([dcae.decode(z[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(both, single, rtol=1e-4, atol=1e-5)


def test_linear_and_quadratic_attention_are_the_same_function() -> None:
    """diffusers switches to the O(N²) form when H·W <= head_dim (T <= 2 on the full model); both compute
    ``v kᵀ q / (1ᵀ kᵀ q)``, so they must agree."""
    gen = torch.Generator().manual_seed(2)
    q, k, v = (torch.rand(2, 3, 8, 6, generator=gen) for _ in range(3))
    torch.testing.assert_close(relu_linear_attention(q, k, v, 1e-15), relu_quadratic_attention(q, k, v, 1e-15))


def test_encode_rejects_mel_not_divisible_by_8(dcae: MusicDCAE) -> None:
    with pytest.raises(AceStepInputError, match=r"multiples of\s+8"):
        dcae.encode(torch.zeros(1, 2, 128, 12))


def test_decode_rejects_missing_batch_dim_and_wrong_channels(dcae: MusicDCAE) -> None:
    with pytest.raises(AceStepInputError, match="batch dimension"):
        dcae.decode(torch.zeros(8, 16, 4))
    with pytest.raises(AceStepInputError, match=r"\[B, 8, H, T\].*\[1, 4, 16, 4\]"):
        dcae.decode(torch.zeros(1, 4, 16, 4))

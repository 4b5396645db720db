"""Vocoder (ADaMoSHiFiGANV1) and its log-mel front-end: checkpoint layout incl. weight-norm pairs and buffers,
golden parity, meta construction, input checks."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from acestep_core.config import VocoderConfig
from acestep_core.errors import AceStepInputError
from acestep_core.vocoder.blocks import WeightNormConv1d, WeightNormConvTranspose1d
from acestep_core.vocoder.model import Vocoder
from tests.parity import TINY_CHECKPOINT, assert_golden, load_golden, require_parity

VOCODER_DIR = TINY_CHECKPOINT / "music_vocoder"
VOCODER_WEIGHTS = VOCODER_DIR / "diffusion_pytorch_model.safetensors"
BUFFER_KEYS = {"mel_transform.spectrogram.window", "mel_transform.mel_scale.fb"}


def _tiny_cfg() -> VocoderConfig:
    return VocoderConfig.from_json(VOCODER_DIR / "config.json")


@pytest.fixture(scope="module")
def vocoder() -> Vocoder:
    require_parity()
    model = Vocoder(_tiny_cfg()).eval()
    model.load_state_dict(load_file(str(VOCODER_WEIGHTS)), strict=True)
    return model


def test_tiny_config_file_equals_tiny_classmethod() -> None:
    require_parity()
    assert _tiny_cfg() == VocoderConfig.tiny()


def test_state_dict_equals_checkpoint_file() -> None:
    require_parity()
    with safe_open(str(VOCODER_WEIGHTS), framework="pt") as fh:
        expected = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    with torch.device("meta"):
        model = Vocoder(_tiny_cfg())
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == expected
    assert {name for name, _ in model.named_buffers()} == BUFFER_KEYS  # both persistent, nothing else
    assert "head.conv_pre.weight_g" in expected and "head.conv_pre.weight" not in expected


def test_full_size_builds_on_meta_with_released_layout() -> None:
    with torch.device("meta"):
        model = Vocoder(VocoderConfig())
    sd = model.state_dict()
    assert len(sd) == 713 and all(t.is_meta for t in sd.values())
    assert sum(p.numel() for p in model.parameters()) == 103_005_138
    assert sum(b.numel() for b in model.buffers()) == 133_248
    assert sd["head.ups.0.weight_g"].shape == (1024, 1, 1)  # transposed conv: norm per *input* channel
    assert sd["head.resblocks.27.convs2.2.weight_v"].shape == (8, 8, 13)


def test_constructed_buffers_equal_checkpoint_buffers() -> None:
    """Window and slaney filterbank are computed at construction with the upstream formulas (bit-exact)."""
    require_parity()
    stored = load_file(str(VOCODER_WEIGHTS))
    built = Vocoder(_tiny_cfg()).state_dict()
    for key in BUFFER_KEYS:
        torch.testing.assert_close(built[key], stored[key], rtol=0, atol=0)


def test_meta_build_and_assign_load_matches_regular_build(vocoder: Vocoder) -> None:
    with torch.device("meta"):
        model = Vocoder(_tiny_cfg())
    model.load_state_dict(load_file(str(VOCODER_WEIGHTS)), strict=True, assign=True)
    mel = torch.randn(1, 128, 6, generator=torch.Generator().manual_seed(0)) - 5.0
    with torch.no_grad():
        torch.testing.assert_close(model.eval().decode(mel), vocoder.decode(mel), rtol=0, atol=0)


def test_mel_transform_matches_golden(vocoder: Vocoder) -> None:
    golden = load_golden("modules/vocoder_mel_transform.safetensors")
    with torch.no_grad():
        out = vocoder.mel_transform(golden["in.audio_mono"])
    assert_golden(out, golden["out.log_mel"], "module_outputs", "vocoder_mel_transform:out.log_mel")


def test_decode_matches_golden_waveforms(vocoder: Vocoder) -> None:
    """``dcae_decode``: the vocoder input mel of item b, channel c gives row c of ``out.wav_44100.{b}``."""
    golden = load_golden("modules/dcae_decode.safetensors")
    for b in range(2):
        for c in range(2):
            with torch.no_grad():
                wav = vocoder.decode(golden[f"mid.vocoder_in_mel.{b}.ch{c}"])  # [1, 1, 32768]
            assert wav.shape == (1, 1, 512 * 64)
            assert_golden(wav[0, 0], golden[f"out.wav_44100.{b}"][c], "module_waveforms",
                          f"dcae_decode:out.wav_44100.{b}[ch{c}]")


@pytest.mark.parametrize("transposed", [False, True])
def test_weight_norm_conv_equals_torch_weight_norm(transposed: bool) -> None:
    """Our g·v/‖v‖ computed in forward equals ``torch.nn.utils.parametrizations.weight_norm`` (dim 0)."""
    gen = torch.Generator().manual_seed(3)
    if transposed:
        ours: nn.Module = WeightNormConvTranspose1d(6, 4, 8, 4, 2)
        ref: nn.Module = nn.ConvTranspose1d(6, 4, 8, 4, padding=2)
    else:
        ours, ref = WeightNormConv1d(6, 4, 5, dilation=3, padding=6), nn.Conv1d(6, 4, 5, dilation=3, padding=6)
    with torch.no_grad():
        for p in (ours.weight_v, ours.weight_g, ours.bias):
            p.copy_(torch.randn(p.shape, generator=gen))
        ref.weight.copy_(ours.weight_v)
        ref.bias.copy_(ours.bias)
    ref = nn.utils.parametrizations.weight_norm(ref, dim=0)
    with torch.no_grad():
        ref.parametrizations.weight.original0.copy_(ours.weight_g)
        x = torch.randn(2, 6, 9, generator=gen)
        torch.testing.assert_close(ours(x), ref(x))


def test_decode_rejects_stereo_or_unbatched_mel(vocoder: Vocoder) -> None:
    with pytest.raises(AceStepInputError, match=r"\[B, 128, F\].*\[128, 10\]"):
        vocoder.decode(torch.zeros(128, 10))
    with pytest.raises(AceStepInputError, match="each stereo channel separately"):
        vocoder.decode(torch.zeros(1, 2, 128, 10))


def test_mel_transform_rejects_multichannel_and_too_short_audio(vocoder: Vocoder) -> None:
    with pytest.raises(AceStepInputError, match="one channel at a time"):
        vocoder.mel_transform(torch.zeros(1, 2, 4096))
    with pytest.raises(AceStepInputError, match=r"N >= 769"):
        vocoder.mel_transform(torch.zeros(1, 500))

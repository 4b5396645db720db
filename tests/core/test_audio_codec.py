"""Waveform <-> latent codec: golden parity step by step, properties (batching, mono, padding, overlapped
decode, meta, bf16), resampler, and bad-input messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from acestep_core.audio.codec import AudioCodec, latent_frames_for_duration, latent_frames_for_samples
from acestep_core.audio.mel import resampled_length, sinc_resample
from acestep_core.config import DCAEConfig, VocoderConfig
from acestep_core.dcae import MusicDCAE
from acestep_core.errors import AceStepInputError
from acestep_core.vocoder.model import Vocoder
from tests.parity import TINY_CHECKPOINT, assert_golden, load_golden, require_parity

ENCODE_GOLDENS = {"dcae_encode_sr44100": 44100, "dcae_encode_sr48000": 48000}
RECEPTIVE_FIELD_FRAMES = 64  # tiny vocoder: ±53 mel frames (backbone 18 + head ~35), rounded up


def _category(key: str) -> str:
    return "module_waveforms" if "wav" in key else "module_outputs"


def _build(dtype: torch.dtype | None = None, device: str | None = None) -> AudioCodec:
    with torch.device(device or "cpu"):
        dcae = MusicDCAE(DCAEConfig.from_json(TINY_CHECKPOINT / "music_dcae_f8c8/config.json"), dtype=dtype)
        vocoder = Vocoder(VocoderConfig.from_json(TINY_CHECKPOINT / "music_vocoder/config.json"), dtype=dtype)
    return AudioCodec(dcae, vocoder).eval()


@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Module-scoped fixtures run before conftest's per-test 1-thread fixture; pin the thread count here too so
    their float32 reductions round like the tests' (and the goldens')."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _state_dict() -> dict[str, torch.Tensor]:
    dcae = load_file(str(TINY_CHECKPOINT / "music_dcae_f8c8/diffusion_pytorch_model.safetensors"))
    vocoder = load_file(str(TINY_CHECKPOINT / "music_vocoder/diffusion_pytorch_model.safetensors"))
    return {**{f"dcae.{k}": v for k, v in dcae.items()}, **{f"vocoder.{k}": v for k, v in vocoder.items()}}


@pytest.fixture(scope="module")
def codec() -> AudioCodec:
    require_parity()
    model = _build()
    model.load_state_dict(_state_dict(), strict=True)
    return model


def _signal(channels: int, num_samples: int, seed: int) -> torch.Tensor:
    t = torch.arange(num_samples) / 44100.0
    gen = torch.Generator().manual_seed(seed)
    tones = torch.stack([0.3 * torch.sin(2 * torch.pi * (220.0 + 110.0 * c) * t) for c in range(channels)])
    return tones + 0.02 * torch.randn(channels, num_samples, generator=gen)


# ------------------------------------------------------------------------------------------------ goldens
@pytest.mark.parametrize("golden_file", sorted(ENCODE_GOLDENS))
def test_encode_matches_golden_step_by_step(codec: AudioCodec, golden_file: str) -> None:
    golden, sample_rate = load_golden(f"modules/{golden_file}.safetensors"), ENCODE_GOLDENS[golden_file]
    with torch.no_grad():
        steps = {"mid.audio_resampled_padded": codec.prepare_waveform(golden["in.audio"], sample_rate)}
        steps["mid.log_mel"] = codec.waveform_to_mel(steps["mid.audio_resampled_padded"])
        steps["mid.dcae_encoder_in"] = codec.normalise_mel(steps["mid.log_mel"])
        steps["mid.dcae_encoder_out"] = codec.dcae.encode(steps["mid.dcae_encoder_in"])
        steps["out.latents"] = codec.encode(golden["in.audio"], sample_rate)
    for key, value in steps.items():
        assert_golden(value, golden[key], _category(key), f"{golden_file}:{key}")
    lengths = [latent_frames_for_samples(golden["in.audio"].shape[-1], sample_rate)]
    assert torch.equal(torch.tensor(lengths), golden["out.latent_lengths"])


def test_decode_matches_golden_step_by_step(codec: AudioCodec) -> None:
    golden = load_golden("modules/dcae_decode.safetensors")
    latents = golden["in.latents"]
    with torch.no_grad():
        mel = codec.latents_to_mel(latents)  # [2, 2, 128, 64]
        wav_44k = codec.decode(latents, sample_rate=44100)
        wav_48k = codec.decode(latents)
        for b in range(latents.shape[0]):
            dec = codec.dcae.decode(codec.unscale_latents(latents[b:b + 1]))
            actual = {f"mid.dcae_decoder_out.{b}": dec, f"out.wav_44100.{b}": wav_44k[b],
                      f"out.wav_48000.{b}": wav_48k[b]}
            actual.update({f"mid.vocoder_in_mel.{b}.ch{c}": mel[b, c][None] for c in range(2)})
            for key, value in actual.items():
                assert_golden(value, golden[key], _category(key), f"dcae_decode:{key}")


# ------------------------------------------------------------------------------------- layout and helpers
def test_state_dict_is_dcae_plus_vocoder_and_builds_on_meta(codec: AudioCodec) -> None:
    assert [name for name, _ in codec.named_children()] == ["dcae", "vocoder"]
    expected = _state_dict()
    assert {k: v.shape for k, v in codec.state_dict().items()} == {k: v.shape for k, v in expected.items()}
    with torch.device("meta"):
        meta = _build()
    meta.load_state_dict(expected, strict=True, assign=True)
    latents = load_golden("modules/dcae_decode.safetensors")["in.latents"][:1]
    torch.testing.assert_close(meta.eval().decode(latents), codec.decode(latents), rtol=0, atol=0)


@pytest.mark.parametrize(("seconds", "frames"), [(2.0, 21), (3.5, 37), (10, 107), (30, 322), (60, 645), (240, 2583)])
def test_latent_frames_for_duration(codec: AudioCodec, seconds: float, frames: int) -> None:
    assert latent_frames_for_duration(seconds) == frames == codec.latent_frames_for_duration(seconds)


def test_auto_overlap_threshold_is_48_seconds(codec: AudioCodec) -> None:
    assert latent_frames_for_duration(48.0) == 516
    assert not codec.auto_overlapped(516) and codec.auto_overlapped(517)


@pytest.mark.parametrize(("orig", "new"), [(48000, 44100), (44100, 48000), (22050, 44100), (96000, 44100)])
def test_sinc_resample_equals_torchaudio_resample(orig: int, new: int) -> None:
    torchaudio = pytest.importorskip("torchaudio")
    x = torch.randn(2, 3, 20011, generator=torch.Generator().manual_seed(4))
    expected = torchaudio.transforms.Resample(orig, new)(x)
    torch.testing.assert_close(sinc_resample(x, orig, new), expected, rtol=0, atol=0)
    assert resampled_length(20011, orig, new) == expected.shape[-1]


def test_resampled_length_rounds_in_float32_like_torchaudio() -> None:
    """T = 2583 (240 s): 10,579,968 samples -> 11,515,611 at 48 kHz (exact ceil would be 11,515,612)."""
    assert resampled_length(10_579_968, 44100, 48000) == 11_515_611
    assert resampled_length(4096 * 8, 44100, 48000) == 35666


# ------------------------------------------------------------------------------------------ properties
def test_mono_equals_duplicated_stereo(codec: AudioCodec) -> None:
    mono = _signal(1, 9000, seed=5)
    torch.testing.assert_close(codec.encode(mono, 44100), codec.encode(mono.repeat(2, 1), 44100), rtol=0, atol=0)


@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_encode_pads_to_multiple_of_4096(codec: AudioCodec, sample_rate: int) -> None:
    audio = _signal(2, 5000, seed=6)
    prepared = codec.prepare_waveform(audio, sample_rate)
    length_44k = resampled_length(5000, sample_rate, 44100)
    assert prepared.shape == (1, 2, 8192) and torch.all(prepared[..., length_44k:] == 0)
    torch.testing.assert_close(prepared[0, :, :length_44k], sinc_resample(audio, sample_rate, 44100), rtol=0, atol=0)
    latents = codec.encode(audio, sample_rate)
    assert latents.shape == (1, 8, 16, 2)
    with torch.no_grad():
        manual = codec.mel_to_latents(codec.waveform_to_mel(F.pad(prepared[..., :length_44k], (0, 8192 - length_44k))))
    torch.testing.assert_close(latents, manual, rtol=0, atol=0)


def test_batch_of_two_equals_two_batches_of_one(codec: AudioCodec) -> None:
    audio = torch.stack([_signal(2, 12000, seed=7), _signal(2, 12000, seed=8)])
    latents = codec.encode(audio, 48000)
    single = torch.cat([codec.encode(audio[i], 48000) for i in range(2)])
    torch.testing.assert_close(latents, single, rtol=1e-4, atol=1e-5)
    wav = codec.decode(latents)
    wav_single = torch.cat([codec.decode(latents[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(wav, wav_single, rtol=1e-3, atol=1e-3)


def test_bf16_encode_and_decode_run_and_are_finite() -> None:
    require_parity()
    codec = _build(dtype=torch.bfloat16)
    codec.load_state_dict(_state_dict(), strict=True)  # copies (and rounds) the fp32 tensors into bf16
    latents = codec.encode(_signal(2, 6000, seed=9), 44100)
    assert latents.dtype == torch.bfloat16 and latents.shape == (1, 8, 16, 2) and torch.isfinite(latents).all()
    wav = codec.decode(load_golden("modules/dcae_decode.safetensors")["in.latents"][:1])
    assert wav.dtype == torch.float32 and wav.shape == (1, 2, 35666) and torch.isfinite(wav).all()
    assert wav.abs().max() > 0


# ------------------------------------------------------------------------------------ overlapped decode
def test_overlapped_decode_works_for_short_latents(codec: AudioCodec) -> None:
    """T = 8: one DCAE window (identical to the full decode) and one zero-padded vocoder block. Upstream pads
    the mel with zeros to 512 frames, so samples within the vocoder receptive field (~53 frames, here all
    64 frames) differ from the full decode; only shape, finiteness and the identical DCAE stage are checked."""
    latents = load_golden("modules/dcae_decode.safetensors")["in.latents"]
    with torch.no_grad():
        torch.testing.assert_close(codec.latents_to_mel_overlapped(latents), codec.latents_to_mel(latents),
                                   rtol=0, atol=0)
    wav = codec.decode(latents[:1], overlapped=True)
    assert wav.shape == codec.decode(latents[:1], overlapped=False).shape == (1, 2, 35666)
    assert torch.isfinite(wav).all()


def test_overlapped_dcae_windows_tile_the_latent(codec: AudioCodec) -> None:
    """T = 800: windows [0, 512), [256, 768), [512, 800) keep latent ranges [0, 384), [384, 640), [640, 800).

    Each kept part must equal the DCAE decoder run on exactly that window (bit-exact). Against the full
    decode it cannot be equal: the EfficientViT linear attention is global over its input, so every frame
    depends on the window. Measured with the tiny model: T = 800 (this test) max |Δ| 1.34 log-mel units (mel
    std ~4.5), relative L2 0.0052; T = 900, seeds 0-2: 1.20-1.47 and 0.0043-0.0047. Asserted loosely at 2.5 and
    0.01.
    """
    latents = torch.randn(1, 8, 16, 800, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        overlapped = codec.latents_to_mel_overlapped(latents)
        full = codec.latents_to_mel(latents)
        z = codec.unscale_latents(latents)
        windows = [(0, 512, 0, 384), (256, 768, 384, 640), (512, 800, 640, 800)]
        for start, end, keep_from, keep_to in windows:
            mel = codec.denormalise_mel(codec.dcae.decode(z[..., start:end]))
            expected = mel[..., 8 * (keep_from - start):8 * (keep_to - start)]
            torch.testing.assert_close(overlapped[..., 8 * keep_from:8 * keep_to], expected, rtol=0, atol=0)
    assert overlapped.shape == full.shape
    assert (overlapped - full).abs().max() < 2.5
    assert (overlapped - full).norm() / full.norm() < 0.01


@pytest.fixture(scope="module")
def decoded_130(codec: AudioCodec) -> dict[str, torch.Tensor]:
    """T = 130 -> F = 1040 mel frames -> vocoder blocks at frames 0, 508, 1016 (the last zero-padded)."""
    latents = torch.randn(1, 8, 16, 130, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), _one_cpu_thread():
        return {"latents": latents, "mel": codec.latents_to_mel(latents),
                "full": codec.decode(latents, sample_rate=44100, overlapped=False)[0],
                "overlapped": codec.decode(latents, sample_rate=44100, overlapped=True)[0]}


def test_overlapped_decode_equals_full_decode_away_from_seams(decoded_130: dict[str, torch.Tensor]) -> None:
    """Upstream overlaps vocoder blocks by only 1024 samples (2 mel frames) although the vocoder's receptive
    field is ~53 mel frames here (~90 on the released model), so samples near a block edge (frames 508, 512,
    1016, 1020) or the zero-padded end (1040) see different context than in the full decode.

    * Farther than 64 frames from every edge (79 % of the samples) the two decodes match within the waveform
      golden tolerance (atol = rtol = 1e-3); measured max |Δ| 6.5e-5 (float rounding that the random,
      saturating tiny vocoder amplifies, as in the goldens' own 1-vs-2-thread variation).
    * Near the edges the random-weight tiny vocoder is chaotic (tanh-saturated, |x| <= 1): measured max |Δ|
      1.99 and relative L2 0.250 over the whole waveform; asserted loosely at 0.3 (a trained vocoder is far
      smoother, but the seams are inherent to the reference algorithm).
    """
    full, overlapped = decoded_130["full"], decoded_130["overlapped"]
    assert full.shape == overlapped.shape == (2, 1040 * 512)
    seam_free = torch.ones(1040, dtype=torch.bool)
    for edge in (508, 512, 1016, 1020, 1040):
        seam_free[max(0, edge - RECEPTIVE_FIELD_FRAMES):edge + RECEPTIVE_FIELD_FRAMES] = False
    seam_free = seam_free.repeat_interleave(512)
    assert seam_free.float().mean() > 0.75
    torch.testing.assert_close(overlapped[:, seam_free], full[:, seam_free], rtol=1e-3, atol=1e-3)
    assert (overlapped - full).norm() / full.norm() < 0.3


def test_overlapped_vocoder_follows_reference_block_layout(codec: AudioCodec,
                                                           decoded_130: dict[str, torch.Tensor]) -> None:
    """Block k (mel frames [508k, 508k + 512), zero-padded) supplies output samples
    [260096k + 1024, 260096k + 261120) (to the end for the last block); the 128 samples before those are
    ``prev_tail · linspace(1, 0) + block[896:1024] · linspace(0, 1)``; block 0 supplies [0, 260992)."""
    mel, overlapped = decoded_130["mel"][0], decoded_130["overlapped"]
    with torch.no_grad():
        blocks = [codec.vocoder.decode(F.pad(mel[..., s:s + 512], (0, max(0, s + 512 - mel.shape[-1]))))[:, 0]
                  for s in (0, 508, 1016)]
    hop, total = 260_096, overlapped.shape[-1]
    torch.testing.assert_close(overlapped[:, :hop + 896], blocks[0][:, :hop + 896], rtol=0, atol=0)
    for k in (1, 2):
        start = k * hop
        end = total if k == 2 else start + 262_144 - 1024 - 128  # the next block cross-fades the last 128
        torch.testing.assert_close(overlapped[:, start + 1024:end], blocks[k][:, 1024:end - start], rtol=0, atol=0)
        fade = blocks[k - 1][:, 262_144 - 1024 - 128:262_144 - 1024] * torch.linspace(1, 0, 128) \
            + blocks[k][:, 896:1024] * torch.linspace(0, 1, 128)
        torch.testing.assert_close(overlapped[:, start + 896:start + 1024], fade, rtol=0, atol=0)


@pytest.mark.slow
def test_overlapped_decode_long_latent_end_to_end(codec: AudioCodec) -> None:
    """T = 640 (2 DCAE windows, 11 vocoder blocks) at 48 kHz through ``decode``; ~55 s on one CPU thread.

    Both stages differ (global DCAE attention per window, vocoder seams), see the tests above; checked: same
    length, finite, the auto mode picks the overlapped path (T > 516), and the whole-waveform relative L2
    difference (measured 0.235, max |Δ| 2.81 after the 48 kHz resampler's overshoot) is below 0.5.
    """
    latents = torch.randn(1, 8, 16, 640, generator=torch.Generator().manual_seed(1))
    auto = codec.decode(latents, overlapped=None)
    torch.testing.assert_close(auto, codec.decode(latents, overlapped=True), rtol=0, atol=0)
    full = codec.decode(latents, overlapped=False)
    assert auto.shape == full.shape == (1, 2, resampled_length(640 * 4096, 44100, 48000))
    assert torch.isfinite(auto).all() and (auto - full).norm() / full.norm() < 0.5


# ------------------------------------------------------------------------------------------- bad input
def test_rejects_audio_with_more_than_two_channels(codec: AudioCodec) -> None:
    with pytest.raises(AceStepInputError, match=r"3 channels.*mono or stereo.*Downmix"):
        codec.encode(torch.zeros(1, 3, 8000), 44100)
    with pytest.raises(AceStepInputError, match=r"transpose"):
        codec.encode(torch.zeros(8000, 2), 44100)


@pytest.mark.parametrize("sample_rate", [0, -44100])
def test_rejects_non_positive_sample_rate(codec: AudioCodec, sample_rate: int) -> None:
    with pytest.raises(AceStepInputError, match=rf"positive integer sample rate.*got {sample_rate}"):
        codec.encode(torch.zeros(2, 8000), sample_rate)
    latents = torch.zeros(1, 8, 16, 2)
    with pytest.raises(AceStepInputError, match="positive integer sample rate"):
        codec.decode(latents, sample_rate=sample_rate)


def test_rejects_malformed_latents(codec: AudioCodec) -> None:
    with pytest.raises(AceStepInputError, match=r"got 4 channels.*ACE-Step v1 latents have 8"):
        codec.decode(torch.zeros(1, 4, 16, 10))
    with pytest.raises(AceStepInputError, match=r"missing batch dimension.*latents\[None\]"):
        codec.decode(torch.zeros(8, 16, 10))


def test_rejects_integer_pcm(codec: AudioCodec) -> None:
    with pytest.raises(AceStepInputError, match=r"floating-point.*32768"):
        codec.encode(torch.zeros(2, 8000, dtype=torch.int16), 44100)

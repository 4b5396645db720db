"""The fused HiFi-GAN head (acestep_core.vocoder.fused_head, acestep_core.kernels.conv1d_nlc).

CPU: the channels-last orchestration (residual chains, running sum, mean, SiLU-only outputs, transposed convs)
with the reference convolution equals the plain module path. GPU: each Triton convolution matches its op
sequence to bf16 rounding, and the whole fused head is as close to an fp32 reference as the plain bf16 head.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from acestep_core.config import VocoderConfig
from acestep_core.kernels.conv1d_nlc import Epilogue, conv1d_nlc, conv1d_nlc_reference
from acestep_core.vocoder.fused_head import hifigan_forward_fused
from acestep_core.vocoder.model import Vocoder


def _vocoder(device: str = "cpu", seed: int = 0) -> Vocoder:
    """Tiny vocoder with weight_g = ||v|| (effective weight = v) so activations keep a usable scale."""
    torch.manual_seed(seed)
    vocoder = Vocoder(VocoderConfig.tiny()).eval()
    with torch.no_grad():
        for name, param in vocoder.named_parameters():
            if name.endswith("bias"):
                param.normal_(0.0, 0.05)
        for module in vocoder.modules():
            if hasattr(module, "weight_g"):
                module.weight_v.normal_(0.0, 1.0 / (module.weight_v[0].numel() ** 0.5))
                module.weight_g.copy_(torch.linalg.vector_norm(module.weight_v.flatten(1), dim=1).view(-1, 1, 1))
    return vocoder.to(device)


def test_orchestration_equals_module_path_on_cpu() -> None:
    vocoder = _vocoder()
    features = torch.randn(2, vocoder.cfg.num_mels, 9)
    with torch.no_grad():
        plain = vocoder.head(features)  # CPU: the module path
        fused = hifigan_forward_fused(vocoder.head, features)  # reference convs in the fused bookkeeping
    assert fused.shape == plain.shape == (2, 1, 9 * vocoder.cfg.hop_length)
    assert float(plain.std()) > 1e-3  # a live signal, not a saturated or dead one
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


def _explicit(x, weight, bias, dilation, residual, acc, scale, silu):
    """The op sequence of a vocoder layer written out on [B, C, L], as upstream runs it."""
    pad = dilation * (weight.shape[-1] - 1) // 2
    r = F.conv1d(x.transpose(1, 2), weight, None, padding=pad, dilation=dilation) + bias[:, None]
    if residual is not None:
        r = r + residual.transpose(1, 2)
    if acc is not None:
        r = acc.transpose(1, 2) + r
    r = r * scale if scale != 1.0 else r
    return (F.silu(r) if silu else r).transpose(1, 2)


def test_reference_is_the_op_sequence() -> None:
    gen = torch.Generator().manual_seed(3)
    x, res, acc = (torch.randn(2, 40, 12, generator=gen).to(torch.bfloat16) for _ in range(3))
    weight = (torch.randn(12, 12, 7, generator=gen) * 0.2).to(torch.bfloat16)
    bias = torch.randn(12, generator=gen).to(torch.bfloat16)
    plain, silu = conv1d_nlc_reference(x, weight, bias, 3, Epilogue(scale=0.25, write_silu=True), res, acc)
    torch.testing.assert_close(plain, _explicit(x, weight, bias, 3, res, acc, 0.25, False), rtol=0, atol=0)
    torch.testing.assert_close(silu, _explicit(x, weight, bias, 3, res, acc, 0.25, True), rtol=0, atol=0)
    with pytest.raises(ValueError, match="odd kernel"):
        conv1d_nlc(x, weight[..., :4], bias, 1, Epilogue())
    with pytest.raises(ValueError, match="write_plain or write_silu"):
        Epilogue(write_plain=False)


CASES = [  # (C_in, C_out, taps, dilation, epilogue, residual, acc)
    (512, 1024, 13, 1, Epilogue(write_plain=False, write_silu=True), False, False),  # conv_pre
    (256, 256, 11, 5, Epilogue(write_plain=True, write_silu=True), True, False),
    (64, 64, 7, 3, Epilogue(), True, True),
    (32, 32, 13, 5, Epilogue(scale=0.25, write_plain=False, write_silu=True), True, True),
    (8, 8, 3, 1, Epilogue(write_plain=False, write_silu=True), False, False),
    (8, 1, 13, 1, Epilogue(tanh=True), False, False),  # conv_post
]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("c_in", "c_out", "taps", "dilation", "epilogue", "res", "acc"), CASES)
def test_triton_conv_matches_reference(c_in, c_out, taps, dilation, epilogue, res, acc) -> None:
    gen = torch.Generator(device="cuda").manual_seed(c_in + taps)
    dtype = torch.bfloat16
    x = torch.randn(2, 3001, c_in, device="cuda", generator=gen).to(dtype)
    weight = (torch.randn(c_out, c_in, taps, device="cuda", generator=gen) / (c_in * taps) ** 0.5).to(dtype)
    bias = (torch.randn(c_out, device="cuda", generator=gen) * 0.1).to(dtype)
    residual = torch.randn(2, 3001, c_out, device="cuda", generator=gen).to(dtype) if res else None
    running = torch.randn(2, 3001, c_out, device="cuda", generator=gen).to(dtype) if acc else None
    ref = conv1d_nlc_reference(x, weight, bias, dilation, epilogue, residual, running)
    out = conv1d_nlc(x, weight, bias, dilation, epilogue, residual, None if running is None else running.clone())
    eps = torch.finfo(dtype).eps
    for got, want in zip(out, ref, strict=True):
        assert (got is None) == (want is None)
        if want is None:
            continue
        error = ((got.float() - want.float()).abs() / want.float().abs().clamp_min(1.0)).max()
        mismatch = float((got != want).float().mean())
        # only the summation order inside the conv differs: a one-ulp flip of the conv output, carried
        # through at most four more roundings (bias, residual, running sum, scale/SiLU)
        assert float(error) <= 4 * eps, (float(error), mismatch)
        assert mismatch < 0.1, mismatch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fused_head_is_as_accurate_as_the_plain_head(monkeypatch: pytest.MonkeyPatch) -> None:
    vocoder = _vocoder("cuda", seed=1)
    features = torch.randn(2, vocoder.cfg.num_mels, 40, device="cuda")
    with torch.no_grad():
        truth = vocoder.head(features)  # fp32 on CUDA: the plain path (Triton only for bf16/fp16)
        low = vocoder.to(torch.bfloat16)
        fused = low.head(features.to(torch.bfloat16)).float()
        monkeypatch.setenv("ACESTEP_NO_TRITON", "1")
        plain = low.head(features.to(torch.bfloat16)).float()
    fused_error = float((fused - truth).abs().mean())
    plain_error = float((plain - truth).abs().mean())
    assert float(truth.std()) > 1e-3
    assert fused_error <= 1.5 * plain_error + 1e-5, (fused_error, plain_error)



def test_a_triton_failure_falls_back_to_the_reference_for_the_process(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """conv1d_nlc's wiring: a failing launch returns the reference result and switches the kernel off."""
    import acestep_core.kernels.conv1d_nlc as module
    from acestep_core.kernels import dispatch

    launches = []

    def broken(*_args: object, **_kwargs: object) -> None:
        launches.append(1)
        raise RuntimeError("PassManager::run failed")  # what a Triton build error looks like

    monkeypatch.setattr(dispatch, "_FAILED", {})
    monkeypatch.setattr(module, "_launch", broken)
    # Stand in for a capable GPU: the policy itself (decide) is tested in tests/core/kernels/test_dispatch.py.
    monkeypatch.setattr(dispatch, "use_triton", lambda spec, x: dispatch._FAILED.get(spec.name) is None)
    x = torch.randn(1, 20, 8, dtype=torch.bfloat16)
    weight, bias = torch.randn(8, 8, 3, dtype=torch.bfloat16), torch.randn(8, dtype=torch.bfloat16)
    with caplog.at_level("WARNING"):
        out = module.conv1d_nlc(x, weight, bias, 1, Epilogue())
        again = module.conv1d_nlc(x, weight, bias, 1, Epilogue())
    expected = conv1d_nlc_reference(x, weight, bias, 1, Epilogue())
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(again[0], expected[0], rtol=0, atol=0)
    assert launches == [1], "the failed kernel must not be retried"
    assert "PassManager::run failed" in dispatch.failures()[dispatch.CONV1D_NLC.name]
    assert caplog.text.count("plain PyTorch path for the rest of this process") == 1


def test_cpu_and_fp32_take_the_plain_path() -> None:
    from acestep_core.kernels.conv1d_nlc import use_triton

    assert not use_triton(torch.zeros(1, 4, 8, dtype=torch.bfloat16))  # a CPU tensor never goes to Triton


def test_mis_shaped_residual_is_refused() -> None:
    x, weight, bias = torch.randn(1, 10, 4), torch.randn(6, 4, 3), torch.randn(6)
    with pytest.raises(ValueError, match=r"residual must be contiguous \[1, 10, 6\]"):
        conv1d_nlc(x, weight, bias, 1, Epilogue(), residual=torch.randn(1, 10, 4))

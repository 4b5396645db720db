"""Time the parts of ``AudioCodec.decode`` of the full-size ACE-Step v1 codec on a GPU (random weights).

Usage (CUDA machine, repo root)::

    python -m bench.profile_codec [--durations 60,240] [--iters 5] [--json OUT]

For every duration it times (median of ``--iters`` after one warm-up, CUDA events): the DCAE decoder
(``latents_to_mel``), the vocoder backbone, the vocoder head on the fused path (Triton, both channels as one
batch) and on the plain path (cuDNN, ``ACESTEP_NO_TRITON=1``, one channel at a time as before), the 44.1 ->
48 kHz resampler, and the whole ``decode`` both ways. It also reports the peak memory of each head and how far
the fused waveform is from the plain one, next to how far two plain runs with different batch sizes (so
different cuDNN algorithms) are from each other.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from acestep_core.config import MODEL_SPECS

from .bench_generate import _random_module
from .profile_decode import _time

LOG = logging.getLogger("bench.profile_codec")


def _time_ms(fn: Callable[[], Any], iters: int) -> float:
    """One warm-up call, then the median of ``iters`` timed calls (:func:`bench.profile_decode._time`), in ms."""
    fn()
    torch.cuda.synchronize()
    return round(_time(fn, iters), 2)


@contextlib.contextmanager
def plain_path() -> Iterator[None]:
    """``ACESTEP_NO_TRITON=1`` for the duration (the reference cuDNN path everywhere)."""
    previous = os.environ.get("ACESTEP_NO_TRITON")
    os.environ["ACESTEP_NO_TRITON"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["ACESTEP_NO_TRITON"]
        else:
            os.environ["ACESTEP_NO_TRITON"] = previous


def _peak_gib(fn: Callable[[], Any]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    return round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)


def build_codec(device: torch.device, dtype: torch.dtype) -> Any:
    from acestep_core.audio.codec import AudioCodec
    from acestep_core.dcae import MusicDCAE
    from acestep_core.vocoder.model import Vocoder

    spec = MODEL_SPECS["ace-step-v1-3.5b"]
    gen = torch.Generator(device=device).manual_seed(0)
    dcae = _random_module(lambda: MusicDCAE(spec.dcae, dtype=dtype), device, gen)
    vocoder = _random_module(lambda: Vocoder(spec.vocoder, dtype=dtype), device, gen)
    with torch.no_grad():  # weight_g = ||v||: effective weights = v, so the waveform keeps a usable scale
        for module in vocoder.modules():
            if hasattr(module, "weight_g"):
                norm = torch.linalg.vector_norm(module.weight_v.float().flatten(1), dim=1)
                module.weight_g.copy_(norm.view(-1, 1, 1))
    return AudioCodec(dcae, vocoder, spec.codec).to(device)


@torch.no_grad()
def profile_duration(codec: Any, duration_s: float, iters: int) -> dict[str, Any]:
    from acestep_core.audio.mel import sinc_resample

    device, dtype = next(codec.parameters()).device, next(codec.parameters()).dtype
    frames = codec.latent_frames_for_duration(duration_s)
    latents = torch.randn(1, 8, 16, frames, device=device, dtype=dtype)
    mel = codec.latents_to_mel(latents)[0]  # [2, 128, F]
    features = codec.vocoder.backbone(mel)
    head = codec.vocoder.head
    per_channel = lambda: torch.cat([head(features[c:c + 1]) for c in range(2)])  # noqa: E731
    row: dict[str, Any] = {"duration_s": duration_s, "latent_frames": frames}
    row["dcae_ms"] = _time_ms(lambda: codec.latents_to_mel(latents), iters)
    row["backbone_ms"] = _time_ms(lambda: codec.vocoder.backbone(mel), iters)
    row["head_fused_ms"] = _time_ms(lambda: head(features), iters)
    row["head_fused_peak_gib"] = _peak_gib(lambda: head(features))
    wav = torch.randn(1, 2, frames * codec.codec_cfg.samples_per_latent_frame, device=device)
    row["resample_ms"] = _time_ms(lambda: sinc_resample(wav, codec.codec_cfg.sample_rate, 48000), iters)
    row["decode_fused_ms"] = _time_ms(lambda: codec.decode(latents, sample_rate=48000), iters)
    fused = head(features).float()
    with plain_path():
        row["head_plain_ms"] = _time_ms(per_channel, iters)
        row["head_plain_peak_gib"] = _peak_gib(per_channel)
        row["decode_plain_ms"] = _time_ms(lambda: codec.decode(latents, sample_rate=48000), iters)
        plain, plain_batched = per_channel().float(), head(features).float()
    row["wave_abs_max"] = float(plain.abs().max())
    row["fused_vs_plain_max_abs"] = float((fused - plain).abs().max())
    row["plain_b2_vs_b1_max_abs"] = float((plain_batched - plain).abs().max())
    return row


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_codec", description=__doc__.splitlines()[0])
    p.add_argument("--durations", default="60,240", help="seconds, comma separated")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        raise SystemExit("bench.profile_codec needs a CUDA GPU")
    codec = build_codec(torch.device("cuda"), torch.bfloat16)
    rows = [profile_duration(codec, float(d), args.iters) for d in args.durations.split(",")]
    for row in rows:
        LOG.info("%s", " ".join(f"{k}={v}" for k, v in row.items()))
    if args.json:
        env = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": "bf16"}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"environment": env, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()

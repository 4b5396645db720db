"""Profile one transformer ``decode`` pass of the full-size ACE-Step v1 DiT on a GPU (random weights).

Usage (CUDA machine, repo root)::

    python -m bench.profile_decode [--frames 646,2583] [--batch 1,2] [--modes eager,graph,compile]
        [--kernels 20] [--json OUT]

For every (frames, batch) it times one ``decode`` pass (median of ``--iters`` after warm-up, CUDA events):
``eager`` (plain calls: host launch overhead included), ``graph`` (the same pass captured once in a CUDA graph
and replayed: GPU time only), ``compile`` (``torch.compile`` of the DiT block), ``compile+graph`` (both), all
through :class:`acestep_core.runtime.accel.Denoiser`. It prints the
top ``--kernels`` CUDA kernels of one eager pass (torch.profiler) and the analytic matmul FLOPs, so the gap to
the tensor-core roofline is visible. Condition length is 431 tokens (speaker + 30 prompt + 400 lyric tokens),
as in ``bench_generate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from acestep_core.config import MODEL_SPECS
from acestep_core.runtime.accel import Acceleration, Denoiser

from .bench_generate import _random_module, decode_pass_flops, gpu_peak_tflops

LOG = logging.getLogger("bench.profile")
COND_TOKENS = 431


def _inputs(transformer: Any, batch: int, frames: int, device: torch.device, dtype: torch.dtype,
            gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    dim = transformer.cfg.model_dim
    latents = torch.randn(batch, 8, 16, frames, generator=gen, device=device).to(dtype)
    mask = torch.ones(batch, frames, device=device)
    context = (torch.randn(batch, COND_TOKENS, dim, generator=gen, device=device) * 0.5).to(dtype)
    context_mask = torch.ones(batch, COND_TOKENS, device=device)
    timestep = torch.full((batch,), 500.0, device=device)
    return latents, mask, context, context_mask, timestep


def _time(fn: Callable[[], Any], iters: int) -> float:
    """Median milliseconds of ``fn`` over ``iters`` runs (CUDA events, one sync per run)."""
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _top_kernels(fn: Callable[[], Any], count: int) -> list[dict[str, Any]]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    rows = []
    for event in prof.key_averages():
        cuda_us = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0.0)
        if cuda_us > 0:
            rows.append({"name": event.key[:110], "calls": event.count, "ms": cuda_us / 1000.0})
    rows.sort(key=lambda r: -r["ms"])
    total = sum(r["ms"] for r in rows)
    LOG.info("one eager pass: %d kernel names, %.2f ms of kernel time, %d launches", len(rows), total,
             sum(r["calls"] for r in rows))
    return rows[:count]


def profile_case(transformer: Any, frames: int, batch: int, modes: Sequence[str], args: argparse.Namespace,
                 device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(frames * 10 + batch)
    inputs = _inputs(transformer, batch, frames, device, dtype, gen)

    def eager() -> torch.Tensor:
        return transformer.decode(*inputs[:4], inputs[4], query_scale=1.0)

    flops = decode_pass_flops(transformer.cfg, batch, frames, COND_TOKENS)
    peak = gpu_peak_tflops(device) or float("nan")
    result: dict[str, Any] = {"frames": frames, "batch": batch, "gflop": flops / 1e9,
                              "roofline_ms": flops / (peak * 1e12) * 1e3}
    reference = eager().float()
    for mode in modes:
        started = time.perf_counter()
        acceleration = Acceleration(cuda_graphs="graph" in mode, compile="compile" in mode)
        denoiser = Denoiser(transformer, acceleration)

        def fn(denoiser: Denoiser = denoiser) -> torch.Tensor:
            return denoiser(inputs[0], inputs[2], inputs[3], inputs[4], 1.0)

        for _ in range(2):
            out = fn()
        torch.cuda.synchronize()
        setup_s = time.perf_counter() - started
        ms = _time(fn, args.iters)
        err = ((out.float() - reference).norm() / reference.norm()).item()
        result[mode] = {"ms": ms, "setup_s": setup_s, "rel_err_vs_eager": err,
                        "tflops": flops / (ms / 1e3) / 1e12}
        LOG.info("T=%d B=%d %s: %.2f ms/pass (setup %.1f s, rel err %.2e)", frames, batch, mode, ms, setup_s, err)
    if args.kernels:
        result["kernels"] = _top_kernels(eager, args.kernels)
    return result


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=_ints, default=[646, 2583])
    parser.add_argument("--batch", type=_ints, default=[1, 2])
    parser.add_argument("--modes", default="eager,graph")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--kernels", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    device, dtype = torch.device("cuda"), torch.bfloat16
    spec = MODEL_SPECS["ace-step-v1-3.5b"]
    from acestep_core.transformer import AceStepTransformer

    gen = torch.Generator(device=device).manual_seed(0)
    transformer = _random_module(lambda: AceStepTransformer(spec.transformer, dtype=dtype), device, gen)
    results = []
    with torch.no_grad():
        for frames in args.frames:
            for batch in args.batch:
                results.append(profile_case(transformer, frames, batch, args.modes.split(","), args, device, dtype))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    for r in results:
        modes = "  ".join(f"{m} {r[m]['ms']:.2f} ms ({r[m]['tflops']:.0f} TF/s)" for m in args.modes.split(","))
        print(f"T={r['frames']} B={r['batch']} roofline {r['roofline_ms']:.2f} ms | {modes}")  # noqa: T201
        for k in r.get("kernels", []):
            print(f"    {k['ms']:8.3f} ms {k['calls']:5d}x  {k['name']}")  # noqa: T201
    return results


if __name__ == "__main__":
    main()

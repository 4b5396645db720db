"""Speed and memory of the REPA teacher feature extraction (MERT-v1-330M, mHuBERT-147) on a long clip.

Usage (on a CUDA machine)::

    python -m bench.bench_teachers [--device cuda] [--seconds 240] [--batch 1] [--precisions fp32,bf16]
        [--max-chunks all,8] [--repeats 3] [--tiny] [--json OUT]

The full-size teachers (``MERT_V1_330M_CONFIG``, ``MHUBERT_147_CONFIG``) are built on the meta device,
materialised on the device with ``to_empty`` and filled with small random values (no download; speed does not
depend on the weight values). The input is ``--batch`` random stereo 48 kHz clips of ``--seconds``; one case is
the trainer's whole feature step for one teacher (:func:`acestep_core.teachers.ssl.ssl_features`: mono,
resample, normalise, chunk, encode, trim), with weights in float32 and ``bf16`` meaning the encoder runs under
bf16 autocast. ``--max-chunks`` bounds the chunks per encoder call (``all`` = one call, as the original).

Timing: one untimed warm-up per case, then ``repeats`` runs, the fastest kept (host clock around a device
sync). Peak memory is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (weights included);
``transient_gib`` is the peak minus what was allocated before the run.

Runs with torch, safetensors and numpy only (the teachers import no other part of the generation stack).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

LOG = logging.getLogger("bench")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
COLUMNS = ("teacher", "precision", "max_chunks", "seconds", "batch", "chunks", "frames", "time_s", "peak_gib",
           "weights_gib", "transient_gib")


def _import_teachers() -> Any:
    import acestep_core.teachers as teachers  # the package import is lazy: no generation stack is loaded

    return teachers


@dataclass
class Result:
    teacher: str
    precision: str
    max_chunks: str
    seconds: float
    batch: int
    chunks: int
    frames: int
    time_s: float
    peak_gib: float | None
    weights_gib: float
    transient_gib: float | None


@torch.no_grad()
def random_teacher(cfg: Any, device: torch.device) -> Any:
    """A teacher of ``cfg`` on ``device``: weights ~ N(0, 0.02), biases 0, norm weights 1."""
    teachers = _import_teachers()
    with torch.device("meta"):
        model = teachers.HubertEncoder(cfg)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    for name, param in model.named_parameters():
        if param.ndim >= 2:
            param.normal_(0.0, 0.02, generator=gen)
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.fill_(1.0)
    return model.eval().requires_grad_(False)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gib(n_bytes: float) -> float:
    return n_bytes / 2**30


def bench_case(name: str, model: Any, wavs: torch.Tensor, lengths: torch.Tensor, precision: str,
               max_chunks: int | None, repeats: int) -> Result:
    teachers = _import_teachers()
    spec = teachers.TEACHERS[name]
    device = next(model.parameters()).device

    def run() -> list[torch.Tensor]:
        return teachers.ssl_features(model, wavs, lengths, sample_rate=spec.sample_rate,
                                     chunk_seconds=spec.chunk_seconds, max_chunks_per_call=max_chunks,
                                     autocast_dtype=PRECISIONS[precision])

    run()  # warm-up
    best, peak, before, frames = float("inf"), None, 0, 0
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        _sync(device)
        start = time.perf_counter()
        feats = run()
        _sync(device)
        best = min(best, time.perf_counter() - start)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
        frames = sum(f.shape[0] for f in feats)
        del feats
    chunk_samples = spec.chunk_samples
    chunks = sum(-(-(int(n) // spec.downsample) // chunk_samples) for n in lengths.tolist())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return Result(teacher=spec.display_name, precision=precision, max_chunks=str(max_chunks or "all"),
                  seconds=wavs.shape[-1] / teachers.registry.TRAINER_SAMPLE_RATE, batch=wavs.shape[0],
                  chunks=chunks, frames=frames, time_s=best,
                  peak_gib=None if peak is None else _gib(peak), weights_gib=_gib(weights),
                  transient_gib=None if peak is None else _gib(peak - before))


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(results: Sequence[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(getattr(r, c)) for c in COLUMNS) + " |" for r in results]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_teachers", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--seconds", type=float, default=240.0, help="clip length (the trainer's maximum is 240)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--precisions", type=lambda s: s.split(","), default=["fp32", "bf16"])
    p.add_argument("--max-chunks", type=lambda s: [None if v == "all" else int(v) for v in s.split(",")],
                   default=[None], help="comma separated chunks per encoder call; 'all' = one call (original)")
    p.add_argument("--teachers", type=lambda s: s.split(","), default=["mert", "m-hubert"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tiny", action="store_true", help="tiny teachers (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and results here")
    args = p.parse_args(argv)
    if set(args.precisions) - set(PRECISIONS):
        p.error(f"unknown --precisions {sorted(set(args.precisions) - set(PRECISIONS))}; known: {list(PRECISIONS)}")
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    teachers = _import_teachers()
    device = torch.device(args.device)
    n = int(args.seconds * teachers.registry.TRAINER_SAMPLE_RATE)
    gen = torch.Generator(device=device).manual_seed(1)
    wavs = torch.rand(args.batch, 2, n, generator=gen, device=device) * 0.2 - 0.1
    lengths = torch.full((args.batch,), n, dtype=torch.long)
    results = []
    for name in args.teachers:
        spec = teachers.TEACHERS[name]
        pre_ln = spec.config.do_stable_layer_norm
        cfg = teachers.HubertConfig.tiny(stable_layer_norm=pre_ln) if args.tiny else spec.config
        model = random_teacher(cfg, device)
        for precision in args.precisions:
            for max_chunks in args.max_chunks:
                LOG.info("case %s %s max_chunks=%s", name, precision, max_chunks)
                results.append(bench_case(name, model, wavs, lengths, precision, max_chunks, args.repeats))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    env = {"gpu": gpu, "torch": torch.__version__, "weights": "random tiny" if args.tiny else "random full-size",
           "seconds": args.seconds, "batch": args.batch}
    print(f"GPU: {gpu}, torch {torch.__version__}, weights: {env['weights']}, {args.batch} x {args.seconds:g} s clip")
    print(markdown_table(results))
    if args.json:
        payload = {"environment": env, "results": [asdict(r) for r in results]}
        Path(args.json).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""Speed benchmark of the full ACE-Step v1 generation: conditioning, sampling and decoding.

Usage (on a CUDA machine)::

    python -m bench.bench_generate [--checkpoint PATH] [--device cuda] [--dtype bf16] [--durations 60,240]
        [--steps 27,60] [--batch 1,4] [--guidance app,off] [--accel default,graphs] [--low-vram] [--fp8]
        [--repeats N] [--tiny] [--json OUT]

Without ``--checkpoint`` the full-size components (``MODEL_SPECS["ace-step-v1-3.5b"]``, or the tiny configs
with ``--tiny``) are built on the meta device, materialised on the target device with ``to_empty`` and filled
with small random values (speed does not depend on the weight values); prompts and lyrics are fake token ids
of realistic lengths. ``--guidance app`` is the app default (euler, APG scale 15, guidance interval 0.5, ERG
tag/lyric/diffusion on), ``off`` is ``guidance_scale=1`` (one transformer pass per step, no ERG).

Timing: one untimed warm-up generation + decode, then per case ``repeats`` runs (the fastest is kept).
Conditioning (text encoder + condition encoder) is the time from the call of ``generate`` to the first
transformer ``decode`` call, sampling the rest of ``generate``; both are measured with CUDA events (no extra
host syncs inside the loop), decode with ``AudioCodec.decode(latents, sample_rate=48000, overlapped=False)``.
Peak VRAM is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` for sampling and decoding
(weights resident at the time included).

``--low-vram`` runs each case the way ``python -m acestep_core generate --low-vram`` does: the models are built
on the device, moved to CPU memory once, and every run moves the text encoder + transformer to the GPU for
``generate`` (:func:`acestep_core.runtime.offload.stage` "generate"; CUDA graphs released before the transformer leaves)
and the codec for an overlapped decode (stage "decode"). The peaks are then those of the two stages, weights
moved in included; ``move_s`` is the time of the weight transfers (and cache emptying), outside the
cond/sample/decode times, but inside ``total_s``. ``--fp8`` quantises the transformer once after building
(:func:`acestep_core.runtime.quant.quantize_fp8_`). Both show in the ``accel`` column (e.g. ``default+fp8+lowvram``).

FLOPs (matmul-class only, multiply-add = 2 FLOPs; element-wise ops, norms, RoPE, softmax ignored) of one
transformer ``decode`` pass over B items, T latent frames, S condition tokens, width D = heads * head_dim,
H heads of d channels, GLUMBConv hidden F = int(D * mlp_ratio), L blocks::

    per block, per item:
      self-attention projections q, k, v, out        8 * T * D^2
      linear attention (V^T K and (V^T K) Q, d+1 rows) 4 * T * H * (d + 1) * d
      cross-attention q, out on T frames             4 * T * D^2
      cross-attention k, v on S condition tokens     4 * S * D^2
      cross-attention softmax(Q K^T) V               4 * T * S * D
      GLUMBConv: 1x1 D->2F, depthwise 3-tap 2F, 1x1 F->D   T * (4 * D * F + 12 * F + 2 * F * D)
    once per item: PatchEmbed 2 * T * (128 * 2048 + 2048 * D), final layer 2 * T * D * 128

    passes = N + W with guidance (window W = end - start of ``guidance_window(N, 0.5)``: cond + uncond inside
    the window), N with guidance off;   TFLOP/s = passes * FLOPs(pass) / sampling seconds.

Peak TFLOP/s: dense bf16/fp16 tensor-core peak of the GPU (H100 SXM and H200: 989); other GPUs print n/a.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from acestep_core.config import MODEL_SPECS, DCAEConfig, ModelSpec, TransformerConfig, UMT5Config, VocoderConfig
from acestep_core.runtime.accel import Acceleration, release_cuda_graphs
from acestep_core.runtime.offload import stage
from acestep_core.sampling.pipeline import GenerationParams, generate
from acestep_core.sampling.schedule import guidance_window
from acestep_core.timing import seconds_to_frames

LOG = logging.getLogger("bench")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16/fp16 tensor core, SXM
PROMPT_TOKENS = 30
LYRIC_TOKENS = 400
GUIDANCE = {
    "app": dict(scheduler_type="euler", cfg_type="apg", guidance_scale=15.0, guidance_interval=0.5,
                use_erg_tag=True, use_erg_lyric=True, use_erg_diffusion=True),
    "off": dict(scheduler_type="euler", guidance_scale=1.0, use_erg_tag=False, use_erg_lyric=False,
                use_erg_diffusion=False),
}
ACCEL = {  # --accel presets -> acestep_core.runtime.accel.Acceleration
    "default": Acceleration.fastest(compile=False),  # the CLI's default: CUDA graphs where safe
    "fastest": Acceleration.fastest(),  # the nodes' default: graphs + compile where safe
    "batched": Acceleration(),  # batched guidance only (the default before 2026-12)
    "separate": Acceleration(batch_guidance=False),
    "graphs": Acceleration(cuda_graphs=True),
    "compile": Acceleration(compile=True),
    "graphs+compile": Acceleration(cuda_graphs=True, compile=True),
}
COLUMNS = ("dur_s", "steps", "batch", "guidance", "accel", "passes", "cond_s", "sample_s", "s_per_step", "decode_s",
           "move_s", "total_s", "rtf", "peak_sample_gib", "peak_decode_gib", "tflops", "pct_peak")


@dataclass
class Models:
    """What ``generate`` and the decode need."""

    transformer: Any
    text_encoder: Any
    codec: Any
    spec: ModelSpec
    encode_prompt: Callable[[str], tuple[Any, Any]] = field(repr=False)
    encode_lyrics: Callable[[str], tuple[Any, Any]] = field(repr=False)


@dataclass
class Result:
    dur_s: float
    steps: int
    batch: int
    guidance: str
    accel: str
    passes: int
    cond_s: float
    sample_s: float
    s_per_step: float
    decode_s: float
    total_s: float
    rtf: float
    peak_sample_gib: float | None
    peak_decode_gib: float | None
    tflops: float
    pct_peak: float | None
    move_s: float = 0.0  # --low-vram: weight transfers to and from the GPU (inside total_s)
    low_vram: bool = False
    fp8: bool = False


# ---------------------------------------------------------------------------------------------- models
def tiny_spec() -> ModelSpec:
    return ModelSpec(name="tiny", transformer=TransformerConfig.tiny(), dcae=DCAEConfig.tiny(),
                     vocoder=VocoderConfig.tiny(), umt5=UMT5Config.tiny())


@torch.no_grad()
def _fill_random(module: nn.Module, generator: torch.Generator) -> None:
    """Weights ~ N(0, 0.02), biases 0, 1-D non-bias parameters (norm weights, gains, layer scales) 1."""
    for name, param in module.named_parameters():
        if param.ndim >= 2:
            param.normal_(0.0, 0.02, generator=generator)
        elif name.endswith("bias"):
            param.zero_()
        else:
            param.fill_(1.0)


def _random_module(build: Callable[[], nn.Module], device: torch.device, generator: torch.Generator) -> nn.Module:
    with torch.device("meta"):
        module = build()
    module = module.to_empty(device=device)
    _fill_random(module, generator)
    return module.eval().requires_grad_(False)


def _fake_tokenizers(spec: ModelSpec, device: torch.device, gen: torch.Generator) -> tuple[Any, Any]:
    """``encode_prompt`` / ``encode_lyrics`` returning fixed random ids (~30 prompt, ~400 lyric tokens)."""
    prompt_ids = torch.randint(2, spec.umt5.vocab_size, (1, PROMPT_TOKENS), generator=gen, device=device)
    lyric_ids = torch.randint(1, spec.transformer.lyric_encoder_vocab_size, (1, LYRIC_TOKENS), generator=gen,
                              device=device)
    return (lambda _text: (prompt_ids, torch.ones_like(prompt_ids)),
            lambda _text: (lyric_ids, torch.ones_like(lyric_ids)))


def random_models(spec: ModelSpec, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Models:
    """Full-size (or tiny) components with random weights, built directly on ``device`` in ``dtype``."""
    from acestep_core.audio.codec import AudioCodec
    from acestep_core.dcae import MusicDCAE
    from acestep_core.text.encoder import UMT5Encoder
    from acestep_core.transformer import AceStepTransformer
    from acestep_core.vocoder.model import Vocoder

    gen = torch.Generator(device=device).manual_seed(seed)
    transformer = _random_module(lambda: AceStepTransformer(spec.transformer, dtype=dtype), device, gen)
    text_encoder = _random_module(lambda: UMT5Encoder(spec.umt5, dtype=dtype), device, gen)
    dcae = _random_module(lambda: MusicDCAE(spec.dcae, dtype=dtype), device, gen)
    vocoder = _random_module(lambda: Vocoder(spec.vocoder, dtype=dtype), device, gen)
    codec = AudioCodec(dcae, vocoder, spec.codec).to(device)
    return Models(transformer, text_encoder, codec, spec, *_fake_tokenizers(spec, device, gen))

def checkpoint_models(path: str, device: torch.device, dtype: torch.dtype) -> Models:
    """Real weights; still fake token ids (tokenisation is not what is timed)."""
    from acestep_core.loading.loader import load_checkpoint

    loaded = load_checkpoint(path, device=device, dtype=dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    return Models(loaded.transformer, loaded.text_encoder, loaded.codec, loaded.spec,
                  *_fake_tokenizers(loaded.spec, device, gen))

def prepare_models(models: Models, *, fp8: bool = False, low_vram: bool = False) -> None:
    """``--fp8``: quantise the transformer (on its device, once); ``--low-vram``: move every model to the CPU
    once (the runs' stages move them in and out)."""
    if fp8:
        from acestep_core.runtime.quant import quantize_fp8_

        quantize_fp8_(models.transformer)
    if low_vram:
        for module in (models.transformer, models.text_encoder, models.codec):
            module.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------- flops
def decode_pass_flops(cfg: TransformerConfig, batch: int, frames: int, cond_tokens: int) -> float:
    """Matmul FLOPs of one ``AceStepTransformer.decode`` call (formula in the module docstring)."""
    dim, heads, head_dim = cfg.model_dim, cfg.num_attention_heads, cfg.attention_head_dim
    hidden = int(dim * cfg.mlp_ratio)
    t, s = frames, cond_tokens
    per_block = (8 * t * dim**2 + 4 * t * heads * (head_dim + 1) * head_dim
                 + 4 * t * dim**2 + 4 * s * dim**2 + 4 * t * s * dim
                 + t * (4 * dim * hidden + 12 * hidden + 2 * hidden * dim))
    patch = cfg.in_channels * cfg.max_height
    edges = 2 * t * (patch * cfg.in_channels * 256 + cfg.in_channels * 256 * dim) + 2 * t * dim * patch
    return float(batch * (cfg.num_layers * per_block + edges))


def transformer_passes(steps: int, guidance: str) -> int:
    if guidance == "off":
        return steps
    start, end = guidance_window(steps, GUIDANCE[guidance]["guidance_interval"])
    return steps + (end - start)


def gpu_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


# ---------------------------------------------------------------------------------------------- timing
class Clock:
    """Marks points in time: CUDA events on a GPU (read after one final sync), ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks[name] = event
        else:
            self.marks[name] = time.perf_counter()

    def seconds(self, start: str, end: str) -> float:
        if self.cuda:
            return float(self.marks[start].elapsed_time(self.marks[end])) / 1000.0
        return float(self.marks[end] - self.marks[start])


@contextlib.contextmanager
def marking_sample_start(transformer: Any, clock: Clock) -> Iterator[None]:
    """Marks ``sample_start`` when the transformer's last ``encode`` call of the block returns (conditioning =
    text encoder + condition encoder; sampling starts right after).

    Patches ``encode`` on the instance (removed afterwards) rather than wrapping the transformer: the denoiser
    must see the module itself, or it cannot use CUDA graphs (it checks the weights of an ``nn.Module``), and
    with cached CUDA graphs ``decode`` is never called from Python at all.
    """
    inner = transformer.encode

    def encode(*args: Any, **kwargs: Any) -> Any:
        out = inner(*args, **kwargs)
        clock.mark("sample_start")
        return out

    transformer.encode = encode
    try:
        yield
    finally:
        del transformer.encode


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _gib(peaks: dict[str, int], name: str) -> float | None:
    return peaks[name] / 2**30 if name in peaks else None


@dataclass
class RunTimes:
    cond_s: float
    sample_s: float
    decode_s: float
    steps_done: int
    peak_sample_gib: float | None
    peak_decode_gib: float | None
    move_s: float = 0.0


def run_once(models: Models, params: GenerationParams, device: torch.device,
             acceleration: Acceleration | None = None, decode_cudnn_benchmark: bool = False,
             low_vram: bool = False) -> RunTimes:
    """One timed generation + decode; checks that the latents and audio are finite.

    Generation and decode each run in an :func:`acestep_core.runtime.offload.stage` (peak reset on entry, read before
    exit). With ``low_vram`` the stages move their models (CPU-resident) to ``device`` and back: the peaks then
    include the moved-in weights, and the decode is overlapped (as the CLI's ``--low-vram``).
    """
    clock, steps, peaks = Clock(device), [], {}
    model = type("Model", (), {"transformer": models.transformer, "text_encoder": models.text_encoder})()
    moved = (lambda *modules: modules) if low_vram else (lambda *modules: ())
    _sync(device)
    clock.mark("run_start")
    with stage("generate", *moved(models.text_encoder, models.transformer), device=device, peaks=peaks):
        try:
            clock.mark("start")
            with marking_sample_start(models.transformer, clock):
                result = generate(model, params, encode_prompt=models.encode_prompt,
                                  encode_lyrics=models.encode_lyrics, device=device,
                                  callback=lambda info: steps.append(info.step), acceleration=acceleration)
            clock.mark("sample_end")
        finally:
            if low_vram:  # the graphs' memory pool goes before the transformer leaves the GPU
                release_cuda_graphs(models.transformer)
    with stage("decode", *moved(models.codec), device=device, peaks=peaks):
        clock.mark("decode_start")
        with torch.backends.cudnn.flags(enabled=True, benchmark=decode_cudnn_benchmark, deterministic=False):
            audio = models.codec.decode(result.latents.to(next(models.codec.parameters()).dtype),
                                        sample_rate=48000, overlapped=low_vram)  # --low-vram: overlapped, as the CLI
        clock.mark("decode_end")
    clock.mark("run_end")
    _sync(device)
    if not (torch.isfinite(result.latents).all() and torch.isfinite(audio).all()):
        LOG.warning("non-finite latents or audio (random weights?) for %s", params)
    cond, sample = clock.seconds("start", "sample_start"), clock.seconds("sample_start", "sample_end")
    decode = clock.seconds("decode_start", "decode_end")
    move = max(0.0, clock.seconds("run_start", "run_end") - cond - sample - decode) if low_vram else 0.0
    return RunTimes(cond, sample, decode, len(steps), _gib(peaks, "generate"), _gib(peaks, "decode"), move)


def case_params(duration: float, steps: int, batch: int, guidance: str) -> GenerationParams:
    return GenerationParams(prompt="bench", lyrics="bench", audio_duration=duration, infer_step=steps,
                            batch_size=batch, manual_seeds=list(range(batch)), **GUIDANCE[guidance])


def accel_label(accel: str, *, low_vram: bool = False, fp8: bool = False) -> str:
    """The ``accel`` column: the preset, ``+fp8`` / ``+lowvram`` when on."""
    return accel + ("+fp8" if fp8 else "") + ("+lowvram" if low_vram else "")


def bench_case(models: Models, duration: float, steps: int, batch: int, guidance: str, accel: str, repeats: int,
               device: torch.device, decode_cudnn_benchmark: bool = False, low_vram: bool = False,
               fp8: bool = False) -> Result:
    params = case_params(duration, steps, batch, guidance)
    runs = [run_once(models, params, device, ACCEL[accel], decode_cudnn_benchmark, low_vram)
            for _ in range(repeats)]
    best = min(runs, key=lambda r: r.cond_s + r.sample_s + r.decode_s + r.move_s)
    if best.steps_done != steps:
        raise RuntimeError(f"callback counted {best.steps_done} steps, expected {steps}")
    passes = transformer_passes(steps, guidance)
    cond_tokens = 1 + PROMPT_TOKENS + LYRIC_TOKENS
    flops = passes * decode_pass_flops(models.spec.transformer, batch, seconds_to_frames(duration), cond_tokens)
    tflops = flops / best.sample_s / 1e12
    peak = gpu_peak_tflops(device)
    total = best.cond_s + best.sample_s + best.decode_s + best.move_s
    return Result(duration, steps, batch, guidance, accel_label(accel, low_vram=low_vram, fp8=fp8), passes,
                  best.cond_s, best.sample_s, best.sample_s / steps, best.decode_s, total, duration * batch / total,
                  max(r.peak_sample_gib or 0 for r in runs) or None, max(r.peak_decode_gib or 0 for r in runs) or None,
                  tflops, None if peak is None else 100.0 * tflops / peak, move_s=best.move_s, low_vram=low_vram,
                  fp8=fp8)


# ---------------------------------------------------------------------------------------------- output
def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(results: Sequence[Any], columns: Sequence[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(getattr(r, c)) for c in columns) + " |" for r in results]
    return "\n".join(lines)


def print_report(header: str, results: Sequence[Any], skipped: Sequence[Any], columns: Sequence[str] = COLUMNS) -> None:
    """The benchmark's stdout: one header line, the markdown table, the skipped cases (if any)."""
    print(header)
    print(markdown_table(results, columns))
    if skipped:
        print(f"skipped (time budget / oom): {list(skipped)}")


def environment(device: torch.device, dtype: str, checkpoint: str | None, tiny: bool, low_vram: bool = False,
                fp8: bool = False) -> dict[str, Any]:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"gpu": gpu, "torch": torch.__version__, "dtype": dtype, "peak_tflops": gpu_peak_tflops(device),
            "weights": checkpoint or ("random tiny" if tiny else "random full-size"),
            "prompt_tokens": PROMPT_TOKENS, "lyric_tokens": LYRIC_TOKENS, "low_vram": low_vram, "fp8": fp8}


# ---------------------------------------------------------------------------------------------- main
def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_generate", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or single file (default: random weights)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--durations", type=_floats, default=[60.0, 240.0], help="seconds, comma separated")
    p.add_argument("--steps", type=_ints, default=[27, 60])
    p.add_argument("--batch", type=_ints, default=[1, 4])
    p.add_argument("--guidance", type=lambda s: s.split(","), default=["app", "off"])
    p.add_argument("--accel", type=lambda s: s.split(","), default=["default"],
                   help=f"comma separated presets, each case runs with each: {', '.join(ACCEL)}")
    p.add_argument("--low-vram", action="store_true",
                   help="models in CPU memory; each run moves the text encoder + transformer to the device for "
                        "generate and the codec for an overlapped decode (peaks include the moved weights)")
    p.add_argument("--fp8", action="store_true",
                   help="quantise the transformer's DiT-block weights to float8 once, after building")
    p.add_argument("--decode-cudnn-benchmark", action="store_true",
                   help="let cuDNN benchmark its convolution algorithms for the decode")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and results here (after every case)")
    p.add_argument("--time-budget", type=float, default=math.inf,
                   help="skip the remaining cases once this many seconds have passed")
    args = p.parse_args(argv)
    unknown = set(args.guidance) - set(GUIDANCE)
    if unknown:
        p.error(f"unknown --guidance {sorted(unknown)}; known: {sorted(GUIDANCE)}")
    if set(args.accel) - set(ACCEL):
        p.error(f"unknown --accel {sorted(set(args.accel) - set(ACCEL))}; known: {list(ACCEL)}")
    return args


def _cases(args: argparse.Namespace) -> list[tuple[float, int, int, str, str]]:
    return [(d, s, b, g, a) for b in args.batch for d in args.durations for s in args.steps for g in args.guidance
            for a in args.accel]


def _write_json(path: str | None, env: dict[str, Any], results: Sequence[Any], skipped: list[Any]) -> None:
    if path:
        payload = {"environment": env, "results": [asdict(r) for r in results], "skipped": skipped}
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


def run_cases(cases: Sequence[tuple[Any, ...]], bench_one: Callable[[tuple[Any, ...]], Any], *, started: float,
              time_budget: float, save: Callable[[list[Any], list[Any]], None]) -> tuple[list[Any], list[Any]]:
    """Run ``bench_one(case)`` for each ``(duration, steps, batch, ...)`` case, cheapest first (batch, then duration
    x steps) so that a time budget cuts the most expensive corner; cases past ``time_budget`` seconds since
    ``started`` and cases that run out of GPU memory are skipped and listed. ``save(results, skipped)`` after
    every case."""
    results: list[Any] = []
    skipped: list[Any] = []
    for case in sorted(cases, key=lambda c: (c[2], c[0] * c[1])):
        if time.perf_counter() - started > time_budget:
            skipped.append(case)
            LOG.warning("time budget spent: skipping %s", case)
            continue
        LOG.info("case %s", case)
        try:
            results.append(bench_one(case))
        except torch.OutOfMemoryError:
            LOG.warning("out of memory: skipping %s", case)
            skipped.append((*case, "oom"))
            torch.cuda.empty_cache()
        save(results, skipped)
    save(results, skipped)
    return results, skipped


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    started = time.perf_counter()
    if args.checkpoint:
        models = checkpoint_models(args.checkpoint, device, dtype)
    else:
        models = random_models(tiny_spec() if args.tiny else MODEL_SPECS["ace-step-v1-3.5b"], device, dtype)
    prepare_models(models, fp8=args.fp8, low_vram=args.low_vram)
    LOG.info("models ready in %.1f s", time.perf_counter() - started)
    env = environment(device, args.dtype, args.checkpoint, args.tiny, args.low_vram, args.fp8)
    for accel in args.accel:  # warm-up, untimed
        run_once(models, case_params(min(args.durations), 3, 1, args.guidance[0]), device, ACCEL[accel],
                 low_vram=args.low_vram)
    results, skipped = run_cases(
        _cases(args), lambda case: bench_case(models, *case, repeats=args.repeats, device=device,
                                              decode_cudnn_benchmark=args.decode_cudnn_benchmark,
                                              low_vram=args.low_vram, fp8=args.fp8),
        started=started, time_budget=args.time_budget, save=lambda r, k: _write_json(args.json, env, r, k))
    extras = "".join(text for on, text in ((args.fp8, ", fp8 transformer"), (args.low_vram, ", low-vram staging"))
                     if on)
    print_report(f"GPU: {env['gpu']}, torch {env['torch']}, {args.dtype}, weights: {env['weights']}{extras}, "
                 f"peak {_fmt(env['peak_tflops'])} TFLOP/s", results, skipped)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""Speed benchmark of the ORIGINAL ACE-Step v1 implementation, for comparison with ``bench/bench_generate.py``.

Usage (on the same machine, in the same run as ``bench_generate``)::

    python bench/bench_original.py --ace-step-root PATH [--device cuda] [--dtype bf16] [--durations 60,240]
        [--steps 27,60] [--batch 1] [--guidance app,off] [--repeats N] [--json OUT] [--tiny] [--time-budget S]

This file is ours (Apache-2.0, like the rest of this repository). It contains none of the original code: it
drives an external checkout of ace-step/ACE-Step (``PATH`` is the folder holding its ``acestep/`` package) by
importing it. Only the pieces the benchmark does not need and whose dependencies are heavy are replaced by stubs
(lyric tokenizer, language segmentation; ``librosa`` / ``torchvision`` only when not installed). Requirements:
torch, torchaudio, diffusers, transformers, huggingface_hub, loguru, tqdm, numpy, safetensors (and what diffusers
imports: requests, Pillow, importlib_metadata). Importing the original pipeline sets its global torch flags
(cudnn.benchmark off, cudnn.deterministic on, TF32 matmul on): that is part of the original's behaviour.

Models: the full-size configs of ``MODEL_SPECS["ace-step-v1-3.5b"]`` (``--tiny``: the tiny ones) are passed to
the original constructors directly on the device, filled like ``bench_generate`` (weights N(0, 0.02), biases 0,
other 1-D parameters 1), then moved as ``load_checkpoint`` does (``.to(device).eval().to(dtype)``). The
``ACEStepPipeline`` is built by its own ``__init__`` (no files are read) and given these models.

Per case, timed with CUDA events like ``__call__`` runs it (app defaults; ``off`` = guidance_scale 1, ERG off):
``cond_s`` = ``get_text_embeddings`` (+ ``get_text_embeddings_null`` with ERG tag) on a fake 30-token prompt,
``sample_s`` = ``text2music_diffusion_process`` with the kwargs ``__call__`` passes (400 random lyric ids; it
includes the condition encoder ``encode``), ``decode_s`` = ``latents2audio`` (48 kHz) without writing files.
``to_first_decode_s`` = start to the first transformer ``decode`` (= ``cond_s`` as ``bench_generate`` defines it).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import importlib.util
import logging
import math
import sys
import tempfile
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as ``python bench/bench_original.py``: make acestep_core / bench importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acestep_core.config import MODEL_SPECS, ModelSpec  # noqa: E402
from bench.bench_generate import (  # noqa: E402
    DTYPES,
    LYRIC_TOKENS,
    PROMPT_TOKENS,
    Clock,
    _fill_random,
    _floats,
    _ints,
    _peak_gib,
    _reset_peak,
    _sync,
    _write_json,
    print_report,
    run_cases,
    tiny_spec,
)

LOG = logging.getLogger("bench_original")
COMMON = dict(scheduler_type="euler", cfg_type="apg", omega_scale=10.0, guidance_interval=0.5,
              guidance_interval_decay=0.0, min_guidance_scale=3.0, oss_steps=[], retake_variance=0.5,
              add_retake_noise=False, guidance_scale_text=0.0, guidance_scale_lyric=0.0, repaint_start=0,
              repaint_end=0, src_latents=None, audio2audio_enable=False, ref_audio_strength=0.5, ref_latents=None)
GUIDANCE = {  # ``__call__`` defaults (app) and guidance off; use_erg_tag is consumed by the cond stage
    "app": dict(guidance_scale=15.0, use_erg_tag=True, use_erg_lyric=True, use_erg_diffusion=True),
    "off": dict(guidance_scale=1.0, use_erg_tag=False, use_erg_lyric=False, use_erg_diffusion=False),
}
COLUMNS = ("dur_s", "steps", "batch", "guidance", "cond_s", "to_first_decode_s", "sample_s", "s_per_step",
           "decode_s", "total_s", "rtf", "peak_sample_gib", "peak_decode_gib")


@dataclass
class Result:
    dur_s: float
    steps: int
    batch: int
    guidance: str
    cond_s: float
    to_first_decode_s: float
    sample_s: float
    s_per_step: float
    decode_s: float
    total_s: float
    rtf: float
    peak_sample_gib: float | None
    peak_decode_gib: float | None
    calls: dict[str, int]


# ---------------------------------------------------------------------------------------------- import
def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


class _Unused:
    """Stand-in for classes the benchmark never calls (tokenizers, language segmentation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{type(self).__name__} is a benchmark stub of the original")


def install_stubs() -> list[str]:
    """Stub modules of the original that the timed path does not use (lyric tokenizer, language segmentation)."""
    sys.modules["acestep.language_segmentation"] = _module(
        "acestep.language_segmentation", LangSegment=type("LangSegment", (_Unused,), {}),
        language_filters=_module("language_filters", default=[]))
    sys.modules["acestep.models.lyrics_utils.lyric_tokenizer"] = _module(
        "acestep.models.lyrics_utils.lyric_tokenizer", VoiceBpeTokenizer=type("VoiceBpeTokenizer", (_Unused,), {}))
    return ["acestep.language_segmentation", "acestep.models.lyrics_utils.lyric_tokenizer"]


@contextlib.contextmanager
def missing_optional_deps() -> Iterator[list[str]]:
    """While the original imports: stubs for ``librosa`` (file loading only) and ``torchvision`` (``Normalize`` of
    ``MusicDCAE.encode``) if not installed; removed afterwards so no library believes they are installed."""
    import diffusers  # noqa: F401  (their availability checks must run before the stubs exist)
    import transformers  # noqa: F401

    stubs: dict[str, types.ModuleType] = {}
    for name in ("librosa", "torchvision"):
        if importlib.util.find_spec(name) is None:
            stubs[name] = _module(name)
    if "torchvision" in stubs:
        stubs["torchvision.transforms"] = stubs["torchvision"].transforms = _module(
            "torchvision.transforms", Compose=lambda fns: fns, Normalize=lambda *a, **k: None)
    sys.modules.update(stubs)
    try:
        yield sorted(stubs)
    finally:
        for name in stubs:
            sys.modules.pop(name, None)


def import_original(root: str) -> types.SimpleNamespace:
    """The original's modules, imported from ``root`` (which must hold the ``acestep`` package)."""
    if not (Path(root) / "acestep" / "pipeline_ace_step.py").is_file():
        raise FileNotFoundError(f"{root}/acestep/pipeline_ace_step.py not found")
    sys.path.insert(0, str(Path(root).resolve()))
    stubbed = install_stubs()
    with missing_optional_deps() as optional:
        pipeline = importlib.import_module("acestep.pipeline_ace_step")
    LOG.info("imported %s; stubbed modules: %s", pipeline.__file__, stubbed + optional)
    return types.SimpleNamespace(
        pipeline=pipeline, transformer=importlib.import_module("acestep.models.ace_step_transformer"),
        dcae=importlib.import_module("acestep.music_dcae.music_dcae_pipeline"),
        vocoder=importlib.import_module("acestep.music_dcae.music_vocoder"))


# ---------------------------------------------------------------------------------------------- models
def _plain(value: Any) -> Any:
    """Tuples (also nested) to lists, as in the official config.json files."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _config(cfg: Any, drop: Sequence[str] = ()) -> dict[str, Any]:
    return {k: _plain(v) for k, v in asdict(cfg).items() if k not in drop}


def _random(build: Any, device: torch.device, dtype: torch.dtype, gen: torch.Generator) -> Any:
    with torch.device(device):
        module = build()
    module = module.to(device)  # some of the original's layers ignore the default-device context
    _fill_random(module, gen)
    return module.eval().to(dtype).requires_grad_(False)


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def build_transformer(orig: Any, spec: ModelSpec, device: torch.device, dtype: torch.dtype,
                      gen: torch.Generator) -> Any:
    cfg = spec.transformer
    # The original always builds the lyric Conformer at its released size; the tiny config needs its own size.
    encoder = functools.partial(orig.transformer.LyricEncoder, output_size=cfg.lyric_hidden_size,
                                attention_heads=cfg.lyric_encoder_attention_heads,
                                linear_units=cfg.lyric_encoder_linear_units, num_blocks=cfg.lyric_encoder_num_blocks)
    full = spec.name != "tiny"
    with contextlib.nullcontext() if full else _patched(orig.transformer, "LyricEncoder", encoder):
        return _random(lambda: orig.transformer.ACEStepTransformer2DModel(**_config(cfg)), device, dtype, gen)


def build_music_dcae(orig: Any, spec: ModelSpec, device: torch.device, dtype: torch.dtype,
                     gen: torch.Generator) -> Any:
    """The original ``MusicDCAE.__init__`` with its two ``from_pretrained`` calls answered by random models."""
    dcae = _random(lambda: orig.dcae.AutoencoderDC(**_config(spec.dcae)), device, torch.float32, gen)
    vocoder = _random(lambda: orig.vocoder.ADaMoSHiFiGANV1(**_config(spec.vocoder)), device, torch.float32, gen)
    with _patched(orig.dcae, "AutoencoderDC", types.SimpleNamespace(from_pretrained=lambda *_a, **_k: dcae)), \
            _patched(orig.dcae, "ADaMoSHiFiGANV1", types.SimpleNamespace(from_pretrained=lambda *_a, **_k: vocoder)):
        music_dcae = orig.dcae.MusicDCAE(dcae_checkpoint_path="<random>", vocoder_checkpoint_path="<random>")
    return music_dcae.to(device).eval().to(dtype)


def build_text_encoder(spec: ModelSpec, device: torch.device, dtype: torch.dtype, gen: torch.Generator) -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(**_config(spec.umt5, drop=("dense_act_fn", "is_gated_act")))
    return _random(lambda: UMT5EncoderModel(config), device, dtype, gen)


class FakeTextTokenizer:
    """Answers ``text_tokenizer(texts, return_tensors="pt", ...)`` with fixed random ids (CPU, like the real one)."""

    def __init__(self, vocab_size: int, gen: torch.Generator) -> None:
        self.ids = torch.randint(2, vocab_size, (1, PROMPT_TOKENS), generator=gen)

    def __call__(self, texts: Sequence[str], **_kwargs: Any) -> dict[str, torch.Tensor]:
        ids = self.ids.repeat(len(texts), 1)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def build_pipeline(orig: Any, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> Any:
    """``ACEStepPipeline.__init__`` (reads no files), then the attributes ``load_checkpoint`` would set."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    dev_gen = torch.Generator(device=device).manual_seed(0)
    pipe = orig.pipeline.ACEStepPipeline(checkpoint_dir=tempfile.gettempdir(), cpu_offload=False)
    pipe.device, pipe.dtype = device, dtype
    pipe.ace_step_transformer = build_transformer(orig, spec, device, dtype, dev_gen)
    pipe.music_dcae = build_music_dcae(orig, spec, device, dtype, dev_gen)
    pipe.text_encoder_model = build_text_encoder(spec, device, dtype, dev_gen)
    pipe.text_tokenizer = FakeTextTokenizer(spec.umt5.vocab_size, gen)
    pipe.lang_segment = pipe.lyric_tokenizer = None
    pipe.save_wav_file = lambda *_a, **_k: None  # latents2audio without writing files
    pipe.loaded = True
    pipe.lyric_ids = torch.randint(1, spec.transformer.lyric_encoder_vocab_size, (1, LYRIC_TOKENS), generator=gen)
    return pipe


# ---------------------------------------------------------------------------------------------- tracing
def install_tracing(orig: Any, pipe: Any, clock_ref: list[Clock]) -> collections.Counter[str]:
    """Counts the original's code paths that ran (APG, ERG hooks, euler steps) and marks the first ``decode``."""
    calls: collections.Counter[str] = collections.Counter()
    model = pipe.ace_step_transformer
    erg_q = model.transformer_blocks[min(15, len(model.transformer_blocks) - 1)].attn.to_q
    lyric_q = model.lyric_encoder.encoders[min(4, len(model.lyric_encoder.encoders) - 1)].self_attn.linear_q

    def decode(*args: Any, **kwargs: Any) -> Any:
        if "first_decode" not in clock_ref[0].marks:
            clock_ref[0].mark("first_decode")
        calls["decode_erg" if erg_q._forward_hooks else "decode"] += 1
        return type(model).decode(model, *args, **kwargs)

    def encode(*args: Any, **kwargs: Any) -> Any:
        calls["encode_erg" if lyric_q._forward_hooks else "encode"] += 1
        return type(model).encode(model, *args, **kwargs)

    def counted(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    model.decode, model.encode = decode, encode
    orig.pipeline.apg_forward = counted("apg_forward", orig.pipeline.apg_forward)
    scheduler = orig.pipeline.FlowMatchEulerDiscreteScheduler
    scheduler.step = counted("euler_step", scheduler.step)
    pipe.get_text_embeddings_null = counted("text_embeddings_erg", pipe.get_text_embeddings_null)
    return calls


# ---------------------------------------------------------------------------------------------- timing
@dataclass
class RunTimes:
    cond_s: float
    to_first_decode_s: float
    sample_s: float
    decode_s: float
    peak_sample_gib: float | None
    peak_decode_gib: float | None


def _conditions(pipe: Any, batch: int, erg_tag: bool) -> tuple[Any, Any, Any]:
    """The text-embedding calls exactly as ``__call__`` makes them."""
    hidden, mask = pipe.get_text_embeddings(["bench"])
    hidden, mask = hidden.repeat(batch, 1, 1), mask.repeat(batch, 1)
    null = pipe.get_text_embeddings_null(["bench"]).repeat(batch, 1, 1) if erg_tag else None
    return hidden, mask, null


def run_once(pipe: Any, clock_ref: list[Clock], duration: float, steps: int, batch: int, guidance: str) -> RunTimes:
    device, opts = pipe.device, dict(GUIDANCE[guidance])
    erg_tag = opts.pop("use_erg_tag")
    generators, _ = pipe.set_seeds(batch, list(range(batch)))
    retake_generators, _ = pipe.set_seeds(batch, None)
    speaker = torch.zeros(batch, 512).to(device).to(pipe.dtype)
    lyric_ids = pipe.lyric_ids.to(device).repeat(batch, 1)
    lyric_mask = torch.ones_like(lyric_ids)
    clock = clock_ref[0] = Clock(device)
    _sync(device)
    _reset_peak(device)
    clock.mark("start")
    hidden, mask, null = _conditions(pipe, batch, erg_tag)
    clock.mark("cond_end")
    latents = pipe.text2music_diffusion_process(
        duration=duration, encoder_text_hidden_states=hidden, text_attention_mask=mask, speaker_embds=speaker,
        lyric_token_ids=lyric_ids, lyric_mask=lyric_mask, infer_steps=steps, random_generators=generators,
        encoder_text_hidden_states_null=null, retake_random_generators=retake_generators, **opts, **COMMON)
    clock.mark("sample_end")
    _sync(device)
    peak_sample = _peak_gib(device)
    _reset_peak(device)
    clock.mark("decode_start")
    pipe.latents2audio(latents=latents, target_wav_duration_second=duration, save_path=None, format="wav")
    clock.mark("decode_end")
    _sync(device)
    if not torch.isfinite(latents).all():
        LOG.warning("non-finite latents (random weights?) for %s s, %s steps, %s", duration, steps, guidance)
    pipe.cleanup_memory()  # as __call__ does after each generation (untimed)
    return RunTimes(clock.seconds("start", "cond_end"), clock.seconds("start", "first_decode"),
                    clock.seconds("cond_end", "sample_end"), clock.seconds("decode_start", "decode_end"),
                    peak_sample, _peak_gib(device))


def bench_case(pipe: Any, clock_ref: list[Clock], calls: collections.Counter[str], duration: float, steps: int,
               batch: int, guidance: str, repeats: int) -> Result:
    calls.clear()
    runs = [run_once(pipe, clock_ref, duration, steps, batch, guidance) for _ in range(repeats)]
    per_run = {k: v // repeats for k, v in sorted(calls.items())}
    LOG.info("original code paths per run: %s", per_run)
    if per_run.get("euler_step") != steps:
        raise RuntimeError(f"euler scheduler stepped {per_run.get('euler_step')} times, expected {steps}")
    best = min(runs, key=lambda r: r.cond_s + r.sample_s + r.decode_s)
    total = best.cond_s + best.sample_s + best.decode_s
    return Result(duration, steps, batch, guidance, best.cond_s, best.to_first_decode_s, best.sample_s,
                  best.sample_s / steps, best.decode_s, total, duration * batch / total,
                  max(r.peak_sample_gib or 0 for r in runs) or None,
                  max(r.peak_decode_gib or 0 for r in runs) or None, per_run)


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/bench_original.py", description=__doc__.splitlines()[0])
    p.add_argument("--ace-step-root", required=True, help="folder holding the original's acestep/ package")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--durations", type=_floats, default=[60.0, 240.0], help="seconds, comma separated")
    p.add_argument("--steps", type=_ints, default=[27, 60])
    p.add_argument("--batch", type=_ints, default=[1])
    p.add_argument("--guidance", type=lambda s: s.split(","), default=["app", "off"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and results here (after every case)")
    p.add_argument("--time-budget", type=float, default=math.inf,
                   help="skip the remaining cases once this many seconds have passed")
    args = p.parse_args(argv)
    unknown = set(args.guidance) - set(GUIDANCE)
    if unknown:
        p.error(f"unknown --guidance {sorted(unknown)}; known: {sorted(GUIDANCE)}")
    return args


def environment(device: torch.device, dtype: str, tiny: bool, root: str) -> dict[str, Any]:
    import diffusers
    import transformers

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"implementation": "original ACE-Step", "ace_step_root": str(Path(root).resolve()), "gpu": gpu,
            "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "dtype": dtype, "weights": "random tiny" if tiny else "random full-size",
            "prompt_tokens": PROMPT_TOKENS, "lyric_tokens": LYRIC_TOKENS}


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    started = time.perf_counter()
    orig = import_original(args.ace_step_root)
    pipe = build_pipeline(orig, tiny_spec() if args.tiny else MODEL_SPECS["ace-step-v1-3.5b"], device, dtype)
    clock_ref: list[Clock] = [Clock(device)]
    calls = install_tracing(orig, pipe, clock_ref)
    LOG.info("models ready in %.1f s", time.perf_counter() - started)
    env = environment(device, args.dtype, args.tiny, args.ace_step_root)
    run_once(pipe, clock_ref, min(args.durations), 3, 1, args.guidance[0])  # warm-up, untimed
    cases = [(d, s, b, g) for b in args.batch for d in args.durations for s in args.steps for g in args.guidance]
    results, skipped = run_cases(
        cases, lambda case: bench_case(pipe, clock_ref, calls, *case, repeats=args.repeats),
        started=started, time_budget=args.time_budget, save=lambda r, k: _write_json(args.json, env, r, k))
    print_report(f"ORIGINAL ACE-Step ({env['ace_step_root']}), GPU: {env['gpu']}, torch {env['torch']}, "
                 f"diffusers {env['diffusers']}, transformers {env['transformers']}, {args.dtype}, "
                 f"weights: {env['weights']}", results, skipped, COLUMNS)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""Speed and memory of our LoRA training step (``acestep_core.training.TrainingRun``) at full size on 240 s clips.

Usage (on a CUDA machine)::

    python -m bench.bench_train [--device cuda] [--cases all] [--seconds 240] [--steps 5] [--warmup 2]
        [--batches 2,4,8] [--lyric-tokens 1024] [--time-budget S] [--json OUT] [--tiny] [--commit SHA]

What runs is the trainer users run: :class:`~acestep_core.training.loop.TrainingRun` built through its public
constructor (what :func:`~acestep_core.training.session.build_training_run` builds from a dataset, with the same
text-encoder closure and ``make_training_item`` / ``collate``), so every timed optimiser step is the loop's own:
the prompt drawn and encoded by the UMT5 encoder, the cached latents (and teacher features, REPA on) moved to the
device, CFG dropout, the forward and backward (activation checkpointing as the case asks; ``auto`` decided by
:func:`~acestep_core.training.session.checkpointing_enabled` after the models are built, as a run decides it),
the REPA loss, the clip, AdamW (or 8-bit AdamW) and the schedule, the loss-log line.

Models: the full-size configs of ``MODEL_SPECS["ace-step-v1-3.5b"]`` (``--tiny``: the tiny ones) built on the
meta device, materialised on the device and filled like ``bench_generate`` (weights N(0, 0.02), biases 0, other
1-D parameters 1): the transformer with its REPA heads in the case's precision (fp32; bf16; fp8 = bf16 with the
DiT-block weights quantised by :func:`acestep_core.runtime.quant.quantize_fp8_`), the UMT5 encoder in fp32 (as
``load_training_models``). The codec and the teachers are not built: the steps read cached latents and features
(their weights are listed in the JSON's ``not_built``; a real run moves them to the CPU once the songs are
prepared, so they are not in its step peak either).

Songs: synthetic prepared songs of ``--seconds`` (240 s = what the dataset keeps): latents of exactly the frames
``AudioCodec.encode`` returns (2,584 at 240 s), teacher features of exactly the frames ``FeatureCache`` stores
(``expected_frames``: MERT 17,952 x 1024, mHuBERT 11,992 x 768 at 240 s) in fp16 as the session stores them,
``--lyric-tokens`` random lyric ids (cut by the dataset's rule, 4096), a fixed 64-token prompt (a stand-in
tokenizer; the UMT5 encoder itself runs every step). A batch of B uses B songs.

Cases (``--cases``: names or groups, comma separated, default all): ``faithful`` = fp32, checkpointing on,
r 256 and r 64 rsLoRA alpha 32 on the RapMachine targets, batch 1 (the original recipe); ``fast`` = bf16 base
weights, checkpointing ``auto`` (what users get), r 64 and r 256, batch 1 then ``--batches`` until out of memory
or less than 5 % more clips per hour; ``light`` = bf16 + checkpointing on, fp8 + checkpointing on, fp8 + 8-bit
AdamW (r 64). A case the installed core cannot run (no ``precision="fp8"``, no ``optimizer``) is listed as
unavailable. fp32 matmuls run in TF32 on CUDA as in the original's trainer
(``torch.set_float32_matmul_precision("high")``; our ``TrainConfig.tf32``, on by default);
``faithful-r256-strict-fp32`` is the faithful case with true fp32 matmuls (``--no-tf32``).

Timing: ``--warmup`` optimiser steps untimed, then ``--steps`` timed: the wall time between two consecutive
``on_step`` callbacks after a device sync (the whole step as the loop runs it); ``s_per_step`` is their median,
``loop_s_per_step`` the median of the loop's own ``StepReport.seconds_per_step``. After the last timed step the
callback ends the run (no final save). ``clips_per_hour = 3600 * batch / s_per_step``. Memory
(``torch.cuda.max_memory_allocated``): ``construction_peak_gib`` while building the models, ``resident_gib``
after, ``train_peak_gib`` / ``train_peak_reserved_gib`` from the start of ``train`` (peak reset after
construction) to the end of the last timed step. Out-of-memory cases are recorded (``status``) and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import json
import logging
import math
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

if __package__ in (None, ""):  # run as ``python bench/bench_train.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acestep_core.config import MODEL_SPECS, ModelSpec  # noqa: E402
from bench.bench_generate import _fmt, _random_module, tiny_spec  # noqa: E402

LOG = logging.getLogger("bench_train")
REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPT_TOKENS = 64
LYRIC_TOKENS = 1024  # training-anchors 1.17: a full 240 s song's lyrics
TAGS = ("pop", "synth", "female vocals", "upbeat", "120 bpm")
RAPMACHINE_ALPHA = 32.0  # config/zh_rap_lora_config.json: r 256, alpha 32, use_rslora
MIN_BATCH_GAIN = 1.05  # the batch sweep stops when a larger batch gives less than 5 % more clips per hour
COLUMNS = ("case", "precision", "ckpt", "r", "batch", "optimizer", "s_per_step", "clips_per_hour", "train_peak_gib",
           "train_peak_reserved_gib", "construction_peak_gib", "status")


@dataclass(frozen=True)
class Case:
    name: str
    group: str  # faithful / fast / light
    precision: str  # fp32 / bf16 / fp8
    checkpointing: str  # on / auto
    rank: int
    batch: int = 1
    optimizer: str = "adamw"
    tf32: bool = True
    sweep: bool = False  # fast cases: try --batches after batch 1
    full: bool = False  # --full: every DiT weight trains (FSDP2 over one process; rank unused)


CASES: tuple[Case, ...] = (
    Case("faithful-r256", "faithful", "fp32", "on", 256),
    Case("faithful-r64", "faithful", "fp32", "on", 64),
    Case("fast-r64", "fast", "bf16", "auto", 64, sweep=True),
    Case("fast-r256", "fast", "bf16", "auto", 256, sweep=True),
    Case("light-bf16-r64", "light", "bf16", "on", 64),
    Case("light-fp8-r64", "light", "fp8", "on", 64),
    Case("light-fp8-adamw8bit-r64", "light", "fp8", "on", 64, optimizer="adamw8bit"),
    Case("full-bf16", "full", "bf16", "on", 0, full=True),
    Case("full-bf16-adamw8bit", "full", "bf16", "on", 0, optimizer="adamw8bit", full=True),
    Case("faithful-r256-strict-fp32", "faithful", "fp32", "on", 256, tf32=False),
)


@dataclass
class Result:
    case: str
    group: str
    precision: str
    ckpt: str  # the resolved setting: "on", "off", "auto->off", ...
    r: int
    batch: int
    optimizer: str
    tf32: bool
    status: str = "ok"  # ok / oom / unavailable: ... / diverged: ... / skipped: time budget
    s_per_step: float | None = None
    s_per_step_min: float | None = None
    s_per_step_max: float | None = None
    loop_s_per_step: float | None = None
    first_step_s: float | None = None
    clips_per_hour: float | None = None
    construction_peak_gib: float | None = None
    resident_gib: float | None = None
    train_peak_gib: float | None = None
    train_peak_reserved_gib: float | None = None
    lora_params: int | None = None
    loss: float | None = None
    best_batch: bool = False
    case_wall_s: float | None = None
    step_times: list[float] = field(default_factory=list)


class CaseUnavailable(RuntimeError):
    """The installed core cannot run this case (a setting it does not know)."""


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class PromptTokensStub:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


class FakePromptTokenizer:
    """``PromptTokenizer``'s call: any prompts -> the same ``PROMPT_TOKENS`` random ids per prompt (CPU)."""

    def __init__(self, vocab_size: int, gen: torch.Generator) -> None:
        self.ids = torch.randint(2, vocab_size, (1, PROMPT_TOKENS), generator=gen)

    def __call__(self, prompts: Sequence[str]) -> PromptTokensStub:
        ids = self.ids.repeat(len(prompts), 1)
        return PromptTokensStub(ids, torch.ones_like(ids))


def text_encoder_closure(text_encoder: Any, tokenizer: FakePromptTokenizer, device: torch.device
                         ) -> Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]]:
    """The run's ``text`` callable, as ``session.build_training_run`` makes it (tokenize, encode, no gradient)."""

    @torch.no_grad()
    def encode(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = tokenizer(prompts)
        mask = tokens.attention_mask.to(device)
        return text_encoder(tokens.input_ids.to(device), mask), mask

    return encode


def clip_samples(seconds: float) -> int:
    from acestep_core.training.audio import MAX_TRAIN_SAMPLES, TRAIN_SAMPLE_RATE

    return min(int(round(seconds * TRAIN_SAMPLE_RATE)), MAX_TRAIN_SAMPLES)


def latent_frames(num_samples: int) -> int:
    """Frames ``AudioCodec.encode`` returns for the prepared 48 kHz clip (what ``LatentCache`` stores)."""
    from acestep_core.audio.codec import encoded_latent_frames
    from acestep_core.training.audio import TRAIN_SAMPLE_RATE

    return encoded_latent_frames(num_samples, TRAIN_SAMPLE_RATE)


def teacher_frames(num_samples: int) -> dict[str, int]:
    """Feature frames per teacher as ``FeatureCache`` stores them (its own ``expected_frames`` rule)."""
    from acestep_core.teachers import TEACHERS
    from acestep_core.teachers.cache import expected_frames

    shapes = types.SimpleNamespace(encoders={n: types.SimpleNamespace(config=s.config) for n, s in TEACHERS.items()})
    return {name: expected_frames(shapes, name, num_samples) for name in TEACHERS}  # type: ignore[arg-type]


@dataclass
class Songs:
    songs: list[Any]  # TrainingSong
    lyric_ids: list[list[int]]
    prepared: list[Any]  # PreparedSong
    wav_length: int


def synthetic_songs(count: int, spec: ModelSpec, seconds: float, lyric_tokens: int, seed: int) -> Songs:
    from acestep_core.training.prepare import PreparedSong
    from acestep_core.training.songs import TrainingSong

    gen = torch.Generator().manual_seed(seed)
    n = clip_samples(seconds)
    frames, feats = latent_frames(n), teacher_frames(n)
    dims = dict(zip(spec.transformer.ssl_names, spec.transformer.ssl_latent_dims, strict=True))
    songs, lyrics, prepared = [], [], []
    for i in range(count):
        songs.append(TrainingSong(key=f"bench_{i:02d}", audio_path=Path(f"bench_{i:02d}.wav"), tags=TAGS))
        lyrics.append(torch.randint(1, spec.transformer.lyric_encoder_vocab_size, (lyric_tokens,),
                                    generator=gen).tolist())
        ssl = {name: torch.randn(feats[name], dim, generator=gen).to(torch.float16) for name, dim in dims.items()}
        prepared.append(PreparedSong(latents=torch.randn(8, 16, frames, generator=gen), wav_length=n, ssl=ssl))
    return Songs(songs, lyrics, prepared, n)


# ---------------------------------------------------------------------------------------------- models
def build_models(spec: ModelSpec, precision: str, device: torch.device, seed: int = 0,
                 full: bool = False) -> tuple[Any, Any]:
    """(transformer with REPA heads in the run's precision, UMT5 encoder in fp32), frozen, random weights; a full
    fine-tune keeps the transformer in fp32 (its master weights), as ``load_training_models(full=True)``."""
    from acestep_core.text.encoder import UMT5Encoder
    from acestep_core.transformer import AceStepTransformer

    dtype = torch.float32 if precision == "fp32" or full else torch.bfloat16
    gen = torch.Generator(device=device).manual_seed(seed)
    transformer = _random_module(lambda: AceStepTransformer(spec.transformer, dtype=dtype, repa_heads=True),
                                 device, gen)
    if precision == "fp8":
        from acestep_core.runtime.quant import quantize_fp8_

        quantize_fp8_(transformer)  # as load_training_models does for precision "fp8" (it logs its summary)
    text_encoder = _random_module(lambda: UMT5Encoder(spec.umt5, dtype=torch.float32), device, gen)
    return transformer, text_encoder


def not_built_gib(spec: ModelSpec, tiny: bool) -> dict[str, float]:
    """fp32 weights a real run also holds on the device (codec, teachers) that this benchmark does not build."""
    from acestep_core.dcae import MusicDCAE
    from acestep_core.teachers import TEACHERS, HubertConfig, HubertEncoder
    from acestep_core.vocoder.model import Vocoder

    teachers = [HubertConfig.tiny(hidden_size=d, conv_pos_groups=4) for d in spec.transformer.ssl_latent_dims] \
        if tiny else [t.config for t in TEACHERS.values()]

    def gib(build: Callable[[], torch.nn.Module]) -> float:
        with torch.device("meta"):
            module = build()
        return sum(p.numel() for p in module.parameters()) * 4 / 2**30

    return {"codec_fp32_gib": gib(lambda: MusicDCAE(spec.dcae)) + gib(lambda: Vocoder(spec.vocoder)),
            "teachers_fp32_gib": sum(gib(lambda c=c: HubertEncoder(c)) for c in teachers)}


def train_config(case: Case, steps: int) -> Any:
    from acestep_core.training.config import TrainConfig
    from acestep_core.training.lora import LoraConfig
    from acestep_core.training.optim import OptimConfig

    extra: dict[str, Any] = {}
    if case.optimizer != "adamw":  # OptimConfig.optimizer (TrainConfig.optimizer in an older plan of the core)
        names = {f.name for f in dataclasses.fields(OptimConfig)}
        extra = {"optim": OptimConfig(optimizer=case.optimizer)} if "optimizer" in names else \
            {"optimizer": case.optimizer}
    try:
        return TrainConfig(max_steps=steps, lora=LoraConfig(r=case.rank or 64, lora_alpha=RAPMACHINE_ALPHA,
                                                            use_rslora=True),
                           batch_size=case.batch, precision=case.precision, checkpointing=case.checkpointing,
                           repa="on", save_every=0, preview_every=0, tf32=case.tf32, full=case.full, **extra)
    except (TypeError, ValueError) as e:  # TypeError: a field this core lacks; ValueError: a value it refuses
        raise CaseUnavailable(f"the installed core refuses precision={case.precision!r} / "
                              f"optimizer={case.optimizer!r}: {e}") from e


# ---------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gib(value: int) -> float:
    return value / 2**30


class _Done(Exception):
    """Raised by the step callback after the last timed step: ends ``train`` without its final save."""


class StepTimer:
    """``on_step`` callback: wall time between consecutive optimiser steps (synchronised), warm-up dropped."""

    def __init__(self, device: torch.device, warmup: int, steps: int) -> None:
        self.device, self.warmup, self.steps = device, warmup, steps
        self.reports: list[Any] = []
        self.wall: list[float] = []
        self.first_step_s: float | None = None
        self.last = time.perf_counter()

    def start(self) -> None:
        _sync(self.device)
        self.last = time.perf_counter()

    def __call__(self, report: Any) -> None:
        _sync(self.device)
        now = time.perf_counter()
        self.reports.append(report)
        if len(self.reports) == 1:
            self.first_step_s = now - self.last
        if len(self.reports) > self.warmup:
            self.wall.append(now - self.last)
        self.last = now
        if len(self.reports) >= self.warmup + self.steps:
            raise _Done


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    previous = torch.get_float32_matmul_precision()
    if enabled:
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _lora_params(transformer: Any, lora: Any) -> int:
    from acestep_core.training.lora import lora_param_count

    return lora_param_count(transformer, lora)


def run_case(case: Case, spec: ModelSpec, device: torch.device, args: argparse.Namespace) -> Result:
    """Build the models and the run, time ``args.steps`` steps after ``args.warmup`` (see the module docstring)."""
    from acestep_core.training.batch import collate, make_training_item
    from acestep_core.training.loop import TrainCallbacks, TrainingRun
    from acestep_core.training.run_files import RunFolder
    from acestep_core.training.session import checkpointing_enabled, needed_without_checkpointing

    config = train_config(case, args.warmup + args.steps)
    result = Result(case.name, case.group, case.precision, case.checkpointing, case.rank, case.batch,
                    case.optimizer, case.tf32)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    transformer, text_encoder = build_models(spec, case.precision, device, full=case.full)
    if device.type == "cuda":
        result.construction_peak_gib = _gib(torch.cuda.max_memory_allocated(device))
        result.resident_gib = _gib(torch.cuda.memory_allocated(device))
    data = synthetic_songs(case.batch, spec, args.seconds, args.lyric_tokens, seed=1)
    frames = max(song.latents.shape[-1] for song in data.prepared)
    checkpoint = checkpointing_enabled(config.checkpointing, device,  # as build_training_run decides it
                                       needed_without_checkpointing(SimpleNamespace(transformer=transformer), config,
                                                                    frames))
    result.ckpt = ("on" if checkpoint else "off") if case.checkpointing != "auto" else \
        f"auto->{'on' if checkpoint else 'off'}"
    result.lora_params = sum(p.numel() for p in transformer.parameters()) if case.full else \
        _lora_params(transformer, config.lora)
    tokenizer = FakePromptTokenizer(spec.umt5.vocab_size, torch.Generator().manual_seed(2))
    timer = StepTimer(device, args.warmup, args.steps)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp, tf32(case.tf32):
        folder = RunFolder(tmp)
        folder.prepare(resume=False, overwrite=False)
        run = TrainingRun(transformer=transformer, text=text_encoder_closure(text_encoder, tokenizer, device),
                          items=lambda index, rng: make_training_item(index, data.songs[index], data.lyric_ids[index],
                                                                      data.wav_length, rng),
                          collate=collate, songs=data.prepared, config=config, folder=folder, device=device,
                          checkpoint_blocks=checkpoint, trainee=_full_trainee(transformer, config, device, checkpoint)
                          if case.full else None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timer.start()
        with contextlib.suppress(_Done):
            run.train(TrainCallbacks(on_step=timer))
    if device.type == "cuda":
        result.train_peak_gib = _gib(torch.cuda.max_memory_allocated(device))
        result.train_peak_reserved_gib = _gib(torch.cuda.max_memory_reserved(device))
    result.step_times = timer.wall
    result.s_per_step = statistics.median(timer.wall)
    result.s_per_step_min, result.s_per_step_max = min(timer.wall), max(timer.wall)
    result.loop_s_per_step = statistics.median(r.seconds_per_step for r in timer.reports[args.warmup:])
    result.first_step_s = timer.first_step_s
    result.clips_per_hour = 3600.0 * case.batch / result.s_per_step
    result.loss = timer.reports[-1].loss
    return result


def _full_trainee(transformer: Any, config: Any, device: torch.device, checkpoint: bool) -> Callable[[], Any]:
    """What ``build_training_run`` passes for ``--full`` (the base path is only read when saving, which the
    benchmark never reaches)."""
    from acestep_core.training.distributed import DistContext
    from acestep_core.training.full import FullTrainee

    return lambda: FullTrainee(transformer, config, device=device, dist_context=DistContext(),
                               checkpoint_blocks=checkpoint, base=Path("unused-base"))


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_case(case: Case, spec: ModelSpec, device: torch.device, args: argparse.Namespace) -> Result:
    """``run_case``, with out-of-memory, unavailable and diverged cases recorded instead of raised."""
    from acestep_core.training.loop import TrainingDiverged

    started = time.perf_counter()
    status = "ok"
    result: Result | None = None
    try:
        result = run_case(case, spec, device, args)
    except torch.OutOfMemoryError as e:
        status = f"oom: {str(e).splitlines()[0][:160]}"
    except CaseUnavailable as e:
        status = f"unavailable: {e}"
    except TrainingDiverged as e:
        status = f"diverged (random weights): {str(e)[:160]}"
    _free(device)  # after the except blocks: the traceback's frames (and their tensors) are gone
    if result is None:
        result = Result(case.name, case.group, case.precision, case.checkpointing, case.rank, case.batch,
                        case.optimizer, case.tf32, status=status)
        LOG.warning("%s batch %d: %s", case.name, case.batch, status)
    result.case_wall_s = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------------------------------- plan
def select_cases(names: Sequence[str]) -> list[Case]:
    groups = {c.group for c in CASES}
    known = {c.name for c in CASES} | groups | {"all"}
    unknown = sorted(set(names) - known)
    if unknown:
        raise SystemExit(f"--cases: unknown {unknown}; known: all, {sorted(groups)}, {[c.name for c in CASES]}")
    return [c for c in CASES if "all" in names or c.name in names or c.group in names]


class Budget:
    """Skips a case that would end past ``--time-budget``: the estimate is the wall time per clip of the last case
    run in the same precision (any case's longest before one of that precision has run) times the batch."""

    def __init__(self, started: float, seconds: float) -> None:
        self.started, self.seconds = started, seconds
        self.per_clip_s: dict[str, float] = {}

    def allows(self, case: Case) -> bool:
        per_clip = self.per_clip_s.get(case.precision, max(self.per_clip_s.values(), default=0.0))
        return time.perf_counter() - self.started + per_clip * case.batch <= self.seconds

    def record(self, case: Case, result: Result) -> None:
        if result.case_wall_s is not None and result.status == "ok":
            self.per_clip_s[case.precision] = result.case_wall_s / result.batch


def run_all(cases: Sequence[Case], spec: ModelSpec, device: torch.device, args: argparse.Namespace,
            save: Callable[[list[Result]], None]) -> list[Result]:
    """Batch-1 cases in order, then each sweep case's larger batches (stopping at OOM or < 5 % gain)."""
    budget = Budget(args.started, args.time_budget)
    results: list[Result] = []

    def one(case: Case) -> Result:
        if not budget.allows(case):
            result = Result(case.name, case.group, case.precision, case.checkpointing, case.rank, case.batch,
                            case.optimizer, case.tf32, status="skipped: time budget")
            LOG.warning("time budget: skipping %s batch %d", case.name, case.batch)
        else:
            LOG.info("case %s batch %d", case.name, case.batch)
            result = bench_case(case, spec, device, args)
            budget.record(case, result)
        results.append(result)
        save(results)
        return result

    firsts = {case.name: one(case) for case in cases}
    for case in cases:
        best = firsts[case.name]
        if not case.sweep or best.status != "ok":
            continue
        for batch in args.batches:
            result = one(dataclasses.replace(case, batch=batch))
            if result.status != "ok" or (result.clips_per_hour or 0) < (best.clips_per_hour or 0) * MIN_BATCH_GAIN:
                break
            best = result
        best.best_batch = True
    save(results)
    return results


# ---------------------------------------------------------------------------------------------- output
def environment(device: torch.device, spec: ModelSpec, args: argparse.Namespace) -> dict[str, Any]:
    n = clip_samples(args.seconds)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"implementation": "ours (acestep_core.training.TrainingRun)", "gpu": gpu, "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": args.commit or _git_commit(), "device": str(device),
            "weights": "random tiny" if args.tiny else "random full-size", "seconds": args.seconds,
            "wav_samples": n, "latent_frames": latent_frames(n), "teacher_frames": teacher_frames(n),
            "lyric_tokens": args.lyric_tokens, "prompt_tokens": PROMPT_TOKENS, "steps": args.steps,
            "warmup": args.warmup, "lora": f"rsLoRA alpha {RAPMACHINE_ALPHA:g}, RapMachine targets",
            "not_built": not_built_gib(spec, args.tiny)}


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cell(result: Result, column: str) -> str:
    value = {"case": result.case + (" *" if result.best_batch else ""), "ckpt": result.ckpt}.get(column)
    return value if value is not None else _fmt(getattr(result, column))


def markdown_table(results: Sequence[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, c) for c in COLUMNS) + " |" for r in results]
    return "\n".join(lines)


def write_json(path: str | None, env: dict[str, Any], results: Sequence[Result]) -> None:
    if path:
        payload = {"environment": env, "results": [asdict(r) for r in results]}
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- main
def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_train", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--cases", type=lambda s: s.split(","), default=["all"],
                   help=f"comma separated case names or groups: all, faithful, fast, light, "
                        f"{', '.join(c.name for c in CASES)}")
    p.add_argument("--seconds", type=float, default=240.0, help="clip length (the dataset keeps the first 240 s)")
    p.add_argument("--steps", type=int, default=5, help="timed optimiser steps per case")
    p.add_argument("--warmup", type=int, default=2, help="untimed optimiser steps first")
    p.add_argument("--batches", type=_ints, default=[2, 4, 8], help="batch sizes the fast cases try after 1")
    p.add_argument("--lyric-tokens", type=int, default=LYRIC_TOKENS)
    p.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and results here (after every case)")
    p.add_argument("--time-budget", type=float, default=math.inf,
                   help="skip cases that would end after this many seconds (estimate from the cases run so far)")
    p.add_argument("--commit", default=None, help="the commit measured (default: git rev-parse HEAD, if a checkout)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    args.selected = select_cases(args.cases)
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    args.started = time.perf_counter()
    device = torch.device(args.device)
    spec = tiny_spec() if args.tiny else MODEL_SPECS["ace-step-v1-3.5b"]
    env = environment(device, spec, args)
    LOG.info("environment: %s", env)
    results = run_all(args.selected, spec, device, args, save=lambda r: write_json(args.json, env, r))
    print(f"OURS (TrainingRun), GPU: {env['gpu']}, torch {env['torch']}, CUDA {env['cuda']}, weights: "
          f"{env['weights']}, {args.seconds:g} s clips ({env['latent_frames']} latent frames), lyrics "
          f"{args.lyric_tokens} tokens, REPA on (cached features), {args.steps} timed steps after {args.warmup}; "
          f"* = best batch")
    print(markdown_table(results))
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""Speed and memory of the ORIGINAL ACE-Step v1 LoRA trainer's step (``trainer.py``), for ``bench/bench_train.py``.

Usage (same machine, same run as ``bench_train``)::

    python bench/bench_train_original.py --ace-step-root PATH [--device cuda] [--ranks 256,64] [--batch 1]
        [--seconds 240] [--steps 5] [--warmup 2] [--lyric-tokens 1024] [--time-budget S] [--json OUT] [--tiny]

This file is ours (Apache-2.0). It contains none of the original code: it imports an external checkout of
ace-step/ACE-Step (``PATH`` holds its ``trainer.py`` and ``acestep/``) and runs the trainer's own methods. What
is replaced: the checkpoint and hub loading (random full-size weights instead), the UMT5 tokenizer (a fixed
64-token prompt), the lyric tokenizer and language segmentation (random lyric ids of ``--lyric-tokens``, as
``bench_original``), and modules the step never calls whose packages may be missing (``datasets``; ``librosa``
and ``torchvision`` only when not installed: ``torchvision``'s ``Normalize`` then by a stub computing
``(x - mean) / std``, which is what the DCAE encode uses it for).

The trainer module (``Pipeline(LightningModule)``) is built without its ``__init__``'s file loading:
``Pipeline.__new__`` + ``LightningModule.__init__``, ``save_hyperparameters`` with the defaults of
``Pipeline.__init__``'s signature (``max_steps`` = the CLI default 2,000,000), then the attributes its
``__init__`` sets, made the way it makes them: ``scheduler`` = its ``get_scheduler()``; ``transformers`` = the
original ``ACEStepTransformer2DModel`` (full size, random, ``.float()``), ``enable_gradient_checkpointing()``,
``add_adapter(peft.LoraConfig(**config), adapter_name)`` with the RapMachine config
(``config/zh_rap_lora_config.json``: r 256, alpha 32, rsLoRA, 8 targets; r 64 = the same with r 64),
``.train()``; ``dcae`` = the original ``MusicDCAE`` (random ``AutoencoderDC`` + vocoder, fp32); the text encoder
= transformers ``UMT5EncoderModel`` of the real config (random, fp32); ``mert_model`` = a transformers
``HubertModel`` of MERT-v1-330M's shape (our ``MERT_V1_330M_CONFIG``: 24 x 1024, 16 heads, FF 4096, pre-LN, the
HuBERT conv front-end) - a proxy: MERT's own class is remote code (``trust_remote_code``), and with MERT's
released settings (no CQT branch, no deepnorm, weight-norm positional conv) it computes the same layers;
``hubert_model`` = ``HubertModel`` of mHuBERT-147's config; both ``eval()`` and frozen; the two ``Resample``
modules as its ``__init__``; ``ssl_coeff``. The module is then moved to the device (what Lightning does).
Without a Lightning ``Trainer``, ``plot_step`` (eval rendering every 2,000 steps), ``log`` and ``lr_schedulers``
are no-ops on the instance.

The batch: the original dataset's own ``get_full_features`` (prompt draw, lyric cut, speaker zeros) and
``collate_fn`` on random 48 kHz stereo clips of ``--seconds``, pinned as its ``DataLoader(pin_memory=True)``
pins it. One step, as Lightning runs it at ``precision=32`` with ``gradient_clip_val=0.5``: the batch to the
device, ``training_step`` (= ``run_step``: ``preprocess`` = MERT + mHuBERT features, UMT5, DCAE encode; CFG
dropout; timesteps; the transformer with REPA; the loss), ``loss.backward()``, ``clip_grad_norm_(0.5)`` over the
optimiser's parameters, ``optimizer.step()`` of the trainer's own ``configure_optimizers()`` (AdamW betas
(0.8, 0.9), weight decay 1e-2, LambdaLR), the schedule step, ``zero_grad``. Lightning's own per-step overhead
(logging, progress bar, callbacks) is not included. Importing the trainer sets its global flags (TF32 matmuls,
``cudnn.benchmark`` off): that is the original's behaviour.

Timing: ``--warmup`` steps untimed, then ``--steps`` timed between device syncs; ``s_per_step`` is the median,
``clips_per_hour = 3600 * batch / s_per_step``. Breakdown (median of the timed steps, each part between syncs):
``mert_s``, ``mhubert_s``, ``text_s``, ``dcae_s`` and their enclosing ``preprocess_s``; ``rest_s`` =
``s_per_step - preprocess_s`` (transfer, transformer forward + backward, optimiser). Memory as ``bench_train``:
``construction_peak_gib`` (building), ``train_peak_gib`` / ``train_peak_reserved_gib`` (from the first step on).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import gc
import importlib
import importlib.util
import inspect
import json
import logging
import math
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as ``python bench/bench_train_original.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acestep_core.config import MODEL_SPECS, ModelSpec  # noqa: E402
from bench.bench_generate import _fmt, tiny_spec  # noqa: E402
from bench.bench_original import (  # noqa: E402
    _module,
    _random,
    build_music_dcae,
    build_text_encoder,
    build_transformer,
    install_stubs,
)
from bench.bench_train import LYRIC_TOKENS, PROMPT_TOKENS, TAGS, _git_commit, clip_samples  # noqa: E402

LOG = logging.getLogger("bench_train_original")
RAPMACHINE = {"r": 256, "lora_alpha": 32, "use_rslora": True,  # config/zh_rap_lora_config.json
              "target_modules": ["speaker_embedder", "linear_q", "linear_k", "linear_v", "to_q", "to_k", "to_v",
                                 "to_out.0"]}
ADAPTER_NAME = "chinese_rap_lora"  # the trainer's --exp_name default
CLI_MAX_STEPS = 2_000_000  # the trainer's --max_steps default (the LR decay horizon)
GRAD_CLIP = 0.5  # --gradient_clip_val default, algorithm "norm"
PARTS = ("mert_s", "mhubert_s", "text_s", "dcae_s", "preprocess_s")
COLUMNS = ("case", "r", "batch", "s_per_step", "clips_per_hour", "preprocess_s", "rest_s", "mert_s", "mhubert_s",
           "text_s", "dcae_s", "train_peak_gib", "train_peak_reserved_gib", "construction_peak_gib", "status")


@dataclass
class Result:
    case: str
    r: int
    batch: int
    status: str = "ok"
    s_per_step: float | None = None
    s_per_step_min: float | None = None
    s_per_step_max: float | None = None
    clips_per_hour: float | None = None
    preprocess_s: float | None = None
    rest_s: float | None = None
    mert_s: float | None = None
    mhubert_s: float | None = None
    text_s: float | None = None
    dcae_s: float | None = None
    first_step_s: float | None = None
    construction_peak_gib: float | None = None
    resident_gib: float | None = None
    train_peak_gib: float | None = None
    train_peak_reserved_gib: float | None = None
    lora_params: int | None = None
    loss: float | None = None
    case_wall_s: float | None = None
    step_times: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- import
def _normalize_stub(mean: float, std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: (x - mean) / std


def _compose_stub(fns: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    return lambda x: functools.reduce(lambda acc, fn: fn(acc), fns, x)


@contextlib.contextmanager
def missing_deps() -> Iterator[list[str]]:
    """While the trainer imports: stubs for ``datasets`` (the dataset's ``load_from_disk``, never called here),
    and ``librosa`` / ``torchvision`` when not installed; removed afterwards. The libraries that probe for
    optional packages are imported first, so none of them sees a stub."""
    for name in ("diffusers", "transformers", "peft", "pytorch_lightning", "torchmetrics", "matplotlib",
                 "torchaudio", "transformers.models.umt5", "transformers.models.hubert"):
        importlib.import_module(name)
    stubs: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("datasets") is None:
        stubs["datasets"] = _module("datasets", load_from_disk=None)
    if importlib.util.find_spec("librosa") is None:
        stubs["librosa"] = _module("librosa")
    if importlib.util.find_spec("torchvision") is None:
        transforms = _module("torchvision.transforms", Compose=_compose_stub, Normalize=_normalize_stub)
        stubs["torchvision"] = _module("torchvision", transforms=transforms)
        stubs["torchvision.transforms"] = transforms
    sys.modules.update(stubs)
    try:
        yield sorted(stubs)
    finally:
        for name in stubs:
            sys.modules.pop(name, None)


def import_trainer(root: str) -> types.SimpleNamespace:
    """The original's ``trainer`` module and the model modules, imported from ``root``."""
    path = Path(root)
    if not (path / "trainer.py").is_file() or not (path / "acestep" / "pipeline_ace_step.py").is_file():
        raise FileNotFoundError(f"{root}: expected the original's trainer.py and acestep/pipeline_ace_step.py there")
    sys.path.insert(0, str(path.resolve()))
    stubbed = install_stubs()
    with missing_deps() as optional:
        trainer = importlib.import_module("trainer")
    LOG.info("imported %s; stubbed modules: %s", trainer.__file__, stubbed + optional)
    return types.SimpleNamespace(
        trainer=trainer, dataset=importlib.import_module("acestep.text2music_dataset"),
        transformer=importlib.import_module("acestep.models.ace_step_transformer"),
        dcae=importlib.import_module("acestep.music_dcae.music_dcae_pipeline"),
        vocoder=importlib.import_module("acestep.music_dcae.music_vocoder"))


# ---------------------------------------------------------------------------------------------- models
class FakeTextTokenizer:
    """Answers ``text_tokenizer(texts, return_tensors="pt", padding=True, ...)`` with 64 fixed random ids."""

    def __init__(self, vocab_size: int, gen: torch.Generator) -> None:
        self.ids = torch.randint(2, vocab_size, (1, PROMPT_TOKENS), generator=gen)

    def __call__(self, texts: Sequence[str], **_kwargs: Any) -> dict[str, torch.Tensor]:
        ids = self.ids.repeat(len(texts), 1)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


MERT_ONLY_KEYS = ("model_type", "sample_rate", "deepnorm", "attention_relax", "feature_extractor_cqt",
                  "feature_extractor_cqt_bins", "num_feat_extract_layers")


def teacher_configs(spec: ModelSpec, tiny: bool) -> dict[str, Any]:
    """Our teacher configs (``acestep_core.teachers``): the released shapes, or tiny ones of the heads' widths."""
    from acestep_core.teachers import TEACHERS, HubertConfig

    if not tiny:
        return {name: t.config for name, t in TEACHERS.items()}
    dims = dict(zip(spec.transformer.ssl_names, spec.transformer.ssl_latent_dims, strict=True))
    return {name: HubertConfig.tiny(hidden_size=dims[name], conv_pos_groups=4,
                                    stable_layer_norm=TEACHERS[name].config.do_stable_layer_norm) for name in TEACHERS}


def build_teacher(cfg: Any, device: torch.device, gen: torch.Generator) -> Any:
    """transformers ``HubertModel`` of ``cfg`` (our ``HubertConfig``), random, fp32, eval, frozen."""
    from transformers import HubertConfig as HFHubertConfig
    from transformers import HubertModel

    keys = {k: v for k, v in cfg.to_dict().items() if k not in MERT_ONLY_KEYS}
    return _random(lambda: HubertModel(HFHubertConfig(**keys)), device, torch.float32, gen)


def build_pipeline(orig: Any, spec: ModelSpec, lora: dict[str, Any], device: torch.device, tiny: bool) -> Any:
    """The trainer's ``Pipeline`` with random models (see the module docstring), on ``device``."""
    import peft
    import torchaudio
    from pytorch_lightning import LightningModule

    gen = torch.Generator(device="cpu").manual_seed(0)
    dev_gen = torch.Generator(device=device).manual_seed(0)
    pipeline_cls = orig.trainer.Pipeline
    hparams = {name: p.default for name, p in inspect.signature(pipeline_cls.__init__).parameters.items()
               if name != "self"}
    hparams.update(max_steps=CLI_MAX_STEPS, adapter_name=ADAPTER_NAME, lora_config_path="<in memory>")
    pipe = pipeline_cls.__new__(pipeline_cls)
    LightningModule.__init__(pipe)
    pipe.save_hyperparameters(hparams)
    pipe.is_train, pipe.T = True, pipe.hparams.T
    pipe.scheduler = pipe.get_scheduler()
    transformers_model = build_transformer(orig, spec, device, torch.float32, dev_gen).float()
    transformers_model.enable_gradient_checkpointing()
    transformers_model.add_adapter(adapter_config=peft.LoraConfig(**lora), adapter_name=ADAPTER_NAME)
    pipe.adapter_name = ADAPTER_NAME
    pipe.transformers = transformers_model
    pipe.dcae = build_music_dcae(orig, spec, device, torch.float32, dev_gen).float()
    pipe.dcae.requires_grad_(False)
    pipe.text_encoder_model = build_text_encoder(spec, device, torch.float32, dev_gen).float()
    pipe.text_encoder_model.requires_grad_(False)
    pipe.text_tokenizer = FakeTextTokenizer(spec.umt5.vocab_size, gen)
    pipe.transformers.train()
    teachers = teacher_configs(spec, tiny)
    pipe.mert_model = build_teacher(teachers["mert"], device, dev_gen)
    pipe.resampler_mert = torchaudio.transforms.Resample(orig_freq=48000, new_freq=24000)
    pipe.processor_mert = None  # loaded by the original, never used
    pipe.hubert_model = build_teacher(teachers["m-hubert"], device, dev_gen)
    pipe.resampler_mhubert = torchaudio.transforms.Resample(orig_freq=48000, new_freq=16000)
    pipe.processor_mhubert = None
    pipe.ssl_coeff = pipe.hparams.ssl_coeff
    pipe.to(device)  # Lightning's strategy.model_to_device
    pipe.plot_step = lambda *_a, **_k: None  # no Trainer: no eval rendering, logging or scheduler lookup
    pipe.log = lambda *_a, **_k: None
    pipe.lr_schedulers = lambda: None
    return pipe


# ---------------------------------------------------------------------------------------------- batch
def make_batch(orig: Any, spec: ModelSpec, seconds: float, lyric_tokens: int, batch: int, device: torch.device
               ) -> dict[str, Any]:
    """A batch from the original dataset's own ``get_full_features`` + ``collate_fn`` (audio and lyric ids given)."""
    gen = torch.Generator().manual_seed(1)
    n = clip_samples(seconds)
    dataset_cls = orig.dataset.Text2MusicDataset
    ds = dataset_cls.__new__(dataset_cls)
    vocab = spec.transformer.lyric_encoder_vocab_size
    ds.pretrain_ds = [{"keys": f"bench_{i:02d}", "filename": f"bench_{i:02d}.wav", "tags": list(TAGS),
                       "recaption": {}, "speaker_emb_path": "", "norm_lyrics": "la la la",
                       "lyric_token_idx": torch.randint(1, vocab, (lyric_tokens,), generator=gen).tolist()}
                      for i in range(batch)]
    ds.tokenize_lyrics_map = lambda item, *_a, **_k: item  # lyric ids given (the lyric tokenizer is stubbed)
    wavs = [torch.rand(2, n, generator=gen) * 0.2 - 0.1 for _ in range(batch)]
    ds.get_audio = lambda item: wavs[int(item["idx"])]
    out = ds.collate_fn([ds.get_full_features(i) for i in range(batch)])
    pin = device.type == "cuda"
    return {k: v.pin_memory() if pin and isinstance(v, torch.Tensor) else v for k, v in out.items()}


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gib(value: int) -> float:
    return value / 2**30


def install_part_timers(pipe: Any, device: torch.device) -> dict[str, list[float]]:
    """Instance wrappers that time the preprocess parts between device syncs."""
    times: dict[str, list[float]] = {name: [] for name in PARTS}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _sync(device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(device)
            times[name].append(time.perf_counter() - start)
            return out
        return wrapper

    pipe.infer_mert_ssl = timed("mert_s", pipe.infer_mert_ssl)
    pipe.infer_mhubert_ssl = timed("mhubert_s", pipe.infer_mhubert_ssl)
    pipe.get_text_embeddings = timed("text_s", pipe.get_text_embeddings)
    pipe.dcae.encode = timed("dcae_s", pipe.dcae.encode)
    pipe.preprocess = timed("preprocess_s", pipe.preprocess)
    return times


def train_step(pipe: Any, optimizer: Any, scheduler: Any, batch: dict[str, Any], device: torch.device,
               index: int) -> torch.Tensor:
    """One optimiser step as Lightning runs it (precision 32, clip 0.5 by norm, scheduler every step)."""
    loss = pipe.training_step(to_device(batch, device), index)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def run_case(orig: Any, spec: ModelSpec, rank: int, device: torch.device, args: argparse.Namespace) -> Result:
    result = Result(f"original-r{rank}", rank, args.batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    pipe = build_pipeline(orig, spec, {**RAPMACHINE, "r": rank}, device, args.tiny)
    if device.type == "cuda":
        result.construction_peak_gib = _gib(torch.cuda.max_memory_allocated(device))
        result.resident_gib = _gib(torch.cuda.memory_allocated(device))
    result.lora_params = sum(p.numel() for p in pipe.parameters() if p.requires_grad)
    [optimizer], [schedule] = pipe.configure_optimizers()
    scheduler = schedule["scheduler"]
    batch = make_batch(orig, spec, args.seconds, args.lyric_tokens, args.batch, device)
    times = install_part_timers(pipe, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    wall: list[float] = []
    loss = None
    for index in range(args.warmup + args.steps):
        _sync(device)
        start = time.perf_counter()
        loss = train_step(pipe, optimizer, scheduler, batch, device, index)
        _sync(device)
        elapsed = time.perf_counter() - start
        if index == 0:
            result.first_step_s = elapsed
        if index >= args.warmup:
            wall.append(elapsed)
    if device.type == "cuda":
        result.train_peak_gib = _gib(torch.cuda.max_memory_allocated(device))
        result.train_peak_reserved_gib = _gib(torch.cuda.max_memory_reserved(device))
    assert loss is not None
    result.loss = float(loss)
    result.step_times = wall
    result.s_per_step = statistics.median(wall)
    result.s_per_step_min, result.s_per_step_max = min(wall), max(wall)
    result.clips_per_hour = 3600.0 * args.batch / result.s_per_step
    for name in PARTS:
        setattr(result, name, statistics.median(times[name][args.warmup:]))
    result.rest_s = result.s_per_step - (result.preprocess_s or 0.0)
    return result


def bench_case(orig: Any, spec: ModelSpec, rank: int, device: torch.device, args: argparse.Namespace) -> Result:
    started = time.perf_counter()
    status, result = "ok", None
    try:
        result = run_case(orig, spec, rank, device, args)
    except torch.OutOfMemoryError as e:
        status = f"oom: {str(e).splitlines()[0][:160]}"
    gc.collect()  # after the except block: the traceback's frames (and their tensors) are gone
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if result is None:
        result = Result(f"original-r{rank}", rank, args.batch, status=status)
        LOG.warning("original r %d: %s", rank, status)
    result.case_wall_s = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------------------------------- output
def environment(device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    import diffusers
    import peft
    import pytorch_lightning
    import transformers

    root = Path(args.ace_step_root).resolve()
    revision = root / "REVISION"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {"implementation": "original ACE-Step trainer.py (Pipeline.run_step)", "ace_step_root": str(root),
            "ace_step_revision": revision.read_text(encoding="utf-8").strip() if revision.is_file() else "unknown",
            "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "diffusers": diffusers.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "pytorch_lightning": pytorch_lightning.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": args.commit or _git_commit(), "device": str(device),
            "weights": "random tiny" if args.tiny else "random full-size", "seconds": args.seconds,
            "wav_samples": clip_samples(args.seconds), "lyric_tokens": args.lyric_tokens,
            "prompt_tokens": PROMPT_TOKENS, "steps": args.steps, "warmup": args.warmup,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "lora": "RapMachine config (rsLoRA alpha 32, 8 targets) at each rank",
            "mert": "transformers HubertModel of MERT-v1-330M's shape (proxy; MERT's class is remote code)"}


def markdown_table(results: Sequence[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(getattr(r, c)) for c in COLUMNS) + " |" for r in results]
    return "\n".join(lines)


def write_json(path: str | None, env: dict[str, Any], results: Sequence[Result]) -> None:
    if path:
        payload = {"environment": env, "results": [asdict(r) for r in results]}
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python bench/bench_train_original.py", description=__doc__.splitlines()[0])
    p.add_argument("--ace-step-root", required=True, help="folder holding the original's trainer.py and acestep/")
    p.add_argument("--device", default="cuda")
    p.add_argument("--ranks", type=lambda s: [int(v) for v in s.split(",") if v], default=[256, 64],
                   help="LoRA ranks (the RapMachine config otherwise)")
    p.add_argument("--batch", type=int, default=1, help="clips per step (the original's default and only use: 1)")
    p.add_argument("--seconds", type=float, default=240.0)
    p.add_argument("--steps", type=int, default=5, help="timed optimiser steps per case")
    p.add_argument("--warmup", type=int, default=2, help="untimed optimiser steps first")
    p.add_argument("--lyric-tokens", type=int, default=LYRIC_TOKENS)
    p.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and results here (after every case)")
    p.add_argument("--time-budget", type=float, default=math.inf,
                   help="skip cases that would end after this many seconds (estimate from the cases run so far)")
    p.add_argument("--commit", default=None, help="our commit (default: git rev-parse HEAD, if a checkout)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        p.error("--steps and --batch must be >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    started = time.perf_counter()
    device = torch.device(args.device)
    orig = import_trainer(args.ace_step_root)
    spec = tiny_spec() if args.tiny else MODEL_SPECS["ace-step-v1-3.5b"]
    env = environment(device, args)
    LOG.info("environment: %s", env)
    results: list[Result] = []
    longest = 0.0
    for rank in args.ranks:
        if time.perf_counter() - started + longest > args.time_budget:
            LOG.warning("time budget: skipping the original at r %d", rank)
            results.append(Result(f"original-r{rank}", rank, args.batch, status="skipped: time budget"))
        else:
            LOG.info("case original r %d", rank)
            results.append(bench_case(orig, spec, rank, device, args))
            longest = max(longest, results[-1].case_wall_s or 0.0)
        write_json(args.json, env, results)
    print(f"ORIGINAL trainer.py ({env['ace_step_root']}), GPU: {env['gpu']}, torch {env['torch']}, diffusers "
          f"{env['diffusers']}, transformers {env['transformers']}, peft {env['peft']}, weights: {env['weights']}, "
          f"{args.seconds:g} s clips, lyrics {args.lyric_tokens} tokens, REPA with online teachers, "
          f"{args.steps} timed steps after {args.warmup}")
    print(markdown_table(results))
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""Planning for ``python -m acestep_core generate``: command-line arguments (+ an optional ``--params`` JSON)
-> a validated :class:`RunPlan`, before any model is loaded.

Everything a user can get wrong is checked here (task and audio combinations, extend windows, generation
values, output paths, the checkpoint path, the device, lyric tokenization); every problem is raised as
:class:`UsageError`, which the entry point reports as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..audio.files import AudioInfo, format_from_path, output_paths, probe_audio
from ..errors import AceStepInputError
from ..runtime.accel import Acceleration
from ..sampling.choices import CFG_TYPES, SCHEDULERS
from ..sampling.choices import SOURCE_TASKS as SRC_AUDIO_TASKS
from ..timing import MAX_DURATION_S
from .params_io import LORA_NONE, ParamsFile, parse_int_list, read_params_file

logger = logging.getLogger("acestep_core.cli")  # the CLI's one logger name

__all__ = ["LoraRequest", "RunPlan", "UsageError", "plan_run", "resolve_device", "resolve_dtype"]


# (flag, GenerationParams field, type, help) for the sampler / guidance knobs, upstream names in kebab-case.
KNOBS: tuple[tuple[str, str, Any, str], ...] = (
    ("--infer-step", "infer_step", int, "sampling steps (default 60)"),
    ("--guidance-scale", "guidance_scale", float, "classifier-free guidance scale (default 15)"),
    ("--scheduler-type", "scheduler_type", str, "euler | heun | pingpong (default euler)"),
    ("--cfg-type", "cfg_type", str, "apg | cfg | cfg_star (default apg)"),
    ("--omega-scale", "omega_scale", float, "granularity scale (default 10)"),
    ("--guidance-interval", "guidance_interval", float, "fraction of steps with guidance (default 0.5)"),
    ("--guidance-interval-decay", "guidance_interval_decay", float, "guidance decay inside the window (0)"),
    ("--min-guidance-scale", "min_guidance_scale", float, "guidance floor for the decay (default 3)"),
    ("--oss-steps", "oss_steps", str, "optimal-step subset, e.g. '16,29,52,...' (default none)"),
    ("--guidance-scale-text", "guidance_scale_text", float, "double-condition text scale (default 0 = off)"),
    ("--guidance-scale-lyric", "guidance_scale_lyric", float, "double-condition lyric scale (default 0 = off)"),
    ("--retake-variance", "retake_variance", float, "retake/repaint noise mix 0..1 (default 0.5; extend 1.0)"),
    ("--repaint-start", "repaint_start", float, "repaint region start, seconds"),
    ("--repaint-end", "repaint_end", float, "repaint region end, seconds"),
    ("--edit-n-min", "edit_n_min", float, "edit: first edited step as a fraction (default 0)"),
    ("--edit-n-max", "edit_n_max", float, "edit: last edited step as a fraction (default 1)"),
    ("--edit-n-avg", "edit_n_avg", int, "edit: velocity samples averaged per step (default 1)"),
    ("--ref-audio-strength", "ref_audio_strength", float, "audio2audio: reference strength 0..1 (default 0.5)"),
    ("--batch-size", "batch_size", int, "songs generated at once (default 1)"),
)
CHOICES = {"scheduler_type": SCHEDULERS, "cfg_type": CFG_TYPES}
ERG_FLAGS = ("use_erg_tag", "use_erg_lyric", "use_erg_diffusion")


class UsageError(AceStepInputError):
    """Bad command-line input; reported as one line with exit code 2."""


@dataclass(frozen=True)
class LoraRequest:
    """A LoRA to apply: a local file/folder (``path``) or a Hugging Face repo id (``repo``, fetched when run).

    ``rule`` is ``trained`` for ``--lora`` (strength 1.0 = as trained) and ``original_app`` for a ``--params``
    file's ``lora_weight`` (scale = lora_weight, as the original app); ``label`` is what the sidecar records.
    """

    strength: float
    rule: str
    label: str
    path: Path | None = None
    repo: str | None = None


@dataclass
class RunPlan:
    """Everything validated before any model is loaded."""

    params: Any  # GenerationParams
    src_audio: AudioInfo | None
    ref_audio: AudioInfo | None
    checkpoint: Path | None  # None = the default download
    lyric_tokens: dict[str, tuple[list[int], list[int]]]  # lyrics text -> (ids, mask)
    outputs: list[Path]
    audio_format: str
    save_latents: Path | None
    device: torch.device
    dtype: torch.dtype
    overlapped_decode: bool = False
    loras: tuple[LoraRequest, ...] = ()
    low_vram: bool = False  # explicit offload (acestep_core.runtime.offload); only on an accelerator
    fp8: bool = False  # transformer DiT weights stored in float8 (acestep_core.runtime.quant)
    acceleration: Acceleration = field(default_factory=Acceleration)  # how denoiser passes run (runtime.accel)


def _read_text_arg(value: str | None, what: str) -> str | None:
    """``TEXT`` as is, ``@FILE`` -> the file's UTF-8 text."""
    if value is None or not value.startswith("@"):
        return value
    return _read_text_file(Path(value[1:]), what)


def _read_text_file(path: Path, what: str) -> str:
    try:
        return path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{what}: cannot read {path}: {e}") from e


def _explicit_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``GenerationParams`` fields set on the command line (flags left out are absent)."""
    fields: dict[str, Any] = {}
    lyrics = _read_text_arg(args.lyrics, "--lyrics")
    if args.lyrics_file is not None:
        if lyrics is not None:
            raise UsageError("give either --lyrics or --lyrics-file, not both")
        lyrics = _read_text_file(args.lyrics_file, "--lyrics-file")
    names = ["prompt", "audio_duration", "task", "edit_target_prompt", *[k[1] for k in KNOBS], *ERG_FLAGS]
    for name in names:
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    if lyrics is not None:
        fields["lyrics"] = lyrics
        if not set("\n\0") & set(lyrics) and 0 < len(lyrics) < 256 and Path(lyrics).expanduser().is_file():
            logger.warning("--lyrics %r is used as the lyrics text; to read that file write --lyrics @%s",
                           lyrics, lyrics)
    if args.edit_target_lyrics is not None:
        fields["edit_target_lyrics"] = _read_text_arg(args.edit_target_lyrics, "--edit-target-lyrics")
    if args.ref_audio_strength_alias is not None:
        fields["ref_audio_strength"] = args.ref_audio_strength_alias
    for flag, name in (("--seed", "manual_seeds"), ("--retake-seeds", "retake_seeds")):
        if getattr(args, name) is not None:
            fields[name] = parse_int_list(getattr(args, name), name=flag)
    if "oss_steps" in fields:
        fields["oss_steps"] = parse_int_list(fields["oss_steps"], name="--oss-steps")
    return fields


def _normalise_seeds(fields: dict[str, Any], explicit: dict[str, Any]) -> None:
    """Seeds as ``GenerationParams`` takes them: one seed -> an int (used for every item, as upstream), several
    -> a list. A file recorded from a batch run (several ``actual_seeds``) re-runs the whole batch unless
    ``--batch-size`` is given."""
    seeds = fields.get("manual_seeds")
    if "manual_seeds" not in explicit and "batch_size" not in explicit and seeds and len(seeds) > 1:
        fields["batch_size"] = len(seeds)
    for name in ("manual_seeds", "retake_seeds", "oss_steps"):
        value = fields.get(name)
        if isinstance(value, tuple):
            fields[name] = value[0] if len(value) == 1 and name != "oss_steps" else list(value)


def _resolve_task(fields: dict[str, Any], args: argparse.Namespace, src: Path | None, ref: Path | None) -> str:
    task = fields.get("task", "text2music")
    if ref is not None and args.task is None and task == "text2music":
        task = "audio2audio"  # upstream renames the task when audio2audio is enabled with a reference
    if args.extend_left is not None or args.extend_right is not None:
        if args.task not in (None, "extend"):
            raise UsageError(f"--extend-left/--extend-right need --task extend, got --task {args.task}")
        task = "extend"
    if task == "audio2audio" or (fields.get("audio2audio_enable") and ref is not None):
        if ref is None:
            raise UsageError("--task audio2audio needs --ref-audio FILE (the reference song)")
        fields["audio2audio_enable"] = True
        task = "audio2audio"  # GenerationParams: task text2music + audio2audio_enable (+ ref latents)
    elif ref is not None:
        raise UsageError(f"--ref-audio is only used by --task audio2audio (got --task {task})")
    if task in SRC_AUDIO_TASKS and src is None:
        raise UsageError(f"--task {task} needs --src-audio FILE (the song to {task})")
    if task not in SRC_AUDIO_TASKS and src is not None:
        raise UsageError(f"--src-audio is only used by --task {'/'.join(SRC_AUDIO_TASKS)} (got --task {task})")
    fields["task"] = "text2music" if task == "audio2audio" else task
    return task


def _apply_task_rules(fields: dict[str, Any], task: str, args: argparse.Namespace, src: AudioInfo | None) -> None:
    """Upstream UI conventions: extend = repaint outside the source with variance 1; edit targets default to
    the source text; repaint needs a region."""
    if task == "extend" and src is not None and (args.extend_left is not None or args.extend_right is not None):
        _extend_window(fields, src, args.extend_left or 0.0, args.extend_right or 0.0)
    elif task == "extend" and fields.get("repaint_start", 0.0) >= 0 and fields.get("repaint_end", 0.0) <= (
            src.duration_s if src else 0.0):
        raise UsageError("--task extend needs --extend-left and/or --extend-right SECONDS")
    if task == "repaint" and fields.get("repaint_end", 0.0) <= fields.get("repaint_start", 0.0):
        raise UsageError("--task repaint needs --repaint-start and --repaint-end (seconds, end > start), got "
                         f"{fields.get('repaint_start', 0.0)} .. {fields.get('repaint_end', 0.0)}")
    for target, source in (("edit_target_prompt", "prompt"), ("edit_target_lyrics", "lyrics")):
        if task == "edit" and fields.get(target) is None:
            fields[target] = fields.get(source) or ""


def _extend_window(fields: dict[str, Any], src: AudioInfo, left_s: float, right_s: float) -> None:
    """``--extend-left/--extend-right`` -> upstream ``repaint_start``/``repaint_end`` (spec 6.4).

    Upstream measures ``repaint_end`` on the left-extended timeline when extending left (its UI's
    ``duration + right`` therefore loses the left length on the right); the end is placed half a frame past
    the wanted frame so truncation to frames gives exactly ``int(right_s * 10.77)`` new frames on the right.
    """
    from ..audio.codec import encoded_latent_frames
    from ..sampling.windows import extend_window_for_frames

    src_frames = encoded_latent_frames(src.frames, src.sample_rate)
    try:
        start, end = extend_window_for_frames(src_frames, left_s, right_s, names=("--extend-left", "--extend-right"))
    except AceStepInputError as error:
        raise UsageError(str(error)) from error
    fields["repaint_start"], fields["repaint_end"] = start, end
    fields.setdefault("retake_variance", 1.0)  # upstream UI: extend always regenerates from pure noise


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu (upstream's order); explicit devices must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UsageError(f"--device {name!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from e
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if device.type not in available:
        raise UsageError(f"--device {name}: unsupported device type; use auto, cpu, cuda, cuda:N or mps")
    if not available[device.type]:
        raise UsageError(f"--device {name}: {device.type.upper()} is not available on this machine/torch build; "
                         "use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` = bf16 on CUDA, fp32 elsewhere (upstream forces fp32 on MPS)."""
    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return table[name]


def _generation_params(fields: dict[str, Any]) -> Any:
    from ..sampling.pipeline import GenerationParams

    try:
        params = GenerationParams(**fields)
        params.validate()
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e
    return params


def _tokenize_lyrics(args: argparse.Namespace, params: Any) -> dict[str, tuple[list[int], list[int]]]:
    """Lyric ``(ids, mask)`` per lyrics text, computed before loading the model so that a missing vocabulary,
    a missing language extra or too-long lyrics fail early. Empty lyrics are not tokenized (upstream)."""
    texts = [params.lyrics, params.edit_target_lyrics if params.task == "edit" else None]
    texts = [text for text in texts if text]
    if not texts:
        return {}
    from ..lyrics import LyricTokenizer, resolve_lyric_vocab

    try:  # the download (a few hundred KB, sha256-checked) only when no local copy is found
        vocab = resolve_lyric_vocab(args.lyric_vocab, checkpoint=args.checkpoint, allow_download=True)
        tokenizer = LyricTokenizer.from_vocab(vocab)
    except (OSError, AceStepInputError) as e:  # LyricVocabError / LyricVocabNotFoundError are AceStepInputErrors
        raise UsageError(f"--lyric-vocab: {e}") from e
    try:  # too-long lyrics, a missing language extra, ...
        return {text: (tokens.ids, tokens.mask) for text in texts for tokens in [tokenizer.encode(text)]}
    except AceStepInputError as e:
        raise UsageError(str(e)) from e


def _params_lora(base: ParamsFile, params_path: Path | None) -> LoraRequest | None:
    """The ``--params`` file's LoRA: a local path (as written, or relative to the JSON) or a Hub repo id."""
    name = base.lora_name_or_path
    if name == LORA_NONE:
        return None
    where = f"--params {params_path}: lora_name_or_path {name!r}"
    candidates = [Path(name).expanduser()]
    if params_path is not None and not candidates[0].is_absolute():
        candidates.append(params_path.expanduser().resolve().parent / name)
    for path in candidates:
        if path.exists():
            return LoraRequest(base.lora_weight, "original_app", name, path=path)
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) and not name.endswith(".safetensors"):
        return LoraRequest(base.lora_weight, "original_app", name, repo=name)  # the original app downloads it
    raise UsageError(f"{where}: not found (neither a local LoRA folder/file nor a Hugging Face repo id); point it "
                     "at the LoRA folder (e.g. a download of ACE-Step/ACE-Step-v1-chinese-rap-LoRA) or its repo id, "
                     "or set \"lora_name_or_path\": \"none\" to run without it")


def _plan_loras(args: argparse.Namespace, base: ParamsFile) -> tuple[LoraRequest, ...]:
    """``--params`` LoRA (original app's scale) first, then every ``--lora PATH[:STRENGTH]`` (as trained)."""
    from ..lora.merge import parse_lora_arg

    requests = []
    from_params = _params_lora(base, args.params)
    if from_params is not None:
        requests.append(from_params)
    for text in getattr(args, "loras", None) or []:
        path, strength = parse_lora_arg(text)
        if not path.exists():
            raise UsageError(f"--lora {text}: {path} not found (give a LoRA .safetensors file or a folder with "
                             "pytorch_lora_weights.safetensors, optionally followed by :STRENGTH)")
        if not math.isfinite(strength):
            raise UsageError(f"--lora {text}: strength must be a finite number")
        requests.append(LoraRequest(strength, "trained", str(path), path=path))
    return tuple(requests)


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Validate the command line (and ``--params``) into a :class:`RunPlan`; raises :class:`UsageError` for
    every bad input (any :class:`~acestep_core.errors.AceStepInputError` raised while planning)."""
    try:
        return _plan(args)
    except UsageError:
        raise
    except AceStepInputError as e:  # bad --params file, audio, seeds, ...: same message, as a usage error
        raise UsageError(str(e)) from e


def _plan(args: argparse.Namespace) -> RunPlan:
    base = read_params_file(args.params) if args.params is not None else ParamsFile()
    loras = _plan_loras(args, base)
    explicit = _explicit_fields(args)
    fields = {**base.fields, **explicit}
    _normalise_seeds(fields, explicit)
    src_path = args.src_audio if args.src_audio is not None else base.src_audio_path
    ref_path = args.ref_audio
    if ref_path is None and fields.get("audio2audio_enable"):  # upstream ignores a recorded reference otherwise
        ref_path = base.ref_audio_input
    task = _resolve_task(fields, args, src_path, ref_path)
    src = probe_audio(src_path, what="--src-audio") if src_path is not None else None
    ref = probe_audio(ref_path, what="--ref-audio") if ref_path is not None else None
    _apply_task_rules(fields, task, args, src)
    source = src or ref
    if source is not None:  # the output length follows the source/reference; recorded as upstream's duration
        fields.setdefault("audio_duration", min(source.duration_s, MAX_DURATION_S))
    params = _generation_params(fields)
    try:
        outputs = output_paths(args.output, batch_size=params.batch_size, default_format=base.format or "wav")
    except AceStepInputError as e:
        raise UsageError(f"--{e}") from e
    if args.checkpoint is not None and not args.checkpoint.expanduser().exists():
        raise UsageError(f"--checkpoint {args.checkpoint}: not found (give the ACE-Step-v1-3.5B folder or a "
                         "ComfyUI ace_step_v1_3.5b.safetensors file, or leave it out to download)")
    lyric_tokens = _tokenize_lyrics(args, params)
    device = resolve_device(args.device)
    low_vram, fp8 = _memory_options(args, device)
    return RunPlan(params=params, src_audio=src, ref_audio=ref, checkpoint=args.checkpoint,
                   lyric_tokens=lyric_tokens, outputs=outputs, audio_format=format_from_path(outputs[0]),
                   save_latents=args.save_latents, device=device, dtype=resolve_dtype(args.dtype, device),
                   overlapped_decode=args.overlapped_decode, loras=loras, low_vram=low_vram, fp8=fp8,
                   acceleration=_acceleration(args, device))


def _acceleration(args: argparse.Namespace, device: torch.device) -> Acceleration:
    """No speed flag: ``Acceleration.fastest(compile=False)``, CUDA graphs where they are safe (planned when the
    passes run; a CLI run is one process and one song, where compiling would cost tens of seconds to save tenths).
    Explicit choices: ``--eager`` (batched guidance only), ``--cuda-graphs`` (CUDA only; logged as a no-op
    elsewhere), ``--compile`` (needs Triton on CUDA; with ``--cuda-graphs``: both), ``--no-batch-guidance``."""
    cuda_graphs, compile_ = bool(getattr(args, "cuda_graphs", False)), bool(getattr(args, "compile", False))
    batch_guidance, eager = bool(getattr(args, "batch_guidance", True)), bool(getattr(args, "eager", False))
    if not (cuda_graphs or compile_ or eager or not batch_guidance):
        return Acceleration.fastest(compile=False)
    if cuda_graphs and device.type != "cuda":
        logger.info("--cuda-graphs has no effect on --device %s (CUDA graphs need a CUDA device)", device)
        cuda_graphs = False
    if compile_:
        if not hasattr(torch, "compile"):
            raise UsageError(f"--compile needs torch.compile (torch >= 2.0, this is {torch.__version__}); leave out "
                             "--compile")
        if device.type == "cuda" and importlib.util.find_spec("triton") is None:
            raise UsageError("--compile on CUDA needs Triton, which is not installed (pip install triton, or the "
                             "triton-windows package on Windows); leave out --compile")
    return Acceleration(batch_guidance=batch_guidance, cuda_graphs=cuda_graphs, compile=compile_)


def _memory_options(args: argparse.Namespace, device: torch.device) -> tuple[bool, bool]:
    """``--low-vram`` (a no-op on the CPU, logged) and ``--fp8`` (needs float8 support, not on MPS)."""
    low_vram, fp8 = bool(getattr(args, "low_vram", False)), bool(getattr(args, "fp8", False))
    if low_vram and device.type == "cpu":
        logger.info("--low-vram has no effect on --device cpu (everything already lives in CPU memory)")
        low_vram = False
    if fp8:
        from ..runtime.quant import fp8_supported

        if not fp8_supported():
            raise UsageError(f"--fp8 needs torch.float8_e4m3fn, which torch {torch.__version__} lacks; upgrade "
                             "torch to 2.1 or newer, or leave out --fp8")
        if device.type == "mps":
            raise UsageError("--fp8: float8 weights are not supported on MPS; use --device cuda or cpu, or leave "
                             "out --fp8")
    return low_vram, fp8

"""Planning for ``python -m acestep_core generate``: command-line arguments (+ an optional ``--params`` JSON)
-> a validated :class:`RunPlan`, before any model is loaded.

Everything a user can get wrong is checked here, from the arguments and file headers alone: task and audio
combinations, extend / repaint windows against the source length, source lengths and finite samples
(:mod:`.sources`), generation values, output paths (:mod:`.outputs`), LoRA files against the checkpoint's
transformer shapes (:mod:`.loras`), the checkpoint path, the device and speed options, lyric tokenization. Every
problem is raised as :class:`UsageError` (one line, exit code 2), in the command line's words (:mod:`.words`).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..audio.files import AudioInfo, probe_audio
from ..errors import AceStepInputError
from ..runtime.accel import Acceleration
from ..sampling.choices import CFG_TYPES, SCHEDULERS
from ..sampling.choices import SOURCE_TASKS as SRC_AUDIO_TASKS
from ..timing import LATENT_FRAME_RATE_HZ, MAX_DURATION_S, frames_to_seconds, seconds_to_frames
from .devices import memory_options, resolve_device, resolve_dtype
from .errors import UsageError
from .loras import LoraRequest, plan_loras
from .outputs import OutputPlan, plan_outputs
from .params_io import ParamsFile, parse_int_list, read_params_file
from .sources import check_sources
from .words import in_cli_words

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


@dataclass
class RunPlan:
    """Everything validated before any model is loaded."""

    params: Any  # GenerationParams
    src_audio: AudioInfo | None
    ref_audio: AudioInfo | None
    checkpoint: Path | None  # None = the default download
    lyric_tokens: dict[str, tuple[list[int], list[int]]]  # lyrics text -> (ids, mask)
    outputs: OutputPlan
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
        _warn_about_lyrics_text(lyrics)
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


def _warn_about_lyrics_text(lyrics: str) -> None:
    """Visible warnings for the two classic shell mistakes with ``--lyrics``."""
    if not set("\n\0") & set(lyrics) and 0 < len(lyrics) < 256 and Path(lyrics).expanduser().is_file():
        logger.warning("--lyrics %r is used as the lyrics text; to read that file write --lyrics @%s", lyrics, lyrics)
    if "\\n" in lyrics and "\n" not in lyrics:
        logger.warning("--lyrics contains '\\n' as two characters, not line breaks (shells do not turn \\n into a "
                       "new line inside quotes): write the lyrics in a file and pass --lyrics @FILE, or in bash "
                       "use $'[verse]\\nfirst line\\nsecond line'")


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


def _apply_task_rules(fields: dict[str, Any], task: str, args: argparse.Namespace, src: AudioInfo | None,
                      base: ParamsFile) -> None:
    """Upstream UI conventions: extend = repaint outside the source with variance 1; repaint needs a region; edit
    needs a target that differs from the source (or the source texts, for an original-app edit record)."""
    if task in SRC_AUDIO_TASKS + ("audio2audio",) and args.audio_duration is not None:
        logger.warning("--duration %g is not used by --task %s: the result has the length of the %s song (the "
                       "sidecar records that length); leave out --duration", args.audio_duration, task,
                       "--ref-audio" if task == "audio2audio" else "--src-audio")
    if task == "extend" and src is not None and (args.extend_left is not None or args.extend_right is not None):
        _extend_window(fields, src, args.extend_left or 0.0, args.extend_right or 0.0)
    elif task == "extend" and fields.get("repaint_start", 0.0) >= 0 and fields.get("repaint_end", 0.0) <= (
            src.duration_s if src else 0.0):
        raise UsageError("--task extend needs --extend-left and/or --extend-right SECONDS")
    if task == "repaint" and "repaint_end" not in fields:
        raise UsageError("--task repaint needs --repaint-start and --repaint-end (seconds, end > start)")
    if task == "edit":
        _edit_rules(fields, args, base)


def _edit_rules(fields: dict[str, Any], args: argparse.Namespace, base: ParamsFile) -> None:
    if base.edit_source_unknown and args.prompt is None and args.lyrics is None and args.lyrics_file is None:
        raise UsageError(f"--params {args.params}: an edit record of the original app holds only the target tags "
                         "and lyrics, not the source song's; give the source song's tags and lyrics with --tags and "
                         "--lyrics to re-run it")
    for target, source in (("edit_target_prompt", "prompt"), ("edit_target_lyrics", "lyrics")):
        if fields.get(target) is None:
            fields[target] = fields.get(source) or ""
    if (fields["edit_target_prompt"], fields["edit_target_lyrics"]) == (fields.get("prompt") or "",
                                                                        fields.get("lyrics") or ""):
        raise UsageError("--task edit: the target tags and lyrics are the same as the source's, so nothing would "
                         "change; give --edit-target-tags and/or --edit-target-lyrics with the new text")


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


def _generation_params(fields: dict[str, Any]) -> Any:
    from ..sampling.pipeline import GenerationParams

    try:
        params = GenerationParams(**fields)
        params.validate()
    except (TypeError, ValueError) as e:
        raise UsageError(in_cli_words(str(e))) from e
    return params


CLI_VOCAB_HINT = ("Put it next to the checkpoint as vocab.json, or pass --lyric-vocab FILE; without either, the "
                  "command line downloads it (a few hundred KB) when online.")


def _tokenize_lyrics(args: argparse.Namespace, params: Any) -> dict[str, tuple[list[int], list[int]]]:
    """Lyric ``(ids, mask)`` per lyrics text, computed before loading the model so that a missing vocabulary,
    a missing language extra or too-long lyrics fail early; the lyric report's warnings (text that becomes unknown
    tokens, too many tokens for the duration...) are logged. Empty lyrics are not tokenized (upstream)."""
    texts = [params.lyrics, params.edit_target_lyrics if params.task == "edit" else None]
    texts = [text for text in texts if text]
    if not texts:
        return {}
    from ..lyrics import LyricTokenizer, resolve_lyric_vocab
    from ..lyrics.vocab import vocab_message

    try:  # the download (a few hundred KB, sha256-checked) only when no local copy is found
        vocab = resolve_lyric_vocab(args.lyric_vocab, checkpoint=args.checkpoint, allow_download=True)
        tokenizer = LyricTokenizer.from_vocab(vocab)
    except (OSError, AceStepInputError) as e:  # LyricVocabError / LyricVocabNotFoundError are AceStepInputErrors
        raise UsageError(f"--lyric-vocab: {vocab_message(e, CLI_VOCAB_HINT)}") from e
    try:  # too-long lyrics, a missing language extra, ...
        tokens = {text: (t.ids, t.mask) for text in texts for t in [tokenizer.encode(text)]}
        for text in dict.fromkeys(texts):
            for warning in tokenizer.inspect(text, duration_s=params.audio_duration).warnings:
                where = f"line {warning.line}: " if warning.line is not None else ""
                (logger.warning if warning.severity == "warning" else logger.info)("lyrics: %s%s", where,
                                                                                   warning.message)
    except AceStepInputError as e:
        raise UsageError(str(e)) from e
    return tokens


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Validate the command line (and ``--params``) into a :class:`RunPlan`; raises :class:`UsageError` for
    every bad input (any :class:`~acestep_core.errors.AceStepInputError` raised while planning)."""
    try:
        return _plan(args)
    except UsageError:
        raise
    except AceStepInputError as e:  # bad --params file, audio, seeds, ...: same message, as a usage error
        raise UsageError(in_cli_words(str(e))) from e


def _plan(args: argparse.Namespace) -> RunPlan:
    base = read_params_file(args.params) if args.params is not None else ParamsFile()
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
    _apply_task_rules(fields, task, args, src, base)
    source = src or ref
    if source is not None:  # the output length follows the source/reference; recorded as upstream's duration
        fields["audio_duration"] = min(source.duration_s, MAX_DURATION_S)
    if fields.get("prompt") is None:
        raise UsageError("--tags is missing: give the style tags, e.g. --tags 'pop, upbeat, female vocals' (or re-run "
                         "a parameters file with --params FILE); see --help")
    params = _generation_params(fields)
    check_sources(params, task, src, ref)
    if args.checkpoint is not None and not args.checkpoint.expanduser().exists():
        raise UsageError(f"--checkpoint {args.checkpoint}: not found (give the ACE-Step-v1-3.5B folder or a "
                         "ComfyUI ace_step_v1_3.5b.safetensors file, or leave it out to download)")
    loras = plan_loras(base, args.params, getattr(args, "loras", None) or [], args.checkpoint)
    inputs = [("--src-audio", src_path), ("--ref-audio", ref_path), ("--params", args.params),
              ("--lyrics-file", args.lyrics_file), ("--lyric-vocab", args.lyric_vocab),
              *[("--lora", r.path) for r in loras]]
    for flag, value in (("--lyrics", args.lyrics), ("--edit-target-lyrics", args.edit_target_lyrics)):
        if value is not None and value.startswith("@"):
            inputs.append((flag, Path(value[1:])))
    outputs = plan_outputs(args.output, args.save_latents, batch_size=params.batch_size,
                           default_format=base.format or "wav", overwrite=bool(getattr(args, "overwrite", False)),
                           inputs=inputs)
    lyric_tokens = _tokenize_lyrics(args, params)
    device = resolve_device(args.device)
    low_vram, fp8 = memory_options(args, device)
    _log_length(params, task, source)
    return RunPlan(params=params, src_audio=src, ref_audio=ref, checkpoint=args.checkpoint,
                   lyric_tokens=lyric_tokens, outputs=outputs, device=device, dtype=resolve_dtype(args.dtype, device),
                   overlapped_decode=args.overlapped_decode, loras=loras, low_vram=low_vram, fp8=fp8,
                   acceleration=_acceleration(args, device))


def _log_length(params: Any, task: str, source: AudioInfo | None) -> None:
    """Say the frame rounding: the model works in latent frames of 1/10.77 s, truncated as upstream."""
    if source is not None:
        return
    frames = seconds_to_frames(params.audio_duration)
    actual = frames_to_seconds(frames)
    if abs(actual - params.audio_duration) > 1e-3:
        logger.info("--duration %g s = %d latent frames of %.3f s (truncated, as the original app) = %.2f s of audio",
                    params.audio_duration, frames, 1 / LATENT_FRAME_RATE_HZ, actual)


def _acceleration(args: argparse.Namespace, device: torch.device) -> Acceleration:
    """No speed flag: ``Acceleration.fastest(compile=False)``, CUDA graphs where they are safe (planned when the
    passes run; a CLI run is one process and one song, where compiling would cost tens of seconds to save tenths).
    Explicit choices: ``--eager`` (batched guidance only), ``--cuda-graphs`` (CUDA only; logged as a no-op
    elsewhere), ``--compile`` (CUDA with Triton only: torch's CPU backend fails on the DiT blocks; with
    ``--cuda-graphs``: both), ``--no-batch-guidance``."""
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
        if device.type != "cuda":
            raise UsageError(f"--compile works on CUDA only (torch.compile of the DiT blocks fails on the "
                             f"{device.type} backend); leave out --compile on --device {device}")
        if importlib.util.find_spec("triton") is None:
            raise UsageError("--compile on CUDA needs Triton, which is not installed (pip install triton, or the "
                             "triton-windows package on Windows); leave out --compile")
    return Acceleration(batch_guidance=batch_guidance, cuda_graphs=cuda_graphs, compile=compile_)

"""Command-line generator: ``python -m acestep_core generate`` (console script: ``acestep-core generate``).
The user-facing help is :data:`GENERATE_HELP`; this docstring is for developers.

Thin on purpose: parse -> validate everything (exit code 2 with a one-line message on bad input, before
any model is loaded) -> load the checkpoint -> tokenize -> encode source/reference audio -> generate ->
decode -> write audio + ``_input_params.json`` sidecar (+ optional latents). Progress and logs go to
stderr; stdout carries only the paths written.

LoRA: ``--lora PATH[:STRENGTH]`` (repeatable, stacked) with strength 1.0 = the LoRA as trained; the
``lora_name_or_path`` / ``lora_weight`` of a ``--params`` file are applied the way the original app applies
them (scale = ``lora_weight``, alpha ignored), so the original run is reproduced.

Memory: ``--low-vram`` loads the models into CPU memory and moves each stage's models to the GPU only while
the stage runs (codec for source audio, text encoder + transformer for sampling, codec for an overlapped
decode), logging each stage's peak; ``--fp8`` stores the transformer's DiT-block weights in float8 after the
LoRAs are merged (:mod:`acestep_core.runtime.quant`). On CUDA every run logs its per-stage peak memory at INFO.

Speed: by default guided steps run their conditional and unconditional passes as one batch, with CUDA graphs
wherever they are safe (:mod:`acestep_core.runtime.accel`); ``--eager``, ``--cuda-graphs``, ``--compile`` (compile
time is paid by every process) and ``--no-batch-guidance`` (separate passes, as the original) choose explicitly.

Parameter precedence: ``GenerationParams`` defaults (= upstream ``__call__``) < ``--params`` JSON (an
original-app ``input_params`` file, unchanged) < explicit flags. Flag names are upstream's argument names
in kebab-case (``--guidance-interval-decay``), plus short forms for the common ones.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import AceStepInputError, CheckpointError, NonFiniteResultError
from ..hub import CHECKPOINT_DIR_ENV, CHECKPOINT_REPO_ID
from ..sampling.choices import TASKS
from ..teachers.convert import COMMAND as CONVERT_TEACHER
from ..teachers.convert import add_convert_teacher_parser, run_convert_teacher
from .devices import DTYPE_NAMES
from .devices import resolve_device as resolve_device
from .devices import resolve_dtype as resolve_dtype
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, RunFailedError, UsageError
from .plan import CHOICES, ERG_FLAGS, KNOBS, plan_run
from .plan import RunPlan as RunPlan
from .run import DEFAULT_SAMPLE_RATE as DEFAULT_SAMPLE_RATE
from .run import PROGRESS, execute
from .train_args import add_train_parser
from .words import in_cli_words

__all__ = ["TASKS", "UsageError", "build_parser", "main"]

GENERATE_HELP = """\
Generate a song with ACE-Step v1 from style tags and lyrics, or change an existing song (retake, repaint,
extend, edit, audio2audio). Every option of the original ACE-Step app is a flag below.

examples:
  %(prog)s --tags "pop, upbeat, female vocals" --lyrics @lyrics.txt --duration 60 --output song.wav
  %(prog)s --tags "rock" --lyrics $'[verse]\\nfirst line\\nsecond line' --output out/
  %(prog)s --task repaint --src-audio song.wav --repaint-start 10 --repaint-end 20 --tags "pop" --output fix.wav
  %(prog)s --params outputs/song_input_params.json        (re-run a saved run; flags override its values)

Bad input is reported before any model is loaded (exit 2). Existing files are never replaced: a taken name
gets the next free one (song-1.wav), unless --overwrite is given. The paths written are printed on stdout;
progress goes to stderr. Without --checkpoint the model (about 8 GB) is downloaded once.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``acestep_core`` argument parser (sub-commands ``generate``, ``train`` and ``convert-teacher``)."""
    parser = argparse.ArgumentParser(prog="python -m acestep_core", description="ACE-Step v1 music generation")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate music from tags and lyrics (all ACE-Step v1 tasks)",
                         description=GENERATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_generate_arguments(gen)
    add_train_parser(sub)
    add_convert_teacher_parser(sub)
    return parser


def _add_generate_arguments(gen: argparse.ArgumentParser) -> None:
    what = gen.add_argument_group("what to generate")
    what.add_argument("--tags", "--prompt", dest="prompt", metavar="TEXT",
                      help="style tags, e.g. 'pop, female vocals, 120 bpm'")
    what.add_argument("--lyrics", metavar="TEXT|@FILE", help="lyrics text, or @FILE to read them from a UTF-8 file "
                      "(the easy way to pass several lines; shells keep \\n inside quotes as two characters)")
    what.add_argument("--lyrics-file", type=Path, metavar="FILE", help="read the lyrics from this UTF-8 file")
    what.add_argument("--duration", "--audio-duration", dest="audio_duration", type=float,
                      metavar="SECONDS", help="length of text2music/retake songs, up to 240 (default 60)")
    what.add_argument("--task", choices=TASKS, help="default text2music (audio2audio when --ref-audio is given)")
    what.add_argument("--params", type=Path, metavar="JSON", help="an original-app *_input_params.json, run unchanged")
    what.add_argument("--seed", "--seeds", "--manual-seeds", dest="manual_seeds", metavar="SEEDS",
                      help="seed or comma-separated seeds, one per batch item (default random)")
    what.add_argument("--retake-seeds", metavar="SEEDS", help="retake/repaint/extend/edit noise seeds (default random)")
    audio = gen.add_argument_group("source / reference audio")
    audio.add_argument("--src-audio", type=Path, metavar="FILE", help="source audio for repaint, extend and edit")
    audio.add_argument("--ref-audio", type=Path, metavar="FILE", help="reference audio for audio2audio")
    audio.add_argument("--ref-strength", dest="ref_audio_strength_alias", type=float, metavar="X",
                       help="alias of --ref-audio-strength")
    audio.add_argument("--extend-left", type=float, metavar="SECONDS", help="extend: seconds to add before the source")
    audio.add_argument("--extend-right", type=float, metavar="SECONDS", help="extend: seconds to add after the source")
    audio.add_argument("--edit-target-tags", "--edit-target-prompt", dest="edit_target_prompt", metavar="TEXT",
                       help="edit: target tags (default: --tags)")
    audio.add_argument("--edit-target-lyrics", metavar="TEXT|@FILE",
                       help="edit: target lyrics, or @FILE (default: --lyrics)")
    knobs = gen.add_argument_group("sampler and guidance (upstream names)")
    for flag, dest, kind, text in KNOBS:
        metavar = "N,N,..." if dest == "oss_steps" else {int: "N", float: "X"}.get(kind, "NAME")
        knobs.add_argument(flag, dest=dest, type=kind, metavar=metavar, choices=CHOICES.get(dest), help=text)
    for name in ERG_FLAGS:
        knobs.add_argument("--" + name.replace("_", "-"), dest=name, action=argparse.BooleanOptionalAction,
                           default=None, help="entropy-rectifying guidance switch (default on)")
    run = gen.add_argument_group("model and output")
    run.add_argument("--checkpoint", type=Path, metavar="PATH",
                     help=f"ACE-Step-v1-3.5B folder or ComfyUI single file (default: download {CHECKPOINT_REPO_ID}, "
                          f"about 8.3 GB, once, into ${CHECKPOINT_DIR_ENV} or ~/.cache/acestep/checkpoints)")
    run.add_argument("--lora", dest="loras", action="append", default=[], metavar="PATH[:STRENGTH]",
                     help="apply a LoRA (official folder with pytorch_lora_weights.safetensors + adapter_config.json, "
                          "or a .safetensors file, PEFT or ComfyUI layout); STRENGTH 1.0 (default) = as trained "
                          "(alpha/r, alpha/sqrt(r) with rsLoRA); repeat to stack LoRAs")
    run.add_argument("--lyric-vocab", type=Path, metavar="FILE",
                     help="lyric tokenizer vocab.json (default: next to the checkpoint, ComfyUI's copy, or downloaded)")
    run.add_argument("--output", "-o", metavar="FILE|FOLDER/",
                     help="audio file (.wav/.flac/.mp3/.ogg), or a folder (existing, or ending in '/': created) for "
                          "output_<time>.wav (default outputs/output_<time>.wav)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace existing output files (default: never; a taken name gets the next free one, "
                          "e.g. song-1.wav)")
    run.add_argument("--save-latents", type=Path, metavar="FILE",
                     help="also write the final latents (safetensors, key 'latents', float32 [B, 8, 16, T])")
    run.add_argument("--device", default="auto", metavar="DEVICE",
                     help="auto | cpu | cuda | cuda:N | mps (default auto)")
    run.add_argument("--dtype", default="auto", choices=("auto", *DTYPE_NAMES),
                     help="weight dtype: auto = bf16 on CUDA, fp32 on CPU/MPS (as upstream); the torch spellings "
                          "bfloat16/float16/float32 work too")
    run.add_argument("--overlapped-decode", action="store_true",
                     help="decode songs over 48 s in overlapping windows (less memory; upstream flag)")
    _add_memory_and_speed_arguments(gen)
    run.add_argument("--quiet", "-q", action="store_true", help="no progress or info messages")


def _add_memory_and_speed_arguments(gen: argparse.ArgumentParser) -> None:
    memory = gen.add_argument_group("memory")
    memory.add_argument("--low-vram", action="store_true",
                        help="keep the models on the CPU and move each stage's model to the GPU only while it "
                             "runs (text encoder + transformer for sampling, codec for encode/decode), with an "
                             "overlapped decode (target: a 240 s song under 8 GB peak); slower (weights cross PCIe "
                             "every run). No effect on --device cpu")
    memory.add_argument("--fp8", action="store_true",
                        help="store the transformer's DiT-block weights in float8 (e4m3, per-channel scale; "
                             "math stays in --dtype): ~2.4 GB less memory, small quality cost (see "
                             "bench/fp8_quality.py); needs torch >= 2.1. LoRAs are merged before quantising")
    speed = gen.add_argument_group("speed", "default (no flag): batched guidance with CUDA graphs wherever they "
                                            "are safe (plain batched passes on other devices); the flags below choose "
                                            "one path explicitly")
    speed.add_argument("--eager", action="store_true",
                       help="batched guidance only: no CUDA graphs, no torch.compile (no compile time; slower)")
    speed.add_argument("--cuda-graphs", action="store_true",
                       help="only CUDA graphs: capture each denoiser pass shape once and replay it (less host "
                            "overhead per step; the graphs' memory is freed before the decode). CUDA only: no "
                            "effect on other devices")
    speed.add_argument("--compile", action="store_true",
                       help="torch.compile the DiT blocks (with --cuda-graphs: both): the first run of a song "
                            "length compiles for tens of seconds; CUDA only (needs Triton; refused on other devices, "
                            "whose backend fails on the DiT)")
    speed.add_argument("--no-batch-guidance", dest="batch_guidance", action="store_false",
                       help="run the conditional and unconditional passes of a guided step one after the other, "
                            "as the original does, instead of as one batch (for A/B checks; slower)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m acestep_core`` and the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == CONVERT_TEACHER:
        return run_convert_teacher(args)
    if args.command == "train":
        return _train(args)
    try:
        plan = plan_run(args)
        written = execute(plan, quiet=args.quiet)
    except (AceStepInputError, CheckpointError) as e:
        return _fail(e, EXIT_USAGE)
    except (NonFiniteResultError, RunFailedError) as e:
        return _fail(in_cli_words(str(e)), EXIT_FAILED)
    except KeyboardInterrupt:
        PROGRESS.close()
        print("error: interrupted; no file was written or replaced", file=sys.stderr)
        return EXIT_INTERRUPTED
    for path in written:
        print(path)
    return 0


def _train(args: argparse.Namespace) -> int:
    """``train``: exit 2 with one line for bad input (before any model work), the LoRA folder on stdout."""
    from .train import plan_training, run_training

    try:
        folder = run_training(plan_training(args), quiet=args.quiet)
    except (AceStepInputError, CheckpointError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nerror: interrupted; the last checkpoint is intact (continue with --resume)", file=sys.stderr)
        return 130
    print(folder)
    return 0


def _fail(error: BaseException | str, code: int) -> int:
    PROGRESS.close()
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
    return code

"""One-time conversion of a pickle teacher (``pytorch_model.bin``) to ``model.safetensors``.

This is the only place in the pack that opens a pickle, and it does so with ``torch.load(weights_only=True)``
(tensors and plain containers only; no code runs). MERT-v1-330M publishes only a pickle on its ``main``
branch. The converted tensors are checked strictly against the folder's ``config.json`` before anything is
written; the output is written atomically (temp file + rename) and an existing output is never replaced
unless asked.

Command line: ``python -m acestep_core convert-teacher PATH [--output DIR] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from ..errors import CheckpointError
from .config import HubertConfig, TeacherConfigError
from .find import PICKLE_WEIGHTS_FILE
from .model import HubertEncoder
from .weights import CONFIG_FILE, WEIGHTS_FILE, load_teacher_state_dict, save_teacher_folder

logger = logging.getLogger(__name__)

__all__ = ["COMMAND", "add_convert_teacher_parser", "convert_teacher", "run_convert_teacher"]

COMMAND = "convert-teacher"
EXIT_ERROR = 2


def _source_paths(source: Path) -> tuple[Path, Path]:
    """(pickle file, config.json) of a folder or of a ``.bin`` file path."""
    pickle_path = source / PICKLE_WEIGHTS_FILE if source.is_dir() else source
    if not pickle_path.is_file():
        raise CheckpointError(f"{pickle_path}: not found; give the teacher folder holding '{PICKLE_WEIGHTS_FILE}' "
                              "(a single-file pickle; sharded checkpoints are not supported) or the file itself")
    config_path = pickle_path.parent / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: not found; the conversion checks the weights against the teacher's "
                              f"'{CONFIG_FILE}': download it from the same model repository first")
    return pickle_path, config_path


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle errors come in many types; all mean "not a plain weights file"
        raise CheckpointError(f"{path}: cannot be read as a plain PyTorch weights file with weights_only=True "
                              f"({type(e).__name__}: {e}); it is corrupt, or it holds more than tensors") from e
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in data.items()):
        raise CheckpointError(f"{path}: expected a flat dict of name -> tensor (a Hugging Face pytorch_model.bin), "
                              f"got {type(data).__name__}")
    return data


def convert_teacher(source: str | Path, output: str | Path | None = None, *, overwrite: bool = False) -> Path:
    """Convert ``source`` (a teacher folder or its ``pytorch_model.bin``) into ``<output>/model.safetensors``.

    ``output`` defaults to the source folder; a ``config.json`` is copied there when it differs. The tensors
    are checked against the config (strict: missing / unexpected keys listed) before writing; names and values
    are kept as they are. Returns the written file.
    """
    pickle_path, config_path = _source_paths(Path(source).expanduser())
    folder = Path(output).expanduser() if output is not None else pickle_path.parent
    target = folder / WEIGHTS_FILE
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; refusing to overwrite it (use --overwrite to replace it)")
    try:
        cfg = HubertConfig.from_json(config_path)
    except TeacherConfigError as e:
        raise CheckpointError(str(e)) from e
    state_dict = _read_pickle(pickle_path)
    with torch.device("meta"):
        probe = HubertEncoder(cfg)
    load_teacher_state_dict(probe, state_dict, source=str(pickle_path), name="HuBERT-family")  # check only
    raw_config = config_path.read_text(encoding="utf-8")
    save_teacher_folder(folder, raw_config, state_dict, overwrite=overwrite)
    logger.info("converted %s -> %s (%d tensors)", pickle_path, target, len(state_dict))
    return target


def add_convert_teacher_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``convert-teacher`` on the ``python -m acestep_core`` sub-command parser."""
    p = subparsers.add_parser(COMMAND, help="convert a REPA teacher's pytorch_model.bin to model.safetensors (once)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path, help="teacher folder (config.json + pytorch_model.bin) or the .bin file")
    p.add_argument("--output", type=Path, default=None, metavar="DIR",
                   help="folder for model.safetensors (+ a copy of config.json); default: next to the pickle")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model.safetensors")
    p.add_argument("--quiet", "-q", action="store_true", help="no info messages")


def run_convert_teacher(args: argparse.Namespace) -> int:
    """Run the parsed ``convert-teacher`` command; prints the written path; returns the exit code."""
    try:
        written = convert_teacher(args.path, args.output, overwrite=args.overwrite)
    except (CheckpointError, FileExistsError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_ERROR
    print(written)
    return 0

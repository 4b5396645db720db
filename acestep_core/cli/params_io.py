"""The original app's ``*_input_params.json`` <-> generation parameters.

Upstream ``ACEStepPipeline.__call__`` (ace-step/ACE-Step ``acestep/pipeline_ace_step.py``, Apache-2.0) writes
one JSON per output file; ``infer.py`` and the Gradio UI read them back. This module reads such files
unchanged (the 19 ``examples/default`` files carry only a subset of the keys, the ``zh_rap_lora`` ones all
of them) and writes the same format. Keys map one-to-one to :class:`acestep_core.sampling.pipeline.GenerationParams`
fields except ``actual_seeds`` -> ``manual_seeds``; missing keys keep the ``__call__`` defaults.

Reading also accepts the other ``__call__`` argument names a hand-written file may use: ``batch_size``,
``manual_seeds`` (= ``actual_seeds``), and ``save_path`` / ``debug`` (ignored, logged); ``"lyrics": null`` means
no lyrics.

Edit records: upstream records the edit *target* prompt/lyrics under ``prompt``/``lyrics`` too, so its files do not
hold the source condition (:attr:`ParamsFile.edit_source_unknown`; re-running needs ``--tags``/``--lyrics``).
Records written here keep the *source* texts under ``prompt``/``lyrics`` and the targets under
``edit_target_prompt``/``edit_target_lyrics`` (the arguments upstream ``__call__`` takes, so the original app
re-runs them too); a file whose targets equal its ``prompt``/``lyrics`` is read the upstream way.

Divergences from the original app's files (records stay readable by both):

* edit records keep the source texts under ``prompt`` / ``lyrics`` (upstream writes the targets there too, losing
  the source); ``lyrics`` is never written as null;
* reading accepts ``batch_size``, ``manual_seeds``, ``save_path`` and ``debug`` (``__call__`` arguments upstream
  never writes) and reads ``"lyrics": null`` as no lyrics.

Format quirks kept: ``oss_steps`` is a list (``[]`` for none) although ``__call__`` takes a comma-separated
string; ``format``, ``timecosts`` and ``audio_path`` describe the run, not the request, and are ignored on read.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import AceStepInputError

logger = logging.getLogger(__name__)

__all__ = [
    "LORA_NONE",
    "ORIGINAL_KEYS",
    "ParamsFile",
    "ParamsFileError",
    "dumps_record",
    "params_from_record",
    "parse_int_list",
    "read_params_file",
    "record_from_params",
]

# Every key upstream __call__ writes, in its order (the JSON written by record_from_params keeps it).
ORIGINAL_KEYS: tuple[str, ...] = (
    "format", "lora_name_or_path", "lora_weight", "task", "prompt", "lyrics", "audio_duration", "infer_step",
    "guidance_scale", "scheduler_type", "cfg_type", "omega_scale", "guidance_interval", "guidance_interval_decay",
    "min_guidance_scale", "use_erg_tag", "use_erg_lyric", "use_erg_diffusion", "oss_steps", "timecosts",
    "actual_seeds", "retake_seeds", "retake_variance", "guidance_scale_text", "guidance_scale_lyric",
    "repaint_start", "repaint_end", "edit_n_min", "edit_n_max", "edit_n_avg", "src_audio_path",
    "edit_target_prompt", "edit_target_lyrics", "audio2audio_enable", "ref_audio_strength", "ref_audio_input",
    "audio_path",
)
RUN_INFO_KEYS = frozenset({"format", "timecosts", "audio_path"})  # describe the run; ignored on read
# Other ``__call__`` arguments accepted on read (never written: the original app's files do not have them).
CALL_ONLY_KEYS = frozenset({"batch_size", "manual_seeds", "save_path", "debug"})
IGNORED_CALL_KEYS = frozenset({"save_path", "debug"})  # output location / logging: the command line decides
AUDIO_KEYS = ("src_audio_path", "ref_audio_input")
LORA_NONE = "none"
_FLOAT_KEYS = frozenset({
    "audio_duration", "guidance_scale", "omega_scale", "guidance_interval", "guidance_interval_decay",
    "min_guidance_scale", "retake_variance", "guidance_scale_text", "guidance_scale_lyric", "repaint_start",
    "repaint_end", "edit_n_min", "edit_n_max", "ref_audio_strength", "lora_weight",
})
_INT_KEYS = frozenset({"infer_step", "edit_n_avg", "batch_size"})
_BOOL_KEYS = frozenset({"use_erg_tag", "use_erg_lyric", "use_erg_diffusion", "audio2audio_enable"})
_STR_KEYS = frozenset({"prompt", "lyrics", "scheduler_type", "cfg_type", "task", "lora_name_or_path"})
_OPTIONAL_STR_KEYS = frozenset({"edit_target_prompt", "edit_target_lyrics"})
_SEED_KEYS = frozenset({"actual_seeds", "retake_seeds", "manual_seeds"})
_NULL_MEANS_EMPTY = frozenset({"lyrics"})  # written as null by older versions of this pack
_FIELD_NAMES = {"actual_seeds": "manual_seeds"}  # JSON key -> GenerationParams field, where they differ


class ParamsFileError(AceStepInputError):
    """An ``input_params`` JSON cannot be used (unreadable, unknown key, wrong value type)."""


@dataclass(frozen=True)
class ParamsFile:
    """What an ``input_params`` JSON asks for.

    Args:
        fields: ``GenerationParams`` keyword arguments for the keys present in the file.
        src_audio_path / ref_audio_input: audio paths, resolved against the JSON's folder.
        lora_name_or_path / lora_weight: the LoRA the run used (``"none"`` = no LoRA).
        format: the output format the original run wrote (``None`` if absent).
        source: the file it came from (``None`` for an in-memory record).
        edit_source_unknown: an edit record in the original app's style (targets only, no source texts).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    src_audio_path: Path | None = None
    ref_audio_input: Path | None = None
    lora_name_or_path: str = LORA_NONE
    lora_weight: float = 1.0
    format: str | None = None
    source: Path | None = None
    edit_source_unknown: bool = False


def parse_int_list(value: object, *, name: str) -> tuple[int, ...] | None:
    """``None``/``[]``/``""`` -> ``None``; an int, a list of ints or ``"1, 2,3"`` -> a tuple of ints."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        raise ParamsFileError(f"{name}: expected integers, got {value!r}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        if len(parts) > 1 and not all(parts):
            raise ParamsFileError(f"{name}: {value!r} has an empty entry between commas; write integers like '1,2'")
        try:
            return tuple(int(part) for part in parts if part)
        except ValueError as e:
            raise ParamsFileError(f"{name}: expected comma-separated integers like '1,2', got {value!r}") from e
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise ParamsFileError(f"{name}: expected an integer, a list of integers or '1,2', got {value!r}")


def _typed(key: str, value: object, where: str) -> Any:
    """Check/convert one JSON value to the type its ``GenerationParams`` field needs."""
    def bad(expected: str) -> ParamsFileError:
        return ParamsFileError(f"{where}: key {key!r}: expected {expected}, got {value!r}")

    if key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a number")
        return float(value)
    if key in _INT_KEYS:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key in _STR_KEYS or (key in _OPTIONAL_STR_KEYS and value is not None):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if key in _OPTIONAL_STR_KEYS:
        return None
    if key in _SEED_KEYS or key == "oss_steps":
        return parse_int_list(value, name=f"{where}: key {key!r}")
    raise AssertionError(f"unhandled key {key}")  # pragma: no cover - the key sets cover ORIGINAL_KEYS


def _audio_path(value: object, key: str, base_dir: Path | None, where: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParamsFileError(f"{where}: key {key!r}: expected a file path or null, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def params_from_record(record: Mapping[str, Any], *, base_dir: Path | None = None,
                       where: str = "input_params") -> ParamsFile:
    """Turn one ``input_params`` record into a :class:`ParamsFile`.

    Raises :class:`ParamsFileError` on keys the original app never writes (typos would otherwise be
    silently ignored) and on values of the wrong type. Relative audio paths are resolved against ``base_dir``.
    """
    if not isinstance(record, Mapping):
        raise ParamsFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(ORIGINAL_KEYS) - CALL_ONLY_KEYS)
    if unknown:
        raise ParamsFileError(
            f"{where}: unknown key(s) {unknown}; an input_params JSON only has the keys the original app writes: "
            f"{', '.join(ORIGINAL_KEYS)} (and the __call__ arguments {', '.join(sorted(CALL_ONLY_KEYS))})"
        )
    if "manual_seeds" in record and "actual_seeds" in record:
        raise ParamsFileError(f"{where}: both 'manual_seeds' and 'actual_seeds' are given; keep one")
    fields: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in record.items():
        if key in RUN_INFO_KEYS:
            continue
        if key in IGNORED_CALL_KEYS:
            logger.info("%s: key %r is ignored (the command line decides where and how the run writes)", where, key)
        elif key in AUDIO_KEYS:
            extras[key] = _audio_path(value, key, base_dir, where)
        elif key in ("lora_name_or_path", "lora_weight"):
            extras[key] = _typed(key, value, where)
        elif value is None and key in _NULL_MEANS_EMPTY:
            fields[key] = ""
        elif not (value is None and key == "prompt"):  # a null prompt counts as not given
            fields[_FIELD_NAMES.get(key, key)] = _typed(key, value, where)
    fmt = record.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise ParamsFileError(f"{where}: key 'format': expected a string like 'wav', got {fmt!r}")
    return ParamsFile(fields=fields, src_audio_path=extras.get("src_audio_path"),
                      ref_audio_input=extras.get("ref_audio_input"),
                      lora_name_or_path=extras.get("lora_name_or_path", LORA_NONE),
                      lora_weight=extras.get("lora_weight", 1.0), format=fmt,
                      edit_source_unknown=_edit_source_unknown(fields))


def _edit_source_unknown(fields: Mapping[str, Any]) -> bool:
    """An edit record whose ``prompt``/``lyrics`` equal its targets: the original app's format (or a no-op edit)."""
    if fields.get("task") != "edit":
        return False
    prompt, lyrics = fields.get("prompt"), fields.get("lyrics") or ""
    target_prompt = fields.get("edit_target_prompt")
    target_lyrics = fields.get("edit_target_lyrics")
    return (target_prompt is None or target_prompt == prompt) and (target_lyrics is None or target_lyrics == lyrics)


def read_params_file(path: str | Path) -> ParamsFile:
    """Read an original-app ``input_params`` JSON (see :func:`params_from_record`)."""
    path = Path(path).expanduser()
    where = f"--params {path}"
    if not path.is_file():
        raise ParamsFileError(f"{where}: file not found")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParamsFileError(f"{where}: not a readable JSON file: {e}") from e
    parsed = params_from_record(record, base_dir=path.resolve().parent, where=where)
    return replace(parsed, source=path)


def _field(params: Any, name: str, default: Any = None) -> Any:
    if isinstance(params, Mapping):
        return params.get(name, default)
    return getattr(params, name, default)


def _list_or_none(value: Any) -> list[int] | None:
    return None if value is None else [int(v) for v in value]


def record_from_params(params: Any, *, audio_format: str, actual_seeds: list[int] | tuple[int, ...],
                       retake_seeds: list[int] | tuple[int, ...] | None, timecosts: Mapping[str, float] | None = None,
                       src_audio_path: str | Path | None = None, ref_audio_input: str | Path | None = None,
                       audio_path: str | Path | None = None, lora_name_or_path: str = LORA_NONE,
                       lora_weight: float = 1.0, edit_source: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ``input_params`` record for a run with ``params`` (a ``GenerationParams``, or the record
    :func:`~acestep_core.sampling.pipeline.generate` returns, which holds the edit targets under ``prompt`` /
    ``lyrics`` as upstream's), keys in upstream order. ``task`` is the effective one (``audio2audio`` when enabled
    with a reference). Edit: ``edit_source`` = the source (prompt, lyrics) goes under ``prompt``/``lyrics`` and
    the targets under ``edit_target_*`` (see the module docstring); without it the upstream layout is kept.
    ``lyrics`` is ``""`` for none (never null)."""
    task = _field(params, "task", "text2music")
    if _field(params, "audio2audio_enable", False) and ref_audio_input is not None:
        task = "audio2audio"
    prompt, lyrics = _field(params, "prompt"), _field(params, "lyrics")
    values: dict[str, Any] = {
        "format": audio_format, "lora_name_or_path": lora_name_or_path, "lora_weight": lora_weight, "task": task,
        "prompt": prompt, "lyrics": lyrics or "",
        "oss_steps": _list_or_none(_field(params, "oss_steps")) or [],
        "timecosts": dict(timecosts or {}),
        "actual_seeds": [int(s) for s in actual_seeds],
        "retake_seeds": _list_or_none(retake_seeds),
        "src_audio_path": None if src_audio_path is None else str(src_audio_path),
        "ref_audio_input": None if ref_audio_input is None else str(ref_audio_input),
        "audio_path": None if audio_path is None else str(audio_path),
    }
    if task == "edit":
        target_prompt = _field(params, "edit_target_prompt")
        target_lyrics = _field(params, "edit_target_lyrics")
        values["edit_target_prompt"] = prompt if target_prompt is None else target_prompt
        values["edit_target_lyrics"] = (lyrics or "") if target_lyrics is None else target_lyrics
        if edit_source is not None:
            values["prompt"], values["lyrics"] = edit_source[0], edit_source[1] or ""
        else:
            values["prompt"], values["lyrics"] = values["edit_target_prompt"], values["edit_target_lyrics"]
    record: dict[str, Any] = {}
    for key in ORIGINAL_KEYS:
        record[key] = values[key] if key in values else _field(params, key)
    return record


def dumps_record(record: Mapping[str, Any]) -> str:
    """The record as upstream serialises it (indent 4, non-ASCII kept)."""
    return json.dumps(record, indent=4, ensure_ascii=False)

"""The original app's ``input_params`` JSON: reading (unchanged files), writing, round trip, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from acestep_core.cli.params_io import (
    LORA_NONE,
    ORIGINAL_KEYS,
    ParamsFileError,
    dumps_record,
    params_from_record,
    parse_int_list,
    read_params_file,
    record_from_params,
)

ORIGINAL_ROOT_ENV = "ACESTEP_ORIGINAL_ROOT"  # a checkout (or git directory) of the original ACE-Step


def default_example() -> dict:
    """Keys and values of spec Appendix B (``examples/default/input_params/output_20250426071706_0``)."""
    return {
        "prompt": "pop, rap, electronic, blues, hip-house, rhythm and blues",
        "lyrics": "[verse]\n我走过深夜的街道\n冷风吹乱思念的漂亮外套\n\n[chorus]\n啊\n\n[bridge]\n夜",
        "audio_duration": 170.63997916666668, "infer_step": 60, "guidance_scale": 15, "scheduler_type": "euler",
        "cfg_type": "apg", "omega_scale": 10, "guidance_interval": 0.5, "guidance_interval_decay": 0,
        "min_guidance_scale": 3, "use_erg_tag": True, "use_erg_lyric": True, "use_erg_diffusion": True,
        "oss_steps": [], "timecosts": {"preprocess": 3.19, "diffusion": 17.46, "latent2audio": 1.71},
        "actual_seeds": [3299954530],
    }


def full_writer_example() -> dict:
    """Every key upstream ``__call__`` writes (the ``zh_rap_lora`` examples' key set, minus format/lora_weight)."""
    record = default_example()
    record.update({
        "lora_name_or_path": "none", "task": "text2music", "guidance_interval": 0.3, "use_erg_lyric": False,
        "retake_seeds": [2907904223], "retake_variance": 0.5, "guidance_scale_text": 0, "guidance_scale_lyric": 0,
        "repaint_start": 0, "repaint_end": 0, "edit_n_min": 0.0, "edit_n_max": 1.0, "edit_n_avg": 1,
        "src_audio_path": None, "edit_target_prompt": None, "edit_target_lyrics": None,
        "audio2audio_enable": False, "ref_audio_strength": 0.5, "ref_audio_input": None,
        "audio_path": "./outputs/output_20250512101839_0.wav",
    })
    return record


def test_default_example_maps_to_call_arguments() -> None:
    parsed = params_from_record(default_example())
    f = parsed.fields
    assert f["manual_seeds"] == (3299954530,) and "actual_seeds" not in f
    assert f["oss_steps"] is None and "timecosts" not in f
    assert f["infer_step"] == 60 and isinstance(f["guidance_scale"], float) and f["use_erg_lyric"] is True
    assert parsed.lora_name_or_path == LORA_NONE and parsed.src_audio_path is None and parsed.format is None


def test_full_writer_keys_accepted_and_relative_audio_resolved(tmp_path) -> None:
    record = full_writer_example()
    record.update({"task": "repaint", "src_audio_path": "audio/src.wav", "ref_audio_input": "/abs/ref.wav"})
    path = tmp_path / "params" / "x_input_params.json"
    path.parent.mkdir()
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    parsed = read_params_file(path)
    assert parsed.src_audio_path == path.parent.resolve() / "audio" / "src.wav"
    assert parsed.ref_audio_input == Path("/abs/ref.wav")
    assert parsed.fields["retake_seeds"] == (2907904223,) and parsed.fields["task"] == "repaint"
    assert parsed.source == path


def test_unknown_key_and_wrong_types_are_refused() -> None:
    with pytest.raises(ParamsFileError, match=r"unknown key\(s\) \['guidance_scal'\]"):
        params_from_record({**default_example(), "guidance_scal": 3})
    with pytest.raises(ParamsFileError, match="'infer_step': expected an integer"):
        params_from_record({**default_example(), "infer_step": "60"})
    with pytest.raises(ParamsFileError, match="'use_erg_tag': expected true or false"):
        params_from_record({**default_example(), "use_erg_tag": 1})
    with pytest.raises(ParamsFileError, match="'actual_seeds'"):
        params_from_record({**default_example(), "actual_seeds": ["a"]})
    with pytest.raises(ParamsFileError, match="expected a JSON object"):
        params_from_record([1, 2])  # type: ignore[arg-type]


def test_unreadable_files(tmp_path) -> None:
    with pytest.raises(ParamsFileError, match="file not found"):
        read_params_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ParamsFileError, match="not a readable JSON file"):
        read_params_file(bad)


def test_seed_and_oss_parsing() -> None:
    assert parse_int_list("1, 2,3", name="x") == (1, 2, 3)
    assert parse_int_list(7, name="x") == (7,)
    assert parse_int_list([], name="x") is None and parse_int_list(None, name="x") is None
    with pytest.raises(ParamsFileError, match="comma-separated"):
        parse_int_list("1,b", name="--seeds")


def test_record_round_trip_keeps_upstream_key_order() -> None:
    parsed = params_from_record(full_writer_example())
    fields = {**parsed.fields, "batch_size": 1}
    record = record_from_params(fields, audio_format="wav", actual_seeds=[3299954530], retake_seeds=[2907904223],
                                timecosts={"preprocess": 1.0}, audio_path="out.wav")
    assert tuple(record) == ORIGINAL_KEYS
    again = params_from_record(json.loads(dumps_record(record)))
    assert again.fields == parsed.fields
    assert record["oss_steps"] == [] and record["lora_name_or_path"] == "none" and record["format"] == "wav"


def test_record_of_edit_and_audio2audio_follow_upstream() -> None:
    fields = {**params_from_record(full_writer_example()).fields, "task": "edit",
              "edit_target_prompt": "jazz", "edit_target_lyrics": "new words"}
    record = record_from_params(fields, audio_format="flac", actual_seeds=[1], retake_seeds=[2],
                                src_audio_path="src.wav")
    assert record["prompt"] == "jazz" and record["lyrics"] == "new words" and record["src_audio_path"] == "src.wav"
    fields = {**fields, "task": "text2music", "audio2audio_enable": True}
    record = record_from_params(fields, audio_format="wav", actual_seeds=[1], retake_seeds=None,
                                ref_audio_input="ref.wav")
    assert record["task"] == "audio2audio" and record["ref_audio_input"] == "ref.wav"


def _upstream_examples() -> list[tuple[str, dict]]:
    """The original repository's ``examples/**/*_input_params.json`` files, from ``$ACESTEP_ORIGINAL_ROOT``
    (a checkout, or a bare git directory such as the library's mirror); empty when it is not set."""
    root = Path(os.environ.get(ORIGINAL_ROOT_ENV, "") or "/nonexistent").expanduser()
    if (root / "examples").is_dir():
        return [(str(path.relative_to(root)), json.loads(path.read_text(encoding="utf-8")))
                for path in sorted((root / "examples").rglob("*_input_params.json"))]
    if not (root / "HEAD").exists() and not (root / ".git").exists():
        return []
    git = ["git", "-C", str(root)]
    names = subprocess.run([*git, "ls-tree", "-r", "--name-only", "HEAD", "examples"],
                           capture_output=True, text=True, check=True, timeout=60).stdout.split()
    return [(name, json.loads(subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, text=True,
                                             check=True, timeout=60).stdout))
            for name in names if name.endswith("_input_params.json")]


def test_upstream_example_files_parse_unchanged() -> None:
    examples = _upstream_examples()
    if not examples:
        pytest.skip(f"set {ORIGINAL_ROOT_ENV} to a checkout of the original ACE-Step to check its example files")
    for name, record in examples:
        parsed = params_from_record(record, where=name)
        assert parsed.fields["manual_seeds"], name
        if "zh_rap_lora" in name:
            assert parsed.lora_name_or_path != LORA_NONE

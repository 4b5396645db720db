"""The one-time pickle -> safetensors conversion and its CLI sub-command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.cli import main
from acestep_core.errors import CheckpointError, CheckpointMismatchError
from acestep_core.teachers import HubertConfig, convert_teacher, load_teacher
from acestep_core.teachers.weights import WEIGHTS_FILE

from .conftest import random_state_dict


class _NotATensor:
    """Any class instance: ``torch.load(weights_only=True)`` must refuse to build it."""


def _pickle_folder(tmp_path: Path, payload: object | None = None) -> tuple[Path, dict[str, torch.Tensor]]:
    cfg = HubertConfig.tiny()
    sd = random_state_dict(cfg, seed=4)
    folder = tmp_path / "MERT-v1-330M"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "hubert", "hidden_size": 32, "num_hidden_layers": 2, '
                                        '"num_attention_heads": 2, "intermediate_size": 64, "conv_dim": '
                                        '[16, 16, 16, 16, 16, 16, 16], "do_stable_layer_norm": true, '
                                        '"mask_time_prob": 0.0}', encoding="utf-8")
    torch.save(sd if payload is None else payload, folder / "pytorch_model.bin")
    return folder, sd


def test_round_trip_keeps_every_tensor(tmp_path: Path) -> None:
    folder, sd = _pickle_folder(tmp_path)
    written = convert_teacher(folder)
    assert written == folder / WEIGHTS_FILE
    converted = load_file(str(written))
    assert set(converted) == set(sd) and all(torch.equal(converted[k], sd[k]) for k in sd)
    assert load_teacher(folder).config.hidden_size == 32


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    folder, _ = _pickle_folder(tmp_path)
    convert_teacher(folder)
    before = (folder / WEIGHTS_FILE).stat().st_mtime_ns
    with pytest.raises(FileExistsError, match=r"model\.safetensors already exists; refusing to overwrite"):
        convert_teacher(folder)
    assert (folder / WEIGHTS_FILE).stat().st_mtime_ns == before
    assert convert_teacher(folder, overwrite=True) == folder / WEIGHTS_FILE


def test_output_folder_gets_a_config_copy(tmp_path: Path) -> None:
    folder, _ = _pickle_folder(tmp_path)
    out = tmp_path / "converted" / "MERT-v1-330M"
    convert_teacher(folder / "pytorch_model.bin", out)
    assert (out / "config.json").read_text(encoding="utf-8") == (folder / "config.json").read_text(encoding="utf-8")
    assert not (folder / WEIGHTS_FILE).exists()
    assert torch.equal(load_teacher(out).state_dict()["encoder.layer_norm.weight"],
                       load_file(str(out / WEIGHTS_FILE))["encoder.layer_norm.weight"])


def test_wrong_weights_are_not_written(tmp_path: Path) -> None:
    folder, sd = _pickle_folder(tmp_path)
    sd.pop("encoder.layer_norm.bias")
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointMismatchError, match=r"Missing 1 key\(s\): encoder\.layer_norm\.bias"):
        convert_teacher(folder)
    assert not (folder / WEIGHTS_FILE).exists() and not list(folder.glob(".*.tmp"))


def test_pickles_with_objects_are_refused(tmp_path: Path) -> None:
    folder, _ = _pickle_folder(tmp_path, payload={"w": _NotATensor()})
    with pytest.raises(CheckpointError, match="cannot be read as a plain PyTorch weights file with weights_only=True"):
        convert_teacher(folder)
    torch.save({"w": "text"}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="expected a flat dict of name -> tensor"):
        convert_teacher(folder)


def test_missing_config_is_refused(tmp_path: Path) -> None:
    folder, _ = _pickle_folder(tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json: not found; the conversion checks the weights"):
        convert_teacher(folder)


def test_cli_sub_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = _pickle_folder(tmp_path)
    assert main(["convert-teacher", str(folder), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / WEIGHTS_FILE)
    assert main(["convert-teacher", str(folder), "-q"]) == 2
    assert "refusing to overwrite it (use --overwrite" in capsys.readouterr().err
    assert main(["convert-teacher", str(folder), "--overwrite", "-q"]) == 0

"""What the Save Audio node records re-runs: its ``_input_params.json`` through the command line's ``--params`` gives
the node's latents, and the file's tags give ComfyUI back the workflow (read the way the frontend reads them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from acestep_core.cli import commands as cli
from nodes.audio import AceStepV1LatentToAudio, AceStepV1SaveAudio
from nodes.conditioning import AceStepV1TextEncode
from nodes.latent import AceStepV1EmptyLatent
from nodes.sampling import AceStepV1FlowEdit
from tests.frontend_metadata import load_workflow_from_file
from tests.nodes.conftest import SRC_WAV, VOCAB
from tests.nodes.test_nodes import sample
from tests.parity import TINY_CHECKPOINT

WORKFLOW = {"last_node_id": 1, "nodes": [{"id": 1, "type": "AceStepV1SaveAudio", "title": "Säve ♪"}]}


def _save(model: Any, latent: dict[str, Any], fmt: str = "flac") -> Path:
    (audio,) = AceStepV1LatentToAudio().decode(model, latent, "48000", "off")
    out = AceStepV1SaveAudio().save(audio, "records/song", fmt, prompt={"1": {"class_type": "X", "inputs": {}}},
                                    extra_pnginfo={"workflow": WORKFLOW})
    (item,) = out["ui"]["audio"]
    from nodes import comfy_adapter

    return comfy_adapter.output_directory() / item["subfolder"] / item["filename"]


def _rerun(sidecar: Path, tmp_path: Path, capsys, *extra: str) -> torch.Tensor:
    code = cli.main(["generate", "--params", str(sidecar), "--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab",
                     str(VOCAB), "--device", "cpu", "--dtype", "float32", "--quiet", *extra, "--output",
                     str(tmp_path / "cli.wav"), "--save-latents", str(tmp_path / "cli.safetensors")])
    assert code == 0, capsys.readouterr().err
    return load_file(str(tmp_path / "cli.safetensors"))["latents"]


def test_node_text2music_record_reruns_in_the_cli(model, conditioning, tmp_path, capsys) -> None:
    (empty,) = AceStepV1EmptyLatent().build(2.0, 1)
    latent = sample(model, conditioning, empty)
    path = _save(model, latent)
    sidecar = path.with_name(path.stem + "_input_params.json")
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["lora_name_or_path"] == "none" and not Path(record["audio_path"]).is_absolute()
    assert torch.equal(_rerun(sidecar, tmp_path, capsys), latent["samples"])
    kind, workflow = load_workflow_from_file(path)
    assert kind == "workflow" and workflow["nodes"][0]["title"] == "Säve ♪"


def test_node_flow_edit_record_reruns_with_the_source_song(model, conditioning, source_latent, tmp_path,
                                                          capsys) -> None:
    """A flow edit's record keeps the source texts (prompt/lyrics) and the targets; the source song itself is not
    known to the save node (Load Audio read it), so the command line asks for --src-audio."""
    target = AceStepV1TextEncode().encode(model, "jazz, piano", "[verse]\nNew words")["result"][0]
    (edited,) = AceStepV1FlowEdit().edit(model, conditioning, target, source_latent, seed=3, steps=2,
                                         guidance_scale=15.0, scheduler="euler", edit_n_min=0.0, edit_n_max=1.0,
                                         edit_n_avg=1)
    path = _save(model, edited, "ogg")
    sidecar = path.with_name(path.stem + "_input_params.json")
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    assert record["prompt"] == conditioning["prompt"] and record["edit_target_prompt"] == "jazz, piano"
    assert record["src_audio_path"] is None
    code = cli.main(["generate", "--params", str(sidecar), "--checkpoint", str(TINY_CHECKPOINT), "--quiet",
                     "--output", str(tmp_path / "x.wav")])
    assert code == 2 and "--task edit needs --src-audio FILE" in capsys.readouterr().err
    assert torch.equal(_rerun(sidecar, tmp_path, capsys, "--src-audio", str(SRC_WAV)), edited["samples"])
    assert load_workflow_from_file(path)[0] == "workflow"


def test_flow_edit_without_a_change_is_refused(model, conditioning, source_latent) -> None:
    import pytest

    with pytest.raises(ValueError, match="nothing would change"):
        AceStepV1FlowEdit().edit(model, conditioning, conditioning, source_latent, seed=3, steps=2,
                                 guidance_scale=15.0, scheduler="euler", edit_n_min=0.0, edit_n_max=1.0, edit_n_avg=1)


def test_nan_latents_are_an_error_not_a_saved_file(model, conditioning, monkeypatch, output_dir) -> None:
    import pytest

    import acestep_core.sampling.pipeline as pipeline
    from acestep_core.errors import NonFiniteResultError

    real = pipeline.generate

    def nan_generate(*args, **kwargs):
        result = real(*args, **kwargs)
        result.latents[..., 0] = float("nan")
        return result

    monkeypatch.setattr(pipeline, "generate", nan_generate)
    (empty,) = AceStepV1EmptyLatent().build(2.0, 1)
    with pytest.raises(NonFiniteResultError, match="NaN or infinite values.*likely cause"):
        sample(model, conditioning, empty)
    nan_audio = {"waveform": torch.full((1, 2, 4800), float("nan")), "sample_rate": 48000}
    with pytest.raises(ValueError, match="NaN or infinite; nothing was written"):
        AceStepV1SaveAudio().save(nan_audio, "nan/x", "flac")
    assert not (output_dir / "nan").exists() or list((output_dir / "nan").iterdir()) == []

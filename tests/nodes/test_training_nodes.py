"""The training nodes standalone on the tiny checkpoint: the dataset report, a few steps into models/loras, the
LoRA used by the LoRA Loader, Cancel leaving a loadable LoRA and a resumable state, resume continuing the step
count, and bad input on the nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from nodes import comfy_adapter as adapter
from nodes.lora import AceStepV1LoraLoader
from nodes.train_lora import AceStepV1TrainLoRA
from nodes.training import AceStepV1TrainingDataset, AceStepV1TrainOptions
from tests.training.data_helpers import tone, write_song


@pytest.fixture
def input_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "input"
    songs = folder / "acestep_dataset"
    write_song(songs, "song_a", tags="pop, female vocals", lyrics="[verse]\nhello world", data=tone(3.1))
    write_song(songs, "song_b", tags="piano", lyrics="", data=tone(3.1, freq_hz=600))
    monkeypatch.setenv("ACESTEP_INPUT_DIR", str(folder))
    monkeypatch.setenv("ACESTEP_CACHE_DIR", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def options() -> dict[str, Any]:
    (opts,) = AceStepV1TrainOptions().options(precision="fp32", checkpointing="on", accumulate=1, warmup_steps=0,
                                              grad_clip=0.5, shift=3.0, ssl_coeff=1.0, targets="", rslora=False,
                                              mask_padding=False, keep_checkpoints=2, preview_seconds=1.0,
                                              preview_steps=2)
    return opts


def _train(model: Any, dataset: Any, name: str, options: dict[str, Any], *, steps: int = 3,
           resume: bool = False) -> dict[str, Any]:
    return AceStepV1TrainLoRA().train(model, dataset, name, steps, 4, 0.0, 1e-2, 1, 7, "off", 2, 0, resume,
                                      options=options, unique_id="12")


def test_dataset_report_and_training_into_models_loras(model: Any, models_dir: Path, input_dir: Path,
                                                       options: dict[str, Any]) -> None:
    out = AceStepV1TrainingDataset().load(model, "acestep_dataset")
    dataset, report = out["result"]
    assert "2 usable" in report and "song_a" in report and out["ui"]["text"] == [report]
    result = _train(model, dataset, "node_lora", options)["result"]
    lora_path, image, preview = result
    assert lora_path == "node_lora/pytorch_lora_weights.safetensors"
    folder = models_dir / "loras" / "node_lora"
    assert (folder / "adapter_config.json").is_file() and (folder / "training_state.json").is_file()
    assert lora_path in adapter.folder_files(adapter.LORAS_FOLDER)  # the LoRA Loader lists it
    assert image.shape[0] == 1 and image.shape[-1] == 3 and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    assert preview["sample_rate"] == 48000 and preview["waveform"].shape[:2] == (1, 2)
    assert float(preview["waveform"].abs().max()) > 0  # a real render of the final LoRA, not the silent fallback
    (with_lora,) = AceStepV1LoraLoader().apply(model, "ignored", 1.0, lora_path=lora_path)["result"]
    assert with_lora is not model


def test_cancel_keeps_a_loadable_lora_and_resume_continues(model: Any, models_dir: Path, input_dir: Path,
                                                          options: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from acestep_core.lora.formats import read_lora

    dataset = AceStepV1TrainingDataset().load(model, "acestep_dataset")["result"][0]
    steps_seen: list[int] = []
    real = adapter.ProgressBar.update

    def counting(self: Any, step: int, total: int | None = None, **kwargs: Any) -> None:
        steps_seen.append(step)
        real(self, step, total, **kwargs)
        if step == 2:
            adapter.request_interrupt()

    monkeypatch.setattr(adapter.ProgressBar, "update", counting)
    with pytest.raises(RuntimeError, match="training stopped at step 2; the LoRA and the state are saved"):
        _train(model, dataset, "cancelled", options, steps=5)
    folder = models_dir / "loras" / "cancelled"
    read_lora(folder)
    assert json.loads((folder / "training_state.json").read_text())["step"] == 2
    with pytest.raises(ValueError, match="already holds a training run; continue it with resume on"):
        _train(model, dataset, "cancelled", options, steps=5)
    steps_seen.clear()
    _train(model, dataset, "cancelled", options, steps=5, resume=True)
    assert steps_seen == [3, 4, 5]
    log = [json.loads(line)["step"] for line in (folder / "loss_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("name", "message"), [
    ("../escape", "no '/' or '..'"),
    ("a/b", "no '/' or '..'"),
    ("", "use letters, digits"),
])
def test_bad_names_are_refused(model: Any, models_dir: Path, input_dir: Path, options: dict[str, Any], name: str,
                               message: str) -> None:
    dataset = AceStepV1TrainingDataset().load(model, "acestep_dataset")["result"][0]
    with pytest.raises(ValueError, match=message):
        _train(model, dataset, name, options)


def test_missing_and_empty_dataset_folders(model: Any, models_dir: Path, input_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"folder 'nope': .* does not exist"):
        AceStepV1TrainingDataset().load(model, "nope")
    (input_dir / "empty").mkdir()
    with pytest.raises(ValueError, match="(?i)empty|no song"):
        AceStepV1TrainingDataset().load(model, "empty")


def test_out_of_memory_names_the_options(model: Any, models_dir: Path, input_dir: Path, options: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import nodes.train_lora as train_lora

    def oom(*_args: Any, **_kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(train_lora, "_run", oom)
    dataset = AceStepV1TrainingDataset().load(model, "acestep_dataset")["result"][0]
    with pytest.raises(RuntimeError, match="precision bf16 or fp8, checkpointing on"):
        _train(model, dataset, "oom", options)


def test_chart_events_carry_the_elapsed_training_time(model: Any, models_dir: Path, input_dir: Path,
                                                     options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart's progress events say the node, each step, and the time trained so far (``elapsed_s`` grows with
    every step and, on resume, includes the earlier run's steps), as web/lib/train_chart.js reads them."""
    from nodes import web_events

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(web_events, "send_event", lambda event, payload: sent.append({"event": event, **payload})
                        or True)
    dataset = AceStepV1TrainingDataset().load(model, "acestep_dataset")["result"][0]
    _train(model, dataset, "timed", options, steps=3)
    progress = [m for m in sent if m["event"] == web_events.TRAIN_PROGRESS_EVENT]
    assert [(m["node"], m["step"], m["max_steps"]) for m in progress] == [("12", 1, 3), ("12", 2, 3), ("12", 3, 3)]
    log = [json.loads(line) for line in (models_dir / "loras" / "timed" / "loss_log.jsonl").read_text().splitlines()]
    elapsed = [m["elapsed_s"] for m in progress]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= sum(line["seconds"] for line in log) - 1e-3
    sent.clear()
    _train(model, dataset, "timed", options, steps=4, resume=True)
    (resumed,) = [m for m in sent if m["event"] == web_events.TRAIN_PROGRESS_EVENT]
    assert resumed["step"] == 4 and resumed["elapsed_s"] > elapsed[-1]  # the chart's time left stays right

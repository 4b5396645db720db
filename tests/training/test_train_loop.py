"""The training loop as a library (what the ComfyUI node calls): stop and resume, a diverging loss, the trained
LoRA used at strength 1.0, and 2 gloo processes x batch 1 against 1 process x batch 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.lora.formats import read_lora
from acestep_core.lora.merge import LoraSpec, merge_loras
from acestep_core.lyrics import LyricTokenizer
from acestep_core.training.config import TrainConfig
from acestep_core.training.dataset import load_training_dataset
from acestep_core.training.loop import TrainCallbacks, TrainingDiverged
from acestep_core.training.lora import LoraConfig, attach_lora
from acestep_core.training.optim import OptimConfig
from acestep_core.training.run_files import RunFolder
from acestep_core.training.session import build_training_run, load_training_models
from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity_module
from tests.training.data_helpers import tone, write_song

require_parity_module()

VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"
CONFIG = TrainConfig(max_steps=4, lora=LoraConfig(r=4), optim=OptimConfig(learning_rate=1e-2, warmup_steps=0),
                     seed=5, repa="off", save_every=0)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loop_songs")
    write_song(folder, "a", tags="rock, guitar", lyrics="[verse]\nhold on", data=tone(3.1, freq_hz=300))
    write_song(folder, "b", tags="jazz, piano", lyrics="[chorus]\nla la", data=tone(3.1, freq_hz=600))
    return folder


def _run(songs: Path, output: Path, config: TrainConfig = CONFIG, *, resume: bool = False,
         stop_after: int | None = None) -> tuple[object, Path]:
    tokenizer = LyricTokenizer.from_vocab(VOCAB)
    dataset = load_training_dataset(songs, tokenizer, audio_cache={})
    models = load_training_models(TINY_CHECKPOINT, tokenizer, device=torch.device("cpu"), precision=config.precision,
                                  repa=False)
    folder = RunFolder(output)
    folder.prepare(resume=resume, overwrite=False)
    run = build_training_run(models, dataset, config, folder, device=torch.device("cpu"),
                             cache_dir=output.parent / "cache")
    steps: list[int] = []
    callbacks = TrainCallbacks(on_step=lambda report: steps.append(report.step),
                               should_stop=(lambda: len(steps) >= stop_after) if stop_after else None)
    return run.train(callbacks, resume=resume), output


def _lora(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "pytorch_lora_weights.safetensors"))


def test_stop_saves_and_resume_continues_exactly(songs: Path, tmp_path: Path) -> None:
    straight, _ = _run(songs, tmp_path / "straight")
    stopped, folder = _run(songs, tmp_path / "stopped", stop_after=2)
    assert stopped.stopped_early and stopped.steps_done == 2  # type: ignore[attr-defined]
    read_lora(folder)  # the stopped run left a loadable LoRA
    resumed, _ = _run(songs, folder, resume=True)
    assert resumed.steps_done == 4  # type: ignore[attr-defined]
    want = _lora(tmp_path / "straight")
    assert all(torch.equal(want[k], v) for k, v in _lora(folder).items())


@pytest.mark.parametrize(("precision", "optimizer"), [("fp32", "adamw8bit"), ("fp8", "adamw")])
def test_light_options_stop_and_resume_exactly(songs: Path, tmp_path: Path, precision: str, optimizer: str) -> None:
    """8-bit AdamW moments and fp8 base weights go through the training state and continue bit for bit."""
    lora = LoraConfig(r=128)  # r 128: the tiny model's 32-wide layers give LoRA tensors big enough for 8-bit moments
    config = replace(CONFIG, precision=precision, lora=lora,  # type: ignore[arg-type]
                     optim=replace(CONFIG.optim, optimizer=optimizer))
    straight, _ = _run(songs, tmp_path / "straight", config)
    _, folder = _run(songs, tmp_path / "stopped", config, stop_after=2)
    if optimizer == "adamw8bit":
        state = load_file(str(folder / "training_state.safetensors"))
        assert any(k.endswith(".exp_avg_q") and v.dtype == torch.uint8 for k, v in state.items())
    _run(songs, folder, config, resume=True)
    want, got = _lora(tmp_path / "straight"), _lora(folder)
    assert all(torch.equal(want[k], got[k]) for k in want)
    plain = _lora(_run(songs, tmp_path / "plain", replace(CONFIG, lora=lora))[1])
    assert any(not torch.equal(plain[k], want[k]) for k in want)  # the option changed the numbers
    assert straight.loss_history and all(torch.isfinite(torch.tensor(v)) for _, v in straight.loss_history)  # type: ignore[attr-defined]


def test_a_diverging_loss_stops_and_keeps_the_last_good_lora(songs: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import acestep_core.training.trainee as trainee

    real = trainee.step_loss
    calls = {"n": 0}

    def poisoned(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)
        calls["n"] += 1
        return replace(out, total=out.total * float("nan")) if calls["n"] == 3 else out

    monkeypatch.setattr(trainee, "step_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 3: the loss is nan .* LoRA of step 2 is kept"):
        _run(songs, tmp_path / "nan")
    lora = read_lora(tmp_path / "nan")
    assert lora.modules and all(torch.isfinite(m.up).all() for m in lora.modules.values())


def test_strength_one_reproduces_the_training_forward(songs: Path, tmp_path: Path) -> None:
    """The saved LoRA merged at strength 1.0 ("as trained") equals the adapters the run trained with."""
    _run(songs, tmp_path / "run")
    tokenizer = LyricTokenizer.from_vocab(VOCAB)
    models = load_training_models(TINY_CHECKPOINT, tokenizer, device=torch.device("cpu"), precision="fp32",
                                  repa=False)
    transformer = models.transformer
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 8, 16, 12, generator=g)
    text = torch.randn(1, 5, transformer.cfg.text_embedding_dim, generator=g)
    args = (text, torch.ones(1, 5), torch.zeros(1, 512), torch.tensor([[261, 5, 2]]), torch.ones(1, 3))
    with torch.no_grad():
        base = transformer.decode(x, None, *transformer.encode(*args), 500.0)
        adapter = attach_lora(transformer, CONFIG.lora, init_from=tmp_path / "run")
        hooked = transformer.decode(x, None, *transformer.encode(*args), 500.0)
        adapter.detach()
        merge = merge_loras(transformer, [LoraSpec(read_lora(tmp_path / "run"), 1.0)])
        merged = transformer.decode(x, None, *transformer.encode(*args), 500.0)
        merge.restore()
    assert float((hooked - base).abs().max()) > 1e-4  # the LoRA changes generation
    torch.testing.assert_close(merged, hooked, rtol=1e-5, atol=1e-5)


def test_two_gloo_processes_with_batch_one_equal_one_process_with_batch_two(tmp_path: Path) -> None:
    """DDP over the LoRA: the same global batch gives the same run. The songs share their tags and lyric length:
    prompts and lyrics are padded to the longest of a batch, which moves the positions of the condition tokens
    (the original's batching does the same), so only unpadded batches can be compared item for item."""
    songs = tmp_path / "songs"
    write_song(songs, "a", tags="rock, guitar", lyrics="[verse]\nhold on", data=tone(3.1, freq_hz=300))
    write_song(songs, "b", tags="rock, guitar", lyrics="[verse]\nlet go", data=tone(3.1, freq_hz=600))
    learning_rate = 1e-3
    common = ["--data", str(songs), "--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab", str(VOCAB),
              "--device", "cpu", "--rank", "4", "--max-steps", "3", "--seed", "9", "--repa", "off",
              "--save-every", "0", "--learning-rate", str(learning_rate), "--warmup-steps", "0", "--quiet",
              "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    single = [sys.executable, "-m", "acestep_core", "train", "--output", str(tmp_path / "one"), "--batch-size", "2"]
    subprocess.run(single + common, check=True, env=env, capture_output=True, timeout=600)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "acestep_core", "train", "--output", str(tmp_path / "two"), "--batch-size", "1"]
    result = subprocess.run(ddp + common, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [[json.loads(line) for line in (tmp_path / name / "loss_log.jsonl").read_text().splitlines()]
            for name in ("one", "two")]
    assert len(logs[0]) == len(logs[1]) == 3
    for one_step, two_step in zip(*logs, strict=True):  # the steps after the first see the updated LoRA
        assert two_step["loss"] == pytest.approx(one_step["loss"], rel=1e-5)
        assert two_step["grad_norm"] == pytest.approx(one_step["grad_norm"], rel=1e-4)
    one, two = _lora(tmp_path / "one"), _lora(tmp_path / "two")
    assert sorted(one) == sorted(two)
    # Adam normalises each element's step, so rounding in near-zero gradients moves an element by up to a
    # fraction of the learning rate; everything else agrees to fp32 rounding.
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=0, atol=0.1 * learning_rate, msg=key)

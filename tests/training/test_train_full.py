"""Full fine-tuning (``--full``, FSDP2) on the tiny checkpoint, CPU + gloo: 2 processes x batch 1 == 1 process x
batch 2, a sharded state resumes exactly, and what it writes is an official transformer folder (every key of the
base, sharded above the limit) that the loader reads as a whole checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.cli import commands as cli
from acestep_core.loading.checkpoint import read_weights
from acestep_core.loading.loader import load_checkpoint
from acestep_core.training.transformer_files import write_transformer_folder
from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity_module
from tests.training.data_helpers import tone, write_song

require_parity_module()

VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
LEARNING_RATE = 1e-3


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Equal tags and lyric lengths: unpadded batches compare item for item (see the LoRA DDP test)."""
    folder = tmp_path_factory.mktemp("full_songs")
    write_song(folder, "a", tags="rock, guitar", lyrics="[verse]\nhold on", data=tone(3.1, freq_hz=300))
    write_song(folder, "b", tags="rock, guitar", lyrics="[verse]\nlet go", data=tone(3.1, freq_hz=600))
    return folder


def _args(songs: Path, output: Path, *extra: str) -> list[str]:
    return ["train", "--full", "--data", str(songs), "--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab",
            str(VOCAB), "--device", "cpu", "--max-steps", "4", "--seed", "9", "--repa", "off", "--save-every", "2",
            "--learning-rate", str(LEARNING_RATE), "--warmup-steps", "0", "--quiet", "--cache-dir",
            str(output.parent / "cache"), "--output", str(output), *extra]


def _torchrun(args: list[str], processes: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "acestep_core", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return read_weights(folder / "ace_step_transformer", WEIGHTS)


def test_two_processes_equal_one_and_a_sharded_state_resumes_exactly(songs: Path, tmp_path: Path) -> None:
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    assert cli.main(_args(songs, one, "--batch-size", "2")) == 0
    result = _torchrun(_args(songs, two, "--batch-size", "1"), 2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in two.glob("training_state.rank*")) == [
        "training_state.rank00000-of-00002.safetensors", "training_state.rank00001-of-00002.safetensors"]
    logs = [[json.loads(line) for line in (folder / "loss_log.jsonl").read_text().splitlines()]
            for folder in (one, two)]
    assert [s["step"] for s in logs[1]] == [1, 2, 3, 4]
    for a, b in zip(*logs, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    want, got = _weights(one), _weights(two)
    base = load_file(str(TINY_CHECKPOINT / "ace_step_transformer" / WEIGHTS))
    assert sorted(want) == sorted(got) == sorted(base)  # every key of the released layout, trained or copied
    assert sum(not torch.equal(want[k], base[k]) for k in base) > len(base) // 2
    # Adam normalises each element's step: where the true gradient is ~0 (e.g. a key bias, which softmax ignores)
    # fp32 rounding of the reduction order decides its sign, so such an element can move by up to ~lr per step.
    # Every element stays within that bound, and all but a handful agree to a tenth of the learning rate.
    steps = len(logs[0])
    close = total = 0
    for key, value in want.items():
        diff = (got[key] - value).abs()
        assert diff.max() <= steps * LEARNING_RATE, key
        close += int((diff <= 0.1 * LEARNING_RATE).sum())
        total += diff.numel()
    assert total - close <= total * 1e-5, f"{total - close} of {total} elements differ by more than lr / 10"
    # interrupted after step 2: only the checkpoint (model + 2 optimiser shards) remains; 2 processes resume it
    shutil.copytree(two / "checkpoints" / "step_0000002", resumed / "checkpoints" / "step_0000002", symlinks=True)
    result = _torchrun(_args(songs, resumed, "--batch-size", "1", "--resume"), 2)
    assert result.returncode == 0, result.stderr[-3000:]
    final = _weights(resumed)
    assert all(torch.equal(final[k], got[k]) for k in got), "the sharded resume is not exact"
    # one process cannot continue a 2-shard state: a clear message, exit 2, the saved state untouched
    before = (resumed / "training_state.json").read_bytes()
    assert cli.main(_args(songs, resumed, "--batch-size", "2", "--resume")) == 2
    assert (resumed / "training_state.json").read_bytes() == before


def test_the_output_is_a_whole_checkpoint_and_shards_read_back(songs: Path, tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    assert cli.main(_args(songs, out, "--precision", "bf16", "--max-steps", "2", "--save-every", "0")) == 0
    saved = _weights(out)
    assert {v.dtype for v in saved.values()} == {torch.float32}  # fp32 master weights, bf16 compute
    loaded = load_checkpoint(out)  # the base's other components are linked beside it
    assert loaded.codec is not None and loaded.text_encoder is not None
    state = loaded.transformer.state_dict()
    assert all(torch.equal(state[k], saved[k]) for k in state)
    sharded = tmp_path / "sharded" / "ace_step_transformer"
    write_transformer_folder(sharded, saved, base=TINY_CHECKPOINT, cfg=loaded.transformer.cfg,
                             max_shard_bytes=1_000_000)
    index = json.loads((sharded / f"{WEIGHTS}.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and not (sharded / WEIGHTS).exists()
    assert shards[0].endswith(f"-of-{len(shards):05d}.safetensors")
    again = read_weights(sharded, WEIGHTS)
    assert sorted(again) == sorted(saved) and all(torch.equal(again[k], saved[k]) for k in saved)


@pytest.mark.parametrize(("extra", "message"), [
    (["--precision", "fp8"], "fp8 storage cannot hold"),
    (["--init-lora", str(TINY_CHECKPOINT)], "--init-lora starts a LoRA run"),
    (["--preview-every", "2"], "previews are rendered for LoRA runs only"),
])
def test_full_refuses_what_it_cannot_do(songs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        extra: list[str], message: str) -> None:
    assert cli.main(_args(songs, tmp_path / "x", *extra)) == 2
    assert message in capsys.readouterr().err


def test_a_crash_on_one_rank_names_it_and_keeps_the_last_saved_state(songs: Path, tmp_path: Path) -> None:
    """Rank 1 fails in its third step (a ``sitecustomize`` patches its loss): the run ends with that rank and the
    error named, and the checkpoint of step 2 stays complete and resumable."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    import acestep_core.training.full as full\n"
        "    real, calls = full.step_loss, []\n"
        "    def failing(*args, **kwargs):\n"
        "        calls.append(1)\n"
        "        if len(calls) == 3:\n"
        "            raise RuntimeError('injected failure')\n"
        "        return real(*args, **kwargs)\n"
        "    full.step_loss = failing\n", encoding="utf-8")
    out = tmp_path / "crash"
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{REPO_ROOT}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
               "acestep_core", *_args(songs, out, "--batch-size", "1")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected failure" in result.stderr, result.stderr[-3000:]
    checkpoint = out / "checkpoints" / "step_0000002"
    assert json.loads((checkpoint / "training_state.json").read_text())["step"] == 2
    assert sorted(p.name for p in checkpoint.glob("training_state.rank*")) == [
        "training_state.rank00000-of-00002.safetensors", "training_state.rank00001-of-00002.safetensors"]
    assert set(_weights(checkpoint)) == set(load_file(str(TINY_CHECKPOINT / "ace_step_transformer" / WEIGHTS)))
    assert not list(out.glob("checkpoints/.step_*"))  # no half-written checkpoint left behind as a checkpoint

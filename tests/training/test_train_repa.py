"""Training with REPA on the tiny checkpoint: tiny teachers as wide as its projector heads (16 and 12), features
computed once and read from the cache by the next run, and the REPA loss the run logs equal to the loss of the
cached features."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from acestep_core.cli import commands as cli
from acestep_core.teachers import FeatureCache, HubertConfig, TeacherSet
from acestep_core.teachers.weights import save_teacher_folder
from acestep_core.training import repa as repa_module
from acestep_core.training.audio import prepare_training_audio
from tests.core.teachers.conftest import random_state_dict
from tests.parity import PARITY_DIR, TINY_CHECKPOINT, require_parity_module
from tests.training.data_helpers import tone, write_song

require_parity_module()

VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # as wide as the tiny checkpoint's REPA heads: ssl_latent_dims (16, 12) for (mert, m-hubert)
    root = tmp_path_factory.mktemp("teachers")
    mert = HubertConfig.tiny(hidden_size=16, stable_layer_norm=True, num_attention_heads=2, conv_pos_groups=4)
    mhubert = HubertConfig.tiny(hidden_size=12, stable_layer_norm=False, num_attention_heads=4, conv_pos_groups=4)
    save_teacher_folder(root / "mert", mert, random_state_dict(mert, seed=1))
    save_teacher_folder(root / "mhubert", mhubert, random_state_dict(mhubert, seed=2))
    return {"mert": root / "mert", "m-hubert": root / "mhubert"}


def _args(songs: Path, output: Path, teachers: dict[str, Path], cache: Path) -> list[str]:
    return ["train", "--data", str(songs), "--checkpoint", str(TINY_CHECKPOINT), "--output", str(output),
            "--lyric-vocab", str(VOCAB), "--device", "cpu", "--rank", "4", "--max-steps", "2", "--seed", "4",
            "--repa", "on", "--teacher-mert", str(teachers["mert"]), "--teacher-mhubert", str(teachers["m-hubert"]),
            "--save-every", "0", "--cache-dir", str(cache), "--quiet"]


def test_repa_trains_caches_once_and_uses_the_cached_features(tmp_path: Path, teachers: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    songs = tmp_path / "songs"
    write_song(songs, "a", tags="rock", lyrics="[verse]\nhold on", data=tone(3.3, freq_hz=300))
    write_song(songs, "b", tags="piano", lyrics="", data=tone(5.2, freq_hz=500))
    seen: list[tuple[dict[str, list[torch.Tensor]], dict[str, torch.Tensor]]] = []
    real = repa_module.repa_losses

    def recording(*args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        out = real(*args, **kwargs)  # type: ignore[arg-type]
        features = args[4]
        seen.append(({k: [t.detach().clone() for t in v] for k, v in features.items()},  # type: ignore[attr-defined]
                     {k: v.detach().clone() for k, v in out.items()}))
        return out

    monkeypatch.setattr("acestep_core.training.step.repa_losses", recording)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="acestep_core"):
        assert cli.main(_args(songs, tmp_path / "first", teachers, cache)) == 0
    assert "REPA on" in caplog.text and "2 computed" in caplog.text
    log = [json.loads(line) for line in (tmp_path / "first" / "loss_log.jsonl").read_text().splitlines()]
    for entry in log:
        assert 0.0 < entry["mert_loss"] < 2.0 and 0.0 < entry["m-hubert_loss"] < 2.0
        assert entry["loss"] > entry["denoising_loss"]
    first_losses = [losses for _, losses in seen]
    caplog.clear()
    seen.clear()
    with caplog.at_level(logging.INFO, logger="acestep_core"):
        assert cli.main(_args(songs, tmp_path / "second", teachers, cache)) == 0
    assert "2 read, 0 computed" in caplog.text
    assert all(torch.equal(a[k], b[k]) for a, (_, b) in zip(first_losses, seen, strict=True) for k in a)
    # The features the steps used are the cached ones (the teachers' features of each song, stored in fp16).
    loaded = TeacherSet.load(paths=teachers, feature_dims={"mert": 16, "m-hubert": 12})
    feature_cache = FeatureCache(cache / "features")
    cached = {}
    for audio in (prepare_training_audio(songs / "a.wav"), prepare_training_audio(songs / "b.wav")):
        feats = feature_cache.features(loaded, audio.waveform[None], torch.tensor([audio.num_samples]))
        cached[feats["mert"][0].shape[0]] = feats
    assert feature_cache.stats.misses == 0 and len(cached) == 2
    for used, losses in seen:
        (item,) = used["mert"]
        want = cached[item.shape[0]]
        for name in ("mert", "m-hubert"):
            assert torch.equal(used[name][0], want[name][0]), name
            assert torch.isfinite(losses[name])


def test_repa_on_without_teachers_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACESTEP_CACHE_DIR", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    songs = tmp_path / "songs"
    write_song(songs, "a", data=tone(3.0))
    argv = ["train", "--data", str(songs), "--checkpoint", str(TINY_CHECKPOINT), "--output", str(tmp_path / "o"),
            "--lyric-vocab", str(VOCAB), "--device", "cpu", "--repa", "on", "--max-steps", "1", "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "MERT-v1-330M" in err and "CC-BY-NC" in err, err

"""Every node end to end on the tiny checkpoint (standalone adapter, CPU, 2 steps): LATENT / AUDIO contracts,
the task mapping of the sampler, saving with embedded parameters."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import soundfile as sf
import torch

from nodes import NODE_CLASS_MAPPINGS
from nodes.audio import AceStepV1LatentToAudio, AceStepV1SaveAudio, embedded_metadata
from nodes.conditioning import AceStepV1GuidanceOptions, AceStepV1TextEncode
from nodes.latent import AceStepV1EmptyLatent, AceStepV1ExtendLatent, AceStepV1RepaintWindow
from nodes.loaders import DOWNLOAD_CHOICE, list_checkpoints
from nodes.sampling import AceStepV1FlowEdit, AceStepV1Sampler
from tests.frontend_metadata import load_workflow_from_file

SAMPLER_DEFAULTS = dict(seed=1234, steps=2, guidance_scale=15.0, scheduler="euler", cfg_type="apg", omega_scale=10.0,
                        retake_variance=0.0, audio2audio_strength=0.5)


def check_latent(latent: dict[str, Any], batch: int, frames: int) -> None:
    assert latent["type"] == "audio"
    samples = latent["samples"]
    assert samples.dtype == torch.float32 and samples.device.type == "cpu"
    assert list(samples.shape) == [batch, 8, 16, frames]
    assert torch.isfinite(samples).all()


def sample(model: Any, conditioning: Any, latent: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return AceStepV1Sampler().sample(model, conditioning, latent, **{**SAMPLER_DEFAULTS, **overrides})[0]


def test_loader_lists_folders_and_download(models_dir: Path) -> None:
    choices = list_checkpoints()
    assert "ace_step/tiny" in choices and choices[-1] == DOWNLOAD_CHOICE


def test_text_encode_shows_the_lyric_inspection(model: Any) -> None:
    out = AceStepV1TextEncode().encode(model, "rock", "[verse]\nHello world\n你好世界")
    conditioning, report = out["result"][0], out["ui"]["text"][0]
    assert conditioning["prompt"] == "rock" and conditioning["lyric_tokens"] is not None
    assert conditioning["prompt_tokens"][0].shape[0] == 1
    assert "lyric tokens" in report and "ni3" in report and "[zh" in report and "line 2: " in report
    instrumental = AceStepV1TextEncode().encode(model, "rock", "")["result"][0]
    assert instrumental["lyric_tokens"] is None


def test_text2music_decode_save(model: Any, conditioning: Any, output_dir: Path) -> None:
    (empty,) = AceStepV1EmptyLatent().build(2.0, 2)
    check_latent(empty, 2, 21)
    latent = sample(model, conditioning, empty)
    check_latent(latent, 2, 21)
    params = latent["acestep_params"]
    assert params["task"] == "text2music" and params["actual_seeds"] == [1234, 1235]
    (audio,) = AceStepV1LatentToAudio().decode(model, latent, "44100", "off")
    assert audio["sample_rate"] == 44100 and list(audio["waveform"].shape) == [2, 2, 21 * 4096]
    assert audio["waveform"].dtype == torch.float32
    out = AceStepV1SaveAudio().save(audio, "audio/song", "flac", prompt={"1": {}}, extra_pnginfo={"workflow": {}})
    files = out["ui"]["audio"]
    assert [f["filename"] for f in files] == ["song_00001_.flac", "song_00002_.flac"]
    assert all(f["subfolder"] == "audio" and f["type"] == "output" for f in files)
    path = output_dir / "audio" / "song_00001_.flac"
    assert sf.info(str(path)).samplerate == 44100
    meta = embedded_metadata(path)
    assert meta["task"] == "text2music" and meta["actual_seeds"] == [1234, 1235]
    assert meta["audio_path"] == "audio/song_00001_.flac"  # relative to ComfyUI's output folder
    assert load_workflow_from_file(path) == ("workflow", {})  # the tags ComfyUI's frontend reads on drop
    assert (output_dir / "audio" / "song_00001__input_params.json").is_file()
    again = AceStepV1SaveAudio().save(audio, "audio/song", "wav")["ui"]["audio"]
    assert again[0]["filename"] == "song_00003_.wav"


def test_guidance_options_retake_and_seed_list(model: Any, conditioning: Any) -> None:
    (guidance,) = AceStepV1GuidanceOptions().build(
        guidance_interval=1.0, guidance_interval_decay=0.5, min_guidance_scale=2.0, use_erg_tag=False,
        use_erg_lyric=False, use_erg_diffusion=False, guidance_scale_text=0.0, guidance_scale_lyric=0.0,
        oss_steps="")
    (empty,) = AceStepV1EmptyLatent().build(1.5, 2)
    latent = sample(model, conditioning, empty, retake_variance=0.3, seeds="7, 8", retake_seeds="9",
                    guidance=guidance, scheduler="pingpong", cfg_type="cfg")
    check_latent(latent, 2, 16)
    params = latent["acestep_params"]
    assert params["task"] == "retake" and params["actual_seeds"] == [7, 8] and params["retake_seeds"] == [9, 9]
    assert params["use_erg_tag"] is False and params["guidance_interval"] == 1.0


def test_repaint_extend_audio2audio_flowedit(model: Any, conditioning: Any, source_latent: dict[str, Any]) -> None:
    check_latent(source_latent, 1, 22)
    (marked,) = AceStepV1RepaintWindow().mark(source_latent, 0.5, 1.5, 0.6, feather_s=0.2)["result"]
    assert list(marked["noise_mask"].shape) == [1, 16, 22] and marked["noise_mask"].max() == 1.0
    repainted = sample(model, conditioning, marked)
    check_latent(repainted, 1, 22)
    assert repainted["acestep_params"]["task"] == "repaint"
    assert torch.equal(repainted["samples"][..., :5], source_latent["samples"][..., :5])

    (extended,) = AceStepV1ExtendLatent().extend(source_latent, 0.5, 1.0)["result"]
    check_latent(extended, 1, 5 + 22 + 10)
    out = sample(model, conditioning, extended)
    check_latent(out, 1, 37)
    assert out["acestep_params"]["task"] == "extend"

    a2a = sample(model, conditioning, source_latent, audio2audio_strength=0.7)
    check_latent(a2a, 1, 22)
    assert a2a["acestep_params"]["task"] == "audio2audio"

    target = AceStepV1TextEncode().encode(model, "jazz, piano", "")["result"][0]
    (edited,) = AceStepV1FlowEdit().edit(model, conditioning, target, source_latent, seed=3, steps=2,
                                         guidance_scale=15.0, scheduler="euler", edit_n_min=0.0, edit_n_max=1.0,
                                         edit_n_avg=1)
    check_latent(edited, 1, 22)
    assert edited["acestep_params"]["task"] == "edit"


def test_decode_48k_overlapped_and_core_audio_contract(model: Any, source_latent: dict[str, Any]) -> None:
    (audio,) = AceStepV1LatentToAudio().decode(model, source_latent, "48000", "auto")
    waveform = audio["waveform"]
    assert audio["sample_rate"] == 48000 and waveform.ndim == 3 and waveform.shape[:2] == (1, 2)
    assert abs(waveform.shape[-1] - 22 * 4096 * 48000 / 44100) <= 1
    core_style = {"samples": source_latent["samples"]}  # core VAEEncodeAudio omits "type"
    assert AceStepV1LatentToAudio().decode(model, core_style, "44100", "on")[0]["sample_rate"] == 44100


def test_registry() -> None:
    assert set(NODE_CLASS_MAPPINGS) >= {"AceStepV1CheckpointLoader", "AceStepV1Sampler", "AceStepV1SaveAudio"}


def test_single_files_are_filtered_by_header(models_dir: Path) -> None:
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.genre_embedder.weight": torch.zeros(1)}, str(models_dir / "checkpoints" /
                                                                                    "ace.safetensors"))
    save_file({"model.diffusion_model.input_blocks.0.weight": torch.zeros(1)}, str(models_dir / "checkpoints" /
                                                                                    "sdxl.safetensors"))
    try:
        choices = list_checkpoints()
        assert "ace.safetensors" in choices and "sdxl.safetensors" not in choices
    finally:
        for name in ("ace.safetensors", "sdxl.safetensors"):
            (models_dir / "checkpoints" / name).unlink()


def test_download_choice_fetches_only_when_run(models_dir: Path, monkeypatch) -> None:
    import acestep_core.hub as hub
    from nodes.loaders import resolve_checkpoint

    calls, updates = [], []

    class RecordingBar:  # stands in for the node's progress bar (ComfyUI's, or log lines standalone)
        def __init__(self, total: int) -> None:
            self.total = total

        def update(self, step: int, total: int | None = None) -> None:
            updates.append((step, total))

    monkeypatch.setattr("nodes.loaders.adapter.ProgressBar", RecordingBar)

    def fake_download(target: Path, *, tqdm_class: type, offline_hint: str) -> Path:
        assert "models/ace_step" in offline_hint
        calls.append(target)
        with tqdm_class(total=4, file=io.StringIO()) as bar:  # huggingface_hub drives it once per file
            for _ in range(4):
                bar.update(1)
        return target / "snap"

    monkeypatch.setattr(hub, "download_checkpoint", fake_download)
    assert calls == []  # listing the choices downloads nothing
    assert resolve_checkpoint(DOWNLOAD_CHOICE) == models_dir / "ace_step" / "snap"
    assert calls == [models_dir / "ace_step"] and updates == [(1, 4), (2, 4), (3, 4), (4, 4)]

"""Clear errors for bad input: missing model, wrong latent type, repaint window outside the audio, unsupported
save format, unwritable output folder, prefixes escaping the output folder, bad seeds; interrupt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from nodes import comfy_adapter
from nodes.audio import AceStepV1LatentToAudio, AceStepV1SaveAudio, safe_output_folder
from nodes.latent import AceStepV1EmptyLatent, AceStepV1ExtendLatent, AceStepV1RepaintWindow
from nodes.loaders import AceStepV1CheckpointLoader
from nodes.sampling import AceStepV1Sampler, parse_seed_list
from tests.nodes.test_nodes import SAMPLER_DEFAULTS

AUDIO = {"waveform": torch.zeros(1, 2, 4410), "sample_rate": 44100}


def test_missing_model_file(models_dir: Path) -> None:
    with pytest.raises(OSError, match=r"ckpt_name 'ace_step/nope': model not found\. Available: \['ace_step/tiny'\]"):
        AceStepV1CheckpointLoader().load("ace_step/nope", "auto")
    with pytest.raises(OSError, match="model not found"):
        AceStepV1CheckpointLoader().load("missing.safetensors", "auto")


@pytest.mark.parametrize(("latent", "message"), [
    ({"samples": torch.zeros(1, 4, 64, 64)}, r"expected ACE-Step v1 latents \[B, 8, 16, T\], got \[1, 4, 64, 64\]"),
    ({"samples": torch.zeros(1, 8, 16, 10), "type": "hunyuan3dv2"}, "is not an audio latent"),
    ("not a latent", "expected a LATENT dict"),
])
def test_wrong_latent(model: Any, conditioning: Any, latent: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AceStepV1Sampler().sample(model, conditioning, latent, **SAMPLER_DEFAULTS)
    with pytest.raises(ValueError, match=message):
        AceStepV1LatentToAudio().decode(model, latent, "44100", "off")


def test_repaint_window_outside_the_audio(source_latent: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"end_s 5.0 s is past the end of the song \(2.04 s\)"):
        AceStepV1RepaintWindow().mark(source_latent, 1.0, 5.0, 0.5)
    with pytest.raises(ValueError, match=r"end_s \(1.0 s\) must be after start_s \(1.5 s\)"):  # reversed
        AceStepV1RepaintWindow().mark(source_latent, 1.5, 1.0, 0.5)
    with pytest.raises(ValueError, match="shorter than one latent frame"):
        AceStepV1RepaintWindow().mark(source_latent, 1.0, 1.01, 0.5)
    (empty,) = AceStepV1EmptyLatent().build(2.0, 1)
    with pytest.raises(ValueError, match="needs a latent holding audio"):
        AceStepV1RepaintWindow().mark(empty, 0.0, 1.0, 0.5)
    (marked,) = AceStepV1RepaintWindow().mark(source_latent, 0.0, 1.0, 0.5)["result"]
    with pytest.raises(ValueError, match="already marked for repaint"):
        AceStepV1ExtendLatent().extend(marked, 0.0, 1.0)


def test_extend_limits(source_latent: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not both 0"):
        AceStepV1ExtendLatent().extend(source_latent, 0.0, 0.0)
    with pytest.raises(ValueError, match="at most the source length per side"):
        AceStepV1ExtendLatent().extend(source_latent, 0.0, 10.0)


def test_unsupported_save_format() -> None:
    with pytest.raises(ValueError, match=r"format 'aiff' is not supported; choose one of \['flac', 'wav', 'mp3'"):
        AceStepV1SaveAudio().save(AUDIO, "x", "aiff")


def test_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ACESTEP_OUTPUT_DIR", str(blocker / "out"))
    with pytest.raises(ValueError, match="cannot create the output folder .* writable"):
        AceStepV1SaveAudio().save(AUDIO, "audio/x", "wav")


@pytest.mark.parametrize("prefix", ["../evil", "/etc/evil", "a/../../evil", "C:/evil", "", "folder/"])
def test_prefix_cannot_escape_the_output_folder(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="filename_prefix"):
        safe_output_folder(tmp_path, prefix)
    with pytest.raises(ValueError, match="filename_prefix"):
        AceStepV1SaveAudio().save(AUDIO, prefix, "wav")


def test_prefix_symlink_escape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ValueError, match="resolves outside the output folder"):
        safe_output_folder(tmp_path / "out", "link/x")


def test_bad_seed_lists() -> None:
    assert parse_seed_list("", 2, "seeds") is None
    assert parse_seed_list("5", 3, "seeds") == [5, 5, 5]
    with pytest.raises(ValueError, match="2 seed\\(s\\) for a batch of 3"):
        parse_seed_list("1,2", 3, "seeds")
    with pytest.raises(ValueError, match="cannot read 'a,b' as seeds"):
        parse_seed_list("a,b", 2, "seeds")


def test_bad_generation_values_are_clear(model: Any, conditioning: Any) -> None:
    (empty,) = AceStepV1EmptyLatent().build(1.0, 1)
    with pytest.raises(ValueError, match="oss_steps"):
        AceStepV1Sampler().sample(model, conditioning, empty, **{**SAMPLER_DEFAULTS, "scheduler": "heun"},
                                  guidance={"oss_steps": "1, 2"})
    with pytest.raises(ValueError, match="ACESTEP_CONDITIONING"):
        AceStepV1Sampler().sample(model, [[torch.zeros(1), {}]], empty, **SAMPLER_DEFAULTS)


def test_interrupt_stops_the_sampler(model: Any, conditioning: Any) -> None:
    from acestep_core.sampling.pipeline import GenerationInterrupted

    (empty,) = AceStepV1EmptyLatent().build(1.0, 1)
    comfy_adapter.request_interrupt()
    try:
        with pytest.raises(GenerationInterrupted, match="before step 1"):
            AceStepV1Sampler().sample(model, conditioning, empty, **SAMPLER_DEFAULTS)
    finally:
        comfy_adapter.request_interrupt(False)
    assert not comfy_adapter.interrupt_requested()


def test_torch_compile_on_a_cpu_server_falls_back_with_one_warning(model: Any, conditioning: Any, caplog) -> None:
    """A shared workflow asking for torch.compile on a CPU server samples without it (the CPU backend fails on
    the DiT blocks) and says so once, instead of a compiler traceback."""
    (empty,) = AceStepV1EmptyLatent().build(1.0, 1)
    plain = AceStepV1Sampler().sample(model, conditioning, empty, **SAMPLER_DEFAULTS)[0]["samples"]
    with caplog.at_level("WARNING"):
        (out,) = AceStepV1Sampler().sample(model, conditioning, empty, **SAMPLER_DEFAULTS,
                                           acceleration="batched + CUDA graphs + torch.compile")
    assert torch.equal(out["samples"], plain)
    assert caplog.text.count("torch.compile works on CUDA only") == 1


def test_sampler_errors_name_the_widgets(model: Any, conditioning: Any, source_latent: dict[str, Any]) -> None:
    """Core messages come back in the node graph's words (no audio_duration / infer_step / task='extend')."""
    long = {"samples": torch.randn(1, 8, 16, 2700), "type": "audio"}
    from nodes.conditioning import AceStepV1TextEncode
    from nodes.sampling import AceStepV1FlowEdit

    target = AceStepV1TextEncode().encode(model, "jazz", "")["result"][0]
    with pytest.raises(ValueError, match="the source latent: the source is 250.8 s long; flow edit processes") as e:
        AceStepV1FlowEdit().edit(model, conditioning, target, long, seed=1, steps=2, guidance_scale=15.0,
                                 scheduler="euler", edit_n_min=0.0, edit_n_max=1.0, edit_n_avg=1)
    assert "src_latents" not in str(e.value) and "task '" not in str(e.value)
    with pytest.raises(ValueError, match="steps: expected an integer >= 1"):
        AceStepV1Sampler().sample(model, conditioning, source_latent, **{**SAMPLER_DEFAULTS, "steps": 0})


def test_vocabulary_errors_speak_of_the_loader_input(model: Any, tmp_path: Path) -> None:
    """A missing lyric vocabulary names the loader's lyric_vocab input, not the Python API's options."""
    import dataclasses

    broken = dataclasses.replace(model, lyric_vocab=str(tmp_path / "missing.json"), _cache={})
    with pytest.raises(ValueError, match="lyric_vocab input") as info:
        broken.lyric_tokenizer()
    assert "allow_download" not in str(info.value) and "comfyui_root" not in str(info.value)

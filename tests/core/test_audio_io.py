"""Audio file I/O: round trips per format with embedded parameters, sidecars, and clear errors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from acestep_core.audio.files import (
    AudioFileError,
    format_from_path,
    probe_audio,
    read_audio,
    read_embedded_params,
    sidecar_path,
    write_audio,
    write_sidecar,
)
from acestep_core.errors import AceStepInputError

FORMATS = ["wav", "flac", "ogg"] + (["mp3"] if "MP3" in sf.available_formats() else [])
# Long enough to exceed libsndfile's ~2 KB WAV string limit, with non-ASCII text.
RECORD = {"prompt": "pop, rock", "lyrics": "[verse]\n我们一起唱\n" * 200, "actual_seeds": [1, 2], "x": 0.5}


def _tone(seconds: float = 0.5, sample_rate: int = 48000) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    return torch.stack([0.3 * torch.sin(2 * torch.pi * 440 * t), 0.2 * torch.sin(2 * torch.pi * 660 * t)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_with_metadata(tmp_path, fmt: str) -> None:
    audio = _tone()
    path = write_audio(tmp_path / "sub" / f"song.{fmt}", audio, 48000, metadata=RECORD)
    assert path.is_file()
    decoded, sample_rate = read_audio(path)
    assert sample_rate == 48000 and decoded.dtype == torch.float32 and decoded.shape[0] == 2
    if fmt in ("wav", "flac"):  # lossless: exact length, float32 / 24-bit precision
        assert decoded.shape == audio.shape
        torch.testing.assert_close(decoded, audio, atol=1e-6 if fmt == "wav" else 1e-6 * 2**4, rtol=0)
    else:  # lossy codecs add encoder delay/padding
        assert abs(decoded.shape[1] - audio.shape[1]) < 4096
    assert read_embedded_params(path) == RECORD
    assert probe_audio(path).duration_s == pytest.approx(decoded.shape[1] / 48000)


def test_wav_stays_float_and_unclipped_and_riff_is_consistent(tmp_path) -> None:
    audio = _tone() * 5.0  # upstream writes float WAV without clipping
    path = write_audio(tmp_path / "loud.wav", audio, 48000, metadata={"a": 1})
    assert sf.info(str(path)).subtype == "FLOAT"
    decoded, _ = read_audio(path)
    torch.testing.assert_close(decoded, audio)
    data = path.read_bytes()
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert b"LIST" in data and b"ICMT" in data


def test_lossy_and_integer_formats_are_clipped(tmp_path) -> None:
    path = write_audio(tmp_path / "loud.flac", _tone() * 5.0, 48000)
    decoded, _ = read_audio(path)
    assert decoded.abs().max() <= 1.0


def test_no_metadata_reads_as_none(tmp_path) -> None:
    for fmt in ("wav", "flac"):
        path = write_audio(tmp_path / f"plain.{fmt}", _tone(), 48000)
        assert read_embedded_params(path) is None


def test_mono_is_duplicated_to_stereo(tmp_path) -> None:
    mono = _tone()[0]
    path = write_audio(tmp_path / "mono.wav", mono, 44100)
    audio, sample_rate = read_audio(path)
    assert sample_rate == 44100 and audio.shape == (2, mono.shape[0])
    torch.testing.assert_close(audio[0], audio[1])
    assert read_audio(path, stereo=False)[0].shape == (1, mono.shape[0])


def test_three_channels_refused(tmp_path) -> None:
    path = tmp_path / "surround.wav"
    sf.write(str(path), np.zeros((1000, 3), dtype=np.float32), 48000)
    with pytest.raises(AudioFileError, match="3 channels.*mono or stereo"):
        read_audio(path, what="--src-audio")


def test_missing_unreadable_and_folder(tmp_path) -> None:
    with pytest.raises(AudioFileError, match="--src-audio: file not found"):
        probe_audio(tmp_path / "nope.wav", what="--src-audio")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioFileError, match="cannot read .*junk.wav"):
        read_audio(junk)
    with pytest.raises(AudioFileError, match="is a folder"):
        probe_audio(tmp_path)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 2), dtype=np.float32), 48000)
    with pytest.raises(AudioFileError, match="no audio samples"):
        probe_audio(empty)
    assert issubclass(AudioFileError, AceStepInputError)


def test_unsupported_output_format_and_bad_shapes(tmp_path) -> None:
    with pytest.raises(AudioFileError, match=r"unsupported audio format 'm4a'.*\.wav, \.flac, \.mp3, \.ogg"):
        write_audio(tmp_path / "x.m4a", _tone(), 48000)
    with pytest.raises(AudioFileError, match="no extension"):
        format_from_path(tmp_path / "x")
    with pytest.raises(AudioFileError, match=r"\[C, N\] waveform"):
        write_audio(tmp_path / "x.wav", torch.zeros(3, 100), 48000)
    assert format_from_path("A.FLAC") == "flac"


def test_mp3_unavailable_names_the_alternative(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sf, "available_formats", lambda: {"WAV": "", "FLAC": "", "OGG": ""})
    with pytest.raises(AudioFileError, match="cannot write mp3.*write .wav or .flac instead"):
        write_audio(tmp_path / "x.mp3", _tone(), 48000)


def test_sidecar_naming_and_format(tmp_path) -> None:
    audio_path = tmp_path / "out" / "song_1.flac"
    assert sidecar_path(audio_path) == tmp_path / "out" / "song_1_input_params.json"
    target = write_sidecar(audio_path, RECORD)
    text = target.read_text(encoding="utf-8")
    assert json.loads(text) == RECORD and "我们" in text and text.startswith("{\n    ")


# ------------------------------------------------------------------ ComfyUI drag-back (tests/frontend_metadata.py)
def _comfy_tags() -> tuple[dict, dict, dict[str, str]]:
    from tests.parity import REPO_ROOT

    workflow = json.loads((REPO_ROOT / "workflows" / "api" / "text2music.json").read_text(encoding="utf-8"))
    graph = {"nodes": [{"id": 1, "type": "AceStepV1TextEncode", "widgets_values": ["pop", "[verse]\n我们一起唱"]}],
             "api": workflow}
    return workflow, graph, {"prompt": json.dumps(workflow), "workflow": json.dumps(graph)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_comfyui_reads_the_workflow_back_as_its_frontend_does(tmp_path, fmt: str) -> None:
    """Dropping the file on ComfyUI's canvas restores the workflow (flac, ogg, mp3) exactly, non-ASCII text
    included; our parameter record stays readable next to it. WAV: ComfyUI's frontend has no WAV reader."""
    from tests.frontend_metadata import load_workflow_from_file

    prompt, graph, tags = _comfy_tags()
    path = write_audio(tmp_path / f"song.{fmt}", _tone(6.0), 48000, metadata=RECORD,
                       extra_tags={k: json.dumps(json.loads(v), ensure_ascii=True) for k, v in tags.items()})
    kind, loaded = load_workflow_from_file(path)
    if fmt == "wav":
        assert kind == "error"
    else:
        assert (kind, loaded) == ("workflow", graph)
    assert read_embedded_params(path) == RECORD
    decoded, _ = read_audio(path)
    assert decoded.shape[0] == 2 and decoded.shape[1] > 48000 * 5


def test_ogg_reader_survives_a_length_byte_that_is_a_brace(tmp_path) -> None:
    """ComfyUI's Ogg regular expression runs from ``prompt={`` to the next zero byte and keeps text up to the last
    ``}``: a following entry length with a 0x7D byte would break it, so values are padded to avoid one."""
    from tests.frontend_metadata import load_workflow_from_file

    prompt = json.dumps({"1": {"inputs": {"text": "x"}}})
    for size in range(200, 700):  # one of these puts 0x7D in the low byte of the workflow entry's length
        graph = json.dumps({"pad": "y" * size})
        if len(f"workflow={graph}") & 0xFF == 0x7D:
            break
    path = write_audio(tmp_path / "s.ogg", _tone(3.0), 48000, extra_tags={"prompt": prompt, "workflow": graph})
    assert load_workflow_from_file(path) == ("workflow", json.loads(graph))


def test_audio_is_written_atomically_and_never_over_an_existing_file(tmp_path) -> None:
    first = write_audio(tmp_path / "a.flac", _tone(), 48000)
    data = first.read_bytes()
    from acestep_core.safe_write import OutputExistsError

    with pytest.raises(OutputExistsError, match="exists; nothing was replaced"):
        write_audio(first, _tone() * 0.5, 48000)
    assert first.read_bytes() == data
    assert write_audio(first, _tone() * 0.5, 48000, unique=True) == tmp_path / "a-1.flac"
    with pytest.raises(AudioFileError, match="NaN or infinite; nothing was written"):
        write_audio(tmp_path / "nan.wav", torch.full((2, 100), float("nan")), 48000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-1.flac", "a.flac"]

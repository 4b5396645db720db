"""``generate`` never loses a song and never reports a broken result: existing files, inputs used as outputs,
interrupts while writing, concurrent runs, non-finite results, and the checks made before the model is loaded
(the loader is patched to fail), each with a message in the command line's words."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep_core.cli import commands as cli
from tests.core.test_cli import (  # noqa: F401 - _reuse_loaded_checkpoint: load the tiny model once here too
    LYRICS,
    SRC_WAV,
    VOCAB,
    _forbid_model_loading,
    _reuse_loaded_checkpoint,
    base_args,
    run,
)
from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------ existing files
def test_existing_output_gets_the_next_free_name_and_overwrite_replaces(tmp_path, capsys, caplog) -> None:
    require_parity()
    code, first, err = run(base_args(tmp_path, "song.wav"), capsys)
    assert code == 0 and first == [str(tmp_path / "song.wav")], err
    before = (tmp_path / "song.wav").read_bytes()
    code, second, err = run(base_args(tmp_path, "song.wav"), capsys)
    assert code == 0 and second == [str(tmp_path / "song-1.wav")]
    assert "song.wav exists; wrote" in caplog.text and "--overwrite replaces" in caplog.text
    assert (tmp_path / "song.wav").read_bytes() == before
    record = json.loads((tmp_path / "song-1_input_params.json").read_text(encoding="utf-8"))
    assert record["audio_path"] == str(tmp_path / "song-1.wav")  # the pair names itself
    code, third, _ = run([*base_args(tmp_path, "song.wav"), "--overwrite", "--seed", "99"], capsys)
    assert code == 0 and third == [str(tmp_path / "song.wav")]
    assert (tmp_path / "song.wav").read_bytes() != before
    assert json.loads((tmp_path / "song_input_params.json").read_text())["actual_seeds"] == [99]
    assert _files(tmp_path) == ["song-1.wav", "song-1_input_params.json", "song.wav", "song_input_params.json"]


def test_output_folder_with_a_trailing_slash_is_created(tmp_path, capsys) -> None:
    require_parity()
    args = base_args(tmp_path, "x.wav")
    args[args.index("--output") + 1] = f"{tmp_path}/new/dir/"
    code, paths, err = run(args, capsys)
    assert code == 0, err
    (path,) = map(Path, paths)
    assert path.parent == tmp_path / "new" / "dir" and path.name.startswith("output_") and path.suffix == ".wav"


@pytest.mark.parametrize(("extra", "message"), [
    (["--task", "repaint", "--src-audio", "SRC", "--repaint-start", "0", "--repaint-end", "1", "--output", "SRC"],
     "--output SRC is the same file as --src-audio"),
    (["--ref-audio", "SRC", "--output", "SRC", "--overwrite"], "is the same file as --ref-audio"),
    (["--save-latents", "OUT"], "--output and --save-latents both name OUT"),
    (["--params", "PARAMS", "--output", "P_WAV"], "(its _input_params.json) PARAMS is the same file as --params"),
])
def test_an_input_or_output_used_twice_is_refused_before_loading(tmp_path, capsys, monkeypatch, extra,
                                                                 message) -> None:
    """--output onto --src-audio would destroy the source song; --save-latents onto --output would replace the
    audio with a safetensors file; --overwrite does not change that."""
    require_parity()
    _forbid_model_loading(monkeypatch)
    src = tmp_path / "src.wav"
    src.write_bytes(SRC_WAV.read_bytes())
    params = tmp_path / "p_input_params.json"
    params.write_text(json.dumps({"prompt": "pop", "lyrics": "", "audio_duration": 2.0}), encoding="utf-8")
    names = {"SRC": str(src), "OUT": str(tmp_path / "o.wav"), "PARAMS": str(params), "P_WAV": str(tmp_path / "p.wav")}
    argv = ["--tags", "pop", "--lyric-vocab", str(VOCAB), "--output", str(tmp_path / "o.wav"),
            *[names.get(a, a) for a in extra]]
    code, out, err = run(argv, capsys)
    expected = message
    for key, value in names.items():
        expected = expected.replace(key, value)
    assert code == 2 and out == [] and expected in err, err
    assert src.read_bytes() == SRC_WAV.read_bytes() and _files(tmp_path) == ["p_input_params.json", "src.wav"]


def test_ctrl_c_while_writing_keeps_the_old_song(tmp_path, capsys, monkeypatch) -> None:
    """Interrupted in the middle of writing with --overwrite: the old song and its sidecar are untouched, nothing
    else is left, exit 130 with the message on a line of its own."""
    require_parity()
    code, _, err = run(base_args(tmp_path, "song.wav"), capsys)
    assert code == 0, err
    old = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    import acestep_core.cli.outputs as outputs

    def interrupted(target, *args, **kwargs):
        Path(target).write_bytes(b"RIFF" + b"\0" * 84)  # the 88 bytes the issue saw
        raise KeyboardInterrupt

    monkeypatch.setattr(outputs, "encode_audio_file", interrupted)
    code, out, err = run([*base_args(tmp_path, "song.wav"), "--overwrite"], capsys)
    assert code == 130 and out == [] and err.splitlines()[-1].startswith("error: interrupted")
    assert {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)} == old


@pytest.mark.slow
def test_two_runs_at_once_write_two_songs(tmp_path) -> None:
    """Two processes asking for the same --output both finish, print different paths, and both songs exist."""
    require_parity()
    argv = [sys.executable, "-m", "acestep_core", "generate", *base_args(tmp_path, "same.wav")]
    procs = [subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    paths = {r[0].strip() for r in results}
    assert paths == {str(tmp_path / "same.wav"), str(tmp_path / "same-1.wav")}
    assert _files(tmp_path) == ["same-1.wav", "same-1_input_params.json", "same.wav", "same_input_params.json"]


# ------------------------------------------------------------------------------------------ broken results
def test_non_finite_result_writes_nothing_and_exits_1(tmp_path, capsys) -> None:
    require_parity()
    code, out, err = run([*base_args(tmp_path, "nan/song.wav"), "--guidance-scale", "1e30"], capsys)
    assert code == 1 and out == [] and not (tmp_path / "nan").exists()
    assert "NaN or infinite" in err and "nothing was saved" in err
    assert "likely cause: --guidance-scale 1e+30 is far outside the usual range" in err and err.count("\n") == 1


def test_non_finite_source_is_refused_before_loading(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    data, rate = sf.read(str(SRC_WAV), dtype="float32", always_2d=True)
    data[1000:1010] = np.nan
    bad = tmp_path / "nan.wav"
    sf.write(str(bad), data, rate, subtype="FLOAT")
    code, out, err = run(["--tags", "pop", "--task", "repaint", "--src-audio", str(bad), "--repaint-start", "0",
                          "--repaint-end", "1", "--output", str(tmp_path / "o.wav"), "--lyric-vocab", str(VOCAB)],
                         capsys)
    assert code == 2 and out == [] and "holds NaN or infinite samples" in err


# ------------------------------------------------------------------------------------------ early checks
def _long_wav(path: Path, seconds: float) -> Path:
    sf.write(str(path), np.zeros((int(seconds * 8000), 1), dtype=np.int16), 8000, subtype="PCM_16")
    return path


@pytest.mark.parametrize(("extra", "message"), [
    (["--task", "repaint", "--src-audio", "SRC", "--repaint-start", "1", "--repaint-end", "5"],
     "--repaint-end 5.0 s is past the end of the source"),
    (["--task", "repaint", "--src-audio", "SRC", "--repaint-start", "1.5", "--repaint-end", "1"],
     "--repaint-end (1.0 s) must be after --repaint-start (1.5 s)"),
    (["--task", "repaint", "--src-audio", "LONG", "--repaint-start", "1", "--repaint-end", "5"],
     "the source is 250.0 s long; --task repaint processes the whole source in the model's 240 s window"),
    (["--task", "edit", "--src-audio", "SRC"], "nothing would change; give --edit-target-tags"),
    (["--duration", "300"], "--duration: 300.0 s is longer than the model's 240 s window; generate <= 240 s and "
                            "lengthen it with --task extend"),
    (["--lora", "SDXL"], "not an ACE-Step v1 LoRA"),
    (["--lora", "LORA:abc"], "the strength 'abc' after the last ':' is not a number"),
    (["--lora", "LORA:1e9"], "strength 1000000000.0 is outside -3 .. 3"),
    (["--output", "FILE/x.wav"], "is a file, not a folder"),
    (["--output", "noext"], "--output noext: no audio file extension"),
    (["--output", "newdir"], "no audio file extension; give a file name ending in .wav"),
    (["--seed", "1,,2"], "--seed: '1,,2' has an empty entry between commas"),
    (["--compile"], "--compile works on CUDA only"),
    (["--dtype", "float64"], "invalid choice: 'float64'"),
])
def test_checked_before_the_model_is_loaded(tmp_path, capsys, monkeypatch, extra, message) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    import torch
    from safetensors.torch import save_file

    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 4)},
              str(tmp_path / "sdxl.safetensors"))
    (tmp_path / "a_file").write_text("x")
    names = {"SRC": str(SRC_WAV), "LONG": str(_long_wav(tmp_path / "long.wav", 250.0)),
             "SDXL": str(tmp_path / "sdxl.safetensors"), "LORA": str(PARITY_DIR / "lora" / "lora_r4_a8"),
             "FILE/x.wav": str(tmp_path / "a_file" / "x.wav")}
    argv = ["--checkpoint", str(TINY_CHECKPOINT), "--device", "cpu", "--tags", "pop", "--lyric-vocab", str(VOCAB),
            "--output", str(tmp_path / "o.wav")]
    for arg in extra:
        argv.append(next((arg.replace(k, v) for k, v in names.items() if arg.startswith(k)), arg))
    monkeypatch.chdir(tmp_path)
    if extra[0] == "--dtype":
        with pytest.raises(SystemExit):
            cli.main(["generate", *argv])
        assert message in capsys.readouterr().err
        return
    code, out, err = run(argv, capsys)
    assert code == 2 and out == [] and message in err, err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_read_only_output_folder_is_refused_before_loading(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    import acestep_core.safe_write as safe_write

    monkeypatch.setattr(safe_write.os, "access", lambda path, mode: Path(path) != tmp_path / "ro")
    (tmp_path / "ro").mkdir()
    code, out, err = run(base_args(tmp_path, "ro/song.wav"), capsys)
    assert code == 2 and out == [] and f"the folder {tmp_path / 'ro'} is not writable" in err


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--tags is missing: give the style tags"),
    (["--lyrics", "[verse]\\nla la"], "--tags is missing"),
])
def test_generate_without_tags_says_which_flag(argv, message, capsys, monkeypatch) -> None:
    _forbid_model_loading(monkeypatch)
    code, out, err = run(argv, capsys)
    assert code == 2 and message in err and "NoneType" not in err


def test_visible_warnings_and_accepted_spellings(tmp_path, caplog) -> None:
    """Literal \\n in --lyrics, emoji-only lines, --duration with a source task, the frame rounding, and the
    original pipeline's names (--dtype float32, batch_size in --params) all reach the user."""
    require_parity()
    params = tmp_path / "b_input_params.json"
    params.write_text(json.dumps({"prompt": "pop", "lyrics": None, "batch_size": 2, "save_path": "/x"}))
    parser = cli.build_parser()
    with caplog.at_level(logging.INFO):
        plan = cli.plan_run(parser.parse_args(["generate", "--params", str(params), "--lyrics", "[verse]\\nla la 🎵🎵",
                                               "--lyric-vocab", str(VOCAB), "--dtype", "float32", "--device", "cpu",
                                               "--duration", "60", "--output", str(tmp_path / "o.wav")]))
        cli.plan_run(parser.parse_args(["generate", "--tags", "pop", "--task", "repaint", "--src-audio", str(SRC_WAV),
                                        "--repaint-start", "0", "--repaint-end", "1", "--duration", "30",
                                        "--output", str(tmp_path / "r.wav")]))
    text = caplog.text
    assert plan.params.batch_size == 2 and str(plan.dtype) == "torch.float32"
    assert "contains '\\n' as two characters" in text and "--lyrics @FILE" in text
    assert "become [UNK]" in text  # the emoji line
    assert "--duration 60 s = 645 latent frames" in text and "= 59.91 s of audio" in text
    assert "--duration 30 is not used by --task repaint" in text
    assert "'save_path' is ignored" in text


def test_help_is_written_for_users(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and ":class:" not in text and ":mod:" not in text  # no developer reST
    assert "examples:" in text and "--overwrite" in text and "@lyrics.txt" in text


def test_tags_longer_than_256_tokens_warn(tmp_path, capsys, caplog) -> None:
    require_parity()
    code, _, err = run([*base_args(tmp_path, "t.wav"), "--tags", "pop, " * 300], capsys)
    assert code == 0 and "the model reads only the first 256" in caplog.text, err


def test_lyrics_are_read_from_a_file_line_by_line(tmp_path, capsys) -> None:
    require_parity()
    (tmp_path / "lyrics.txt").write_text(LYRICS, encoding="utf-8")
    args = base_args(tmp_path, "f.wav")
    args[args.index("--lyrics") + 1] = "@lyrics.txt"
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, paths, err = run(args, capsys)
    finally:
        os.chdir(old)
    assert code == 0, err
    assert json.loads(Path(paths[0]).with_name("f_input_params.json").read_text())["lyrics"] == LYRICS
    _ = time  # keep the import for the slow test's clock

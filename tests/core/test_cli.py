"""``python -m acestep_core generate``: every task end to end on the tiny checkpoint (CPU, 2-3 steps, ~2 s),
``--params`` with original-app JSONs, and exit code 2 + one-line messages for bad input before any model load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from acestep_core import hub
from acestep_core.audio.files import read_embedded_params
from acestep_core.cli import commands as cli
from acestep_core.cli import run as cli_run
from tests.core.test_params_io import default_example, full_writer_example
from tests.parity import PARITY_DIR, REPO_ROOT, TINY_CHECKPOINT, require_parity

SRC_WAV = PARITY_DIR / "pipeline" / "src_audio_44k_2s.wav"
VOCAB = PARITY_DIR / "tokenizer" / "vocab.json"
SRC_FRAMES = 22  # ceil(2 s * 44100 / 4096): the encoded source length
LYRICS = "[verse]\nCity lights are shining bright\n\n[chorus]\nLa la la"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = cli.main(["generate", *argv])
    out, err = capsys.readouterr()
    return code, out.split(), err


def base_args(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return ["--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab", str(VOCAB), "--device", "cpu", "--quiet",
            "--tags", "pop, electronic", "--lyrics", LYRICS, "--infer-step", "3", "--duration", "2",
            "--seed", "1234", "--retake-seeds", "5678", "--output", str(tmp_path / name), *extra]


def check_outputs(paths: list[str], *, task: str, frames: int | None = None, batch: int = 1) -> list[dict]:
    records = []
    audio_paths = [Path(p) for p in paths if not p.endswith(".safetensors")]
    assert len(audio_paths) == batch, paths
    for path in audio_paths:
        info = sf.info(str(path))
        assert info.samplerate == 48000 and info.channels == 2 and info.frames > 0
        sidecar = path.with_name(path.stem + "_input_params.json")
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        assert record["task"] == task and record["audio_path"] == str(path)
        assert read_embedded_params(path) == record
        if frames is not None and path.suffix in (".wav", ".flac"):
            assert info.frames == round(frames * 4096 * 48000 / 44100) or abs(info.frames - frames * 4096 * 48000
                                                                                / 44100) <= 1
        records.append(record)
    return records


@pytest.fixture(scope="module", autouse=True)
def _reuse_loaded_checkpoint() -> object:
    """Load the tiny checkpoint once for the whole module (loading dominates a 3-step run on CPU)."""
    import acestep_core.loading.loader as loader

    original, cache = loader.load_checkpoint, {}

    def cached(path, **kwargs):
        key = (str(path), str(kwargs.get("device")), str(kwargs.get("dtype")))
        if key not in cache:
            cache[key] = original(path, **kwargs)
        return cache[key]

    loader.load_checkpoint = cached
    yield
    loader.load_checkpoint = original


@pytest.fixture(scope="module")
def src_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_parity()
    folder = tmp_path_factory.mktemp("src")
    shutil.copy(SRC_WAV, folder / "src.wav")
    return folder


# ------------------------------------------------------------------------------------------ every task
def test_text2music_batch_with_latents(tmp_path, capsys) -> None:
    require_parity()
    latents_path = tmp_path / "lat" / "latents.safetensors"
    code, paths, err = run(base_args(tmp_path, "t2m.wav", "--batch-size", "2", "--seeds", "1,2",
                                     "--save-latents", str(latents_path)), capsys)
    assert code == 0, err
    assert paths[:2] == [str(tmp_path / "t2m_0.wav"), str(tmp_path / "t2m_1.wav")]
    assert paths[2] == str(latents_path)
    records = check_outputs(paths, task="text2music", frames=21, batch=2)
    assert records[0]["actual_seeds"] == [1, 2] and records[0]["infer_step"] == 3
    latents = load_file(str(latents_path))
    assert list(latents) == ["latents"]
    assert latents["latents"].dtype == torch.float32 and tuple(latents["latents"].shape) == (2, 8, 16, 21)


def test_retake(tmp_path, capsys) -> None:
    require_parity()
    code, paths, err = run(base_args(tmp_path, "retake.flac", "--task", "retake", "--retake-variance", "0.5"),
                           capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="retake", frames=21)
    assert record["retake_seeds"] == [5678] and record["repaint_end"] == 2.0


def test_repaint(tmp_path, capsys, src_folder) -> None:
    require_parity()
    code, paths, err = run(base_args(tmp_path, "repaint.wav", "--task", "repaint", "--src-audio",
                                     str(src_folder / "src.wav"), "--repaint-start", "0.5", "--repaint-end", "1.5",
                                     "--retake-variance", "0.7", "--save-latents", str(tmp_path / "r.safetensors")),
                           capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="repaint", frames=SRC_FRAMES)
    assert record["src_audio_path"] == str(src_folder / "src.wav")
    assert load_file(paths[-1])["latents"].shape[-1] == SRC_FRAMES


def test_extend_both_sides(tmp_path, capsys, src_folder) -> None:
    require_parity()
    code, paths, err = run(base_args(tmp_path, "extend.wav", "--src-audio", str(src_folder / "src.wav"),
                                     "--extend-left", "0.5", "--extend-right", "1.0",
                                     "--save-latents", str(tmp_path / "e.safetensors")), capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="extend")
    assert record["repaint_start"] == -0.5 and record["retake_variance"] == 1.0
    # int(0.5 * 10.77) = 5 frames left, int(1.0 * 10.77) = 10 frames right
    assert load_file(paths[-1])["latents"].shape[-1] == 5 + SRC_FRAMES + 10


def test_edit(tmp_path, capsys, src_folder) -> None:
    require_parity()
    code, paths, err = run(base_args(tmp_path, "edit.ogg", "--task", "edit", "--src-audio",
                                     str(src_folder / "src.wav"), "--edit-target-tags", "jazz, piano",
                                     "--edit-target-lyrics", "[verse]\nNew words", "--edit-n-min", "0.2",
                                     "--edit-n-max", "0.8"), capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="edit")  # source texts under prompt/lyrics, targets under edit_target_*
    assert record["prompt"] == "pop, electronic" and record["lyrics"] == LYRICS
    assert record["edit_target_prompt"] == "jazz, piano" and record["edit_target_lyrics"] == "[verse]\nNew words"


def test_audio2audio(tmp_path, capsys, src_folder) -> None:
    require_parity()
    out = "a2a.mp3" if "MP3" in sf.available_formats() else "a2a.flac"
    code, paths, err = run(base_args(tmp_path, out, "--ref-audio", str(src_folder / "src.wav"),
                                     "--ref-strength", "0.5"), capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="audio2audio")
    assert record["audio2audio_enable"] is True and record["ref_audio_strength"] == 0.5


def test_lyrics_file_and_instrumental(tmp_path, capsys) -> None:
    require_parity()
    lyrics_file = tmp_path / "lyrics.txt"
    lyrics_file.write_text(LYRICS, encoding="utf-8")
    args = base_args(tmp_path, "lf.wav")
    args[args.index("--lyrics") + 1] = f"@{lyrics_file}"
    code, paths, err = run(args, capsys)
    assert code == 0, err
    assert check_outputs(paths, task="text2music")[0]["lyrics"] == LYRICS
    args[args.index("--lyrics") + 1] = ""
    args[args.index("--output") + 1] = str(tmp_path / "instrumental.wav")
    code, paths, err = run(args, capsys)
    assert code == 0, err


# --------------------------------------------------------------------------------------------- --params
def test_params_default_example_runs_with_overrides(tmp_path, capsys) -> None:
    require_parity()
    record = {**default_example(), "lyrics": LYRICS}
    params = tmp_path / "output_20250426071706_0_input_params.json"
    params.write_text(json.dumps(record, indent=4, ensure_ascii=False), encoding="utf-8")
    code, paths, err = run(["--params", str(params), "--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab",
                            str(VOCAB), "--device", "cpu", "--quiet", "--infer-step", "2", "--duration", "2",
                            "--output", str(tmp_path / "p.wav")], capsys)
    assert code == 0, err
    (written,) = check_outputs(paths, task="text2music", frames=21)
    assert written["infer_step"] == 2 and written["audio_duration"] == 2.0  # flags override the file
    assert written["actual_seeds"] == [3299954530] and written["prompt"] == record["prompt"]


def test_params_full_writer_repaint_with_relative_audio(tmp_path, capsys, src_folder) -> None:
    require_parity()
    folder = tmp_path / "job"
    (folder / "audio").mkdir(parents=True)
    shutil.copy(src_folder / "src.wav", folder / "audio" / "src.wav")
    record = {**full_writer_example(), "lyrics": LYRICS, "task": "repaint", "src_audio_path": "audio/src.wav",
              "repaint_start": 0.3, "repaint_end": 1.2, "infer_step": 3, "audio_duration": 2.0}
    (folder / "x_input_params.json").write_text(json.dumps(record), encoding="utf-8")
    code, paths, err = run(["--params", str(folder / "x_input_params.json"), "--checkpoint", str(TINY_CHECKPOINT),
                            "--lyric-vocab", str(VOCAB), "--device", "cpu", "--quiet", "--output",
                            str(tmp_path / "out.wav")], capsys)
    assert code == 0, err
    (written,) = check_outputs(paths, task="repaint")
    assert written["src_audio_path"] == "job/audio/src.wav"  # relative to the sidecar's folder, where --params looks
    assert written["retake_seeds"] == [2907904223] and written["guidance_interval"] == 0.3


LORA_DIR = PARITY_DIR / "lora"


def test_params_lora_hub_id_is_planned_with_the_original_scale(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    params = tmp_path / "rap_input_params.json"
    params.write_text(json.dumps({**full_writer_example(), "lora_name_or_path": "ACE-Step/RapMachine",
                                  "lora_weight": 0.8}))
    args = cli.build_parser().parse_args(["generate", "--params", str(params), "--lyric-vocab", str(VOCAB),
                                          "--device", "cpu", "--output", str(tmp_path / "o.wav")])
    (request,) = cli.plan_run(args).loras
    assert (request.repo, request.path, request.strength, request.rule) == ("ACE-Step/RapMachine", None, 0.8,
                                                                           "original_app")


@pytest.mark.parametrize(("extra", "message"), [
    (["--lora", "no/such/lora.safetensors:0.5"], "--lora no/such/lora.safetensors:0.5: no/such/lora.safetensors "
                                                 "not found"),
    (["--lora", str(LORA_DIR / "lora_r4_a8") + ":nan"], "strength nan is outside -3 .. 3"),
    (["--lora", str(LORA_DIR / "lora_r4_a8") + ":1e9"], "strength 1000000000.0 is outside -3 .. 3"),
    (["--lora", str(LORA_DIR / "lora_r4_a8") + ":abc"], "the strength 'abc' after the last ':' is not a number"),
])
def test_bad_lora_flags_exit_2(tmp_path, capsys, monkeypatch, extra, message) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    code, out, err = run([*base_args(tmp_path, "x.wav"), *extra], capsys)
    assert code == 2 and out == [] and message in err and err.count("\n") == 1


def test_params_lora_local_path_not_found_exits_2(tmp_path, capsys, monkeypatch) -> None:
    _forbid_model_loading(monkeypatch)
    params = tmp_path / "p_input_params.json"
    params.write_text(json.dumps({**full_writer_example(), "lora_name_or_path": "./loras/missing.safetensors"}))
    code, out, err = run(["--params", str(params), "--checkpoint", str(TINY_CHECKPOINT)], capsys)
    assert code == 2 and out == [] and "lora_name_or_path './loras/missing.safetensors'" in err


def _lora_run(tmp_path: Path, capsys, name: str, *extra: str) -> tuple[torch.Tensor, dict]:
    latents = tmp_path / f"{name}.safetensors"
    code, paths, err = run([*base_args(tmp_path, f"{name}.wav"), "--save-latents", str(latents), *extra], capsys)
    assert code == 0, err
    (record,) = check_outputs(paths, task="text2music")
    return load_file(str(latents))["latents"], record


def test_lora_flag_and_params_lora_reproduce_each_other(tmp_path, capsys) -> None:
    """``--lora DIR:0.5`` (as trained: alpha/r = 2) = a ``--params`` file naming DIR with lora_weight 1.0 (the
    original app's scale); both sidecars record lora_weight 1.0; the model is restored after each run."""
    require_parity()
    folder = LORA_DIR / "lora_r4_a8"
    plain, record = _lora_run(tmp_path, capsys, "plain")
    assert record["lora_name_or_path"] == "none"
    flagged, record = _lora_run(tmp_path, capsys, "flag", "--lora", f"{folder}:0.5")
    assert record["lora_name_or_path"] == str(folder) and record["lora_weight"] == 1.0
    params = tmp_path / "lora_input_params.json"
    params.write_text(json.dumps({**record, "audio_path": None}), encoding="utf-8")
    from_params, record2 = _lora_run(tmp_path, capsys, "params", "--params", str(params))
    assert record2["lora_name_or_path"] == str(folder) and record2["lora_weight"] == 1.0
    assert torch.equal(flagged, from_params)
    assert not torch.allclose(flagged, plain, atol=1e-2)
    again, _ = _lora_run(tmp_path, capsys, "again")
    assert torch.equal(again, plain)


def test_stacked_lora_flags(tmp_path, capsys) -> None:
    require_parity()
    one, _ = _lora_run(tmp_path, capsys, "one", "--lora", str(LORA_DIR / "lora_r4_a8") + ":0.5")
    two, record = _lora_run(tmp_path, capsys, "two", "--lora", str(LORA_DIR / "lora_r4_a8") + ":0.5",
                            "--lora", str(LORA_DIR / "lora_r16_a8_rslora" / "pytorch_lora_weights.safetensors"))
    assert record["lora_name_or_path"] == str(LORA_DIR / "lora_r4_a8")
    assert not torch.allclose(one, two, atol=1e-3)


def test_lora_for_another_model_exits_2(tmp_path, capsys) -> None:
    require_parity()
    from safetensors.torch import save_file

    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 4)},
              str(tmp_path / "sdxl.safetensors"))
    code, out, err = run([*base_args(tmp_path, "x.wav"), "--lora", str(tmp_path / "sdxl.safetensors")], capsys)
    assert code == 2 and out == [] and "not an ACE-Step v1 LoRA" in err and "SDXL" in err


def test_params_with_unknown_key_is_refused(tmp_path, capsys, monkeypatch) -> None:
    _forbid_model_loading(monkeypatch)
    params = tmp_path / "bad_input_params.json"
    params.write_text(json.dumps({**default_example(), "guidence_scale": 3}))
    code, _, err = run(["--params", str(params)], capsys)
    assert code == 2 and "unknown key(s) ['guidence_scale']" in err


# ------------------------------------------------------------------------------------------- bad input
def _forbid_model_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not be loaded for bad input")

    monkeypatch.setattr("acestep_core.loading.loader.load_checkpoint", fail)
    monkeypatch.setattr("acestep_core.cli.run.download_checkpoint", fail)


@pytest.mark.parametrize(("extra", "message"), [
    (["--task", "repaint"], "--task repaint needs --src-audio FILE"),
    (["--task", "edit", "--src-audio", "MISSING.wav"], "--src-audio: file not found"),
    (["--task", "repaint", "--src-audio", "JUNK", "--repaint-end", "1"], "--src-audio: cannot read"),
    (["--task", "extend", "--src-audio", "SURROUND"], "3 channels"),
    (["--task", "audio2audio"], "--task audio2audio needs --ref-audio FILE"),
    (["--task", "repaint", "--ref-audio", "SRC", "--src-audio", "SRC"], "--ref-audio is only used by"),
    (["--src-audio", "SRC"], "--src-audio is only used by"),
    (["--task", "extend", "--src-audio", "SRC"], "needs --extend-left and/or --extend-right"),
    (["--src-audio", "SRC", "--extend-right", "5"], "at most the source length"),
    (["--task", "repaint", "--src-audio", "SRC"], "needs --repaint-start and --repaint-end"),
    (["--output", "song.m4a"], "--output"),
    (["--checkpoint", "NOWHERE"], "--checkpoint"),
    (["--lyrics", "@NOWHERE.txt"], "--lyrics: cannot read"),
    (["--lyrics", "x", "--lyrics-file", "y.txt"], "either --lyrics or --lyrics-file"),
    (["--seeds", "1,x"], "comma-separated integers"),
    (["--device", "potato"], "--device"),
    (["--lyrics", "la " * 10_000], "characters; at most"),
    (["--lyrics", "la", "--lyric-vocab", "NOWHERE"], "NOWHERE"),
])
def test_bad_input_exits_2_before_loading(tmp_path, capsys, monkeypatch, src_folder, extra, message) -> None:
    _forbid_model_loading(monkeypatch)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 50)
    surround = tmp_path / "surround.wav"
    sf.write(str(surround), torch.zeros(4410, 3).numpy(), 44100)
    names = {"SRC": str(src_folder / "src.wav"), "MISSING.wav": str(tmp_path / "missing.wav"), "JUNK": str(junk),
             "SURROUND": str(surround), "NOWHERE": str(tmp_path / "nowhere"),
             "@NOWHERE.txt": f"@{tmp_path / 'nowhere.txt'}"}
    argv = ["--tags", "pop", "--lyric-vocab", str(VOCAB), "--output", str(tmp_path / "o.wav"),
            *[names.get(a, a) for a in extra]]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == [], err
    assert message.replace("NOWHERE", str(tmp_path / "nowhere")) in err, err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_lyric_vocab_errors_are_usage_errors(tmp_path, capsys, monkeypatch) -> None:
    """``LyricVocabError``/``LyricVocabNotFoundError`` (AceStepInputErrors) become ``--lyric-vocab:`` usage errors:
    one line, exit code 2, naming the file, from ``main`` and as :class:`cli.UsageError` from ``plan_run``."""
    _forbid_model_loading(monkeypatch)
    missing = tmp_path / "missing_vocab.json"
    argv = ["--tags", "pop", "--lyrics", "la la", "--lyric-vocab", str(missing), "--output", str(tmp_path / "o.wav")]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == [], err
    assert err.startswith(f"error: --lyric-vocab: {missing}") and err.count("\n") == 1, err
    with pytest.raises(cli.UsageError, match="missing_vocab.json"):
        cli.plan_run(cli.build_parser().parse_args(["generate", *argv]))
    invalid = tmp_path / "invalid_vocab.json"
    invalid.write_text("{}", encoding="utf-8")
    argv[argv.index("--lyric-vocab") + 1] = str(invalid)
    code, out, err = run(argv, capsys)
    assert code == 2 and out == [] and f"--lyric-vocab: {invalid}" in err and err.count("\n") == 1, err


def test_invalid_generation_values_exit_2(tmp_path, capsys, monkeypatch) -> None:
    require_parity()
    _forbid_model_loading(monkeypatch)
    code, _, err = run(["--tags", "pop", "--guidance-interval", "2", "--output", str(tmp_path / "o.wav")], capsys)
    assert code == 2 and "--guidance-interval: expected a value in [0, 1]" in err, err


def test_cuda_unavailable_is_a_usage_error(capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(cli.UsageError, match="CUDA is not available"):
        cli.resolve_device("cuda:1")
    assert cli.resolve_device("auto").type in ("cpu", "mps")
    assert cli.resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert cli.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_argparse_errors_and_module_entry_point() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["generate", "--task", "remix"])
    assert info.value.code == 2
    result = subprocess.run([sys.executable, "-m", "acestep_core", "generate", "--task", "repaint"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: --task repaint needs --src-audio FILE (the song to repaint)"


def test_upstream_example_jsons_are_accepted_unchanged(tmp_path, capsys, monkeypatch) -> None:
    """Every ``examples/*/input_params/*.json`` of the original repository: the default ones plan cleanly (the
    first also runs end to end, shortened by flags); the RapMachine ones plan their Hub LoRA, or give a clear
    usage error when they name a folder of the trainer's machine."""
    from tests.core.test_params_io import _upstream_examples

    require_parity()
    examples = _upstream_examples()
    if not examples:
        pytest.skip("set ACESTEP_ORIGINAL_ROOT to a checkout of the original ACE-Step to run its example files")
    parser = cli.build_parser()
    for index, (name, record) in enumerate(examples):
        path = tmp_path / Path(name).name
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        args = parser.parse_args(["generate", "--params", str(path), "--lyric-vocab", str(VOCAB),
                                  "--device", "cpu", "--output", str(tmp_path / f"{index}.wav")])
        name = record.get("lora_name_or_path", "none")
        if name != "none" and not name.startswith("ACE-Step/"):  # RapMachine: the trainer's local path, absent
            with pytest.raises(cli.UsageError, match="lora_name_or_path .*not found"):
                cli.plan_run(args)
            continue
        if name != "none":  # RapMachine by repo id: planned as a Hub download at the original app's scale
            (lora,) = cli.plan_run(args).loras
            assert (lora.repo, lora.rule, lora.strength) == (name, "original_app", record.get("lora_weight", 1.0))
            continue
        plan = cli.plan_run(args)
        assert plan.params.prompt == record["prompt"] and plan.params.manual_seeds == record["actual_seeds"][0]
    first = next(tmp_path / Path(n).name for n, r in examples if "lora_name_or_path" not in r)
    code, paths, err = run(["--params", str(first), "--checkpoint", str(TINY_CHECKPOINT), "--lyric-vocab",
                            str(VOCAB), "--device", "cpu", "--quiet", "--infer-step", "2", "--duration", "2",
                            "--output", str(tmp_path / "first.wav")], capsys)
    assert code == 0, err
    check_outputs(paths, task="text2music", frames=21)


def test_output_naming(tmp_path) -> None:
    from acestep_core.audio.files import output_paths

    assert output_paths(tmp_path / "a.flac", batch_size=2) == [tmp_path / "a_0.flac", tmp_path / "a_1.flac"]
    (inside,) = output_paths(tmp_path, default_format="mp3")
    assert inside.parent == tmp_path and inside.name.startswith("output_") and inside.suffix == ".mp3"
    (default,) = output_paths(None)
    assert default.parent == Path("outputs") and default.suffix == ".wav"


def test_default_checkpoint_download_offline_is_a_clear_error(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    calls = []

    def offline(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.setenv("ACESTEP_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    assert hub.checkpoint_cache_dir() == tmp_path / "ckpt"
    expected = r"could not download the ACE-Step v1 checkpoint \(ACE-Step/ACE-Step-v1-3.5B\) .*--checkpoint PATH"
    with pytest.raises(cli.CheckpointError, match=expected):
        hub.download_checkpoint(offline_hint=cli_run.OFFLINE_HINT)
    assert [c[0] for c in calls] == ["ACE-Step/ACE-Step-v1-3.5B"] * 2
    assert calls[0][1]["local_files_only"] is True and calls[1][1]["cache_dir"] == str(tmp_path / "ckpt")


def test_params_audio2audio_record_plans_with_relative_reference(tmp_path, src_folder) -> None:
    require_parity()
    shutil.copy(src_folder / "src.wav", tmp_path / "ref.wav")
    record = {**full_writer_example(), "task": "audio2audio", "audio2audio_enable": True, "ref_audio_input": "ref.wav"}
    path = tmp_path / "a2a_input_params.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    argv = ["generate", "--params", str(path), "--lyric-vocab", str(VOCAB), "--device", "cpu"]
    plan = cli.plan_run(cli.build_parser().parse_args(argv))
    assert plan.ref_audio is not None and plan.ref_audio.path == (tmp_path / "ref.wav").resolve()
    assert plan.params.audio2audio_enable is True and plan.params.task == "text2music"
    path.write_text(json.dumps({**record, "task": "text2music", "audio2audio_enable": False}), encoding="utf-8")
    plan = cli.plan_run(cli.build_parser().parse_args(argv))
    assert plan.ref_audio is None  # upstream ignores a reference unless audio2audio_enable

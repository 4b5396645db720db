"""Finding, downloading and checking teachers; resolve_repa's three modes."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch

from acestep_core.teachers import (
    HubertConfig,
    TeacherMismatchError,
    TeacherNeedsConversionError,
    TeacherNotFoundError,
    TeacherSet,
    find_teacher,
    licence_notice,
    resolve_repa,
)
from acestep_core.teachers.find import check_teacher_config, default_teacher_dir
from acestep_core.teachers.weights import WEIGHTS_FILE

from .conftest import TeacherFactory

TINY_DIMS = {"mert": 32, "m-hubert": 32}


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACESTEP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_search_dirs_then_cache(teacher_pair: Path, make_teacher: TeacherFactory) -> None:
    assert find_teacher("mert", search_dirs=[teacher_pair]) == teacher_pair / "MERT-v1-330M"
    cached = default_teacher_dir("mert")
    assert cached.parts[-3:] == ("cache", "teachers", "MERT-v1-330M")
    shutil.copytree(teacher_pair / "MERT-v1-330M", cached)
    assert find_teacher("mert", search_dirs=[teacher_pair.parent / "nothing"]) == cached
    explicit = find_teacher("mert", path=teacher_pair / "MERT-v1-330M" / WEIGHTS_FILE)
    assert explicit == teacher_pair / "MERT-v1-330M"


def test_not_found_lists_places_and_licence(tmp_path: Path) -> None:
    with pytest.raises(TeacherNotFoundError, match=r"MERT-v1-330M teacher was not found \(tried .*nowhere/MERT-v1-330M"
                                                   r", .*cache/teachers/MERT-v1-330M\).*CC-BY-NC-4\.0.*refs/pr/7"):
        find_teacher("mert", search_dirs=[tmp_path / "nowhere"])
    with pytest.raises(TeacherNotFoundError, match=r"no 'config\.json' \+ 'model\.safetensors' of the mHuBERT-147"):
        find_teacher("m-hubert", path=tmp_path / "nowhere")


def test_pickle_only_folder_names_the_convert_command(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "MERT-v1-330M"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    torch.save({"w": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(TeacherNeedsConversionError,
                       match=rf'python -m acestep_core convert-teacher "{folder}".*weights_only=True'):
        find_teacher("mert", search_dirs=[tmp_path / "models"])


def _fake_hub(source: Path, calls: list[tuple[str, str, str]]):  # noqa: ANN202 - test double
    def hf_hub_download(repo_id: str, filename: str, *, revision: str, local_dir: str, **_: object) -> str:
        logging.getLogger("fake_hub").info("download %s", filename)
        calls.append((repo_id, filename, revision))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(source / filename, Path(local_dir) / filename)
        return str(Path(local_dir) / filename)
    return hf_hub_download


def test_download_only_when_allowed_and_after_the_licence(teacher_pair: Path, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str, str]] = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fake_hub(teacher_pair / "MERT-v1-330M", calls))
    with pytest.raises(TeacherNotFoundError, match="downloading was not allowed"):
        find_teacher("mert")
    assert calls == []
    with caplog.at_level(logging.INFO):
        folder = find_teacher("mert", allow_download=True)
    assert folder == default_teacher_dir("mert")
    assert calls == [("m-a-p/MERT-v1-330M", "config.json", "refs/pr/7"),
                     ("m-a-p/MERT-v1-330M", "model.safetensors", "refs/pr/7")]
    messages = [r.getMessage() for r in caplog.records]
    licence = next(i for i, m in enumerate(messages) if "CC-BY-NC-4.0" in m and "NON-COMMERCIAL" in m)
    assert licence < messages.index("download config.json")
    assert find_teacher("mert") == folder  # now cached: no second download
    assert len(calls) == 2


def test_failed_download_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*_: object, **__: object) -> str:
        raise OSError("network unreachable")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(TeacherNotFoundError, match=r"could not download utter-project/mHuBERT-147 \(revision main\).*"
                                                   r"network unreachable.*CC-BY-NC-SA-4\.0"):
        find_teacher("m-hubert", allow_download=True)


def test_wrong_architecture_and_size_are_refused() -> None:
    post_ln = HubertConfig.tiny(stable_layer_norm=False)
    with pytest.raises(TeacherMismatchError, match=r"MERT-v1-330M is a pre-LN .*do_stable_layer_norm false"):
        check_teacher_config("mert", post_ln, source="x/config.json", feature_dim=32)
    with pytest.raises(TeacherMismatchError, match=r"hidden_size 32, but the REPA projector head for 'm-hubert' "
                                                   r"produces 768 features"):
        check_teacher_config("m-hubert", post_ln, source="x/config.json")
    with pytest.raises(TeacherMismatchError, match=r"sample_rate 16000 Hz, expected 24000 Hz"):
        check_teacher_config("mert", HubertConfig(hidden_size=1024, num_attention_heads=16, sample_rate=16000,
                                                  do_stable_layer_norm=True), source="x")


def test_teacher_set_refuses_swapped_teachers(teacher_pair: Path) -> None:
    swapped = {"mert": teacher_pair / "mHuBERT-147", "m-hubert": teacher_pair / "MERT-v1-330M"}
    with pytest.raises(TeacherMismatchError, match="not a usable MERT-v1-330M teacher"):
        TeacherSet.load(paths=swapped, feature_dims=TINY_DIMS)


def test_resolve_repa_off_and_invalid_mode() -> None:
    enabled, reason = resolve_repa("off")
    assert not enabled and reason.startswith("REPA off (--repa off)")
    with pytest.raises(ValueError, match=r"--repa 'yes': expected one of \['on', 'off', 'auto'\]"):
        resolve_repa("yes")  # type: ignore[arg-type]


def test_resolve_repa_auto(teacher_pair: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fail_if_called)
    enabled, reason = resolve_repa("auto", search_dirs=[teacher_pair])
    assert enabled and reason.startswith("REPA on (--repa auto): MERT-v1-330M from ")
    assert "mHuBERT-147 CC-BY-NC-SA-4.0" in reason and "\n" not in reason
    shutil.rmtree(teacher_pair / "mHuBERT-147")
    enabled, reason = resolve_repa("auto", search_dirs=[teacher_pair])
    assert not enabled
    assert reason == ("REPA off (--repa auto): mHuBERT-147 (CC-BY-NC-SA-4.0) not found locally; "
                      "--repa on downloads the missing teachers")


def test_resolve_repa_on_requires_both(teacher_pair: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", _fail_if_called)
    assert resolve_repa("on", search_dirs=[teacher_pair], allow_download=False)[0]
    shutil.rmtree(teacher_pair / "MERT-v1-330M")
    with pytest.raises(TeacherNotFoundError, match=r"MERT-v1-330M teacher was not found.*CC-BY-NC-4\.0"):
        resolve_repa("on", search_dirs=[teacher_pair], allow_download=False)


def test_resolve_repa_pickle_only(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "MERT-v1-330M"
    folder.mkdir(parents=True)
    torch.save({}, folder / "pytorch_model.bin")
    enabled, reason = resolve_repa("auto", search_dirs=[tmp_path / "models"])
    assert not enabled and "MERT-v1-330M needs the convert step" in reason and "convert-teacher" in reason
    with pytest.raises(TeacherNeedsConversionError, match="convert-teacher"):
        resolve_repa("on", search_dirs=[tmp_path / "models"], allow_download=False)


def test_licence_notice_names_both_licences() -> None:
    notice = licence_notice()
    assert "MERT-v1-330M (https://huggingface.co/m-a-p/MERT-v1-330M): CC-BY-NC-4.0" in notice
    assert "mHuBERT-147 (https://huggingface.co/utter-project/mHuBERT-147): CC-BY-NC-SA-4.0" in notice


def _fail_if_called(*_: object, **__: object) -> str:
    raise AssertionError("downloaded although not allowed")

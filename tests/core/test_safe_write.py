"""Output safety (:mod:`acestep_core.safe_write`): existing files are never replaced without ``overwrite``, unique
names are race-free across processes and threads, an interrupt during a write leaves the old file intact, and a
group (audio + sidecar) is committed whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from acestep_core import safe_write
from acestep_core.safe_write import (
    OutputExistsError,
    OutputGroup,
    OutputPathError,
    atomic_write,
    atomic_writer,
    check_writable_target,
    same_file,
    unique_path,
    variant_path,
)
from tests.parity import REPO_ROOT


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporary files and empty reservations left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.stat().st_size == 0)


def test_existing_file_is_never_replaced_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    path.write_text("old")
    with pytest.raises(OutputExistsError, match="exists; nothing was replaced"):
        atomic_write(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "old"
    assert atomic_write(path, lambda tmp: tmp.write_text("new"), unique=True) == tmp_path / "song-1.wav"
    assert atomic_write(path, lambda tmp: tmp.write_text("newer"), unique=True) == tmp_path / "song-2.wav"
    assert path.read_text() == "old" and (tmp_path / "song-1.wav").read_text() == "new"
    assert atomic_write(path, lambda tmp: tmp.write_text("replaced"), overwrite=True) == path
    assert path.read_text() == "replaced" and _leftovers(tmp_path) == []


def test_refusal_comes_before_any_writing(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_text("old")
    calls = []
    with pytest.raises(OutputExistsError):
        atomic_write(tmp_path / "x.bin", calls.append)
    assert calls == []


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    path.write_text("old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    for options in ({"overwrite": True}, {"unique": True}):
        with pytest.raises(RuntimeError, match="disk full"):
            atomic_write(path, broken, **options)
        assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_group_shares_one_variant(tmp_path: Path) -> None:
    """An orphan sidecar takes its audio's name too: the pair moves on to the next variant together."""
    (tmp_path / "song_input_params.json").write_text("{}")  # a previous run's sidecar, audio deleted

    def names(n: int) -> list[Path]:
        audio = variant_path(tmp_path / "song.wav", n)
        return [audio, audio.with_name(audio.stem + "_input_params.json")]

    with OutputGroup() as group:
        audio, sidecar = group.reserve(names)
        group.stage(audio).write_text("audio")
        group.stage(sidecar).write_text("params")
        group.commit()
    assert (audio.name, sidecar.name) == ("song-1.wav", "song-1_input_params.json")
    assert (tmp_path / "song_input_params.json").read_text() == "{}" and _leftovers(tmp_path) == []


def test_helpers(tmp_path: Path) -> None:
    assert variant_path("a/b.flac", 0) == Path("a/b.flac") and variant_path("a/b.flac", 3) == Path("a/b-3.flac")
    (tmp_path / "b.flac").write_text("x")
    assert unique_path(tmp_path / "b.flac") == tmp_path / "b-1.flac"
    assert same_file(tmp_path / "b.flac", tmp_path / "." / "b.flac")
    (tmp_path / "link.flac").symlink_to(tmp_path / "b.flac")
    assert same_file(tmp_path / "link.flac", tmp_path / "b.flac") and not same_file(tmp_path / "b.flac", "c")
    check_writable_target(tmp_path / "new" / "deeper" / "x.wav", "--output")  # creatable: fine
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_writable_target(tmp_path / "b.flac" / "x.wav", "--output")
    with pytest.raises(OutputPathError, match="is a folder"):
        check_writable_target(tmp_path, "--output")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputPathError, match="is not writable"):
            check_writable_target(folder / "x.wav", "--output")
    finally:
        folder.chmod(0o755)


def test_read_only_folder_is_refused_by_permission_bits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same as above where the test runs as root (os.access is what decides)."""
    monkeypatch.setattr(safe_write.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(OutputPathError, match=f"the folder {tmp_path} is not writable"):
        check_writable_target(tmp_path / "x.wav", "--output")


def test_threads_racing_for_one_name_get_distinct_files(tmp_path: Path) -> None:
    start = threading.Barrier(8)
    written: list[Path] = []

    def worker(index: int) -> None:
        start.wait()
        written.append(atomic_write(tmp_path / "song.wav", lambda tmp: tmp.write_text(str(index)), unique=True))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(written)) == 8
    assert sorted(p.read_text() for p in written) == [str(i) for i in range(8)] and _leftovers(tmp_path) == []


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from acestep_core.safe_write import atomic_write
    folder, index, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    def write(tmp):
        tmp.write_text(index)
        time.sleep(0.05)  # keep the name reserved while others look for one
    print(atomic_write(folder / "output_20250101120000.wav", write, unique=True))
""")


def test_processes_racing_for_one_name_get_distinct_files(tmp_path: Path) -> None:
    """Concurrent runs with the same default name (the timestamped one collides within a second)."""
    start = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(i), str(start)], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(6)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outputs)) == 6
    assert sorted(Path(o).read_text() for o in outputs) == [str(i) for i in range(6)]
    assert _leftovers(tmp_path) == []


INTERRUPTED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from acestep_core.safe_write import atomic_write
    target, marker, overwrite = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
    def slow(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 88)
            fh.flush()
            marker.write_text("writing")
            for _ in range(600):
                time.sleep(0.05)
                fh.write(b"x" * 100000)
    atomic_write(target, slow, overwrite=overwrite, unique=not overwrite)
""")


@pytest.mark.parametrize("overwrite", [True, False])
def test_ctrl_c_during_the_write_keeps_the_old_file(tmp_path: Path, overwrite: bool) -> None:
    """A run killed with SIGINT while it writes (the 11.5 MB WAV that became 88 bytes): the old file is intact,
    no temporary file or empty reservation is left, and the process ends as interrupted."""
    target, marker = tmp_path / "song.wav", tmp_path / "marker"
    old = os.urandom(1 << 20)
    target.write_bytes(old)
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED, str(target), str(marker), "1" if overwrite else "0"],
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not marker.exists():
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "song.wav"]


def test_ctrl_c_during_the_commit_is_held_until_the_group_is_in_place(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT arriving between the moves of a group (audio moved, sidecar not yet) is delivered after both."""
    real_replace = os.replace
    moved: list[str] = []

    def replace_and_interrupt(src: object, dst: object) -> None:
        real_replace(src, dst)
        moved.append(Path(str(dst)).name)
        if len(moved) == 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)

    monkeypatch.setattr(safe_write.os, "replace", replace_and_interrupt)
    with pytest.raises(KeyboardInterrupt), OutputGroup(overwrite=True) as group:
        a, b = group.reserve(lambda n: [tmp_path / "a.wav", tmp_path / "a_input_params.json"])
        group.stage(a).write_text("audio")
        group.stage(b).write_text("params")
        group.commit()
    assert moved == ["a.wav", "a_input_params.json"]
    assert (tmp_path / "a.wav").read_text() == "audio" and (tmp_path / "a_input_params.json").read_text() == "params"


def test_writer_context_reports_the_final_name(tmp_path: Path) -> None:
    """The API the training code uses for checkpoints."""
    (tmp_path / "lora.safetensors").write_bytes(b"old")
    with atomic_writer(tmp_path / "lora.safetensors", unique=True) as out:
        out.tmp.write_bytes(b"new")
        # the name is chosen on entry
        assert out.path is None and out.tmp.parent == tmp_path and out.tmp.name.startswith(".lora-1.")
    assert out.path == tmp_path / "lora-1.safetensors" and out.path.read_bytes() == b"new"

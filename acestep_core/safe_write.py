"""Writing output files without ever losing one: temporary file + rename, and unique names by exclusive creation.

The one policy of the pack (CLI, Save Audio node, training saves): **an existing file is never replaced unless
the caller asks to overwrite** (``--overwrite``); otherwise the new output gets the next free name, chosen by
*exclusive creation* so that concurrent runs cannot pick the same one. Every file is first written completely to
a hidden temporary file in its target folder (same file system), then moved into place in one step, so an
interrupted or failed write leaves the previous file intact and no half-written file under the real name.

API (everything returns the paths actually written):

* :func:`atomic_write` ``(path, write_fn, *, overwrite=False, unique=False)``: ``write_fn(tmp_path)`` writes the
  complete file to ``tmp_path``; it is then committed under ``path`` (``overwrite``: replaced atomically;
  ``unique``: the next free variant ``stem-1.ext``, ``stem-2.ext``...; neither: :class:`OutputExistsError` if
  ``path`` exists, nothing replaced).
* :func:`atomic_writer`: the same as a context manager, for code that writes in several calls::

      with atomic_writer(ckpt_dir / "lora.safetensors", unique=True) as out:
          save_file(tensors, str(out.tmp))
      logger.info("saved %s", out.path)          # the final name, set when the block exits

* :class:`OutputGroup`: files that belong together (an audio file and its ``_input_params.json`` sidecar, which
  records the audio file's name): :meth:`~OutputGroup.reserve` picks one common variant for all of them first
  (``reserve(candidates)`` with ``candidates(n)`` = the group's names for variant ``n``, 0 = as asked), then
  :meth:`~OutputGroup.stage` / :meth:`~OutputGroup.commit` write and move them, so a pair never mixes two runs.
* :func:`variant_path` (``song.wav`` -> ``song-2.wav``) and :func:`unique_path` (the first free variant now;
  advisory only, the race-free choice is the reservation).
* :func:`check_writable_target` / :func:`same_file`: checks to run *before* expensive work (folder creatable
  and writable, nothing but a file in the way; two paths naming the same file).

Unique names are reserved by creating them empty with exclusive creation (``O_EXCL``) before the content is
written; the content then replaces the empty file in one move. Interrupts: the moves of a commit happen with SIGINT
held back (main thread only), so Ctrl-C cannot split a group; a Ctrl-C or an error before the commit removes the
temporary files and the empty reservations, and never touches an existing file. A hard kill (SIGKILL, power loss)
can leave a hidden ``.<name>.<pid>-<tag>.tmp.<ext>`` file or an empty reserved name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AceStepInputError

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_VARIANTS",
    "OutputExistsError",
    "default_file_mode",
    "OutputGroup",
    "OutputPathError",
    "StagedFile",
    "atomic_write",
    "atomic_writer",
    "check_writable_target",
    "same_file",
    "temp_path",
    "unique_path",
    "variant_path",
]

MAX_VARIANTS = 100_000  # variants tried before giving up (a folder with that many copies is a bug elsewhere)


class OutputPathError(AceStepInputError):
    """An output cannot be written where it is asked for (folder not creatable or writable, a file in the way)."""


class OutputExistsError(OutputPathError, FileExistsError):
    """The output file exists and neither overwriting nor a unique name was asked for; nothing was replaced."""


def variant_path(path: str | Path, n: int) -> Path:
    """Variant ``n`` of a file name: ``n = 0`` -> ``path``; ``song.wav`` -> ``song-1.wav``, ``song-2.wav``..."""
    path = Path(path)
    return path if n == 0 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def unique_path(path: str | Path) -> Path:
    """The first variant of ``path`` (:func:`variant_path`) that does not exist now. Advisory: another process may
    take it before you write; :func:`atomic_write` with ``unique=True`` makes the choice race-free."""
    for n in range(MAX_VARIANTS):
        candidate = variant_path(path, n)
        if not os.path.lexists(candidate):
            return candidate
    raise OutputPathError(f"{path}: {MAX_VARIANTS} variants of this name exist already; choose another name")


def default_file_mode() -> int:
    """The permissions a new file gets from this process's umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_path(final: str | Path) -> Path:
    """A hidden temporary name next to ``final``, keeping its extension (``.song.1234-9f3a.tmp.wav``)."""
    final = Path(final)
    return final.with_name(f".{final.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{final.suffix}")


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if ``a`` and ``b`` name the same file (existing: same inode; else: same resolved path)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_writable_target(path: str | Path, what: str) -> None:
    """Raise :class:`OutputPathError` unless a file can be created at ``path``: the path is not a folder, and its
    folder exists and is writable, or can be created (its nearest existing parent is a writable folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"{what} {path}: {probe} is a file, not a folder; choose another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        state = "" if probe == folder else f" (to create {folder})"
        raise OutputPathError(f"{what} {path}: the folder {probe} is not writable{state}; choose a folder you can "
                              "write to, or fix its permissions")


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) for the duration (main thread only) and deliver it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def _create_exclusive(path: Path) -> bool:
    """Create ``path`` as an empty placeholder only if it does not exist (``O_EXCL``); True on success."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


@dataclass
class OutputGroup:
    """Files written together under one name variant (see the module docstring).

    1. :meth:`reserve` picks the names: for ``unique`` the first variant whose names are all free, each created
       empty with exclusive creation (a concurrent writer sees them taken); ``overwrite`` takes variant 0 as it
       is; neither: variant 0 if all its names are free, else :class:`OutputExistsError` (before any writing).
    2. :meth:`stage` gives the temporary file to write each member to.
    3. :meth:`commit` moves every temporary file onto its name, with Ctrl-C held back.

    Use it as a context manager: on an exception (Ctrl-C included) or without a commit, the temporary files and
    the empty reserved names are removed, and existing files are left as they were.
    """

    overwrite: bool = False
    unique: bool = True
    names: list[Path] = field(default_factory=list)
    _reserved: list[Path] = field(default_factory=list)
    _staged: dict[Path, Path] = field(default_factory=dict)  # final -> temporary
    committed: bool = False

    def reserve(self, candidates: Callable[[int], Sequence[str | Path]]) -> list[Path]:
        """Choose the group's names (step 1) from ``candidates(n)``, the names of variant ``n`` (0 = as asked)."""
        for n in range(MAX_VARIANTS if self.unique and not self.overwrite else 1):
            names = [Path(p).expanduser() for p in candidates(n)]
            for name in names:
                self._mkdir(name.parent)
            if self.overwrite:
                self.names = names
                return names
            if not self.unique:
                taken = [str(p) for p in names if os.path.lexists(p)]
                if taken:
                    raise OutputExistsError(f"{', '.join(taken)}: exists; nothing was replaced (ask to overwrite "
                                            "it, or choose another name)")
            created: list[Path] = []
            for name in names:
                if not _create_exclusive(name):
                    break
                created.append(name)
            else:
                self.names, self._reserved = names, created
                return names
            for name in created:
                name.unlink(missing_ok=True)
            if not self.unique:  # lost a race for the name asked for
                raise OutputExistsError(f"{names[len(created)]}: created by someone else meanwhile; nothing was "
                                        "replaced")
        raise OutputPathError(f"{candidates(0)[0]}: {MAX_VARIANTS} variants of this name exist; choose another name")

    @staticmethod
    def _mkdir(folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputPathError(f"cannot create the folder {folder}: {e.strerror or e}; choose a folder you can "
                                  "write to") from e

    def stage(self, final: str | Path) -> Path:
        """The temporary file to write the member ``final`` (one of the reserved names) to (step 2)."""
        final = Path(final).expanduser()
        if final not in self.names:
            raise ValueError(f"{final} is not one of the reserved names {self.names}")
        tmp = self._staged.setdefault(final, temp_path(final))
        return tmp

    def commit(self) -> list[Path]:
        """Move every staged file onto its name (step 3); returns the names."""
        missing = [str(p) for p in self.names if p not in self._staged]
        if missing:
            raise ValueError(f"nothing staged for {missing}")
        mode = default_file_mode()
        for final in self.names:  # writers like safetensors create 0600 files; give the usual permissions
            os.chmod(self._staged[final], mode)
        with _sigint_deferred():
            for final in self.names:
                os.replace(self._staged[final], final)
            self.committed = True
        return self.names

    def discard(self) -> None:
        """Remove the temporary files and, unless committed, the empty reserved names."""
        for tmp in self._staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not self.committed:
            for name in self._reserved:
                with contextlib.suppress(OSError):
                    if name.stat().st_size == 0:
                        name.unlink()
        self._staged, self._reserved = {}, []

    def __enter__(self) -> OutputGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.discard()


@dataclass
class StagedFile:
    """What :func:`atomic_writer` yields: write to ``tmp``; ``path`` is the final name once the block exits."""

    tmp: Path
    path: Path | None = None


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, overwrite: bool = False, unique: bool = False) -> Iterator[StagedFile]:
    """Context manager form of :func:`atomic_write`: the name is chosen on entry (so a refusal comes before any
    writing), the complete file is written to ``.tmp`` inside the block and moved into place on exit."""
    final = Path(path).expanduser()
    with OutputGroup(overwrite=overwrite, unique=unique) as group:
        (name,) = group.reserve(lambda n: [variant_path(final, n)])
        staged = StagedFile(group.stage(name))
        yield staged
        group.commit()
        staged.path = name
        if name != final:
            logger.warning("%s exists; wrote %s instead (nothing was replaced)", final, name)


def atomic_write(path: str | Path, write_fn: Callable[[Path], Any], *, overwrite: bool = False,
                 unique: bool = False) -> Path:
    """Write a file through ``write_fn(tmp_path)`` and move it into place; returns the path written (see the
    module docstring for ``overwrite`` / ``unique``; neither: :class:`OutputExistsError` if ``path`` exists)."""
    with atomic_writer(path, overwrite=overwrite, unique=unique) as staged:
        write_fn(staged.tmp)
    assert staged.path is not None
    return staged.path

"""Start and stop a real ComfyUI server with this pack installed, and talk to it over HTTP (loopback only).

The server runs from a ComfyUI source checkout (``COMFYUI_ROOT``) with its own interpreter (``COMFYUI_PYTHON``),
in a private base directory (``--base-directory``) holding:

* ``custom_nodes/<pack>`` -> a symlink to this repository;
* ``models/ace_step/acestep_v1_tiny/`` -> the tiny parity checkpoint in the official folder layout (the four
  sub-folders symlinked) plus the lyric ``vocab.json`` copied next to them, where the pack's vocab resolution
  looks first (``acestep_core/lyrics/vocab.py``);
* ``models/loras/<name>/`` -> the files of a tiny parity LoRA folder (``pytorch_lora_weights.safetensors`` +
  ``adapter_config.json``) symlinked under the folder name the LoRA example workflow uses;
* ``input/`` (source audio for the audio-to-audio workflows is written there), ``output/``, ``temp/``, ``user/``.

Every wait is bounded; :meth:`ComfyServer.stop` terminates the process by its PID (then kills it) and is
always called by the context manager. Only ``urllib`` is used, so the pack's test environment needs nothing more.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "LORA_FOLDER_NAME",
    "PACK_DIR",
    "TINY_CHECKPOINT_NAME",
    "ComfyServer",
    "ComfyServerError",
    "free_port",
    "prepare_base_dir",
]

PACK_DIR = Path(__file__).resolve().parents[2]
PACK_LINK_NAME = "comfyui-acestep-v1"
TINY_CHECKPOINT_NAME = "acestep_v1_tiny"
LORA_FOLDER_NAME = "ACE-Step-v1-chinese-rap-LoRA"  # the folder the LoRA workflow (api/lora.json) names in models/loras
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0


class ComfyServerError(RuntimeError):
    """The server did not start, answered an error, or a prompt failed; the message carries the log tail."""


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def prepare_base_dir(base: Path, tiny_checkpoint: Path, vocab: Path, lora: Path | None = None) -> Path:
    """Lay out a ComfyUI ``--base-directory`` with the pack linked, the tiny checkpoint as a model and, when given,
    the files of the LoRA folder ``lora`` linked into ``models/loras/<LORA_FOLDER_NAME>/``."""
    for sub in ("custom_nodes", "models/checkpoints", "models/ace_step", "models/loras", "input", "output", "temp",
                "user"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_LINK_NAME
    if not link.exists():
        link.symlink_to(PACK_DIR, target_is_directory=True)
    model_dir = base / "models" / "ace_step" / TINY_CHECKPOINT_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    for component in sorted(p for p in tiny_checkpoint.iterdir() if p.is_dir()):
        target = model_dir / component.name
        if not target.exists():
            target.symlink_to(component.resolve(), target_is_directory=True)
    shutil.copyfile(vocab, model_dir / "vocab.json")
    if lora is not None:
        lora_dir = base / "models" / "loras" / LORA_FOLDER_NAME
        lora_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(p for p in lora.iterdir() if p.is_file()):
            target = lora_dir / item.name
            if not target.exists():
                target.symlink_to(item.resolve())
    return base


class ComfyServer:
    """One ComfyUI process on ``127.0.0.1:<port>``; use as a context manager so it is always stopped."""

    def __init__(self, comfyui_root: Path, python: Path, base_dir: Path, port: int | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None, cpu: bool = True) -> None:
        self.cpu = cpu  # False: ComfyUI picks its GPU (benchmarks)
        self.comfyui_root = Path(comfyui_root)
        self.python = Path(python)
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.extra_env = dict(env or {})
        self.client_id = uuid.uuid4().hex
        self.log_path = self.base_dir / "comfyui.log"
        self.process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{HOST}:{self.port}"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> ComfyServer:
        """Launch ``main.py`` headless (on CPU unless ``cpu=False``) and wait (bounded) until ``/system_stats``
        answers."""
        device = ["--cpu"] if self.cpu else []
        cmd = [str(self.python), "main.py", *device, "--listen", HOST, "--port", str(self.port),
               "--disable-auto-launch", "--base-directory", str(self.base_dir),
               "--database-url", f"sqlite:///{self.base_dir / 'comfyui.db'}", "--disable-api-nodes",
               *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):  # the server uses its own interpreter only
            env.pop(var, None)
        env.update(self.extra_env)
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.process = subprocess.Popen(cmd, cwd=self.comfyui_root, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ComfyServerError(f"ComfyUI exited with code {self.process.returncode} during start-up:\n"
                                       f"{self.log_tail()}")
            try:
                self.get_json("/system_stats", timeout_s=2.0)
                return self
            except (OSError, ComfyServerError):
                time.sleep(0.5)
        self.stop()
        raise ComfyServerError(f"ComfyUI did not answer /system_stats within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server started here (by PID), killing it if it does not exit in time."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log_tail(self, max_chars: int = 6000) -> str:
        """The end of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-max_chars:]
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, body: Any = None, timeout_s: float = HTTP_TIMEOUT_S) -> bytes:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - loopback only
                return response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            raise ComfyServerError(f"{method} {path} -> HTTP {exc.code}: {detail}") from None

    def get_json(self, path: str, timeout_s: float = HTTP_TIMEOUT_S) -> Any:
        """``GET path`` decoded as JSON."""
        return json.loads(self._request("GET", path, timeout_s=timeout_s))

    def post_json(self, path: str, body: Any, timeout_s: float = HTTP_TIMEOUT_S) -> Any:
        """``POST path`` with a JSON body; the JSON answer (or ``None`` for an empty one)."""
        raw = self._request("POST", path, body, timeout_s=timeout_s)
        return json.loads(raw) if raw.strip() else None

    def object_info(self) -> dict[str, Any]:
        """Every node schema the server knows."""
        return self.get_json("/object_info", timeout_s=60.0)

    def queue(self, prompt: dict[str, Any]) -> str:
        """Queue an API-format prompt; its ``prompt_id`` (validation errors raise with ``node_errors``)."""
        answer = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        if answer.get("node_errors"):
            raise ComfyServerError(f"prompt rejected: {json.dumps(answer['node_errors'])}")
        return str(answer["prompt_id"])

    def wait(self, prompt_id: str, timeout_s: float = 300.0, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll ``/history/<id>`` until the prompt finished (success, error or interrupt); its history entry."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ComfyServerError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"].get("completed") or entry["status"].get("status_str") == "error"):
                return entry
            time.sleep(poll_s)
        raise ComfyServerError(f"prompt {prompt_id} did not finish within {timeout_s:.0f} s:\n{self.log_tail()}")

    def run(self, prompt: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
        """Queue ``prompt`` and wait for it; raises with the execution error and log tail unless it succeeded."""
        entry = self.wait(self.queue(prompt), timeout_s=timeout_s)
        status = entry.get("status", {})
        if status.get("status_str") != "success":
            raise ComfyServerError(f"prompt failed: {json.dumps(status.get('messages'), default=str)[:6000]}\n"
                                   f"--- server log ---\n{self.log_tail()}")
        return entry

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> bytes:
        """Download an output/temp/input file through ``/view``."""
        query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
        return self._request("GET", f"/view?{query}", timeout_s=60.0)

    def interrupt(self) -> None:
        """``POST /interrupt``: stop the running prompt."""
        self.post_json("/interrupt", {})

    def queue_state(self) -> dict[str, Any]:
        """``GET /queue``: running and pending prompts."""
        return self.get_json("/queue")

"""A headless Chromium driven over the DevTools protocol, for the opt-in browser suite (``test_browser.py``).

Debian's ``chromium`` (``/usr/bin/chromium``, or ``$CHROMIUM``) is started with ``--remote-debugging-pipe``: the
protocol runs over two pipes (file descriptors 3 and 4 of the browser, NUL-separated JSON), so no port is opened
and no websocket library is needed. A fresh ``--user-data-dir`` per run, no network beyond the loopback server
(background networking, component updates, sync off). :meth:`Chromium.close` ends the browser by its PID.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["BrowserError", "Chromium", "Page", "chromium_path"]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
         "--remote-debugging-pipe"]
CALL_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 10.0


class BrowserError(RuntimeError):
    """The browser died, a protocol call failed or a wait timed out."""


def chromium_path() -> str | None:
    """The Chromium binary to drive (``$CHROMIUM``, else ``chromium`` on PATH), or None."""
    explicit = os.environ.get("CHROMIUM", "")
    return explicit if explicit and Path(explicit).is_file() else shutil.which("chromium")


class Chromium:
    """One headless browser; use as a context manager (always closed)."""

    def __init__(self, binary: str, user_data_dir: Path, width: int = 1600, height: int = 1000) -> None:
        self.binary = binary
        self.user_data_dir = Path(user_data_dir)
        self.size = (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self._next_id = 0
        self._lock = threading.Lock()
        self._pending: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._listeners: list[Any] = []

    def start(self) -> Chromium:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def child_fds() -> None:  # the protocol pipes must be fds 3 (commands) and 4 (answers) of the browser
            commands = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # above 4 first: no dup2 clobbers the other
            answers = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(commands, 3)  # dup2 leaves 3 and 4 inheritable; every fd Python opened is close-on-exec
            os.dup2(answers, 4)

        width, height = self.size
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary with fixed flags
            [self.binary, *FLAGS, f"--user-data-dir={self.user_data_dir}", f"--window-size={width},{height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.user_data_dir / "chromium.log", "wb"),  # noqa: SIM115
            preexec_fn=child_fds, close_fds=False)  # noqa: PLW1509 - fd set-up between fork and exec
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, name="cdp-reader", daemon=True)
        self._reader.start()
        self.call("Browser.getVersion")
        return self

    def _read_loop(self) -> None:
        buffer = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                break
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    waiter = self._pending.get(message["id"])
                    if waiter is not None:
                        waiter.put(message)
                else:
                    for listener in list(self._listeners):
                        listener(message)
                    self.events.put(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None,
             timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        """One protocol command; its ``result`` (raises with the protocol error)."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            waiter: queue.Queue[dict[str, Any]] = queue.Queue()
            self._pending[message_id] = waiter
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        if self.process is None or self.process.poll() is not None:
            raise BrowserError(f"chromium is not running ({method}): {self.log_tail()}")
        self._out.write(json.dumps(message).encode("utf-8") + b"\0")
        try:
            answer = waiter.get(timeout=timeout_s)
        except queue.Empty:
            raise BrowserError(f"{method}: no answer within {timeout_s:.0f} s") from None
        finally:
            self._pending.pop(message_id, None)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def add_listener(self, listener: Any) -> None:
        """``listener(message)`` for every protocol event (called on the reader thread)."""
        self._listeners.append(listener)

    def new_page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session)

    def log_tail(self, max_chars: int = 3000) -> str:
        try:
            return (self.user_data_dir / "chromium.log").read_text(errors="replace")[-max_chars:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Close the browser started here (by PID), killing it if it does not exit in time."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                self._out.write(json.dumps({"id": 0, "method": "Browser.close", "params": {}}).encode() + b"\0")
                process.wait(timeout=CLOSE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait(timeout=CLOSE_TIMEOUT_S)
        for stream in (self._out, self._in):
            with contextlib.suppress(OSError):
                stream.close()

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Page:
    """One tab: JavaScript evaluation, console capture, mouse / keyboard input, screenshots."""

    def __init__(self, browser: Chromium, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.console: list[dict[str, Any]] = []  # {"level", "text", "url"} of console calls, errors, exceptions
        browser.add_listener(self._on_event)
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        width, height = browser.size
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("sessionId") != self.session_id:
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append({"level": params.get("type"), "text": text, "url": ""})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.console.append({"level": "exception", "text": text, "url": details.get("url", "")})
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append({"level": entry.get("level"), "text": entry.get("text", ""),
                                 "url": entry.get("url", "")})

    def call(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        return self.browser.call(method, params, self.session_id, timeout_s)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str, timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """The JSON value of ``expression`` (awaited when it is a promise); raises with the page's exception."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": int(timeout_s * 1000)},
                           timeout_s=timeout_s + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"page exception: {details.get('exception', {}).get('description') or details}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 60.0, poll_s: float = 0.25) -> Any:
        """Poll until ``expression`` is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except BrowserError as exc:
                last = exc
            if last and not isinstance(last, BrowserError):
                return last
            time.sleep(poll_s)
        raise BrowserError(f"timed out after {timeout_s:.0f} s waiting for {expression!r} (last: {last!r})")

    def mouse(self, kind: str, x: float, y: float, buttons: int = 0) -> None:
        self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved"
                                               or buttons else "none", "buttons": buttons, "clickCount": 1})

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        """Press at ``start``, move to ``end`` in ``steps``, release (page CSS pixels)."""
        self.mouse("mouseMoved", *start)
        self.mouse("mousePressed", *start, buttons=1)
        for i in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * i / steps
            y = start[1] + (end[1] - start[1]) * i / steps
            self.mouse("mouseMoved", x, y, buttons=1)
        self.mouse("mouseReleased", *end, buttons=0)

    def key(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": code,
                                                 "windowsVirtualKeyCode": key_code})

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

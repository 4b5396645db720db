"""Our workflow and ComfyUI's native ACE-Step graph in one real headless ComfyUI server on a GPU, as users run them.

Usage (CUDA machine; ComfyUI source at ``--comfyui-root``, its requirements importable by ``--python``)::

    python -m bench.bench_comfy --comfyui-root PATH [--python python3] [--base-dir DIR] [--spiece FILE]
        [--durations 60,240] [--steps 27] [--accel "fastest (default)"] [--repeats 2] [--native/--no-native]
        [--allocator default|caching] [--cold-start] [--json OUT]

Builds (once) a full-size random-weight checkpoint in ComfyUI's single-file layout on the GPU
(:mod:`bench.comfy_checkpoint`), starts ComfyUI with this pack and ``bench/comfy_bench_pack`` in ``custom_nodes``
(``--allocator default`` = ComfyUI's own choice, cudaMallocAsync on a CUDA GPU; ``caching`` adds
``--disable-cuda-malloc``), and queues, per duration: ComfyUI's native graph (:func:`comfy_workflows.native_prompt`,
KSampler cfg 5), then, after ``POST /free``, our ``workflows/api/text2music.json`` once per ``--accel`` choice (app
defaults: APG 15, ERG on, 48 kHz 32-bit float WAV). Each configuration: one warm-up prompt, then ``--repeats`` timed
prompts, each with another seed and last tag word (nothing is served from ComfyUI's cache).

Columns: ``exec_s`` = ``execution_success`` minus ``execution_start`` timestamps of the prompt's history (what the
server log prints as "Prompt executed in"), ``wall_s`` = from ``POST /prompt`` until the history shows it, ``peak_gib``
= ``torch.cuda.max_memory_allocated`` in the server process (reset before the prompt) and ``resident_gib`` the
allocation when the prompt started, ``smi_mib`` the largest ``nvidia-smi`` ``memory.used`` sampled every 0.2 s, and
``graphs`` the torch._dynamo compiled-graph count of the server after the prompt (recompiles show as growth).
``--cold-start``: afterwards a fresh server with the same caches on disk (Triton, Inductor) loads our checkpoint and
moves it to the GPU in a prompt of its own, then runs the first song (``cold``) and a second one (``warm``) per
duration: ``cold - warm`` is what a restart costs a user beyond reading and moving the weights. ``--tiny`` runs our
route only on the tiny parity checkpoint (CPU smoke test).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import comfy_workflows as wf
from tests.comfy.comfy_server import ComfyServer, ComfyServerError, prepare_base_dir

LOG = logging.getLogger("bench")
REPO = Path(__file__).resolve().parents[1]
BENCH_PACK = Path(__file__).resolve().parent / "comfy_bench_pack"
AV_STUB = {"__init__.py": "\"\"\"PyAV stand-in (bench only): imports, cannot encode.\"\"\"\ntime_base = 1000000\n"
           "class AudioStream: ...\nclass VideoStream: ...\nclass AudioFrame: ...\nclass VideoFrame: ...\n"
           "def open(*args, **kwargs):\n    raise RuntimeError('PyAV is not installed (bench stand-in)')\n",
           "container.py": "class InputContainer: ...\nclass OutputContainer: ...\n",
           "error.py": "class InvalidDataError(Exception): ...\n",
           "subtitles/__init__.py": "", "subtitles/stream.py": "class SubtitleStream: ...\n"}


@dataclass
class Row:
    route: str  # "native" or "ours"
    accel: str
    allocator: str
    audio_s: float
    kind: str  # "timed" (after a warm-up), "warm-up", "cold" (first song after a restart), "warm" (the next)
    exec_s: float
    wall_s: float
    peak_gib: float | None = None
    resident_gib: float | None = None
    smi_mib: float | None = None
    graphs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SmiSampler:
    """Largest ``nvidia-smi`` memory.used (MiB) between :meth:`start` and :meth:`stop` (None without nvidia-smi)."""

    def __init__(self) -> None:
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout.split()
                self.peak = max(self.peak or 0.0, float(out[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return
            self._stop.wait(0.2)

    def start(self) -> None:
        self.peak, self._stop = None, threading.Event()
        if shutil.which("nvidia-smi"):
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        return self.peak


def _exec_seconds(entry: dict[str, Any]) -> float:
    stamps = {event: data.get("timestamp") for event, data in entry["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000.0


def _gib(value: Any) -> float | None:
    return None if value is None else value / 2**30


def run_prompt(server: ComfyServer, prompt: dict[str, Any], smi: SmiSampler, timeout_s: float = 900.0
               ) -> dict[str, Any]:
    """Queue ``prompt``, wait, and measure it (see the module docstring's columns)."""
    server.post_json("/acestep_bench/reset_peak", {})
    resident = server.get_json("/acestep_bench/mem").get("allocated")
    smi.start()
    started = time.perf_counter()
    try:
        entry = server.wait(server.queue(prompt), timeout_s=timeout_s, poll_s=0.05)
    finally:
        smi_peak = smi.stop()
    wall = time.perf_counter() - started
    if entry.get("status", {}).get("status_str") != "success":
        raise ComfyServerError(f"prompt failed: {json.dumps(entry.get('status', {}).get('messages'))[:4000]}")
    mem = server.get_json("/acestep_bench/mem")
    dynamo = server.get_json("/acestep_bench/dynamo")
    return {"exec_s": _exec_seconds(entry), "wall_s": wall, "peak_gib": _gib(mem.get("peak")),
            "resident_gib": _gib(resident), "smi_mib": smi_peak, "graphs": dynamo.get("unique_graphs"),
            "extra": {"inductor": dynamo.get("inductor"), "aot_autograd": dynamo.get("aot_autograd"),
                      "compile_times": dynamo.get("compile_times")}}


def _prompt(route: str, seconds: float, steps: int, accel: str, run: int, ckpt: str) -> dict[str, Any]:
    if route == "native":
        return wf.native_prompt(seconds, steps, run, ckpt_name=ckpt)
    return wf.our_prompt(seconds, steps, accel, run, ckpt_name=ckpt)


def bench_route(server: ComfyServer, route: str, accel: str, allocator: str, args: argparse.Namespace,
                smi: SmiSampler, counter: list[int]) -> list[Row]:
    """Warm-up + ``repeats`` timed prompts per duration for one route / acceleration choice."""
    rows = []
    for seconds in args.durations:
        for kind in ["warm-up"] + ["timed"] * args.repeats:
            counter[0] += 1
            label = accel if route == "ours" else "KSampler cfg 5"
            try:
                measured = run_prompt(server, _prompt(route, seconds, args.steps, accel, counter[0], args.ckpt), smi)
            except ComfyServerError as error:  # recorded; the other configurations still run
                LOG.error("%s %s %g s failed: %s", route, label, seconds, error)
                rows.append(Row(route, label, allocator, seconds, "failed", float("nan"), float("nan"),
                                extra={"error": str(error)[:4000]}))
                return rows
            rows.append(Row(route, label, allocator, seconds, kind, **measured))
            LOG.info("%s", rows[-1])
    return rows


def prepare(args: argparse.Namespace) -> Path:
    """The base directory: this pack and the bench pack linked, the checkpoint, an empty front-end folder."""
    base = Path(args.base_dir).resolve()
    if args.tiny:
        from tests.parity import PARITY_DIR, TINY_CHECKPOINT

        prepare_base_dir(base, TINY_CHECKPOINT, PARITY_DIR / "tokenizer" / "vocab.json")
    else:
        for sub in ("custom_nodes", "models/checkpoints", "input", "output", "temp", "user"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        link = base / "custom_nodes" / "comfyui-acestep-v1"
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        import torch

        from bench.comfy_checkpoint import build_single_file

        build_single_file(base / "models" / "checkpoints" / wf.CHECKPOINT_NAME, Path(args.spiece),
                          torch.device("cuda"))
        torch.cuda.empty_cache()
    bench_link = base / "custom_nodes" / "acestep_bench"
    if not bench_link.exists():
        bench_link.symlink_to(BENCH_PACK, target_is_directory=True)
    (base / "web").mkdir(exist_ok=True)
    return base


def _server_env(args: argparse.Namespace, base: Path) -> dict[str, str]:
    """PYTHONPATH for the server: the caller's (carried wheels) plus a PyAV stand-in when ``av`` is missing."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    probe = subprocess.run([args.python, "-c", "import av"], capture_output=True,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)))
    if probe.returncode != 0:
        stub = base / "stubs"
        for name, text in AV_STUB.items():
            (stub / "av" / name).parent.mkdir(parents=True, exist_ok=True)
            (stub / "av" / name).write_text(text, encoding="utf-8")
        paths.append(str(stub))
        LOG.info("PyAV missing for %s: using the import-only stand-in in %s", args.python, stub)
    return {"PYTHONPATH": os.pathsep.join(paths)}


def make_server(args: argparse.Namespace, base: Path, allocator: str) -> ComfyServer:
    """A server (started by ``with``): ComfyUI's defaults, ``--disable-cuda-malloc`` for the caching allocator."""
    extra = ["--front-end-root", str(base / "web")] + (["--disable-cuda-malloc"] if allocator == "caching" else [])
    extra += args.server_args.split()
    return ComfyServer(Path(args.comfyui_root), Path(args.python), base, extra_args=extra,
                       env=_server_env(args, base), cpu=args.tiny)


def _log_started(server: ComfyServer, started: float) -> None:
    LOG.info("server up in %.1f s: %s", time.perf_counter() - started, server.get_json("/acestep_bench/mem"))


def _keep_log(server: ComfyServer, phase: str) -> None:
    """Copy the server's log (the next server of this base directory overwrites it)."""
    if server.log_path.is_file():
        shutil.copyfile(server.log_path, server.log_path.with_name(f"comfyui-{phase}.log"))


def check_choices(server: ComfyServer, args: argparse.Namespace, smi: SmiSampler, counter: list[int]) -> list[Row]:
    """One prompt per ``--check-accel`` choice at the first duration: it must run (and the server survive)."""
    rows = []
    for accel in args.check_accel:
        counter[0] += 1
        try:
            measured = run_prompt(server, wf.our_prompt(args.durations[0], args.steps, accel, counter[0],
                                                        ckpt_name=args.ckpt), smi)
            rows.append(Row("ours", accel, args.allocator, args.durations[0], "check", **measured))
        except ComfyServerError as error:
            rows.append(Row("ours", accel, args.allocator, args.durations[0], "failed", float("nan"),
                            float("nan"), extra={"error": str(error)[:4000]}))
        LOG.info("%s", rows[-1])
    return rows


def cold_start(args: argparse.Namespace, base: Path, allocator: str, smi: SmiSampler) -> list[Row]:
    """A fresh server (disk caches kept): load-only prompt, then per duration the first song and a second one."""
    rows, started = [], time.perf_counter()
    with make_server(args, base, allocator) as server:
        _log_started(server, started)
        started = time.perf_counter()
        server.run(wf.load_only_prompt("ours", ckpt_name=args.ckpt), timeout_s=600)
        LOG.info("cold server: checkpoint loaded and moved to the GPU in %.1f s", time.perf_counter() - started)
        rows += _cold_songs(server, args, allocator, smi)
        _keep_log(server, "cold")
    return rows


def _cold_songs(server: ComfyServer, args: argparse.Namespace, allocator: str, smi: SmiSampler) -> list[Row]:
    """Per duration, the first song of the process at that length (``cold``) and the next one (``warm``)."""
    rows = []
    for index, seconds in enumerate(args.durations):
        for kind in ("cold", "warm"):
            run = 500 + 2 * index + (kind == "warm")
            measured = run_prompt(server, wf.our_prompt(seconds, args.steps, args.accel[0], run, ckpt_name=args.ckpt),
                                  smi)
            rows.append(Row("ours", args.accel[0], allocator, seconds, kind, **measured))
            LOG.info("%s", rows[-1])
    return rows


def summary(rows: Sequence[Row]) -> str:
    """One markdown line per configuration: warm-up, timed runs, median exec / wall, peaks, graph counts."""
    lines = ["| route | acceleration | allocator | audio s | warm-up exec s | timed exec s | **median exec s** | "
             "median wall s | RTF | torch peak GiB (resident) | smi max MiB | compiled graphs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r.route, r.accel, r.allocator, r.audio_s) for r in rows if r.kind == "timed"))
    failed = [r for r in rows if r.kind == "failed"]
    checks = [r for r in rows if r.kind == "check"]
    for key in keys:
        group = [r for r in rows
                 if (r.route, r.accel, r.allocator, r.audio_s) == key and r.kind in ("warm-up", "timed")]
        timed = [r for r in group if r.kind == "timed"]
        warm = next((r.exec_s for r in group if r.kind == "warm-up"), None)
        median = statistics.median(r.exec_s for r in timed)
        peak = max((r.peak_gib or 0.0) for r in timed)
        smi = max((r.smi_mib or 0.0) for r in timed) or None
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]:g} | {warm:.2f} | "
                     f"{', '.join(f'{r.exec_s:.2f}' for r in timed)} | **{median:.2f}** | "
                     f"{statistics.median(r.wall_s for r in timed):.2f} | {key[3] / median:.0f}x | "
                     f"{peak:.2f} ({timed[0].resident_gib or 0:.2f}) | {smi if smi is None else f'{smi:.0f}'} | "
                     f"{', '.join(str(r.graphs) for r in group)} |")
    lines += [f"| {r.route} | {r.accel} | {r.allocator} | {r.audio_s:g} | FAILED: {r.extra.get('error', '')[:300]} "
              "| | | | | | | |" for r in failed]
    lines += [f"| {r.route} | {r.accel} | {r.allocator} | {r.audio_s:g} | check run: {r.exec_s:.2f} s, peak "
              f"{r.peak_gib or 0:.2f} GiB | | | | | | | {r.graphs} |" for r in checks]
    cold = [r for r in rows if r.kind in ("cold", "warm")]
    if cold:
        lines += ["", "| cold start (fresh server, caches on disk) | audio s | first song exec s | next song exec s |"
                  " **first - next s** |", "|---|---|---|---|---|"]
        for seconds in dict.fromkeys(r.audio_s for r in cold):
            first = next(r for r in cold if r.audio_s == seconds and r.kind == "cold")
            then = next(r for r in cold if r.audio_s == seconds and r.kind == "warm")
            lines.append(f"| ours, {first.accel}, {first.allocator} | {seconds:g} | {first.exec_s:.2f} | "
                         f"{then.exec_s:.2f} | **{first.exec_s - then.exec_s:.2f}** |")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bench_comfy", description=__doc__.splitlines()[0])
    p.add_argument("--comfyui-root", required=True, help="ComfyUI source folder (holding main.py)")
    p.add_argument("--python", default=sys.executable, help="interpreter with ComfyUI's requirements")
    p.add_argument("--base-dir", default="/tmp/acestep_bench_comfy", help="ComfyUI --base-directory (kept)")
    p.add_argument("--spiece", default=None, help="SentencePiece model for the random checkpoint's UMT5 tokenizer")
    p.add_argument("--durations", type=_floats, default=[60.0, 240.0])
    p.add_argument("--steps", type=int, default=27)
    p.add_argument("--accel", type=lambda s: s.split(";"), default=["fastest (default)"],
                   help="';'-separated acceleration choices of our sampler node")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--native", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--allocator", choices=("default", "caching"), default="default")
    p.add_argument("--server-args", default="", help="more ComfyUI arguments, e.g. --lowvram")
    p.add_argument("--check-accel", type=lambda s: [c for c in s.split(";") if c], default=[],
                   help="';'-separated choices run once each at the first duration (must not fail)")
    p.add_argument("--cold-start", action="store_true")
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny checkpoint, our route only")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    args.ckpt = "ace_step/acestep_v1_tiny" if args.tiny else wf.CHECKPOINT_NAME
    args.native = args.native and not args.tiny
    if not args.tiny and not args.spiece:
        p.error("--spiece is needed to build the random checkpoint (e.g. a UMT5 / stand-in SentencePiece model)")
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    base, smi, rows, counter = prepare(args), SmiSampler(), [], [0]
    try:
        started = time.perf_counter()
        with make_server(args, base, args.allocator) as server:
            _log_started(server, started)
            if args.native:
                rows += bench_route(server, "native", "", args.allocator, args, smi, counter)
                server.post_json("/free", {"unload_models": True, "free_memory": True})
            for accel in args.accel:
                rows += bench_route(server, "ours", accel, args.allocator, args, smi, counter)
            rows += check_choices(server, args, smi, counter)
            _keep_log(server, "main")
        if args.cold_start:
            rows += cold_start(args, base, args.allocator, smi)
    except ComfyServerError as error:  # e.g. the server died: keep what was measured
        LOG.error("stopped: %s", error)
        rows.append(Row("server", "", args.allocator, 0.0, "failed", float("nan"), float("nan"),
                        extra={"error": str(error)[:6000]}))
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")
    print(summary(rows))
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

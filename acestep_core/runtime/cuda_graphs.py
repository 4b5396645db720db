"""CUDA graphs of denoiser passes: capture, a per-transformer cache, and a capture failure that cannot crash.

One :class:`GraphedPass` is one captured ``decode`` call (static input buffers, the graph, its output buffer).
Graphs are cached per transformer and input signature (shapes, dtypes, strides, query-scale pattern), at most
:data:`MAX_GRAPHS` per transformer (least recently used dropped first), and the whole cache is dropped when the
transformer's weights move (their addresses are the fingerprint) or when :func:`release_cuda_graphs` is called (the
ComfyUI nodes call it when ComfyUI unloads the model).

A capture that raises is the dangerous case under PyTorch's ``cudaMallocAsync`` allocator (ComfyUI's default): the
tensors allocated during the capture are graph memory of a graph that never ran, and freeing them outside the
graph (when the exception and its frames are dropped) makes the allocator abort the whole process ("Attempting
uncaptured free of a captured allocation", then "CUDA error: invalid argument" from ``free_impl``). So
:func:`capture` never lets such an exception escape: under ``cudaMallocAsync`` it keeps the exception (and with it
everything the capture allocated) alive for the rest of the process; those allocations were never backed by
memory, so nothing real is held. It then switches graphs off for the process with one warning, and the caller runs
the pass eagerly. Warm-up and capture share one side stream per device, so the cuBLAS workspace that stream needs
is allocated by the warm-up, outside any graph.
"""

from __future__ import annotations

import ctypes
import logging
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..kernels.dispatch import ASYNC_ALLOCATOR, allocator_backend

logger = logging.getLogger(__name__)

MAX_GRAPHS = 8  # per transformer: pass shapes x condition lengths kept across prompts

_FAILURE: list[str] = []  # the first capture failure of this process (graphs stay off after it)
_QUARANTINE: list[BaseException] = []  # failed captures under cudaMallocAsync, kept alive on purpose


class GraphedPass:
    """One captured ``decode`` call: static input buffers, the graph, its output buffer."""

    def __init__(self, fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], pool: Any) -> None:
        """Copies the inputs and runs ``fn`` once outside any graph (cuBLAS workspaces, lazy inits, compiles) on
        the stream the capture will use, so nothing the capture keeps afterwards is allocated inside it."""
        self.fn, self.pool = fn, pool
        self.inputs = tuple(t.clone() for t in inputs)
        device = inputs[0].device
        self.stream = _capture_stream(device)
        self.stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(self.stream):
            fn(*self.inputs)
        torch.cuda.current_stream(device).wait_stream(self.stream)

    def capture(self) -> None:
        """Capture ``fn`` on the static inputs."""
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=self.pool, stream=self.stream):
            self.output = self.fn(*self.inputs)

    def __call__(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        for static, value in zip(self.inputs, inputs, strict=True):
            static.copy_(value)
        self.graph.replay()
        return self.output.clone()  # the static output is overwritten by the next replay

    def release(self) -> None:
        """Drop the graph and its buffers now (quietly: under cudaMallocAsync the allocator warns that the output
        buffer, graph memory, is freed outside the graph, which is allowed once the graph has run)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.output = self.inputs = None  # type: ignore[assignment]
            self.graph.reset()


@dataclass
class GraphCache:
    """The graphs of one transformer for one set of weight addresses."""

    fingerprint: tuple[int, ...]
    pool: Any
    graphs: OrderedDict[tuple[Any, ...], GraphedPass] = field(default_factory=OrderedDict)

    def get(self, key: tuple[Any, ...]) -> GraphedPass | None:
        graphed = self.graphs.get(key)
        if graphed is not None:
            self.graphs.move_to_end(key)
        return graphed

    def put(self, key: tuple[Any, ...], graphed: GraphedPass) -> None:
        self.graphs[key] = graphed
        while len(self.graphs) > MAX_GRAPHS:
            self.graphs.popitem(last=False)[1].release()

    def release(self) -> None:
        while self.graphs:
            self.graphs.popitem()[1].release()


_CACHES: weakref.WeakKeyDictionary[torch.nn.Module, GraphCache] = weakref.WeakKeyDictionary()


_STREAMS: dict[torch.device, torch.cuda.Stream] = {}


def _capture_stream(device: torch.device) -> torch.cuda.Stream:
    """One side stream per device for every warm-up and capture (its cuBLAS workspace is made once, eagerly)."""
    if device not in _STREAMS:
        _STREAMS[device] = torch.cuda.Stream(device=device)
    return _STREAMS[device]


def weights_fingerprint(module: torch.nn.Module) -> tuple[int, ...]:
    return tuple(p.data_ptr() for p in module.parameters())


def graph_cache(transformer: torch.nn.Module) -> GraphCache:
    """The transformer's cache for its current weights (a stale one is released first)."""
    fingerprint = weights_fingerprint(transformer)
    cache = _CACHES.get(transformer)
    if cache is None or cache.fingerprint != fingerprint:
        if cache is not None:
            cache.release()
        cache = _CACHES[transformer] = GraphCache(fingerprint, torch.cuda.graph_pool_handle())
    return cache


def release_cuda_graphs(transformer: torch.nn.Module) -> None:
    """Free the CUDA graphs (and their memory) cached for ``transformer``."""
    cache = _CACHES.pop(transformer, None)
    if cache is not None:
        cache.release()


def capture_failure() -> str | None:
    """The error of this process's failed capture (graphs are off after it), or ``None``."""
    return _FAILURE[0] if _FAILURE else None


def capture(fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], pool: Any) -> GraphedPass | None:
    """A :class:`GraphedPass` of ``fn(*inputs)``, or ``None`` if the capture failed (then graphs are off for the
    process, with one warning; the caller runs the pass eagerly). An error of the warm-up run (outside any capture,
    e.g. out of memory) propagates; a failed capture never does."""
    graphed = GraphedPass(fn, inputs, pool)
    try:
        graphed.capture()
        return graphed
    except Exception as error:  # noqa: BLE001 - whatever broke the capture, the server must survive it
        if allocator_backend() == ASYNC_ALLOCATOR:  # its frames hold the capture's graph memory: never free it,
            _QUARANTINE.append(error)  # not even when the interpreter exits (module globals are cleared then)
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(error))
        if not _FAILURE:
            _FAILURE.append(f"{type(error).__name__}: {error}")
            logger.warning("CUDA graph capture failed (%s); denoiser passes run without CUDA graphs for the rest "
                           "of this process", _FAILURE[0])
        return None

"""Speed options of the denoiser passes: batched guidance, CUDA graphs, ``torch.compile``.

:class:`Acceleration` says what to use; :class:`Denoiser` is the one callable the sampling loops call for a
transformer pass (``AceStepTransformer.decode`` with every latent frame valid). None of these change the
arithmetic beyond the rounding of bf16 kernels choosing other tile orders:

* ``batch_guidance`` (default on): the conditional, unconditional (and only-text) passes of a guided step run
  as one batch (``[x; x]`` against ``[cond; uncond]``, ERG as a per-item query scale) instead of one after
  the other: half the kernel launches, and wider matrix products.
* ``cuda_graphs`` (opt-in, CUDA only): each pass shape is captured once into a CUDA graph and replayed, which
  removes the host's launch overhead (~2,800 kernels a pass). Graphs are cached per transformer and
  (shapes, dtypes, query-scale pattern) and dropped when its weights move (offload, reload); they need every
  weight resident on the GPU (ComfyUI's partial "lowvram" loading is detected and runs eagerly).
* ``compile`` (opt-in): ``torch.compile`` of the DiT block (one compiled graph shared by the 24 blocks; one
  compilation per pass shape, tens of seconds the first time). Needs a working Triton.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acceleration:
    """How denoiser passes run (see the module docstring)."""

    batch_guidance: bool = True
    cuda_graphs: bool = False
    compile: bool = False


@dataclass
class _GraphCache:
    fingerprint: tuple[int, ...]
    pool: Any
    graphs: dict[tuple[Any, ...], _GraphedPass]


class _GraphedPass:
    """One captured ``decode`` call: static input buffers, the graph, its output buffer."""

    def __init__(self, fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], pool: Any) -> None:
        self.inputs = tuple(t.clone() for t in inputs)
        stream = torch.cuda.Stream(device=inputs[0].device)
        stream.wait_stream(torch.cuda.current_stream(inputs[0].device))
        with torch.cuda.stream(stream):  # warm-up outside the graph (cuBLAS workspaces, lazy inits)
            fn(*self.inputs)
        torch.cuda.current_stream(inputs[0].device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.output = fn(*self.inputs)

    def __call__(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        for static, value in zip(self.inputs, inputs, strict=True):
            static.copy_(value)
        self.graph.replay()
        return self.output.clone()  # the static output is overwritten by the next replay


def _weights_fingerprint(module: torch.nn.Module) -> tuple[int, ...]:
    return tuple(p.data_ptr() for p in module.parameters())


def _all_on(module: torch.nn.Module, device: torch.device) -> bool:
    return all(p.device == device for p in module.parameters())


_GRAPH_CACHES: weakref.WeakKeyDictionary[torch.nn.Module, _GraphCache] = weakref.WeakKeyDictionary()


def release_cuda_graphs(transformer: torch.nn.Module) -> None:
    """Free the CUDA graphs (and their memory pool) cached for ``transformer``."""
    _GRAPH_CACHES.pop(transformer, None)


_COMPILED_BLOCK: dict[str, Callable[..., torch.Tensor]] = {}


def compiled_block_forward() -> Callable[..., torch.Tensor]:
    """``torch.compile`` of ``LinearTransformerBlock.forward`` (compiled lazily, shared by every block)."""
    if "forward" not in _COMPILED_BLOCK:
        from ..nn.blocks import LinearTransformerBlock

        _COMPILED_BLOCK["forward"] = torch.compile(LinearTransformerBlock.forward, dynamic=False)
    return _COMPILED_BLOCK["forward"]


class Denoiser:
    """``denoiser(x, states, mask, timestep, query_scale)`` -> velocity ``[B, 8, 16, T]``: one transformer pass
    with every frame valid, run as :class:`Acceleration` asks.

    Args:
        transformer: an :class:`~acestep_core.transformer.AceStepTransformer` (or anything with its ``decode``).
        acceleration: the options; ``None`` = defaults.
    """

    def __init__(self, transformer: Any, acceleration: Acceleration | None = None) -> None:
        self.transformer = transformer
        self.acceleration = acceleration or Acceleration()
        self._graphs: _GraphCache | None = None

    @property
    def batch_guidance(self) -> bool:
        return self.acceleration.batch_guidance

    def _decode(self, x: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor,
                query_scale: float | torch.Tensor) -> torch.Tensor:
        extra = {"block_forward": compiled_block_forward()} if self.acceleration.compile else {}
        return self.transformer.decode(x, None, states, mask, timestep, output_length=x.shape[-1],
                                       query_scale=query_scale, **extra)

    def __call__(self, x: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor,
                 query_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        timestep = timestep.expand(x.shape[0])
        if not (self.acceleration.cuda_graphs and x.is_cuda):
            return self._decode(x, states, mask, timestep, query_scale)
        cache = self._graph_cache(x.device)
        if cache is None:
            return self._decode(x, states, mask, timestep, query_scale)
        inputs: tuple[torch.Tensor, ...] = (x, states, mask, timestep)
        scale_key: Any = query_scale
        if isinstance(query_scale, torch.Tensor):
            inputs += (query_scale.to(device=x.device, dtype=torch.float32),)
            scale_key = "tensor"
        key = (tuple((tuple(t.shape), t.dtype, t.stride()) for t in inputs), scale_key, self.acceleration.compile)
        graphed = cache.graphs.get(key)
        if graphed is None:
            def run(*args: torch.Tensor) -> torch.Tensor:
                scale = args[4] if len(args) > 4 else query_scale
                return self._decode(args[0], args[1], args[2], args[3], scale)

            logger.debug("capturing a CUDA graph for a denoiser pass of shape %s", tuple(x.shape))
            graphed = cache.graphs[key] = _GraphedPass(run, inputs, cache.pool)
        return graphed(inputs)

    def _graph_cache(self, device: torch.device) -> _GraphCache | None:
        """The transformer's graph cache for its current weights, or ``None`` when graphs cannot be used."""
        if self._graphs is not None:
            return self._graphs
        transformer = self.transformer
        if not isinstance(transformer, torch.nn.Module) or not _all_on(transformer, device):
            logger.info("CUDA graphs off for this run: the transformer's weights are not all on %s", device)
            self.acceleration = Acceleration(self.acceleration.batch_guidance, False, self.acceleration.compile)
            return None
        fingerprint = _weights_fingerprint(transformer)
        cache = _GRAPH_CACHES.get(transformer)
        if cache is None or cache.fingerprint != fingerprint:
            cache = _GRAPH_CACHES[transformer] = _GraphCache(fingerprint, torch.cuda.graph_pool_handle(), {})
        self._graphs = cache
        return cache

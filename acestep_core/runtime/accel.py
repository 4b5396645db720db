"""Speed options of the denoiser passes: batched guidance, CUDA graphs, ``torch.compile``.

:class:`Acceleration` says what to use; :class:`Denoiser` is the one callable the sampling loops call for a
transformer pass (``AceStepTransformer.decode`` with every latent frame valid). None of these change the
arithmetic beyond the rounding of bf16 kernels choosing other tile orders:

* ``batch_guidance``: the conditional, unconditional (and only-text) passes of a guided step run as one batch
  (``[x; x]`` against ``[cond; uncond]``, ERG as a per-item query scale) instead of one after the other.
* ``cuda_graphs`` (CUDA only): each pass shape is captured once into a CUDA graph and replayed, which removes the
  host's launch overhead (~2,800 kernels a pass); see :mod:`.cuda_graphs` (cache, safe capture failure).
* ``compile``: ``torch.compile`` of the DiT block (one compiled graph shared by the 24 blocks). The condition
  length is a dynamic dimension (padded to a multiple of :data:`CONDITION_BUCKET`) and the ERG query scale always a
  tensor, so a new prompt, lyric or seed never recompiles: one compilation per latent length and pass batch (1
  outside the guidance window, 2 inside).

:meth:`Acceleration.fastest` (the default of the nodes and the CLI) asks for all three and keeps what is safe
where it runs (:func:`plan_passes`, a pure function of :class:`PassFacts`): no graphs or compile on CPU, no graphs
while ComfyUI has the weights only partly on the GPU, and under PyTorch's ``cudaMallocAsync`` allocator (ComfyUI's
default) no ``torch.compile`` inside a CUDA graph, because Triton's launcher refuses the graph memory that
allocator hands out during a capture (:mod:`acestep_core.kernels.dispatch`). Explicit choices are kept where they
can run and dropped with one log line where they cannot. A failed compile or capture falls back to the plain pass
for the rest of the process, with one warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from ..kernels import dispatch
from . import cuda_graphs
from .cuda_graphs import release_cuda_graphs

logger = logging.getLogger(__name__)

__all__ = ["CONDITION_BUCKET", "Acceleration", "Denoiser", "PassFacts", "PassPlan", "compiled_block_forward",
           "pad_conditions", "plan_passes", "release_cuda_graphs"]

COMPILE_BACKEND = "inductor"
RECOMPILE_LIMIT = 64  # compiled entries per code object while our passes run (2 per latent length)
# Graphs and compiled passes see the condition sequence padded with masked tokens to a multiple of this: prompts
# whose lengths fall in one bucket share their CUDA graphs, and the length always meets the attention kernels'
# alignment rule (Inductor guards on it when it picks the kernel: a length of another residue would recompile).
CONDITION_BUCKET = 64
_COMPILE_FAILURE: list[str] = []
_NOTES_LOGGED: set[str] = set()


@dataclass(frozen=True)
class Acceleration:
    """How denoiser passes run (see the module docstring). ``auto``: use graphs / compile only where they are
    safe and supported (what :meth:`fastest` sets); explicit choices leave it off."""

    batch_guidance: bool = True
    cuda_graphs: bool = False
    compile: bool = False
    auto: bool = False

    @classmethod
    def fastest(cls, compile: bool = True) -> Acceleration:  # noqa: A002 - the field's name
        """Batched guidance, CUDA graphs and (``compile``) ``torch.compile`` wherever they are safe: the nodes'
        default (a server compiles once per song length); the CLI's default leaves compile out (one song per
        process, where compiling costs far more than it saves)."""
        return cls(batch_guidance=True, cuda_graphs=True, compile=compile, auto=True)


@dataclass(frozen=True)
class PassFacts:
    """What decides which speed options can run (gathered once per run by :class:`Denoiser`)."""

    cuda: bool  # the activations are on a CUDA device
    weights_resident: bool  # every transformer weight is on that device (no partial / low-VRAM loading)
    allocator: str = "native"  # torch.cuda.get_allocator_backend()
    triton: bool = True  # Triton imports
    capture_failed: bool = False  # a CUDA graph capture failed earlier in this process
    compile_failed: bool = False  # a compiled pass failed earlier in this process


@dataclass(frozen=True)
class PassPlan:
    """What the passes of a run use; ``notes`` say why something asked for is off (logged once each)."""

    graphs: bool
    compile: bool
    notes: tuple[str, ...] = ()


def plan_passes(acceleration: Acceleration, facts: PassFacts) -> PassPlan:
    """The options of :class:`Acceleration` that can run under ``facts`` (the module docstring's rules)."""
    graphs, compiled, notes = acceleration.cuda_graphs, acceleration.compile, []

    def drop(what: str, why: str, quiet: bool = False) -> bool:
        if not quiet:
            notes.append(f"{what} off: {why}")
        return False

    if compiled and facts.compile_failed:
        compiled = drop("torch.compile", "a compiled pass failed earlier in this process", quiet=True)
    if compiled and not facts.cuda and acceleration.auto:
        compiled = drop("torch.compile", "the default compiles on CUDA only", quiet=True)
    if compiled and facts.cuda and not facts.triton:
        compiled = drop("torch.compile", "Triton is not importable")
    if graphs and not facts.cuda:
        graphs = drop("CUDA graphs", "not a CUDA device", quiet=acceleration.auto)
    if not facts.weights_resident and (graphs or compiled) and facts.cuda:
        notes.append("CUDA graphs and torch.compile off: the transformer's weights are not all on the GPU "
                     "(partial / low-VRAM loading)")
        graphs = compiled = False
    if graphs and facts.capture_failed:
        graphs = drop("CUDA graphs", "a capture failed earlier in this process", quiet=True)
    if graphs and compiled and not dispatch.triton_capturable(facts.allocator):
        compiled = drop("torch.compile", f"Inductor's Triton kernels cannot run inside a CUDA graph capture "
                                         f"under the {facts.allocator} allocator (CUDA graphs kept)")
    return PassPlan(graphs, compiled, tuple(notes))


_COMPILED_BLOCK: dict[str, Callable[..., torch.Tensor]] = {}


def compiled_block_forward(backend: str | None = None) -> Callable[..., torch.Tensor]:
    """``torch.compile`` of ``LinearTransformerBlock.forward`` (compiled lazily, shared by every block), called
    with the condition length marked dynamic (one compilation for every prompt and lyric length)."""
    backend = backend or COMPILE_BACKEND
    if backend not in _COMPILED_BLOCK:
        from ..nn.blocks import LinearTransformerBlock

        compiled = torch.compile(LinearTransformerBlock.forward, dynamic=False, backend=backend)

        def forward(block: Any, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor, mask: Any,
                    cross_bias: torch.Tensor, rope: Any, context_rope: Any, *, query_scale: Any) -> torch.Tensor:
            torch._dynamo.mark_dynamic(context, 1)  # [B, S, D]
            torch._dynamo.mark_dynamic(cross_bias, 3)  # [B, H, T, S]
            for table in context_rope:  # [S, head_dim]
                torch._dynamo.mark_dynamic(table, 0)
            return compiled(block, x, temb, context, mask, cross_bias, rope, context_rope, query_scale=query_scale)

        _COMPILED_BLOCK[backend] = forward
    return _COMPILED_BLOCK[backend]


def pad_conditions(states: torch.Tensor, mask: torch.Tensor, multiple: int = CONDITION_BUCKET
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``states`` [B, S, D] and ``mask`` [B, S] padded at the end to a multiple of ``multiple`` tokens with masked
    (mask 0) zero tokens: the cross-attention gives them zero weight, so the pass computes the same velocity."""
    pad = -states.shape[1] % multiple
    if pad == 0:
        return states, mask
    return F.pad(states, (0, 0, 0, pad)), F.pad(mask, (0, pad))


def _facts(transformer: Any, x: torch.Tensor) -> PassFacts:
    resident = isinstance(transformer, torch.nn.Module) and all(p.device == x.device for p in transformer.parameters())
    return PassFacts(cuda=x.is_cuda, weights_resident=resident,
                     allocator=dispatch.allocator_backend() if x.is_cuda else "native",
                     triton=x.is_cuda and dispatch.triton_available(),
                     capture_failed=cuda_graphs.capture_failure() is not None, compile_failed=bool(_COMPILE_FAILURE))


def _recompile_budget() -> Any:
    """Dynamo's per-function recompile limit raised to :data:`RECOMPILE_LIMIT` while a compiled pass runs (the
    option is ``recompile_limit`` in torch 2.6+, ``cache_size_limit`` before)."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    return config.patch(**{name: max(RECOMPILE_LIMIT, getattr(config, name))})


def _note_compile_failure(error: Exception) -> None:
    if not _COMPILE_FAILURE:
        _COMPILE_FAILURE.append(f"{type(error).__name__}: {error}")
        logger.warning("torch.compile of the denoiser failed (%s); denoiser passes run without it for the rest of "
                       "this process", _COMPILE_FAILURE[0])


class Denoiser:
    """``denoiser(x, states, mask, timestep, query_scale)`` -> velocity ``[B, 8, 16, T]``: one transformer pass
    with every frame valid, run as :class:`Acceleration` asks (planned on the first call, see :func:`plan_passes`).

    Args:
        transformer: an :class:`~acestep_core.transformer.AceStepTransformer` (or anything with its ``decode``).
        acceleration: the options; ``None`` = plain batched passes.
    """

    def __init__(self, transformer: Any, acceleration: Acceleration | None = None) -> None:
        self.transformer = transformer
        self.acceleration = acceleration or Acceleration()
        self.plan: PassPlan | None = None

    @property
    def batch_guidance(self) -> bool:
        return self.acceleration.batch_guidance

    def _plan(self, x: torch.Tensor) -> PassPlan:
        if self.plan is None:
            self.plan = plan_passes(self.acceleration, _facts(self.transformer, x))
            for note in self.plan.notes:
                if note not in _NOTES_LOGGED:
                    _NOTES_LOGGED.add(note)
                    logger.info("denoiser: %s", note)
        return self.plan

    def _decode(self, x: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor,
                query_scale: float | torch.Tensor) -> torch.Tensor:
        plan = self.plan
        if plan is not None and plan.compile:
            try:
                with _recompile_budget():
                    return self.transformer.decode(x, None, states, mask, timestep, output_length=x.shape[-1],
                                                   query_scale=query_scale, block_forward=compiled_block_forward())
            except torch.OutOfMemoryError:
                raise
            except Exception as error:
                if x.is_cuda and torch.cuda.is_current_stream_capturing():
                    raise  # a failed capture is handled (and the pass rerun) by cuda_graphs.capture's caller
                _note_compile_failure(error)
                self.plan = replace(plan, compile=False)
        return self.transformer.decode(x, None, states, mask, timestep, output_length=x.shape[-1],
                                       query_scale=query_scale)

    def __call__(self, x: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor,
                 query_scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        timestep = timestep.expand(x.shape[0])
        plan = self._plan(x)
        if plan.graphs or plan.compile:
            states, mask = pad_conditions(states, mask)
        if plan.graphs:
            out = self._graphed(x, states, mask, timestep, query_scale)
            if out is not None:
                return out
            self.plan = replace(self._plan(x), graphs=False)
        return self._decode(x, states, mask, timestep, query_scale)

    def _graphed(self, x: torch.Tensor, states: torch.Tensor, mask: torch.Tensor, timestep: torch.Tensor,
                 query_scale: float | torch.Tensor) -> torch.Tensor | None:
        """The pass replayed from the transformer's graph cache (captured on first use); ``None`` if the capture
        failed (graphs are then off for the process)."""
        cache = cuda_graphs.graph_cache(self.transformer)
        inputs: tuple[torch.Tensor, ...] = (x, states, mask, timestep)
        scale_key: Any = query_scale
        if isinstance(query_scale, torch.Tensor):
            inputs += (query_scale.to(device=x.device, dtype=torch.float32),)
            scale_key = "tensor"
        key = (tuple((tuple(t.shape), t.dtype, t.stride()) for t in inputs), scale_key, self._plan(x).compile)
        graphed = cache.get(key)
        if graphed is None:
            def run(*args: torch.Tensor) -> torch.Tensor:
                scale = args[4] if len(args) > 4 else query_scale
                return self._decode(args[0], args[1], args[2], args[3], scale)

            logger.debug("capturing a CUDA graph for a denoiser pass of shape %s", tuple(x.shape))
            graphed = cuda_graphs.capture(run, inputs, cache.pool)
            if graphed is None:
                return None
            cache.put(key, graphed)
        return graphed(inputs)

"""GPU-only checks of the speed options (opt-in: ``-m gpu``): CUDA graphs under both allocators ComfyUI uses, each
in a process of its own (:mod:`tests.core.gpu_capture_check`), and no recompilation across prompts of one length
in a full ``generate`` with CUDA graphs and torch.compile (Dynamo's counters)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch._dynamo.utils import counters

from acestep_core.kernels import dispatch
from acestep_core.runtime import accel, cuda_graphs
from acestep_core.runtime.accel import Acceleration
from tests.parity import REPO_ROOT, TINY_CHECKPOINT, require_parity

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("allocator", ["native", "cudaMallocAsync"])
def test_cuda_graphs_under_each_allocator(allocator: str) -> None:
    require_parity()
    env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF=f"backend:{allocator}", PYTHONUNBUFFERED="1")
    result = subprocess.run([sys.executable, "-m", "tests.core.gpu_capture_check", allocator], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout[-4000:] + result.stderr[-6000:]
    assert result.returncode == 0 and "CAPTURE OK" in result.stdout, log
    assert result.stderr.count("CUDA graph capture failed") == 1, log  # the forced failure only, logged once
    if allocator == dispatch.ASYNC_ALLOCATOR:
        assert "launched with raw device pointers" in result.stderr, log


def test_no_recompilation_across_five_prompts_of_one_length() -> None:
    """Five prompts of one length with other tags and lyrics (other condition lengths) and seeds, guided (batch 2,
    ERG scales) and unguided (batch 1) steps: the first prompt compiles two graphs, the next four none."""
    require_parity()
    from acestep_core.loading.loader import load_checkpoint
    from acestep_core.sampling.pipeline import GenerationParams, generate

    loaded = load_checkpoint(TINY_CHECKPOINT, device="cuda", dtype=torch.bfloat16)
    torch._dynamo.reset()
    counters.clear()
    graphs = []
    for prompt in range(5):
        # condition lengths 53, 56, 59, 62, 65: every parity and residue mod 8, and two padded buckets
        prompt_ids = torch.randint(2, 100, (1, 12 + prompt), device="cuda")
        lyric_ids = torch.randint(2, 100, (1, 40 + 2 * prompt), device="cuda")
        params = GenerationParams(prompt=f"p{prompt}", lyrics=f"l{prompt}", audio_duration=4.0, infer_step=6,
                                  guidance_interval=0.5, guidance_scale=15.0, cfg_type="apg", use_erg_tag=True,
                                  use_erg_lyric=True, use_erg_diffusion=True, manual_seeds=[prompt])
        result = generate(loaded, params, encode_prompt=lambda _t, i=prompt_ids: (i, torch.ones_like(i)),
                          encode_lyrics=lambda _t, i=lyric_ids: (i, torch.ones_like(i)),
                          acceleration=Acceleration(cuda_graphs=True, compile=True))
        assert torch.isfinite(result.latents).all()
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs == [2] * 5, graphs
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert not accel._COMPILE_FAILURE and cuda_graphs.capture_failure() is None
    cuda_graphs.release_cuda_graphs(loaded.transformer)
    torch._dynamo.reset()

"""Full-size fidelity of the speed options: one denoiser pass with CUDA graphs / torch.compile against the eager pass.

Usage (CUDA machine)::

    python -m bench.fidelity_accel [--frames 646,2583] [--json OUT]

The full-size transformer with seeded random weights (every >=2-D weight N(0, min(0.02, 1/sqrt(fan_in))), biases
N(0, 0.02), other 1-D parameters 1 + N(0, 0.05)) in bf16, its conditions from ``encode`` of random text states
(64 tokens, 48 valid), speaker and 300 lyric ids (280 valid); latents N(0, 1). Per latent length two passes: batch 1
with query scale 1, and the batched guided pass (batch 2, ERG scales ``[1, 0.01]``). Each option's output against
the eager bf16 pass: max |d|, max |d| / max |ref|, ||d|| / ||ref||; the yardstick row is the eager bf16 pass
against the same weights in fp32 (TF32 off), i.e. what bf16 itself costs. The options run under the process's CUDA
allocator (set ``PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync`` for ComfyUI's default; the plan then drops
compile inside graphs, see ``acestep_core.runtime.accel``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from acestep_core.config import TransformerConfig
from acestep_core.runtime.accel import Acceleration, Denoiser, release_cuda_graphs
from acestep_core.transformer import ERG_TEMPERATURE, AceStepTransformer

OPTIONS = {"graphs": Acceleration(cuda_graphs=True), "compile": Acceleration(compile=True),
           "graphs+compile": Acceleration(cuda_graphs=True, compile=True), "fastest": Acceleration.fastest()}


@torch.no_grad()
def random_transformer(device: torch.device, seed: int = 0) -> AceStepTransformer:
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.device("meta"):
        model = AceStepTransformer(TransformerConfig())
    model = model.to_empty(device=device)
    for name, p in model.named_parameters():
        if p.ndim >= 2:
            p.normal_(0.0, min(0.02, 1.0 / math.sqrt(p[0].numel())), generator=gen)
        elif name.endswith("bias"):
            p.normal_(0.0, 0.02, generator=gen)
        else:
            p.normal_(1.0, 0.05, generator=gen)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def conditions(model: AceStepTransformer, device: torch.device, dtype: torch.dtype, seed: int = 1) -> Any:
    gen = torch.Generator(device=device).manual_seed(seed)
    cfg = model.cfg
    text = torch.randn(2, 64, cfg.text_embedding_dim, generator=gen, device=device, dtype=dtype)
    text_mask = torch.zeros(2, 64, device=device)
    text_mask[:, :48] = 1
    speaker = torch.randn(2, cfg.speaker_embedding_dim, generator=gen, device=device, dtype=dtype)
    lyrics = torch.randint(2, cfg.lyric_encoder_vocab_size, (2, 300), generator=gen, device=device)
    lyric_mask = torch.zeros(2, 300, device=device, dtype=torch.long)
    lyric_mask[:, :280] = 1
    return model.encode(text, text_mask, speaker, lyrics, lyric_mask)


def compare(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    d = (out.float() - ref.float())
    return {"max_abs": float(d.abs().max()), "max_over_max": float(d.abs().max() / ref.float().abs().max()),
            "rel_l2": float(d.norm() / ref.float().norm())}


@torch.no_grad()
def passes(frames: int, states: torch.Tensor, mask: torch.Tensor, device: torch.device, dtype: torch.dtype) -> list:
    gen = torch.Generator(device=device).manual_seed(frames)
    x = torch.randn(1, 8, 16, frames, generator=gen, device=device).to(dtype)
    t = torch.tensor([500.0], device=device)
    scales = torch.tensor([1.0, ERG_TEMPERATURE], device=device)
    return [("batch 1", (x, states[:1], mask[:1], t)), ("guided batch 2", (torch.cat([x, x]), states, mask, t, scales))]


@torch.no_grad()
def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m bench.fidelity_accel", description=__doc__.splitlines()[0])
    p.add_argument("--frames", default="646,2583")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    device, rows = torch.device("cuda"), []
    model32 = random_transformer(device)
    model = random_transformer(device).to(torch.bfloat16)
    states, mask = conditions(model, device, torch.bfloat16)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    for frames in (int(f) for f in args.frames.split(",")):
        for label, inputs in passes(frames, states, mask, device, torch.bfloat16):
            eager = Denoiser(model)(*inputs)
            fp32_inputs = tuple(t.float() if t.is_floating_point() else t for t in inputs)
            yard = Denoiser(model32)(*fp32_inputs)
            rows.append({"frames": frames, "pass": label, "option": "yardstick: eager bf16 vs fp32",
                         **compare(eager, yard)})
            for name, acceleration in OPTIONS.items():
                denoiser = Denoiser(model, acceleration)
                denoiser(*inputs)  # compile / capture
                rows.append({"frames": frames, "pass": label, "option": name, "plan": str(denoiser.plan),
                             **compare(denoiser(*inputs), eager)})
            release_cuda_graphs(model)
    print(f"allocator {torch.cuda.get_allocator_backend()}, {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("| frames | pass | option | max abs | max/max | rel L2 |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frames']} | {r['pass']} | {r['option']} | {r['max_abs']:.3g} | {r['max_over_max']:.3g} | "
              f"{r['rel_l2']:.3g} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()

"""Quality cost of fp8 transformer weights (``acestep_core.runtime.quant.quantize_fp8_``) against the same weights in
bf16, on fixed inputs.

Usage::

    python -m bench.fp8_quality [--device cuda] [--dtype bf16] [--duration 60] [--steps 27] [--seed 0]
        [--checkpoint PATH] [--tiny] [--json OUT]

Weights: random full-size components (or the tiny ones with ``--tiny``) built as ``bench/bench_generate.py``
does (weights N(0, 0.02), biases 0, norm weights 1), or a real checkpoint with ``--checkpoint``. Then, once with
the bf16 weights and once after quantising the transformer in place:

(a) one transformer ``decode`` pass (the velocity) on fixed random latents ``[1, 8, 16, T]`` at ``t = 500``,
    conditions from ``encode`` on the fake prompt / lyric ids (computed once: ``encode`` runs no fp8 layer);
(b) a full ``generate`` with the app defaults (euler, APG 15, guidance interval 0.5, ERG on), ``--steps``
    steps, one fixed seed, ``--duration`` seconds: the final latents.

Printed per quantity: max |a - b| and the relative difference ||a - b|| / ||b|| (b = bf16), plus the
transformer's tensor bytes before / after (``QuantReport``). With random weights the numbers measure the
numerical perturbation, not audio quality; ``--checkpoint`` gives the real-weight numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from acestep_core.config import MODEL_SPECS
from acestep_core.runtime.quant import quantize_fp8_
from acestep_core.sampling.pipeline import GenerationParams, generate
from acestep_core.timing import seconds_to_frames
from bench.bench_generate import DTYPES, GUIDANCE, Models, checkpoint_models, random_models, tiny_spec

LOG = logging.getLogger("bench.fp8")
TIMESTEP = 500.0


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """``max_abs`` = max |a - b|, ``rel`` = ||a - b|| / ||b|| (float32; b is the reference)."""
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    diff = a - b
    return {"max_abs": float(diff.abs().max()), "rel": float(diff.norm() / b.norm().clamp_min(1e-30)),
            "ref_max_abs": float(b.abs().max())}


@torch.no_grad()
def decode_inputs(models: Models, frames: int, device: torch.device, dtype: torch.dtype, seed: int
                  ) -> dict[str, Any]:
    """Fixed latents ``[1, 8, 16, frames]`` and conditions from ``encode`` on the fake token ids."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    latents = torch.randn(1, 8, 16, frames, generator=gen).to(device, dtype)
    ids, mask = models.encode_prompt("fp8")
    text = models.text_encoder(ids.to(device), mask.to(device)).to(dtype)
    lyric_ids, lyric_mask = models.encode_lyrics("fp8")
    states, states_mask = models.transformer.encode(text, mask.to(device), None, lyric_ids.to(device),
                                                    lyric_mask.to(device))
    return {"hidden_states": latents, "attention_mask": torch.ones(1, frames, device=device),
            "encoder_hidden_states": states, "encoder_hidden_mask": states_mask, "timestep": TIMESTEP}


@torch.no_grad()
def velocity(models: Models, inputs: dict[str, Any]) -> torch.Tensor:
    return models.transformer.decode(**inputs)


def final_latents(models: Models, params: GenerationParams, device: torch.device) -> torch.Tensor:
    return generate(models, params, encode_prompt=models.encode_prompt, encode_lyrics=models.encode_lyrics,
                    device=device).latents


def measure(models: Models, duration: float, steps: int, seed: int, device: torch.device,
            dtype: torch.dtype) -> dict[str, Any]:
    """Velocity and final latents in bf16, then in fp8 (the transformer is quantised in place)."""
    params = GenerationParams(prompt="fp8", lyrics="fp8", audio_duration=duration, infer_step=steps,
                              manual_seeds=[seed], **GUIDANCE["app"])
    inputs = decode_inputs(models, seconds_to_frames(duration), device, dtype, seed)
    LOG.info("reference run (%s weights)", dtype)
    ref_velocity, ref_latents = velocity(models, inputs), final_latents(models, params, device)
    report = quantize_fp8_(models.transformer)
    LOG.info("fp8 run")
    fp8_velocity, fp8_latents = velocity(models, inputs), final_latents(models, params, device)
    return {"velocity": compare(fp8_velocity, ref_velocity), "latents": compare(fp8_latents, ref_latents),
            "transformer_bytes_before": report.bytes_before, "transformer_bytes_after": report.bytes_after,
            "quantized_layers": len(report.layers), "quantized_params": report.quantized_params,
            "finite": bool(torch.isfinite(fp8_latents).all() and torch.isfinite(ref_latents).all())}


def format_result(result: dict[str, Any], env: dict[str, Any]) -> str:
    gib = 2**30
    lines = [f"device {env['device']}, torch {env['torch']}, {env['dtype']}, weights: {env['weights']}, "
             f"{env['duration_s']} s, {env['steps']} steps, seed {env['seed']}",
             "| quantity | max abs diff | rel diff norm(a-b)/norm(b) | max abs ref |", "|---|---|---|---|"]
    for name in ("velocity", "latents"):
        r = result[name]
        lines.append(f"| {name} | {r['max_abs']:.4g} | {r['rel']:.4g} | {r['ref_max_abs']:.4g} |")
    lines.append(f"transformer tensors: {result['transformer_bytes_before'] / gib:.3f} GiB -> "
                 f"{result['transformer_bytes_after'] / gib:.3f} GiB ({result['quantized_layers']} layers, "
                 f"{result['quantized_params'] / 1e6:.1f} M weights in fp8)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fp8_quality", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="checkpoint folder or single file (default: random weights)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES), help="reference / activation dtype")
    p.add_argument("--duration", type=float, default=60.0, help="seconds (also sets T of the decode pass)")
    p.add_argument("--steps", type=int, default=27)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="tiny configs (CPU smoke test)")
    p.add_argument("--json", default=None, help="write the environment and result here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if args.checkpoint:
        models = checkpoint_models(args.checkpoint, device, dtype)
    else:
        models = random_models(tiny_spec() if args.tiny else MODEL_SPECS["ace-step-v1-3.5b"], device, dtype,
                               seed=args.seed)
    result = measure(models, args.duration, args.steps, args.seed, device, dtype)
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
           "torch": torch.__version__, "dtype": args.dtype, "duration_s": args.duration, "steps": args.steps,
           "seed": args.seed, "weights": args.checkpoint or ("random tiny" if args.tiny else "random full-size")}
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "result": result}, indent=2), encoding="utf-8")
    print(format_result(result, env))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

"""A full-size ACE-Step v1 checkpoint with random weights in ComfyUI's single-file layout, built on the GPU.

Usage::

    python -m bench.comfy_checkpoint OUT.safetensors --spiece SENTENCEPIECE.model [--device cuda] [--seed 0]

Every tensor of the released files (transformer 874, DCAE 192, vocoder 713 including its 2 buffers, UMT5 122) under
ComfyUI's prefixes (``model.diffusion_model.``, ``vae.dcae.``, ``vae.vocoder.`` with the weight-norm pairs named
``parametrizations.weight.original0/1`` as ComfyUI saves them, ``text_encoders.umt5base.transformer.``), bf16, plus
the UMT5 SentencePiece model as ``text_encoders.spiece_model`` (any valid model: the token ids only need to be in
range). Values: weights N(0, 0.02), biases 0, other 1-D parameters 1, weight-norm magnitudes ||v|| (so every
effective convolution weight is N(0, 0.02) too), buffers 0. Speed does not depend on the values; ComfyUI's native
loader and this pack's loader both read the file. About 7.7 GB; a few seconds to fill, the rest is the disk.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from acestep_core.config import MODEL_SPECS, ModelSpec
from acestep_core.loading.components import COMFY_SPIECE_KEY, DCAE, TEXT_ENCODER, TRANSFORMER, VOCODER

LOG = logging.getLogger("bench")
COMFY_WEIGHT_NORM = ((r"\.weight_g$", ".parametrizations.weight.original0"),
                     (r"\.weight_v$", ".parametrizations.weight.original1"))


@torch.no_grad()
def _random_state(module: torch.nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``module``'s state dict (official key names) filled by the rule of the module docstring."""
    state = module.state_dict(keep_vars=False)
    for name, tensor in state.items():
        if name.endswith("weight_g"):
            continue
        if name in dict(module.named_buffers()):
            tensor.zero_()
        elif tensor.ndim >= 2:
            tensor.normal_(0.0, 0.02, generator=generator)
        elif name.endswith("bias"):
            tensor.zero_()
        else:
            tensor.fill_(1.0)
    for name, tensor in state.items():
        if name.endswith("weight_g"):
            tensor.copy_(torch.linalg.vector_norm(state[name[:-1] + "v"].flatten(1).float(), dim=1)
                         .reshape(tensor.shape))
    return state


def _on_device(build: type, cfg: object, device: torch.device, dtype: torch.dtype, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        module = build(cfg, dtype=dtype, **kwargs)
    return module.to_empty(device=device)


def single_file_tensors(spec: ModelSpec, spiece: bytes, device: torch.device, seed: int = 0,
                        dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    """Every tensor of the single file, on ``device``."""
    from acestep_core.dcae import MusicDCAE
    from acestep_core.text.encoder import UMT5Encoder
    from acestep_core.transformer import AceStepTransformer
    from acestep_core.vocoder.model import Vocoder

    generator = torch.Generator(device=device).manual_seed(seed)
    parts = ((TRANSFORMER, AceStepTransformer, spec.transformer, {"keep_unused": True}),
             (DCAE, MusicDCAE, spec.dcae, {}), (VOCODER, Vocoder, spec.vocoder, {}),
             (TEXT_ENCODER, UMT5Encoder, spec.umt5, {}))
    tensors: dict[str, torch.Tensor] = {}
    for component, build, cfg, kwargs in parts:
        module = _on_device(build, cfg, device, dtype, **kwargs)
        for key, tensor in _random_state(module, generator).items():
            if component is VOCODER:
                for pattern, repl in COMFY_WEIGHT_NORM:
                    key = re.sub(pattern, repl, key)
            tensors[component.comfy_prefix + key] = tensor.to(dtype)
        del module
    tensors[COMFY_SPIECE_KEY] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8)
    return tensors


def build_single_file(path: Path, spiece_path: Path, device: torch.device, seed: int = 0) -> Path:
    """Write the file (skipped when it exists); returns ``path``."""
    from safetensors.torch import save_file

    if path.is_file():
        LOG.info("checkpoint %s exists", path)
        return path
    started = time.perf_counter()
    tensors = single_file_tensors(MODEL_SPECS["ace-step-v1-3.5b"], spiece_path.read_bytes(), device, seed)
    tensors = {key: value.cpu() for key, value in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path.with_suffix(".partial")))
    path.with_suffix(".partial").rename(path)
    LOG.info("built %s: %d tensors, %.2f GB in %.1f s", path, len(tensors),
             sum(t.numel() * t.element_size() for t in tensors.values()) / 1e9, time.perf_counter() - started)
    return path


def main(argv: Sequence[str] | None = None) -> Path:
    p = argparse.ArgumentParser(prog="python -m bench.comfy_checkpoint", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--spiece", type=Path, required=True, help="a SentencePiece model file (UMT5 tokenizer)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    return build_single_file(args.out, args.spiece, torch.device(args.device), args.seed)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    main()

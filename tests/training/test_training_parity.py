"""The original LoRA trainer's optimisation steps (``training/steps.safetensors``), with the recorded draws
injected: conditioning, noising, model output, losses, grad norm, every LoRA gradient and every LoRA tensor after
each step, and the saved LoRA. Every path, size and step count comes from ``training/cases.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from acestep_core.loading.loader import load_checkpoint
from acestep_core.text.prompt_tokenizer import PromptTokenizer
from acestep_core.training.lora import LoraConfig, attach_lora
from acestep_core.training.optim import OptimConfig, make_optimizer
from acestep_core.training.step import CFG_TEXT_DROP, Conditions, StepDraws, step_loss
from tests.parity import PARITY_DIR, assert_golden, load_golden, require_parity_module

require_parity_module()

TRAINING = PARITY_DIR / "training"
CASES: dict[str, Any] = json.loads((TRAINING / "cases.json").read_text(encoding="utf-8"))
STEPS = [entry["step"] for entry in CASES["steps"]]
LOSS_TOL = dict(atol=1e-5, rtol=1e-5)  # README 7.3: losses and grad norm
GRAD_TOL = dict(atol=1e-5, rtol=1e-3)  # gradients
LORA_ATOL = 2e-7  # LoRA tensors after a step


def _close(got: torch.Tensor, want: torch.Tensor, atol: float, rtol: float, name: str) -> None:
    err = (got.detach().double() - want.double()).abs()
    bound = atol + rtol * want.double().abs()
    assert bool((err <= bound).all()), f"{name}: max abs err {float(err.max()):.3e} (atol {atol}, rtol {rtol})"


def _golden_lora_name(peft_name: str) -> str:
    """``...to_q.lora_A.golden_lora.weight`` (PEFT parameter name) -> ``...to_q.lora_A.weight`` (file layout)."""
    return peft_name.replace(f".{CASES['hparams']['adapter_name']}.", ".")


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    checkpoint = load_checkpoint(PARITY_DIR / CASES["checkpoint"], repa_heads=True)
    transformer = checkpoint.transformer
    lora_cfg = CASES["lora_config"]
    config = LoraConfig(r=lora_cfg["r"], lora_alpha=lora_cfg["lora_alpha"],
                        target_modules=tuple(lora_cfg["target_modules"]))
    adapter = attach_lora(transformer, config, init_from=TRAINING / "lora_init")
    for p in adapter.parameters():
        p.requires_grad_(True)
    hp = CASES["hparams"]
    optim = OptimConfig(learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"],
                        warmup_steps=hp["warmup_steps"])
    optimizer, scheduler = make_optimizer(adapter.parameters(), optim, hp["max_steps"])
    return dict(checkpoint=checkpoint, transformer=transformer, adapter=adapter, optimizer=optimizer,
                scheduler=scheduler, optim=optim, golden=load_golden("training/steps.safetensors"))


def _recorded_text_states(golden: dict[str, torch.Tensor], batch: int) -> list[torch.Tensor | None]:
    """Each item's UMT5 states as recorded, from a step whose CFG draw kept them (``None``: dropped every step)."""
    found: list[torch.Tensor | None] = [None] * batch
    for step in STEPS:
        kept = golden[f"step{step}.draw.cfg_text_uniform"] >= CFG_TEXT_DROP
        for item in range(batch):
            if found[item] is None and bool(kept[item]):
                found[item] = golden[f"step{step}.mid.encoder_text_hidden_states"][item]
    return found


def _conditions(setup: dict[str, Any]) -> Conditions:
    """Our UMT5 states, checked against the recorded ones; the steps then run on the recorded states, so they
    test the training arithmetic and not the text encoder's CPU rounding (its own goldens test that)."""
    checkpoint, golden = setup["checkpoint"], setup["golden"]
    tokens = PromptTokenizer.from_source(checkpoint.tokenizer)(CASES["batch"]["prompts"])
    with torch.no_grad():
        states = checkpoint.text_encoder(tokens.input_ids, tokens.attention_mask)
    recorded = _recorded_text_states(golden, states.shape[0])
    assert any(r is not None for r in recorded), "every item's text was dropped at every step: nothing to check"
    for item, want in enumerate(recorded):
        if want is not None:
            assert_golden(states[item], want, "pipeline_latents_and_conditioning", f"training:text_states[{item}]")
            states[item] = want
    return Conditions(text_states=states, text_mask=tokens.attention_mask, speaker=golden["in.speaker_embs"],
                      lyric_ids=golden["in.lyric_token_ids"], lyric_mask=golden["in.lyric_masks"])


def _draws(golden: dict[str, torch.Tensor], step: int) -> StepDraws:
    d = f"step{step}.draw."
    return StepDraws(cfg_text_uniform=golden[d + "cfg_text_uniform"],
                     cfg_speaker_uniform=golden[d + "cfg_speaker_uniform"],
                     cfg_lyric_uniform=golden[d + "cfg_lyric_uniform"], noise=golden[d + "noise"],
                     timestep_normal=golden[d + "timestep_normal"])


def _ssl(golden: dict[str, torch.Tensor], names: tuple[str, ...], batch: int) -> dict[str, list[torch.Tensor]]:
    return {name: [golden[f"in.ssl.{name}.{i}"] for i in range(batch)] for name in names}


def test_training_steps_match_the_original(setup: dict[str, Any]) -> None:
    golden, transformer, adapter = setup["golden"], setup["transformer"], setup["adapter"]
    optimizer, scheduler = setup["optimizer"], setup["scheduler"]
    batch = len(CASES["batch"]["keys"])
    ssl = _ssl(golden, transformer.cfg.ssl_names, batch)
    conditions = _conditions(setup)
    assert torch.equal(conditions.text_mask, golden[f"step{STEPS[0]}.mid.text_attention_mask"])
    params = dict(adapter.module.named_parameters())
    by_file_name = {f"{name}.lora_{ab}.weight": getattr(pair, f"lora_{ab}").weight
                    for name, pair in adapter.pairs() for ab in "AB"}
    assert len(by_file_name) == CASES["lora_after_keys"] and len(params) == len(by_file_name)
    for entry in CASES["steps"]:
        k = entry["step"]
        latents = golden[f"step{k}.mid.target_latents"]
        out = step_loss(transformer, latents, conditions, _draws(golden, k), ssl_features=ssl,
                        ssl_coeff=CASES["hparams"]["ssl_coeff"], shift=CASES["hparams"]["shift"],
                        checkpoint_blocks=True)
        mid = f"step{k}.mid."
        for name, got in (("lyric_token_ids", out.conditions.lyric_ids), ("lyric_mask", out.conditions.lyric_mask)):
            assert torch.equal(got, golden[mid + name]), name
        for name, got in (("encoder_text_hidden_states", out.conditions.text_states),
                          ("speaker_embds", out.conditions.speaker), ("timesteps", out.timesteps),
                          ("noisy_latents", out.noisy_latents)):
            assert_golden(got, golden[mid + name], "pipeline_latents_and_conditioning", f"step{k}:{name}")
        assert_golden(out.model_output, golden[mid + "model_output"], "pipeline_model_outputs", f"step{k}:output")
        _close(out.total, golden[f"step{k}.out.loss"].reshape(()), **LOSS_TOL, name=f"step{k}:loss")
        _close(out.denoising, torch.tensor(entry["denoising_loss"]), **LOSS_TOL, name=f"step{k}:denoising")
        for teacher, value in entry["proj_losses"].items():
            _close(out.repa[teacher], torch.tensor(value), **LOSS_TOL, name=f"step{k}:{teacher}")
        assert scheduler.get_last_lr()[0] == pytest.approx(entry["lr"], rel=0, abs=1e-12)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        norm = torch.nn.utils.clip_grad_norm_(adapter.parameters(), setup["optim"].grad_clip_norm)
        _close(norm, golden[f"step{k}.out.grad_norm"].reshape(()), **LOSS_TOL, name=f"step{k}:grad_norm")
        # The recorded gradients are the ones the optimiser saw, i.e. after clip_grad_norm_ (every recorded
        # gradient is ours times exactly 0.5 / grad_norm; README 7.3 says "before clipping").
        grad_keys = [key for key in golden if key.startswith(f"step{k}.grad.")]
        assert len(grad_keys) == len(by_file_name)
        for key in grad_keys:
            name = _golden_lora_name(key.removeprefix(f"step{k}.grad."))
            _close(by_file_name[name].grad, golden[key], **GRAD_TOL, name=f"step{k}:grad:{name}")
        optimizer.step()
        scheduler.step()
        lora_keys = [key for key in golden if key.startswith(f"step{k}.lora.")]
        assert len(lora_keys) == len(by_file_name)
        for key in lora_keys:
            name = key.removeprefix(f"step{k}.lora.")
            _close(by_file_name[name], golden[key], atol=LORA_ATOL, rtol=0.0, name=f"step{k}:lora:{name}")


def test_saved_lora_has_the_original_layout(setup: dict[str, Any], tmp_path: Path) -> None:
    """Runs after the steps (module order): the adapter saved as the original's save_lora_adapter output."""
    from acestep_core.training.save import save_lora

    folder = save_lora(setup["adapter"], tmp_path / "lora")
    ours = load_file(str(folder / "pytorch_lora_weights.safetensors"))
    theirs = load_file(str(TRAINING / "lora_after" / "pytorch_lora_weights.safetensors"))
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        _close(ours[key], value, atol=LORA_ATOL, rtol=0.0, name=f"lora_after:{key}")

"""Run the pack's nodes in-process against a real ComfyUI checkout (ModelPatcher, comfy.ops.manual_cast,
folder_paths, ProgressBar, interrupt). Usage: ``python comfy_smoke.py COMFYUI_ROOT PACK_DIR CHECKPOINT VOCAB OUT``
with ComfyUI's Python environment; prints ``SMOKE OK`` at the end. Driven by ``test_comfy_adapter.py``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys


def _import_pack(pack_dir: str) -> str:
    """Import the pack as ComfyUI does (a package named after its folder, pack root not on sys.path)."""
    spec = importlib.util.spec_from_file_location("custom_nodes.acestep_pack", os.path.join(pack_dir, "__init__.py"),
                                                  submodule_search_locations=[pack_dir])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert len(module.NODE_CLASS_MAPPINGS) == 15, module.NODE_CLASS_MAPPINGS  # 12 + the three training nodes
    return spec.name + ".nodes"


def main(comfyui_dir: str, pack_dir: str, checkpoint: str, vocab: str, out_dir: str) -> None:
    sys.path.insert(0, comfyui_dir)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    import comfy.cli_args

    comfy.cli_args.args.cpu = True
    import torch

    torch.set_num_threads(1)
    import comfy.model_management as mm
    import folder_paths

    folder_paths.set_output_directory(out_dir)
    models = os.path.join(out_dir, "_models")
    os.makedirs(models)
    os.symlink(checkpoint, os.path.join(models, "tiny"))
    folder_paths.add_model_folder_path("ace_step", models)  # as an extra_model_paths.yaml entry would
    pkg = _import_pack(pack_dir)
    adapter = importlib.import_module(pkg + ".comfy_adapter")
    loaders, cond, latent, sampling, audio = (importlib.import_module(f"{pkg}.{m}") for m in
                                              ("loaders", "conditioning", "latent", "sampling", "audio"))
    assert adapter.comfy_available() and adapter.model_ops() is comfy.ops.manual_cast
    assert "ace_step/tiny" in loaders.list_checkpoints()
    (model,) = loaders.AceStepV1CheckpointLoader().load("ace_step/tiny", "auto", "")  # ComfyUI's bundled vocab
    assert vocab
    assert type(model.transformer.patcher).__name__ == "ModelPatcher"
    c = cond.AceStepV1TextEncode().encode(model, "pop", "[verse]\nla la la")["result"][0]
    (empty,) = latent.AceStepV1EmptyLatent().build(2.0, 1)
    args = dict(seed=1, steps=2, guidance_scale=15.0, scheduler="euler", cfg_type="apg", omega_scale=10.0,
                retake_variance=0.0, audio2audio_strength=0.5, unique_id="7")
    (out,) = sampling.AceStepV1Sampler().sample(model, c, empty, **args)
    assert list(out["samples"].shape) == [1, 8, 16, 21]
    (wave,) = audio.AceStepV1LatentToAudio().decode(model, out, "48000", "off")
    (src,) = audio.AceStepV1AudioToLatent().encode(model, wave)
    (marked,) = latent.AceStepV1RepaintWindow().mark(src, 0.5, 1.5, 0.5)["result"]
    sampling.AceStepV1Sampler().sample(model, c, marked, **args)
    saved = audio.AceStepV1SaveAudio().save(wave, "audio/smoke", "flac", prompt={}, extra_pnginfo={"workflow": {}})
    assert os.path.isfile(os.path.join(out_dir, "audio", saved["ui"]["audio"][0]["filename"]))
    _check_lora(pkg, model, c, empty, args, models, checkpoint)
    _check_unload_releases_graphs(model)
    mm.interrupt_current_processing(True)
    try:
        sampling.AceStepV1Sampler().sample(model, c, empty, **args)
        raise AssertionError("the sampler ignored the interrupt")
    except mm.InterruptProcessingException:
        pass
    assert not mm.processing_interrupted()
    print("SMOKE OK")


def _check_lora(pkg: str, model, c, empty, args, models: str, checkpoint: str) -> None:
    """LoRA loader through ModelPatcher patches: weights as the reference merges them while patched, the plain
    model bit-identical again after switching back, the input model untouched."""
    import torch
    from safetensors.torch import load_file

    lora_dir = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "lora")
    os.symlink(os.path.join(lora_dir, "lora_r4_a8"), os.path.join(models, "lora_r4_a8"))
    lora = importlib.import_module(pkg + ".lora")
    adapter = importlib.import_module(pkg + ".comfy_adapter")
    sampling = importlib.import_module(pkg + ".sampling")
    assert "ace_step/lora_r4_a8" in lora.list_loras()
    plain = sampling.AceStepV1Sampler().sample(model, c, empty, **args)[0]["samples"]
    (patched_model,) = lora.AceStepV1LoraLoader().apply(model, "ace_step/lora_r4_a8", 0.5)["result"]
    assert not model.transformer.patcher.patches and len(patched_model.transformer.patcher.patches) == 211
    adapter.load_models([patched_model.transformer])
    golden = load_file(os.path.join(lora_dir, "effective_weights.safetensors"))
    key = "transformer_blocks.0.attn.to_q.weight"
    weight = patched_model.transformer.module.state_dict()[key].float().cpu()
    assert torch.allclose(weight, golden["lora_r4_a8.w1.0." + key], atol=1e-6), key
    patched = sampling.AceStepV1Sampler().sample(patched_model, c, empty, **args)[0]["samples"]
    assert not torch.allclose(patched, plain, atol=1e-3)
    again = sampling.AceStepV1Sampler().sample(model, c, empty, **args)[0]["samples"]
    assert torch.equal(again, plain), float((again - plain).abs().max())
    print("LORA OK")


def _check_unload_releases_graphs(model) -> None:
    """CUDA graphs stay cached across prompts while ComfyUI keeps the transformer; its unload (ModelPatcher detach,
    also of a clone) releases them."""
    from acestep_core.runtime import cuda_graphs

    module = model.transformer.module
    for patcher in (model.transformer.patcher, model.transformer.patcher.clone()):
        cuda_graphs._CACHES[module] = cuda_graphs.GraphCache(cuda_graphs.weights_fingerprint(module), None)
        patcher.detach()
        assert module not in cuda_graphs._CACHES
    print("UNLOAD OK")


if __name__ == "__main__":
    main(*sys.argv[1:6])

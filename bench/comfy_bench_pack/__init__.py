"""Measurement-only ComfyUI custom nodes for ``bench/bench_comfy.py`` (linked into ``custom_nodes`` by the bench,
never by users; not part of the pack).

* ``AceStepBenchSaveWAV``: AUDIO -> 16-bit PCM WAV with the standard library (ComfyUI's own save nodes need PyAV,
  which some GPU machines lack); the native route saves through it.
* ``AceStepBenchSink``: an output node that takes anything (a loader's output): lets the bench load a checkpoint
  in a prompt of its own, so a first song's time excludes reading the file.
* Routes: ``POST /acestep_bench/reset_peak`` (CUDA peak statistics), ``GET /acestep_bench/mem`` (allocated, peak,
  reserved bytes and the allocator backend), ``GET /acestep_bench/dynamo`` (torch._dynamo counters: compiled
  graphs, graph breaks), all of the server process.
"""

from __future__ import annotations

import os
import wave

import folder_paths
import numpy as np
import torch
from aiohttp import web
from server import PromptServer


class AceStepBenchSaveWAV:
    CATEGORY = "bench"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI API name
        return {"required": {"audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "bench/native"})}}

    def save(self, audio, filename_prefix):
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory())
        waveform, rate = audio["waveform"], int(audio["sample_rate"])
        results = []
        for item in range(waveform.shape[0]):
            pcm = (waveform[item].float().clamp(-1, 1).cpu().numpy().T * 32767.0).astype(np.int16)
            file = f"{name}_{counter + item:05}_.wav"
            with wave.open(os.path.join(folder, file), "wb") as out:
                out.setnchannels(pcm.shape[1])
                out.setsampwidth(2)
                out.setframerate(rate)
                out.writeframes(pcm.tobytes())
            results.append({"filename": file, "subfolder": subfolder, "type": "output"})
        return {"ui": {"audio": results}}


class AceStepBenchSink:
    """Takes a loader's output; ``to_gpu``: also loads its models onto the GPU (ComfyUI's ``load_models_gpu``),
    so the next song starts with its weights resident, like every later song."""

    CATEGORY = "bench"
    RETURN_TYPES = ()
    FUNCTION = "take"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI API name
        return {"required": {"value": ("*",), "to_gpu": ("BOOLEAN", {"default": True})}}

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):  # noqa: N802 - any input type is fine
        return True

    def take(self, value, to_gpu=True):
        if to_gpu:
            import comfy.model_management as mm

            handles = [getattr(value, name, None) for name in ("transformer", "text_encoder", "codec")]
            patchers = [h.patcher for h in handles if h is not None] or [value]
            mm.load_models_gpu(patchers)
        return {}


routes = PromptServer.instance.routes


@routes.post("/acestep_bench/reset_peak")
async def reset_peak(request):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    return web.json_response({})


@routes.get("/acestep_bench/mem")
async def memory(request):
    if not torch.cuda.is_available():
        return web.json_response({"backend": "cpu"})
    return web.json_response({"allocated": torch.cuda.memory_allocated(), "peak": torch.cuda.max_memory_allocated(),
                              "reserved": torch.cuda.memory_reserved(),
                              "backend": torch.cuda.get_allocator_backend()})


@routes.get("/acestep_bench/dynamo")
async def dynamo(request):
    from torch._dynamo.utils import compile_times, counters

    return web.json_response({"unique_graphs": counters["stats"].get("unique_graphs", 0),
                              "graph_breaks": sum(counters["graph_break"].values()),
                              "inductor": dict(counters["inductor"]), "aot_autograd": dict(counters["aot_autograd"]),
                              "compile_times": compile_times(repr="str", aggregate=True)})


NODE_CLASS_MAPPINGS = {"AceStepBenchSaveWAV": AceStepBenchSaveWAV, "AceStepBenchSink": AceStepBenchSink}

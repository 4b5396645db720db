"""The one door to ComfyUI services, with a standalone fallback (the only module importing ComfyUI).

Inside ComfyUI (``comfy.model_management`` and ``folder_paths`` importable):

* devices / dtypes from ``comfy.model_management`` (``get_torch_device``, ``unet_offload_device``,
  ``intermediate_device``, ``unet_dtype``); layers are built with ``comfy.ops.manual_cast``;
* every big module is a ``comfy.model_patcher.ModelPatcher``, loaded with ``load_models_gpu`` before use
  (the codec with ``force_full_load``, like ComfyUI's own audio VAE) and left to ComfyUI's memory manager after;
* progress through ``comfy.utils.ProgressBar``; interrupts through ``processing_interrupted`` /
  ``throw_exception_if_processing_interrupted``;
* model folders through ``folder_paths`` (``checkpoints``, ``loras`` plus a registered ``ace_step`` type, so
  ``extra_model_paths.yaml`` entries work); outputs in ``folder_paths.get_output_directory()``;
* LoRAs as ``ModelPatcher.add_patches`` weight-adapter patches on a clone (:func:`add_loras`);
* the frontend through ``server.PromptServer``: websocket events (:func:`send_event`) and JSON routes
  (:func:`add_json_route`), both no-ops outside ComfyUI.

Standalone (no ComfyUI, or ``ACESTEP_NODES_STANDALONE=1``): cuda if available else cpu, ``torch.nn`` layers, a
plain :class:`Holder` instead of ModelPatcher (moved to the device before use, back after; LoRAs merged into the
shared module on load, restored bit-exactly when another holder loads), progress to
``logging``, an interrupt flag (:func:`request_interrupt`), folders from ``$ACESTEP_MODELS_DIR``
(``checkpoints/``, ``loras/`` and ``ace_step/`` inside; default ``~/.cache/acestep/models``) and ``$ACESTEP_OUTPUT_DIR``
(default ``<tmp>/acestep_output``). Nothing is imported or registered at module import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

ACE_STEP_FOLDER = "ace_step"
CHECKPOINTS_FOLDER = "checkpoints"
STANDALONE_ENV = "ACESTEP_NODES_STANDALONE"
LORAS_FOLDER = "loras"
LORA_STATE_ATTR = "_acestep_merged_loras"  # standalone: (LoraSpecs, LoraMerge) merged into a shared module
OUTPUT_DIR_ENV = "ACESTEP_OUTPUT_DIR"
_interrupt = threading.Event()


@cache
def _comfy() -> Any:
    """``(model_management, folder_paths)`` or ``None`` outside ComfyUI (imported on first use only)."""
    try:
        import comfy.model_management as mm
        import folder_paths
    except Exception:  # noqa: BLE001 - any failure means "not inside ComfyUI"
        return None
    return mm, folder_paths


def comfy_available() -> bool:
    """True inside a ComfyUI process (unless ``$ACESTEP_NODES_STANDALONE`` is set)."""
    if os.environ.get(STANDALONE_ENV, "") not in ("", "0"):
        return False
    return _comfy() is not None


# ----------------------------------------------------------------------------------------- devices, dtypes
def load_device() -> torch.device:
    """Where models compute."""
    if comfy_available():
        return _comfy()[0].get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    """Where idle models live (and where weights are first loaded)."""
    if comfy_available():
        return _comfy()[0].unet_offload_device()
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    """Where node outputs (latents, audio) live."""
    if comfy_available():
        return _comfy()[0].intermediate_device()
    return torch.device("cpu")


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_dtype(choice: str) -> torch.dtype:
    """``auto`` -> ComfyUI's pick among bf16/fp32 (bf16 on CUDA, fp32 on CPU standalone); else the named dtype."""
    if choice != "auto":
        return DTYPES[choice]
    if comfy_available():
        return _comfy()[0].unet_dtype(supported_dtypes=[torch.bfloat16, torch.float32])
    return torch.bfloat16 if load_device().type == "cuda" else torch.float32


def model_ops() -> Any:
    """Layer namespace for the core modules: ``comfy.ops.manual_cast`` (low-VRAM streaming) or ``torch.nn``."""
    if comfy_available():
        import comfy.ops

        return comfy.ops.manual_cast
    from acestep_core.ops import DEFAULT_OPS

    return DEFAULT_OPS


# ------------------------------------------------------------------------------------------------ models
class Holder:
    """Standalone stand-in for ModelPatcher: the module, its load / offload devices and its LoRAs.

    Like ModelPatcher, holders made by :meth:`clone_with_loras` share the module; each holder's LoRAs
    (``acestep_core.lora.merge.LoraSpec``) are merged into the shared weights when it is loaded (:func:`load_models`),
    after undoing another holder's merge bit-exactly, so every holder computes with its own patches."""

    def __init__(self, model: torch.nn.Module, load_device: torch.device, offload_device: torch.device,
                 loras: tuple[Any, ...] = ()) -> None:
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.loras = loras

    def clone_with_loras(self, specs: tuple[Any, ...]) -> Holder:
        """A holder of the same module with ``specs`` appended to this holder's LoRAs."""
        return Holder(self.model, self.load_device, self.offload_device, (*self.loras, *specs))

    def sync_loras(self) -> None:
        """Make the shared module's merged LoRAs this holder's (restore the previous merge first)."""
        from acestep_core.lora.merge import merge_loras

        applied, merge = getattr(self.model, LORA_STATE_ATTR, ((), None))
        if len(applied) == len(self.loras) and all(a is b for a, b in zip(applied, self.loras, strict=True)):
            return
        if merge is not None:
            merge.restore()
        setattr(self.model, LORA_STATE_ATTR, ((), None))
        if self.loras:
            merge = merge_loras(self.model, self.loras, backup_device=self.offload_device)
            setattr(self.model, LORA_STATE_ATTR, (self.loras, merge))


@dataclass
class ModelHandle:
    """One big component (transformer, text encoder, codec) under the host's memory management."""

    patcher: Any  # comfy ModelPatcher or Holder
    force_full_load: bool = False

    @property
    def module(self) -> Any:
        return self.patcher.model

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device


def wrap_module(module: torch.nn.Module, *, force_full_load: bool = False,
                on_unload: Callable[[], None] | None = None) -> ModelHandle:
    """Wrap a core module: a ``ModelPatcher`` in ComfyUI, a :class:`Holder` standalone.

    ``on_unload`` runs whenever ComfyUI unloads the model from its device (``ModelPatcher`` detach callback,
    inherited by clones); standalone the caller handles it (models leave the device after every use)."""
    if comfy_available():
        import comfy.model_patcher
        from comfy.patcher_extension import CallbacksMP

        patcher = comfy.model_patcher.ModelPatcher(module, load_device=load_device(),
                                                   offload_device=offload_device())
        if on_unload is not None:
            patcher.add_callback(CallbacksMP.ON_DETACH, lambda _patcher, _unpatch_all: on_unload())
        return ModelHandle(patcher, force_full_load)
    return ModelHandle(Holder(module, load_device(), offload_device()), force_full_load)


def keeps_models_loaded() -> bool:
    """Whether models stay on their device between runs (ComfyUI's model management) rather than moving back to
    the offload device after each use (standalone)."""
    return comfy_available()


def add_loras(handle: ModelHandle, specs: tuple[Any, ...]) -> ModelHandle:
    """A new handle whose model carries ``specs`` (``acestep_core.lora.merge.LoraSpec``) on top of ``handle``'s patches.

    The input is never changed (ComfyUI caches node outputs). ComfyUI: ``ModelPatcher.clone()`` +
    ``add_patches`` with LoRA weight adapters keyed by the patcher's state-dict keys, so ComfyUI applies,
    streams (lowvram), unloads and re-applies them. Standalone: a cloned :class:`Holder` merged on load.
    Every LoRA is checked against the model first (:func:`acestep_core.lora.merge.lora_patches` raises clear errors).
    """
    from acestep_core.lora.merge import lora_patches

    patches = [lora_patches(handle.module, spec) for spec in specs]  # validates (raises LoraError)
    if not comfy_available():
        return ModelHandle(handle.patcher.clone_with_loras(tuple(specs)), handle.force_full_load)
    patcher = handle.patcher.clone()
    for lora_patch_list in patches:
        comfy_patches = {p.key: _comfy_lora_patch(p) for p in lora_patch_list}
        applied = set(patcher.add_patches(comfy_patches, 1.0))
        if applied != set(comfy_patches):
            raise RuntimeError(f"ModelPatcher rejected LoRA keys {sorted(set(comfy_patches) - applied)[:10]} "
                               "(internal error: they are not in the model's state dict)")
    return ModelHandle(patcher, handle.force_full_load)


def _comfy_lora_patch(patch: Any) -> Any:
    """One ``acestep_core.lora.merge.LoraPatch`` as a ComfyUI LoRA patch: delta = (alpha / rank) * up @ down with
    alpha = scale * rank, i.e. exactly ``scale * up @ down`` (strength is already in ``scale``)."""
    alpha = patch.scale * patch.down.shape[0]
    try:
        from comfy.weight_adapter import LoRAAdapter
    except ImportError:  # ComfyUI before the weight_adapter package: the tuple form
        return ("lora", (patch.up, patch.down, alpha, None, None))
    return LoRAAdapter(set(), (patch.up, patch.down, alpha, None, None, None))


def load_models(handles: list[ModelHandle], memory_required: int = 0) -> None:
    """Put the models on their compute device before use (ComfyUI may evict or partially load others).

    ``memory_required``: bytes of activations the coming work needs beyond the weights
    (``acestep_core.runtime.offload.decode_memory_bytes`` / ``sampling_memory_bytes``); ComfyUI frees or offloads
    other models (e.g. the transformer before a decode) to keep that much free, as for its own VAE decode.
    """
    if comfy_available():
        mm = _comfy()[0]
        partial = [h.patcher for h in handles if not h.force_full_load]
        full = [h.patcher for h in handles if h.force_full_load]
        if partial:
            mm.load_models_gpu(partial, memory_required=memory_required)
        if full:
            mm.load_models_gpu(full, memory_required=memory_required, force_full_load=True)
        return
    for handle in handles:
        handle.patcher.sync_loras()
        handle.patcher.model.to(handle.patcher.load_device)


def release_models(handles: list[ModelHandle]) -> None:
    """After use: ComfyUI keeps managing them (cache emptied); standalone moves them back to the offload device."""
    if comfy_available():
        _comfy()[0].soft_empty_cache()
        return
    for handle in handles:
        if handle.patcher.load_device != handle.patcher.offload_device:
            handle.patcher.model.to(handle.patcher.offload_device)



@contextlib.contextmanager
def models_loaded(handles: list[ModelHandle], memory_required: int = 0) -> Iterator[None]:
    """:func:`load_models` on entry, :func:`release_models` on exit (also when the work raises)."""
    load_models(handles, memory_required=memory_required)
    try:
        yield
    finally:
        release_models(handles)

# -------------------------------------------------------------------------------------- progress, interrupt
class ProgressBar:
    """``update(step, total)``: ComfyUI's progress bar, or a log line every ~10 % standalone."""

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total = total
        self._bar = None
        if comfy_available():
            import comfy.utils

            try:
                self._bar = comfy.utils.ProgressBar(total, node_id=node_id)
            except TypeError:  # older ComfyUI without node_id
                self._bar = comfy.utils.ProgressBar(total)

    def update(self, step: int, total: int | None = None, *, interruptible: bool = True) -> None:
        """Show ``step`` of ``total``. Inside ComfyUI the progress hook raises ``InterruptProcessingException``
        once the user cancels; ``interruptible=False`` keeps that request set instead, for a caller that stops on
        :func:`interrupt_requested` after finishing its own work (training saves the LoRA first)."""
        total = total or self.total
        if self._bar is not None:
            try:
                self._bar.update_absolute(step, total)
            except Exception as e:
                mm = _comfy()[0]
                if interruptible or not isinstance(e, mm.InterruptProcessingException):
                    raise
                mm.interrupt_current_processing(True)  # the hook cleared it while raising
        elif step == total or step % max(1, total // 10) == 0:
            logger.info("ACE-Step sampling step %d/%d", step, total)


def interrupt_requested() -> bool:
    """True once the user asked to stop (ComfyUI's interrupt, or :func:`request_interrupt` standalone)."""
    if comfy_available():
        return bool(_comfy()[0].processing_interrupted())
    return _interrupt.is_set()


def request_interrupt(value: bool = True) -> None:
    """Standalone: set (or clear) the interrupt flag."""
    if value:
        _interrupt.set()
    else:
        _interrupt.clear()


def raise_interrupted(cause: BaseException) -> None:
    """Re-raise a stop as the host expects it (ComfyUI: ``InterruptProcessingException``)."""
    if comfy_available():
        _comfy()[0].throw_exception_if_processing_interrupted()
    _interrupt.clear()
    raise cause


# ------------------------------------------------------------------------------------------------ folders
def _standalone_models_dir() -> Path:
    from acestep_core.hub import models_dir

    return models_dir()


@cache
def _register_ace_step_folder() -> None:
    """Register ``models/ace_step`` with folder_paths (keeps entries added by ``extra_model_paths.yaml``)."""
    folder_paths = _comfy()[1]
    default = os.path.join(folder_paths.models_dir, ACE_STEP_FOLDER)
    if ACE_STEP_FOLDER in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(ACE_STEP_FOLDER, default)
    else:
        folder_paths.folder_names_and_paths[ACE_STEP_FOLDER] = ([default], folder_paths.supported_pt_extensions)


def model_folders(kind: str) -> list[Path]:
    """Folders of a model type (``checkpoints`` or ``ace_step``), existing or not."""
    if comfy_available():
        if kind == ACE_STEP_FOLDER:
            _register_ace_step_folder()
        return [Path(p) for p in _comfy()[1].get_folder_paths(kind)]
    return [_standalone_models_dir() / kind]


def folder_files(kind: str, suffixes: tuple[str, ...] = (".safetensors", ".sft")) -> list[str]:
    """Names of the files of a model type (e.g. ``loras``), relative, ``/``-separated, as ComfyUI lists them."""
    if comfy_available():
        return [n for n in _comfy()[1].get_filename_list(kind) if n.lower().endswith(suffixes)]
    names = []
    for root in model_folders(kind):
        if root.is_dir():
            names += [p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.name.lower().endswith(suffixes)]
    return sorted(names)


def folder_file_path(kind: str, name: str) -> Path | None:
    """Full path of a file name of a model type, or None."""
    if comfy_available():
        path = _comfy()[1].get_full_path(kind, name)
        return Path(path) if path else None
    for root in model_folders(kind):
        if (root / name).is_file():
            return root / name
    return None


def output_directory() -> Path:
    """Where saved audio goes."""
    if comfy_available():
        return Path(_comfy()[1].get_output_directory())
    return Path(os.environ.get(OUTPUT_DIR_ENV) or Path(tempfile.gettempdir()) / "acestep_output").expanduser()


def comfyui_root() -> Path | None:
    """The ComfyUI code folder (holding ``comfy/``, for its bundled lyric vocabulary), None standalone.

    Not ``folder_paths.base_path``: ``--base-directory`` moves that away from the code."""
    if comfy_available():
        return Path(_comfy()[0].__file__).resolve().parents[1]  # <root>/comfy/model_management.py
    return None


# ---------------------------------------------------------------------------------------------- frontend
def _prompt_server() -> Any:
    """ComfyUI's running ``PromptServer`` instance, or None (standalone, or no server started)."""
    if not comfy_available():
        return None
    try:
        from server import PromptServer
    except Exception:  # noqa: BLE001 - no server module: not a ComfyUI server process
        return None
    return getattr(PromptServer, "instance", None)


def send_event(event: str, payload: dict[str, Any]) -> bool:
    """Send a websocket event to the client that queued the running prompt (all clients when it gave no
    ``client_id``); False when there is no server."""
    server = _prompt_server()
    if server is None:
        return False
    server.send_sync(event, payload, getattr(server, "client_id", None))
    return True


def add_json_route(path: str, handler: Callable[[Any], tuple[int, dict[str, Any]]]) -> bool:
    """Serve ``POST path``: the JSON body goes to ``handler(body) -> (status, json)``, run in a worker thread so
    the server's event loop never waits on it. False (nothing registered) without a ComfyUI server."""
    server = _prompt_server()
    if server is None:
        return False
    from aiohttp import web

    async def route(request: Any) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "expected a JSON body"}, status=400)
        try:
            status, answer = await asyncio.get_running_loop().run_in_executor(None, handler, body)
        except Exception as exc:  # noqa: BLE001 - answer the browser instead of a bare 500 page
            logger.exception("ACE-Step route %s failed", path)
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=500)
        return web.json_response(answer, status=status)

    server.routes.post(path)(route)
    return True


# ------------------------------------------------------------------------------------------------ training
INPUT_DIR_ENV = "ACESTEP_INPUT_DIR"


def input_directory() -> Path:
    """ComfyUI's ``input`` folder (training datasets are looked up there), or ``$ACESTEP_INPUT_DIR`` standalone."""
    if comfy_available():
        return Path(_comfy()[1].get_input_directory())
    return Path(os.environ.get(INPUT_DIR_ENV) or Path(tempfile.gettempdir()) / "acestep_input").expanduser()


def lora_output_folder() -> Path:
    """Where trained LoRAs go: the first ``loras`` model folder (the LoRA Loader lists it without a restart)."""
    return model_folders(LORAS_FOLDER)[0]


def free_memory_for(memory_required: int, device: torch.device) -> None:
    """Unload every model ComfyUI holds and make ``memory_required`` bytes free on ``device`` (training loads its
    own copy of the model)."""
    if not comfy_available():
        return
    mm = _comfy()[0]
    mm.unload_all_models()
    mm.free_memory(memory_required, device)
    mm.soft_empty_cache()


def show_progress_text(text: str, node_id: str | None) -> None:
    """A line of text on the running node (ComfyUI's progress text); nothing standalone."""
    server = _prompt_server()
    if server is not None and node_id is not None and hasattr(server, "send_progress_text"):
        server.send_progress_text(text, node_id)

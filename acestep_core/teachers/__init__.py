"""REPA teachers for training: MERT-v1-330M and mHuBERT-147 in plain PyTorch (no ``transformers``).

The original ACE-Step v1 trainer pulls the hidden states after transformer block 8, through the checkpoint's
projector heads, towards the features of two frozen self-supervised encoders (REPA). This package provides
those encoders, the trainer's exact preprocessing around them, and a per-song feature cache. Weights are read
from safetensors only; the one-time ``convert-teacher`` command is the only place that opens a pickle.

Trainer API (everything else is internal)::

    enabled, reason = resolve_repa(mode, paths=None, search_dirs=(), cache_root=None, allow_download=True)
    logger.info(reason)                       # one line: "REPA on|off (--repa MODE): why"
    if enabled:
        teachers = TeacherSet.load(paths=None, search_dirs=(), cache_root=None, allow_download=False,
                                   feature_dims=dict(zip(cfg.ssl_names, cfg.ssl_latent_dims)),
                                   device="cuda", dtype=torch.float32)
        cache = FeatureCache(root, storage="fp16")
        ssl = cache.features(teachers, wavs_48k, wav_lengths,           # [B, 2, N], [B]
                             max_chunks_per_call=None, autocast_dtype=None)
        # or uncached: ssl = teachers.features(wavs_48k, wav_lengths, ...)
        ssl["mert"][i], ssl["m-hubert"][i]    # [frames, dim] per item, in the original's order
        logger.info(cache.summary())

* ``mode``: ``"off"`` never; ``"auto"`` on when both teachers are found locally (never downloads), off
  otherwise, saying what is missing; ``"on"`` requires both: downloads a missing one when allowed, after
  logging the licence notice (:func:`licence_notice`), else raises :class:`TeacherNotFoundError` saying how
  to get it; a folder with only ``pytorch_model.bin`` raises :class:`TeacherNeedsConversionError` naming
  ``python -m acestep_core convert-teacher PATH``.
* Where teachers are looked for: an explicit path per teacher; ``<dir>/MERT-v1-330M`` and
  ``<dir>/mHuBERT-147`` in each search folder (the node layer passes ComfyUI ``models/`` folders); our cache
  ``$ACESTEP_CACHE_DIR/teachers/`` (default ``~/.cache/acestep/teachers``), where downloads go.
* Licences: MERT-v1-330M CC-BY-NC-4.0, mHuBERT-147 CC-BY-NC-SA-4.0: both non-commercial (ACE-Step itself
  is Apache-2.0); see :data:`TEACHERS`.
* Numbers: fp32 matches the original (transformers 4.50 ``HubertModel`` + ``Pipeline.infer_*_ssl``) to ~2e-6;
  ``max_chunks_per_call`` bounds memory without changing the result beyond float32 rounding;
  ``autocast_dtype=torch.bfloat16`` runs the encoders under autocast.

Modules: :mod:`.config` (``HubertConfig``), :mod:`.model` (``HubertEncoder``), :mod:`.weights` (strict loading),
:mod:`.registry` (the two teachers), :mod:`.find` (finding, downloading), :mod:`.convert`, :mod:`.ssl` (the
trainer's preprocessing), :mod:`.cache` (``FeatureCache``), :mod:`.teacher_set` (``TeacherSet``,
``resolve_repa``).
"""

from __future__ import annotations

from .cache import FeatureCache
from .config import MERT_V1_330M_CONFIG, MHUBERT_147_CONFIG, HubertConfig, TeacherConfigError
from .convert import convert_teacher
from .find import (
    TeacherMismatchError,
    TeacherNeedsConversionError,
    TeacherNotFoundError,
    default_teacher_root,
    download_teacher,
    find_teacher,
)
from .model import HubertEncoder
from .registry import TEACHER_NAMES, TEACHERS, TeacherSpec, licence_notice
from .ssl import ssl_features
from .teacher_set import REPA_MODES, RepaMode, TeacherSet, resolve_repa
from .weights import load_teacher

__all__ = [
    "MERT_V1_330M_CONFIG",
    "MHUBERT_147_CONFIG",
    "REPA_MODES",
    "TEACHERS",
    "TEACHER_NAMES",
    "FeatureCache",
    "HubertConfig",
    "HubertEncoder",
    "RepaMode",
    "TeacherConfigError",
    "TeacherMismatchError",
    "TeacherNeedsConversionError",
    "TeacherNotFoundError",
    "TeacherSet",
    "TeacherSpec",
    "convert_teacher",
    "default_teacher_root",
    "download_teacher",
    "find_teacher",
    "licence_notice",
    "load_teacher",
    "resolve_repa",
    "ssl_features",
]

"""Registry of the four ACE-Step v1 checkpoint components and how each file is recognised.

Each :class:`Component` knows its sub-folder in the official Hugging Face layout, its
key prefix in ComfyUI's single-file repackage (``ace_step_v1_3.5b.safetensors``), the
sentinel keys that identify it, and the documented key renames / ignored keys.
:func:`detect` names the component of a bare state dict, or raises listing every
detector it tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import CheckpointError


@dataclass(frozen=True)
class Component:
    name: str  # "transformer" | "dcae" | "vocoder" | "text_encoder"
    folder: str  # sub-folder of the official layout
    weights_file: str
    comfy_prefix: str  # key prefix inside ComfyUI's single-file checkpoint
    sentinel_keys: tuple[str, ...]
    # (regex, replacement) applied to every key before matching; each entry says why.
    key_renames: tuple[tuple[str, str], ...] = ()
    # keys that may be present in real files but are not needed (documented in IGNORED_KEYS_DOC).
    ignored_keys: tuple[str, ...] = field(default_factory=tuple)

    def rename(self, key: str) -> str:
        for pattern, repl in self.key_renames:
            key = re.sub(pattern, repl, key)
        return key

    def is_ignored(self, key: str) -> bool:
        return any(re.fullmatch(p, key) for p in self.ignored_keys)


TRANSFORMER = Component(
    name="transformer",
    folder="ace_step_transformer",
    weights_file="diffusion_pytorch_model.safetensors",
    comfy_prefix="model.diffusion_model.",
    sentinel_keys=("genre_embedder.weight", "lyric_embs.weight", "t_block.1.weight"),
)
DCAE = Component(
    name="dcae",
    folder="music_dcae_f8c8",
    weights_file="diffusion_pytorch_model.safetensors",
    comfy_prefix="vae.dcae.",
    sentinel_keys=("encoder.conv_in.weight", "decoder.conv_in.weight", "decoder.conv_out.weight"),
)
VOCODER = Component(
    name="vocoder",
    folder="music_vocoder",
    weights_file="diffusion_pytorch_model.safetensors",
    comfy_prefix="vae.vocoder.",
    sentinel_keys=("backbone.channel_layers.0.0.bias", "head.conv_post.bias"),
    key_renames=(
        # ComfyUI builds the vocoder with torch.nn.utils.parametrizations.weight_norm, so files it saves
        # name the weight-norm pair original0/original1; the official file uses the legacy weight_g/weight_v.
        # They are the same tensors (g = original0, v = original1).
        (r"\.parametrizations\.weight\.original0$", ".weight_g"),
        (r"\.parametrizations\.weight\.original1$", ".weight_v"),
    ),
)
TEXT_ENCODER = Component(
    name="text_encoder",
    folder="umt5-base",
    weights_file="model.safetensors",
    comfy_prefix="text_encoders.umt5base.transformer.",
    sentinel_keys=("shared.weight", "encoder.final_layer_norm.weight"),
    # Hugging Face ties encoder.embed_tokens to shared; some exports store both copies.
    ignored_keys=(r"encoder\.embed_tokens\.weight",),
)

COMPONENTS: tuple[Component, ...] = (TRANSFORMER, DCAE, VOCODER, TEXT_ENCODER)
COMPONENTS_BY_NAME = {c.name: c for c in COMPONENTS}

# ComfyUI single file: the SentencePiece model of the UMT5 tokenizer, stored as a uint8 tensor.
COMFY_SPIECE_KEY = "text_encoders.spiece_model"
# Keys of ComfyUI single files that belong to no component and carry no weights we need.
COMFY_IGNORED_KEYS = (r"text_encoders\.umt5base\.logit_scale", r"text_encoders\.umt5base\.transformer\.logit_scale")


def detect(keys: Iterable[str], *, source: str) -> Component:
    """Return the single component whose sentinel keys are all in ``keys``, else raise."""
    keys = list(keys)
    key_set = set(keys)
    hits = [c for c in COMPONENTS if all(k in key_set for k in c.sentinel_keys)]
    if len(hits) == 1:
        return hits[0]
    tried = "; ".join(f"{c.name} (needs {', '.join(c.sentinel_keys)})" for c in COMPONENTS)
    sample = ", ".join(sorted(keys)[:5]) or "<no tensors>"
    what = "matches several components" if hits else "matches no ACE-Step v1 component"
    raise CheckpointError(
        f"{source} {what}. Tried: {tried}. First keys of the file: {sample}. "
        "Expected a file of the official ACE-Step/ACE-Step-v1-3.5B layout or ComfyUI's ace_step_v1_3.5b.safetensors."
    )

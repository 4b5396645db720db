"""ComfyUI entry point of the ACE-Step v1 pack (classic V1 node API).

ComfyUI imports this package and reads ``NODE_CLASS_MAPPINGS``,
``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY``. The model core lives in
``acestep_core`` (plain PyTorch, never imports ComfyUI); ``nodes`` wraps it.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

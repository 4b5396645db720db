"""ComfyUI entry point of the ACE-Step v1 pack (classic V1 node API).

ComfyUI imports this package and reads ``NODE_CLASS_MAPPINGS``,
``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY`` (the frontend extensions in ``web/``),
and the import registers the pack's one HTTP route on ComfyUI's server (``nodes.web_routes``;
nothing happens outside a ComfyUI server). The model core lives in ``acestep_core`` (plain
PyTorch, never imports ComfyUI); ``nodes`` wraps it.
"""

if __package__:  # ComfyUI imports the pack folder as a package
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    from .nodes.web_routes import register_routes

    register_routes()
else:  # imported as a plain module, e.g. by pytest when the checkout folder is not a Python identifier
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]

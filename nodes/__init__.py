"""ComfyUI nodes of the pack: thin classic-API wrappers over ``acestep_core``.

Only this package touches ComfyUI services. The node classes are added by the
nodes milestone (see the README's roadmap); until then the pack registers none.
"""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

"""Node tests (no ComfyUI needed)."""

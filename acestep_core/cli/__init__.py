"""The command line (``python -m acestep_core <command>``): argument parsing (:mod:`.main`), turning arguments
into a checked plan before any model work (:mod:`.plan`), running it (:mod:`.run`), and the original app's
``*_input_params.json`` records (:mod:`.params_io`)."""

from .commands import build_parser, main

__all__ = ["build_parser", "main"]

"""The command line's two kinds of failure: bad input (exit 2, before any model work) and a run that produced
no usable result (exit 1, nothing written). Both are reported as one ``error:`` line."""

from __future__ import annotations

from ..errors import AceStepInputError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "RunFailedError", "UsageError"]

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class UsageError(AceStepInputError):
    """Bad command-line input; reported as one line with exit code 2."""


class RunFailedError(RuntimeError):
    """The run finished without a usable result (e.g. NaN audio); nothing was written; exit code 1."""

"""``python -m acestep_core generate ...``: dispatch to :func:`acestep_core.cli.commands.main`."""

from __future__ import annotations

import sys

from .cli.commands import main

if __name__ == "__main__":
    sys.exit(main())

from __future__ import annotations

import os

import pytest
import torch

from tests.parity import PARITY_DIR, REQUIRE_PARITY_ENV, missing_parity_entries


def pytest_sessionstart(session: pytest.Session) -> None:
    """With ACESTEP_REQUIRE_PARITY=1 (CI), a missing or incomplete golden data folder fails the whole run."""
    if os.environ.get(REQUIRE_PARITY_ENV, "") in ("", "0"):
        return
    missing = missing_parity_entries()
    if missing:
        pytest.exit(f"{REQUIRE_PARITY_ENV} is set but the golden data folder {PARITY_DIR} lacks {missing}; "
                    "put ../shared beside the checkout or set ACESTEP_SHARED_DIR", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _deterministic_threads():
    """Goldens were recorded with 1 CPU thread; keep float32 reductions comparable.

    Session-scoped so it is active before any module-scoped fixture computes something."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    """With ACESTEP_PARITY_REPORT set, print the worst measured error per golden group."""
    import json
    import os
    from collections import defaultdict

    path = os.environ.get("ACESTEP_PARITY_REPORT")
    if not path or not os.path.exists(path):
        return
    worst: dict[str, tuple[float, str, str]] = defaultdict(lambda: (-1.0, "", ""))
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            group = row["name"].split(":", 1)[0].removeprefix("modules/").removesuffix(".safetensors")
            if row["max_abs_err"] > worst[group][0]:
                worst[group] = (row["max_abs_err"], row["name"], row["category"])
    terminalreporter.section("golden parity: worst max abs error per group")
    for group, (err, name, category) in sorted(worst.items()):
        terminalreporter.write_line(f"{group:32s} {err:.3e}  ({name}, {category})")

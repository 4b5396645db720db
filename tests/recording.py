"""Test helper: record calls of ``pipeline.generate`` and ``accel.release_cuda_graphs`` (both still run)."""

from __future__ import annotations

from typing import Any

import pytest

from acestep_core.runtime import accel
from acestep_core.sampling import pipeline


def record_generate_and_release(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Patch both functions to append ``("generate", acceleration)`` / ``("release", class name)`` to the
    returned list, in call order, and then call the real function."""
    events: list[Any] = []
    real_generate, real_release = pipeline.generate, accel.release_cuda_graphs

    def recording_generate(*args: Any, **kwargs: Any) -> Any:
        events.append(("generate", kwargs.get("acceleration")))
        return real_generate(*args, **kwargs)

    def recording_release(transformer: Any) -> None:
        events.append(("release", type(transformer).__name__))
        real_release(transformer)

    monkeypatch.setattr(pipeline, "generate", recording_generate)
    monkeypatch.setattr(accel, "release_cuda_graphs", recording_release)
    return events

"""Packaging contract: what ComfyUI, ComfyUI Manager and the registry read from the repo."""

from __future__ import annotations

import importlib.util
import re
import sys

import tomllib

from tests.parity import REPO_ROOT


def _requirements() -> list[str]:
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_torch_is_never_pinned() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    for req in [*_requirements(), *pyproject["project"]["dependencies"]]:
        name = re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower()
        if name in {"torch", "torchaudio", "torchvision"}:
            assert req.strip().lower() == name, f"{req!r}: ComfyUI users bring their own torch; do not pin it"


def test_no_forbidden_runtime_dependencies() -> None:
    names = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower() for r in _requirements()}
    assert not names & {"diffusers", "transformers", "peft", "accelerate"}


def test_requirements_match_pyproject() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert sorted(_requirements()) == sorted(pyproject["project"]["dependencies"])


def test_registry_metadata() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    comfy = pyproject["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert pyproject["project"]["license"]["text"] == "Apache-2.0"
    assert (REPO_ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "ACE-Step" in (REPO_ROOT / "NOTICE").read_text()


def test_pack_root_exports_the_classic_node_api() -> None:
    spec = importlib.util.spec_from_file_location(
        "acestep_pack_root", REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    assert isinstance(module.NODE_CLASS_MAPPINGS, dict)
    assert isinstance(module.NODE_DISPLAY_NAME_MAPPINGS, dict)
    assert module.WEB_DIRECTORY == "./web"

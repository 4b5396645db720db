"""Static validation of the example workflows (``workflows/*.json``, UI format) against the nodes' schemas.

No ComfyUI and no network: our nodes' ``INPUT_TYPES`` plus the pinned core table of :mod:`ui_to_api` are the
schemas. Every workflow must load, use only known node types, carry valid widget values (count, order, ranges,
combo choices), have type-compatible links between existing slots, and convert to exactly the checked-in
``workflows/api/<name>.json``. The live counterpart is ``tests/comfy/test_real_comfyui.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from tests.workflows.ui_to_api import (
    AUDIO_UI_NODES,
    DYNAMIC_COMBOS,
    NON_BACKEND_NODES,
    TEMPLATES,
    ConversionError,
    NodeSchema,
    api_name,
    assign_widgets,
    convert,
    core_schemas,
    schemas_from_classes,
)
from tests.workflows.view import view_problems

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
UI_FILES = sorted(WORKFLOWS.glob("*.json"))
API_DIR = WORKFLOWS / "api"
EXPECTED_WORKFLOWS = {"text2music", "retake", "repaint", "extend", "lyric_edit", "remix", "audio2audio",
                      "batch_seeds", "long_song_extend_chain", "lora", "train_lora"}
LOADER = "AceStepV1CheckpointLoader"
UI_FORMAT_VERSION = 0.4


@pytest.fixture(scope="module")
def schemas() -> dict[str, NodeSchema]:
    """Our nodes' schemas plus the pinned core nodes."""
    return {**schemas_from_classes(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS), **core_schemas()}


def load(path: Path) -> dict[str, Any]:
    """A workflow file as JSON (UTF-8)."""
    return json.loads(path.read_text(encoding="utf-8"))


def ids(path: Path) -> str:
    return api_name(path)


# ----------------------------------------------------------------------------------------------- inventory
def test_every_feature_has_a_ui_and_an_api_workflow() -> None:
    """One UI workflow per feature (named by its template title), each with its API copy and its template
    thumbnail, and no stray files."""
    assert {p.stem for p in UI_FILES} == set(TEMPLATES.values())
    assert set(TEMPLATES) == EXPECTED_WORKFLOWS
    assert {p.stem for p in API_DIR.glob("*.json")} == EXPECTED_WORKFLOWS
    assert {p.stem for p in WORKFLOWS.glob("*.jpg")} == set(TEMPLATES.values())
    assert sorted(p.stem for p in UI_FILES) == list(TEMPLATES.values())  # the number in the title orders them


def test_thumbnails_are_small_jpegs() -> None:
    """The template browser asks for ``<name>.jpg`` next to each workflow (frontend 1.27, mediaSubtype jpg)."""
    for path in WORKFLOWS.glob("*.jpg"):
        data = path.read_bytes()
        assert data[:3] == b"\xff\xd8\xff" and 5_000 < len(data) < 120_000, (path.name, len(data))


def test_template_category_has_a_title() -> None:
    """The browser titles a custom node's category with ``templateWorkflows.category.<install folder>`` from the
    pack's ``locales/<lang>/main.json`` (ComfyUI merges them into the frontend's messages)."""
    messages = load(REPO / "locales" / "en" / "main.json")
    categories = messages["templateWorkflows"]["category"]
    assert categories["comfyui-acestep-v1"] == "ACE-Step v1"  # the registry / git install folder name


def test_readme_lists_every_workflow() -> None:
    """``workflows/README.md`` has a table row per workflow, under its title, naming its API file."""
    readme = (WORKFLOWS / "README.md").read_text(encoding="utf-8")
    for name, title in TEMPLATES.items():
        assert f"`{title}.json`" in readme and f"`api/{name}.json`" in readme, name


@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_workflow_opens_framed_at_1920x1080(path: Path) -> None:
    """The stored view shows every node inside the visible canvas of a 1920x1080 screen, readable and without
    overlaps (sizes are the ones the frontend renders; tests/comfy checks them in the real frontend)."""
    assert view_problems(load(path)) == []


# --------------------------------------------------------------------------------------------- structure
@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_ui_format_structure(path: Path) -> None:
    """The fields the 0.3.64 frontend (format 0.4) reads are present and consistent."""
    wf = load(path)
    assert wf["version"] == UI_FORMAT_VERSION
    assert isinstance(wf["groups"], list) and isinstance(wf["links"], list)
    node_ids = [n["id"] for n in wf["nodes"]]
    link_ids = [link[0] for link in wf["links"]]
    assert len(set(node_ids)) == len(node_ids), "duplicate node ids"
    assert len(set(link_ids)) == len(link_ids), "duplicate link ids"
    assert wf["last_node_id"] >= max(node_ids)
    assert wf["last_link_id"] >= max(link_ids, default=0)
    for node in wf["nodes"]:
        for key in ("id", "type", "pos", "size", "inputs", "outputs", "properties", "widgets_values", "mode"):
            assert key in node, f"node {node.get('id')}: missing {key!r}"
        assert len(node["pos"]) == 2 and len(node["size"]) == 2
        assert node["mode"] == 0, f"node {node['id']}: muted/bypassed nodes are not shipped"
        if node["type"] not in NON_BACKEND_NODES:
            assert node["properties"].get("Node name for S&R") == node["type"], node["id"]


@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_node_types_are_ours_or_pinned_core(path: Path, schemas: dict[str, NodeSchema]) -> None:
    """Every node type is one of ours or a pinned core node; each workflow explains itself in a note."""
    wf = load(path)
    types = [n["type"] for n in wf["nodes"]]
    unknown = sorted({t for t in types if t not in schemas})
    assert not unknown, f"unknown node types {unknown}"
    assert any(t in ("Note", "MarkdownNote") for t in types), "each workflow has a note explaining it"


@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_loader_declares_its_model_files(path: Path) -> None:
    """The loader node lists the model file(s) the workflow needs (``properties.models``) for the frontend."""
    loaders = [n for n in load(path)["nodes"] if n["type"] == LOADER]
    assert loaders, "every workflow loads an ACE-Step model"
    for node in loaders:
        models = node["properties"].get("models")
        assert models and all({"name", "url", "directory"} <= set(m) for m in models), node["properties"]
        assert node["widgets_values"][0] in {m["name"] for m in models}, "the selected checkpoint is listed"
        assert all(m["url"].startswith("https://") for m in models)


# ------------------------------------------------------------------------------------------------ widgets
def _check_value(schema: NodeSchema, name: str, value: Any) -> str | None:
    """An error message if ``value`` is not valid for input ``name`` (type, range, combo choice)."""
    spec = schema.input(name)
    assert spec is not None
    opts = spec.options
    if spec.type == "COMBO":
        if (schema.class_type, name) in DYNAMIC_COMBOS:
            return None if isinstance(value, str) and value else f"{name}: expected a file name, got {value!r}"
        return None if value in spec.choices else f"{name}: {value!r} not in {list(spec.choices)}"
    if spec.type == "BOOLEAN":
        return None if isinstance(value, bool) else f"{name}: expected a boolean, got {value!r}"
    if spec.type == "STRING":
        return None if isinstance(value, str) else f"{name}: expected a string, got {value!r}"
    if spec.type == "INT" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name}: expected an integer, got {value!r}"
    if spec.type == "FLOAT" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"{name}: expected a number, got {value!r}"
    if "min" in opts and value < opts["min"] or "max" in opts and value > opts["max"]:
        return f"{name}: {value} outside [{opts.get('min')}, {opts.get('max')}]"
    return None


@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_widget_values_match_input_types(path: Path, schemas: dict[str, NodeSchema]) -> None:
    """widgets_values have the frontend's count and order, and every value is in range / a valid choice."""
    errors = []
    for node in load(path)["nodes"]:
        schema = schemas[node["type"]]
        if node["type"] in NON_BACKEND_NODES:
            assert len(node["widgets_values"]) == 1 and isinstance(node["widgets_values"][0], str)
            continue
        try:
            values = assign_widgets(schema, node["widgets_values"], where=f"node {node['id']} ")
        except ConversionError as e:
            errors.append(str(e))
            continue
        widget_names = [s.name for s in schema.inputs if s.is_widget]
        assert list(values) == widget_names, f"node {node['id']}: every widget has a value"
        errors += [f"node {node['id']} {node['type']}: {msg}" for name, value in values.items()
                   if (msg := _check_value(schema, name, value))]
    assert not errors, "\n".join(errors)


# -------------------------------------------------------------------------------------------------- links
@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_links_point_at_existing_slots_with_matching_types(path: Path, schemas: dict[str, NodeSchema]) -> None:
    """Every link joins an existing output slot to an existing input slot of the same type, recorded on both ends;
    every required socket input is linked."""
    wf = load(path)
    nodes = {n["id"]: n for n in wf["nodes"]}
    links = {link[0]: link for link in wf["links"]}
    for link_id, src, src_slot, dst, dst_slot, link_type in wf["links"]:
        assert src in nodes and dst in nodes, f"link {link_id}: missing node"
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        src_schema, dst_schema = schemas[nodes[src]["type"]], schemas[nodes[dst]["type"]]
        assert src_schema.outputs[src_slot] == out["type"] == link_type, f"link {link_id}: output type"
        spec = dst_schema.input(inp["name"])
        assert spec is not None, f"link {link_id}: {nodes[dst]['type']} has no input {inp['name']!r}"
        assert spec.type == inp["type"] == link_type, f"link {link_id}: {link_type} into {spec.type} input"
        assert inp["link"] == link_id and link_id in out["links"], f"link {link_id}: not recorded on both ends"
    for node in wf["nodes"]:
        schema = schemas[node["type"]]
        for k, out in enumerate(node["outputs"]):
            assert out["type"] == schema.outputs[k] and out.get("slot_index", k) == k, f"node {node['id']} out {k}"
            assert all(links[i][1] == node["id"] and links[i][2] == k for i in out["links"] or [])
        for inp in node["inputs"]:
            assert inp["link"] is None or inp["link"] in links, f"node {node['id']}: dangling link {inp['link']}"
        if node["type"] in NON_BACKEND_NODES:
            continue
        sockets = {i["name"]: i for i in node["inputs"]}
        for spec in schema.inputs:
            if spec.is_widget:
                continue
            assert spec.name in sockets, f"node {node['id']} {node['type']}: socket {spec.name!r} missing"
            if not spec.optional:
                assert sockets[spec.name]["link"] is not None, f"node {node['id']}: {spec.name!r} not linked"


# ------------------------------------------------------------------------------------------------ convert
@pytest.mark.parametrize("path", UI_FILES, ids=ids)
def test_conversion_matches_checked_in_api_workflow(path: Path, schemas: dict[str, NodeSchema]) -> None:
    """UI -> API conversion succeeds and equals ``workflows/api/<name>.json`` (regenerate both together)."""
    api = convert(load(path), schemas)
    assert api == load(API_DIR / f"{api_name(path)}.json")
    assert all(node["class_type"] not in NON_BACKEND_NODES for node in api.values())
    assert any(node["class_type"] in ("AceStepV1SaveAudio", *AUDIO_UI_NODES) for node in api.values())


# ------------------------------------------------------------------------------------------ converter rules
def test_converter_skips_seed_control_and_ui_only_widgets(schemas: dict[str, NodeSchema]) -> None:
    """The frontend's hidden control_after_generate value and LoadAudio's upload/player slots are skipped."""
    sampler = schemas["AceStepV1Sampler"]
    layout = [s.kind for s in sampler.widget_slots()]
    assert layout[:2] == ["input", "control"], "seed is followed by its control_after_generate value"
    load_audio = assign_widgets(schemas["LoadAudio"], ["song.flac", None, None])
    assert load_audio == {"audio": "song.flac"}
    assert assign_widgets(schemas["SaveAudio"], ["audio/x"]) == {"filename_prefix": "audio/x"}
    with pytest.raises(ConversionError, match="control_after_generate"):
        assign_widgets(sampler, [1, "sometimes", *([None] * (len(layout) - 2))])
    with pytest.raises(ConversionError, match="widgets_values"):
        assign_widgets(sampler, [1])


def test_converter_resolves_links_and_drops_notes(schemas: dict[str, NodeSchema]) -> None:
    """Links become ``[node_id, slot]``, notes disappear, unknown types are refused."""
    wf = {"nodes": [
        {"id": 1, "type": "LoadAudio", "inputs": [], "outputs": [{"name": "AUDIO", "type": "AUDIO", "links": [1]}],
         "widgets_values": ["a.flac", None, None]},
        {"id": 2, "type": "PreviewAudio", "inputs": [{"name": "audio", "type": "AUDIO", "link": 1}], "outputs": [],
         "widgets_values": []},
        {"id": 3, "type": "Note", "inputs": [], "outputs": [], "widgets_values": ["hi"]},
    ], "links": [[1, 1, 0, 2, 0, "AUDIO"]]}
    api = convert(wf, schemas)
    assert set(api) == {"1", "2"} and api["2"]["inputs"] == {"audio": ["1", 0]}
    wf["nodes"][2]["type"] = "SomethingElse"
    with pytest.raises(ConversionError, match="unknown node type"):
        convert(wf, schemas)

"""Convert UI-format ComfyUI workflows (what users save) to the API prompt format (what ``POST /prompt`` takes).

This re-implements the frontend's ``graphToPrompt`` for the subset of features our example workflows use
(ComfyUI 0.3.64, frontend 1.27), from the nodes' ``INPUT_TYPES`` instead of ``/object_info``:

* nodes that are not backend nodes (``Note``, ``MarkdownNote``, ``Reroute``, ``PrimitiveNode``) and muted
  nodes (``mode`` 2) are dropped; bypassed nodes (``mode`` 4) are refused (our workflows never ship them);
* ``widgets_values`` are assigned positionally to the widget inputs (INT/FLOAT/STRING/BOOLEAN/COMBO without
  ``forceInput``) in declaration order, required then optional; after every INT input whose
  ``control_after_generate`` option is true, or is absent and the input is named ``seed``/``noise_seed``, the
  frontend stores a hidden ``control_after_generate`` value ("fixed", "randomize", ...) that is skipped;
  UI-only widgets the frontend adds (the ``upload`` button of ``audio_upload`` combos, the ``audioUI`` player
  of core audio nodes) are skipped too, and may be left off the end of ``widgets_values``;
* an input with a ``link`` becomes ``[str(origin_node_id), origin_slot]`` via the ``links`` table
  ``[id, from_node, from_slot, to_node, to_slot, type]`` (a linked widget input keeps its slot in
  ``widgets_values`` but takes the link);
* API node ids are the UI node ids as strings; ``_meta.title`` is the node title (or its display name).

Node schemas come from a ``class_type -> INPUT_TYPES dict`` mapping plus output types, see :class:`NodeSchema`;
:func:`schemas_from_classes` builds them from V1 node classes (ours) and the pinned tables of core nodes.

After editing a UI workflow, regenerate its API copy: ``python -m tests.workflows.ui_to_api`` (from the repo root)
rewrites ``workflows/api/<name>.json`` for every ``workflows/<title>.json`` (:data:`TEMPLATES`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "API_NAMES",
    "AUDIO_UI_NODES",
    "CORE_NODES",
    "DYNAMIC_COMBOS",
    "NON_BACKEND_NODES",
    "SEED_NAMES",
    "TEMPLATES",
    "api_name",
    "WIDGET_TYPES",
    "ConversionError",
    "InputSpec",
    "NodeSchema",
    "WidgetSlot",
    "assign_widgets",
    "convert",
    "core_schemas",
    "regenerate_api_workflows",
    "schema_from_class",
    "schema_from_object_info",
    "schemas_from_classes",
]

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = frozenset({"seed", "noise_seed"})
NON_BACKEND_NODES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
# The frontend's "Comfy.AudioWidget" extension adds a non-serialised ``audioUI`` player widget to these.
AUDIO_UI_NODES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4

# Core nodes our workflows use, pinned from ComfyUI 0.3.64 (a125cd84) ``comfy_extras/nodes_audio.py``, ``nodes.py`` and
# the frontend's note nodes (CI has no ComfyUI): ``(INPUT_TYPES, RETURN_TYPES, RETURN_NAMES)``. ``LoadAudio``'s
# choices are the files of the input folder, so any file name is accepted for it (see DYNAMIC_COMBOS).
CORE_NODES: dict[str, tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]] = {
    "LoadAudio": ({"required": {"audio": ([], {"audio_upload": True})}}, ("AUDIO",), ("AUDIO",)),
    "SaveAudio": ({"required": {"audio": ("AUDIO",), "filename_prefix": ("STRING", {"default": "audio/ComfyUI"})},
                   "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}, (), ()),
    "PreviewAudio": ({"required": {"audio": ("AUDIO",)},
                      "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}, (), ()),
    # nodes.py (the training workflow shows the loss curve with it)
    "PreviewImage": ({"required": {"images": ("IMAGE",)},
                      "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}, (), ()),
    # Frontend-only nodes (never sent to the server): one multiline text widget.
    "Note": ({"required": {"text": ("STRING", {"multiline": True})}}, (), ()),
    "MarkdownNote": ({"required": {"text": ("STRING", {"multiline": True})}}, (), ()),
}
CORE_DISPLAY_NAMES = {"LoadAudio": "Load Audio", "SaveAudio": "Save Audio (FLAC)", "PreviewAudio": "Preview Audio",
                      "PreviewImage": "Preview Image"}
# (class_type, input) whose COMBO choices depend on the installation (model / input files): any string is valid.
DYNAMIC_COMBOS = frozenset({("LoadAudio", "audio"), ("AceStepV1CheckpointLoader", "ckpt_name"),
                            ("AceStepV1LoraLoader", "lora_name")})


class ConversionError(ValueError):
    """The UI workflow cannot be converted (unknown node, bad widget values, dangling link, ...)."""


@dataclass(frozen=True)
class InputSpec:
    """One declared input of a node: ``name: (type_or_choices, options)`` from ``INPUT_TYPES``."""

    name: str
    type: str  # "COMBO" for a list of choices
    options: Mapping[str, Any]
    choices: tuple[Any, ...] | None
    optional: bool

    @property
    def is_widget(self) -> bool:
        """True when the frontend draws a widget (its value lives in ``widgets_values``)."""
        return self.type in WIDGET_TYPES and not self.options.get("forceInput", False)

    @property
    def has_control(self) -> bool:
        """True when the frontend adds a hidden ``control_after_generate`` widget after this INT."""
        if self.type != "INT":
            return False
        flag = self.options.get("control_after_generate")
        return bool(flag) if flag is not None else self.name in SEED_NAMES


@dataclass(frozen=True)
class WidgetSlot:
    """One entry of ``widgets_values``: a real input, its seed control value, or a UI-only widget."""

    kind: str  # "input" | "control" | "ui"
    name: str
    spec: InputSpec | None = None


@dataclass
class NodeSchema:
    """What the converter needs to know about a node class (a tiny ``/object_info`` entry)."""

    class_type: str
    inputs: list[InputSpec]
    outputs: list[str]
    output_names: list[str] = field(default_factory=list)
    display_name: str = ""

    def input(self, name: str) -> InputSpec | None:
        """The declared input called ``name``, if any."""
        return next((i for i in self.inputs if i.name == name), None)

    def widget_slots(self) -> list[WidgetSlot]:
        """The positional layout of ``widgets_values`` the frontend produces for this node."""
        slots: list[WidgetSlot] = []
        required_done = False
        for spec in self.inputs:
            if spec.optional and not required_done:
                required_done = True
                self._add_audio_ui(slots)
            if not spec.is_widget:
                continue
            slots.append(WidgetSlot("input", spec.name, spec))
            if spec.has_control:
                slots.append(WidgetSlot("control", "control_after_generate", spec))
            if spec.options.get("audio_upload") or spec.options.get("image_upload"):
                slots.append(WidgetSlot("ui", "upload"))
        if not required_done:
            self._add_audio_ui(slots)
        return slots

    def _add_audio_ui(self, slots: list[WidgetSlot]) -> None:
        if self.class_type in AUDIO_UI_NODES:
            slots.append(WidgetSlot("ui", "audioUI"))


def _input_spec(name: str, declared: Any, optional: bool) -> InputSpec:
    if not isinstance(declared, (tuple, list)) or not declared:
        raise ConversionError(f"input {name!r}: expected (type, options), got {declared!r}")
    kind = declared[0]
    options = dict(declared[1]) if len(declared) > 1 and isinstance(declared[1], Mapping) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", options, tuple(kind), optional)
    if kind == "COMBO":
        return InputSpec(name, "COMBO", options, tuple(options.get("options", ())), optional)
    return InputSpec(name, str(kind), options, None, optional)


def schema_from_class(class_type: str, input_types: Mapping[str, Any], return_types: tuple[str, ...] | list[str],
                      return_names: tuple[str, ...] | list[str] | None = None, display_name: str = "") -> NodeSchema:
    """Build a :class:`NodeSchema` from an ``INPUT_TYPES()`` dict and ``RETURN_TYPES`` (hidden inputs ignored)."""
    inputs = [_input_spec(n, d, False) for n, d in (input_types.get("required") or {}).items()]
    inputs += [_input_spec(n, d, True) for n, d in (input_types.get("optional") or {}).items()]
    return NodeSchema(class_type, inputs, [str(t) for t in return_types],
                      [str(n) for n in (return_names or return_types)], display_name or class_type)


def schema_from_object_info(class_type: str, info: Mapping[str, Any]) -> NodeSchema:
    """Build a :class:`NodeSchema` from a server's ``/object_info`` entry (``input`` + ``input_order``)."""
    declared = info.get("input") or {}
    order = info.get("input_order") or {}
    input_types = {
        section: {name: declared.get(section, {})[name] for name in order.get(section, declared.get(section, {}))}
        for section in ("required", "optional")
    }
    return schema_from_class(class_type, input_types, tuple(info.get("output") or ()),
                             tuple(info.get("output_name") or ()) or None, info.get("display_name") or class_type)


def schemas_from_classes(classes: Mapping[str, type], display_names: Mapping[str, str] | None = None
                         ) -> dict[str, NodeSchema]:
    """Schemas of V1 node classes (``NODE_CLASS_MAPPINGS``-like), calling each ``INPUT_TYPES()``."""
    names = display_names or {}
    return {
        class_type: schema_from_class(class_type, cls.INPUT_TYPES(), tuple(getattr(cls, "RETURN_TYPES", ())),
                                      getattr(cls, "RETURN_NAMES", None), names.get(class_type, class_type))
        for class_type, cls in classes.items()
    }


def core_schemas() -> dict[str, NodeSchema]:
    """Schemas of the pinned core nodes (:data:`CORE_NODES`)."""
    return {name: schema_from_class(name, types, returns, names, CORE_DISPLAY_NAMES.get(name, name))
            for name, (types, returns, names) in CORE_NODES.items()}


def assign_widgets(schema: NodeSchema, widgets_values: list[Any] | None, *, where: str = "") -> dict[str, Any]:
    """Map ``widgets_values`` onto the node's widget inputs (positional, skipping control and UI-only slots).

    Raises :class:`ConversionError` when there are too few or too many values (trailing UI-only slots may be
    omitted, as older frontends saved them) or a control value is not one of ``fixed/increment/decrement/randomize``.
    """
    values = list(widgets_values or [])
    slots = schema.widget_slots()
    needed = len(slots)
    while needed and slots[needed - 1].kind == "ui":
        needed -= 1
    prefix = f"{where}{schema.class_type}: "
    if not needed <= len(values) <= len(slots):
        layout = [s.name for s in slots]
        raise ConversionError(f"{prefix}{len(values)} widgets_values, expected {needed}..{len(slots)} for {layout}")
    assigned: dict[str, Any] = {}
    for slot, value in zip(slots, values, strict=False):  # trailing UI-only slots may be absent
        if slot.kind == "input":
            assigned[slot.name] = value
        elif slot.kind == "control" and value not in CONTROL_VALUES:
            raise ConversionError(f"{prefix}control_after_generate of {slot.spec.name!r} is {value!r}, "
                                  f"expected one of {CONTROL_VALUES}")
    return assigned


def convert(workflow: Mapping[str, Any], schemas: Mapping[str, NodeSchema]) -> dict[str, dict[str, Any]]:
    """Convert a UI-format workflow to an API prompt ``{node_id: {"class_type", "inputs", "_meta"}}``."""
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list):
        raise ConversionError("not a UI-format workflow: no 'nodes' list")
    links: dict[int, list[Any]] = {}
    for link in workflow.get("links") or []:
        if not isinstance(link, list) or len(link) != 6:
            raise ConversionError(f"link {link!r}: expected [id, from_node, from_slot, to_node, to_slot, type]")
        links[int(link[0])] = link
    by_id = {int(n["id"]): n for n in nodes}
    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(nodes, key=lambda n: int(n["id"])):
        class_type = node.get("type")
        mode = node.get("mode", MODE_ALWAYS)
        if class_type in NON_BACKEND_NODES or mode == MODE_NEVER:
            continue
        where = f"node {node['id']} "
        if mode == MODE_BYPASS:
            raise ConversionError(f"{where}{class_type}: bypassed nodes are not supported by this converter")
        schema = schemas.get(class_type)
        if schema is None:
            raise ConversionError(f"{where}: unknown node type {class_type!r}")
        inputs = assign_widgets(schema, node.get("widgets_values"), where=where)
        for socket in node.get("inputs") or []:
            link_id = socket.get("link")
            if link_id is None:
                continue
            link = links.get(int(link_id))
            if link is None:
                raise ConversionError(f"{where}{class_type}: input {socket['name']!r} uses missing link {link_id}")
            origin = by_id.get(int(link[1]))
            if origin is None:
                raise ConversionError(f"{where}{class_type}: link {link_id} comes from missing node {link[1]}")
            if origin.get("type") in NON_BACKEND_NODES or origin.get("mode", MODE_ALWAYS) in (MODE_NEVER, MODE_BYPASS):
                raise ConversionError(f"{where}{class_type}: input {socket['name']!r} is linked to a "
                                      f"{origin.get('type')} node, which this converter does not resolve")
            if schema.input(socket["name"]) is None:
                raise ConversionError(f"{where}{class_type}: linked input {socket['name']!r} is not declared")
            inputs[socket["name"]] = [str(link[1]), int(link[2])]
        prompt[str(node["id"])] = {
            "inputs": inputs,
            "class_type": class_type,
            "_meta": {"title": node.get("title") or schema.display_name or class_type},
        }
    return prompt


# API name -> title of the UI workflow (tests/workflows/templates.json, read by the web tests too; in reading
# order). ComfyUI 0.3.64's template browser shows a custom node's template under its
# file name (no title field), so the UI files are named by their titles; the number orders them for readers
# (the browser lists them in directory order) and every sorted listing. The thumbnail is ``<title>.jpg``.
TEMPLATES: dict[str, str] = json.loads((Path(__file__).with_name("templates.json")).read_text(encoding="utf-8"))
API_NAMES: dict[str, str] = {title: name for name, title in TEMPLATES.items()}


def api_name(ui_path: Path) -> str:
    """The API file name (``text2music``) of a UI workflow file (``01 Text to music.json``)."""
    if ui_path.stem not in API_NAMES:
        raise ConversionError(f"{ui_path.name}: not in TEMPLATES (tests/workflows/ui_to_api.py); add its API name")
    return API_NAMES[ui_path.stem]


def regenerate_api_workflows(workflows_dir: Path) -> list[Path]:
    """Rewrite ``<dir>/api/<name>.json`` from every UI workflow ``<dir>/<title>.json`` (our nodes + pinned core)."""
    from nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    schemas = {**schemas_from_classes(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS), **core_schemas()}
    api_dir = workflows_dir / "api"
    api_dir.mkdir(exist_ok=True)
    written = []
    for path in sorted(workflows_dir.glob("*.json")):
        prompt = convert(json.loads(path.read_text(encoding="utf-8")), schemas)
        target = api_dir / f"{api_name(path)}.json"
        target.write_text(json.dumps(prompt, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    return written


if __name__ == "__main__":
    for written_path in regenerate_api_workflows(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("workflows")):
        print(written_path)

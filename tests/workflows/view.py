"""How a workflow opens in ComfyUI 0.3.64's frontend (1.27) on a 1920x1080 screen: the view stored in
``extra.ds`` must show every node, readable, without overlaps.

Measured in the real frontend (``tests/comfy/test_workflow_views.py``, headless Chromium): the canvas starts below
the tab bar and menu (78 px) right of the side toolbar (64 px); the minimap and zoom buttons cover the bottom right
corner; a browser on a 1080 px screen leaves about 950 px of page height. A node's box is ``pos`` / ``size`` plus
its 30 px title above ``pos``; the stored view maps graph point ``p`` to screen ``(p + offset) * scale + origin``.
Below a scale of about 0.6 the frontend draws nodes without their widgets (level of detail), so views stay above
:data:`MIN_SCALE`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CANVAS_ORIGIN", "MAX_SCALE", "MIN_SCALE", "SAFE", "TITLE_HEIGHT", "frame", "node_boxes", "view_problems"]

CANVAS_ORIGIN = (64.0, 78.0)  # page pixels: right of the side toolbar, below tabs + menu
SAFE = (80.0, 94.0, 1580.0, 930.0)  # page pixels that nothing covers on a 1920 x 950 page (minimap: x > 1590)
TITLE_HEIGHT = 30.0
MIN_SCALE, MAX_SCALE = 0.65, 0.85
SIZE_SLACK = 2.0  # graph units of rounding tolerated between stored and rendered sizes


def node_boxes(workflow: dict[str, Any]) -> dict[int, tuple[float, float, float, float]]:
    """Node id -> (x0, y0, x1, y1) in graph units, title included."""
    boxes = {}
    for node in workflow["nodes"]:
        (x, y), (w, h) = node["pos"], node["size"]
        boxes[node["id"]] = (float(x), float(y) - TITLE_HEIGHT, float(x) + w, float(y) + h)
    return boxes


def _bounds(boxes: dict[int, tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (min(b[0] for b in boxes.values()), min(b[1] for b in boxes.values()),
            max(b[2] for b in boxes.values()), max(b[3] for b in boxes.values()))


def frame(workflow: dict[str, Any]) -> dict[str, Any]:
    """The ``extra.ds`` that shows the whole graph in the top left of :data:`SAFE` (centred across when it is
    narrower), as large as fits (at most :data:`MAX_SCALE`)."""
    x0, y0, x1, y1 = _bounds(node_boxes(workflow))
    width, height = SAFE[2] - SAFE[0], SAFE[3] - SAFE[1]
    scale = round(min(MAX_SCALE, width / (x1 - x0), height / (y1 - y0)) - 0.005, 2)
    pad_x, pad_y = max(0.0, (width - (x1 - x0) * scale) / 2), 0.0
    offset = [round((SAFE[0] + pad_x - CANVAS_ORIGIN[0]) / scale - x0, 1),
              round((SAFE[1] + pad_y - CANVAS_ORIGIN[1]) / scale - y0, 1)]
    return {"scale": scale, "offset": offset}


def screen_box(box: tuple[float, float, float, float], ds: dict[str, Any]) -> tuple[float, float, float, float]:
    scale, (ox, oy) = ds["scale"], ds["offset"]
    return ((box[0] + ox) * scale + CANVAS_ORIGIN[0], (box[1] + oy) * scale + CANVAS_ORIGIN[1],
            (box[2] + ox) * scale + CANVAS_ORIGIN[0], (box[3] + oy) * scale + CANVAS_ORIGIN[1])


def view_problems(workflow: dict[str, Any], boxes: dict[int, tuple[float, float, float, float]] | None = None
                  ) -> list[str]:
    """What a user would see wrong when the workflow opens: nodes outside the visible area, overlapping nodes, a
    view too small to read. ``boxes`` (rendered sizes from the frontend) default to the stored ones."""
    boxes = boxes or node_boxes(workflow)
    ds = workflow.get("extra", {}).get("ds")
    if not ds:
        return ["no stored view (extra.ds): the frontend opens it wherever the last graph was"]
    problems = []
    if not MIN_SCALE <= ds["scale"] <= MAX_SCALE:
        problems.append(f"view scale {ds['scale']} outside [{MIN_SCALE}, {MAX_SCALE}] (widgets unreadable below)")
    titles = {n["id"]: n.get("title") or n["type"] for n in workflow["nodes"]}
    for node_id, box in boxes.items():
        x0, y0, x1, y1 = screen_box(box, ds)
        if x0 < SAFE[0] - 1 or y0 < SAFE[1] - 1 or x1 > SAFE[2] + 1 or y1 > SAFE[3] + 1:
            problems.append(f"{titles[node_id]} (#{node_id}) at {[round(v) for v in (x0, y0, x1, y1)]} is outside "
                            f"the visible area {SAFE}")
    ids = sorted(boxes)
    for index, a in enumerate(ids):
        for b in ids[index + 1:]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            if ax0 < bx1 - SIZE_SLACK and bx0 < ax1 - SIZE_SLACK and ay0 < by1 - SIZE_SLACK and by0 < ay1 - SIZE_SLACK:
                problems.append(f"{titles[a]} (#{a}) overlaps {titles[b]} (#{b})")
    return problems

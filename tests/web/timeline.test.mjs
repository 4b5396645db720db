// Unit tests of web/lib/timeline.js (run by tests/test_web.py with `node --test`).
import assert from "node:assert/strict";
import test from "node:test";

import {
  clampRepaint, dragExtend, dragRepaint, extendSideLimit, extendView, formatTime, frameOf, hitTest, makeScale,
  nudgeExtend, nudgeRepaint, readExtend, readRepaint, rulerTicks, snapSeconds, valueInFrame,
} from "../../web/lib/timeline.js";

const RATE = 44100 / 4096; // nodes/web_events.py timeline_info()["latent_rate_hz"]
const SOURCE_FRAMES = 33; // a 3.0 s source: ceil(132300 / 4096)
const REPAINT = { rate: RATE, sourceFrames: SOURCE_FRAMES, decimals: 1 };
const EXTEND = { rate: RATE, sourceFrames: SOURCE_FRAMES, maxFrames: 2583, maxSideFrames: frameOf(240, RATE), decimals: 1 };

test("frameOf truncates like Python's int(s * rate)", () => {
  assert.equal(frameOf(10, RATE), 107);
  assert.equal(frameOf(0.5, RATE), 5);
  assert.equal(frameOf(1.5, RATE), 16);
  assert.equal(frameOf(240, RATE), 2583);
});

test("valueInFrame picks the shortest number that lands in the frame", () => {
  assert.equal(valueInFrame(0, RATE, 1), 0);
  assert.equal(valueInFrame(107, RATE, 1), 10);
  assert.equal(valueInFrame(108, RATE, 1), 10.1);
  let unreachable = 0;
  for (let frame = 0; frame <= 2583; frame++) {
    const one = valueInFrame(frame, RATE, 1);
    if (one === null) unreachable++;
    else assert.equal(frameOf(one, RATE), frame, `frame ${frame}`);
    const two = valueInFrame(frame, RATE, 2);
    assert.notEqual(two, null, `frame ${frame} at 2 decimals`);
    assert.equal(frameOf(two, RATE), frame);
    assert.ok(Math.abs(two * 100 - Math.round(two * 100)) < 1e-6);
  }
  // 0.1 s steps are a little coarser than a frame (0.093 s): a few frames have no one-decimal value.
  assert.ok(unreachable > 0 && unreachable < 0.1 * 2584, String(unreachable));
});

test("snapSeconds goes to the nearest reachable frame boundary inside the bounds", () => {
  assert.deepEqual(snapSeconds(9.95, RATE, { decimals: 1 }), { frame: 107, value: 10 });
  assert.deepEqual(snapSeconds(-5, RATE, { decimals: 1 }), { frame: 0, value: 0 });
  const high = snapSeconds(500, RATE, { decimals: 1, maxFrame: SOURCE_FRAMES });
  assert.equal(high.frame, SOURCE_FRAMES);
  assert.equal(high.value, 3.1);
  for (let t = 0; t < 30; t += 0.037) {
    const snapped = snapSeconds(t, RATE, { decimals: 1 });
    assert.equal(frameOf(snapped.value, RATE), snapped.frame);
    assert.ok(Math.abs(snapped.frame / RATE - t) < 2.5 / RATE, `t=${t}`);
  }
});

test("the scale maps time and pixels both ways; hit testing finds handles first", () => {
  const scale = makeScale(-2, 8, 500);
  assert.equal(scale.toX(-2), 0);
  assert.equal(scale.toX(8), 500);
  assert.equal(scale.toX(3), 250);
  for (const x of [0, 17, 250, 499]) assert.ok(Math.abs(scale.toX(scale.toT(x)) - x) < 1e-9);
  assert.equal(hitTest(103, 100, 200), "start");
  assert.equal(hitTest(196, 100, 200), "end");
  assert.equal(hitTest(150, 100, 200), "inside");
  assert.equal(hitTest(20, 100, 200), "outside");
  assert.equal(hitTest(101, 100, 103), "start"); // a tiny window: the nearer handle wins
});

test("ruler ticks are evenly spaced at a readable step with m:ss labels", () => {
  const ticks = rulerTicks(0, 30, 600, 56);
  assert.deepEqual(ticks.map((t) => t.t), [0, 5, 10, 15, 20, 25, 30]);
  assert.deepEqual(ticks.map((t) => t.label).slice(0, 3), ["0:00", "0:05", "0:10"]);
  assert.deepEqual(rulerTicks(-3, 3, 600, 56).map((t) => t.label)[0], "-0:03");
  assert.deepEqual(rulerTicks(0, 1, 600, 56).map((t) => t.label).slice(0, 2), ["0:00.0", "0:00.1"]);
  assert.equal(formatTime(65), "1:05");
  assert.equal(formatTime(-5), "-0:05");
  assert.equal(formatTime(1.5, 0.5), "0:01.5");
  assert.equal(formatTime(59.96, 0.1), "1:00.0");
  assert.deepEqual(rulerTicks(0, 0, 600), []);
});

test("readRepaint explains what the backend would refuse", () => {
  assert.equal(readRepaint({ start_s: 0.5, end_s: 1.5 }, REPAINT).problem, null);
  assert.match(readRepaint({ start_s: 1.5, end_s: 1.0 }, REPAINT).problem, /below end_s/);
  assert.match(readRepaint({ start_s: 1.0, end_s: 5.0 }, REPAINT).problem, /past the end .*3\.07 s/);
  assert.match(readRepaint({ start_s: 1.0, end_s: 1.01 }, REPAINT).problem, /one latent frame/);
  assert.deepEqual(clampRepaint({ start_s: 1.0, end_s: 5.0 }, REPAINT), { start_s: 1, end_s: 3.1 });
});

test("dragging repaint edges, the window and a new selection stays inside the source", () => {
  const drag = { start_s: 0.5, end_s: 1.5, anchor_s: 1.0 };
  assert.deepEqual(dragRepaint(REPAINT, { ...drag, kind: "end" }, 10), { start_s: 0.5, end_s: 3.1 });
  assert.deepEqual(dragRepaint(REPAINT, { ...drag, kind: "start" }, -1), { start_s: 0, end_s: 1.5 });
  assert.deepEqual(dragRepaint(REPAINT, { ...drag, kind: "start" }, 2.9), { start_s: 1.4, end_s: 1.5 });
  const moved = dragRepaint(REPAINT, { ...drag, kind: "move" }, 2.5);
  const read = readRepaint(moved, REPAINT);
  assert.equal(read.problem, null);
  assert.equal(read.endFrame - read.startFrame, 11); // the length is kept
  assert.equal(read.endFrame, SOURCE_FRAMES);
  const created = dragRepaint(REPAINT, { ...drag, kind: "create", anchor_s: 2.0 }, 1.0);
  assert.deepEqual(created, { start_s: 1.1, end_s: 2.1 }); // frames 11 and 22: the boundaries nearest 1 s, 2 s
  assert.equal(readRepaint(dragRepaint(REPAINT, { ...drag, kind: "create", anchor_s: 1 }, 1), REPAINT).problem, null);
});

test("keyboard nudges move one reachable frame and never leave the source", () => {
  const values = { start_s: 0.5, end_s: 1.5 };
  assert.deepEqual(nudgeRepaint(REPAINT, values, "start", 1), { start_s: 0.6, end_s: 1.5 });
  assert.deepEqual(nudgeRepaint(REPAINT, values, "start", -1), { start_s: 0.4, end_s: 1.5 });
  assert.deepEqual(nudgeRepaint(REPAINT, values, "both", 1), { start_s: 0.6, end_s: 1.6 });
  assert.deepEqual(nudgeRepaint(REPAINT, { start_s: 0.5, end_s: 3.1 }, "end", 1), { start_s: 0.5, end_s: 3.1 });
  assert.deepEqual(nudgeRepaint(REPAINT, { start_s: 0, end_s: 1 }, "both", -11), { start_s: 0, end_s: 1 });
  const second = nudgeRepaint(REPAINT, values, "end", Math.round(RATE));
  assert.equal(readRepaint(second, REPAINT).endFrame - readRepaint(values, REPAINT).endFrame, 11);
});

test("extend: the backend's limits, edge drags past either end, nudges", () => {
  assert.match(readExtend({ left_s: 0, right_s: 0 }, EXTEND).problem, /nothing to extend/);
  assert.match(readExtend({ left_s: 0, right_s: 0.05 }, EXTEND).problem, /less than one latent frame/);
  assert.match(readExtend({ left_s: 0, right_s: 5 }, EXTEND).problem, /at most the source length/);
  assert.equal(readExtend({ left_s: 0.5, right_s: 1 }, EXTEND).problem, null);
  const long = { ...EXTEND, sourceFrames: 2000 };
  assert.match(readExtend({ left_s: 40, right_s: 40 }, long).problem, /extend one side per run/);
  assert.equal(extendSideLimit(long, 500), 83);
  assert.equal(extendSideLimit(EXTEND, 0), SOURCE_FRAMES);
  const sourceS = SOURCE_FRAMES / RATE;
  assert.deepEqual(dragExtend(EXTEND, "right", sourceS + 100, { left_s: 0, right_s: 1 }), { left_s: 0, right_s: 3.1 });
  assert.deepEqual(dragExtend(EXTEND, "right", 1, { left_s: 0, right_s: 1 }), { left_s: 0, right_s: 0 });
  assert.deepEqual(dragExtend(EXTEND, "left", -1.5, { left_s: 0, right_s: 1 }), { left_s: 1.5, right_s: 1 });
  assert.deepEqual(nudgeExtend(EXTEND, { left_s: 0, right_s: 1 }, "left", 1), { left_s: 0.1, right_s: 1 });
  assert.deepEqual(nudgeExtend(EXTEND, { left_s: 0, right_s: 1 }, "left", -1), { left_s: 0, right_s: 1 });
  const view = extendView(EXTEND);
  assert.ok(Math.abs(view.startS + sourceS) < 1e-12 && Math.abs(view.endS - 2 * sourceS) < 1e-12);
});

test("moving a window keeps its length in frames even where 0.1 s steps skip a frame", () => {
  for (let start = 0; start + 16 <= 2583; start += 7) {
    const values = { start_s: valueInFrame(start, RATE, 2), end_s: valueInFrame(start + 16, RATE, 2) };
    const spec = { rate: RATE, sourceFrames: 2583, decimals: 1 };
    const moved = dragRepaint(spec, { kind: "move", ...values, anchor_s: 0 }, 0.55);
    const read = readRepaint(moved, spec);
    assert.equal(read.endFrame - read.startFrame, 16, `from frame ${start}`);
    assert.ok(Math.abs(read.startFrame - (start + 0.55 * RATE)) <= 6);
    const nudged = readRepaint(nudgeRepaint(spec, moved, "both", 1), spec);
    assert.equal(nudged.endFrame - nudged.startFrame, 16);
    assert.ok(nudged.startFrame > read.startFrame || read.endFrame === 2583);
  }
});

// Unit tests of web/lib/train_chart.js with synthetic acestep.train.* messages (payloads of
// nodes/web_events.py train_progress_payload / train_preview_payload).
import assert from "node:assert/strict";
import test from "node:test";

import {
  applyPreview, applyProgress, chartGeometry, createTrainState, formatClock, MAX_POINTS, niceRange, statusText,
} from "../../web/lib/train_chart.js";

function progress(step, loss, extra = {}) {
  return { node: "12", step, max_steps: 100, loss, lr: 1e-4 * (1 - step / 100), elapsed_s: step * 2, ...extra };
}

function run(messages, state = createTrainState()) {
  for (const message of messages) ({ state } = applyProgress(state, message));
  return state;
}

test("progress messages build the series; a smaller step starts a new run", () => {
  const state = run([1, 2, 3, 4].map((step) => progress(step, 1 / step)));
  assert.deepEqual(state.points.map((p) => p.step), [1, 2, 3, 4]);
  assert.equal(state.maxSteps, 100);
  assert.equal(state.points[0].ema, 1);
  assert.ok(state.points[3].ema < 1 && state.points[3].ema > 0.25);
  assert.equal(state.elapsedS, 8);
  const restarted = run([progress(1, 0.9)], state);
  assert.deepEqual(restarted.points.map((p) => p.step), [1]);
});

test("bad messages are ignored with a reason; a non-finite loss is a gap", () => {
  const state = createTrainState();
  for (const bad of [null, {}, { step: 1.5, max_steps: 10 }, { step: 1, max_steps: 0 }, { step: -1, max_steps: 5 }]) {
    const out = applyProgress(state, bad);
    assert.equal(out.state, state);
    assert.match(out.error, /step/);
  }
  const gapped = run([progress(1, 0.5), progress(2, null), progress(3, 0.4)]);
  assert.equal(gapped.points[1].loss, null);
  const geo = chartGeometry(gapped, 200, 100);
  assert.equal(geo.lossSegments.length, 2);
  assert.equal(geo.lrSegments.length, 1);
});

test("long runs are thinned but keep the newest point", () => {
  const state = run(Array.from({ length: MAX_POINTS + 10 }, (_, i) => progress(i, 1, { max_steps: 5000 })));
  assert.ok(state.points.length <= MAX_POINTS);
  assert.equal(state.points[state.points.length - 1].step, MAX_POINTS + 9);
});

test("previews: one per step, sorted, file references kept", () => {
  let { state } = applyPreview(createTrainState(), { node: "12", step: 50, audio: { filename: "b.flac", subfolder: "p", type: "temp" } });
  ({ state } = applyPreview(state, { node: "12", step: 20, audio: { filename: "a.flac", subfolder: "p", type: "output" } }));
  ({ state } = applyPreview(state, { node: "12", step: 50, audio: { filename: "c.flac", subfolder: "p", type: "temp" } }));
  assert.deepEqual(state.previews.map((p) => [p.step, p.audio.filename, p.audio.type]),
    [[20, "a.flac", "output"], [50, "c.flac", "temp"]]);
  assert.match(applyPreview(state, { step: 3, audio: {} }).error, /filename/);
});

test("geometry: every point inside the plot, axes around the data, previews placed by step", () => {
  let state = run([0, 10, 20, 30].map((step) => progress(step, 2 - step / 20)));
  ({ state } = applyPreview(state, { node: "12", step: 20, audio: { filename: "p.flac" } }));
  const geo = chartGeometry(state, 400, 100);
  for (const [x, y] of geo.lossSegments.flat()) assert.ok(x >= 0 && x <= 400 && y >= 0 && y <= 100, `${x},${y}`);
  assert.ok(geo.loss.min <= 0.5 && geo.loss.max >= 2);
  assert.equal(geo.previewX[0].x, 80);
  assert.deepEqual(niceRange(0.13, 0.87, 4), { min: 0, max: 1, step: 0.2 });
  const lr = niceRange(0, 7e-4, 2);
  assert.ok(lr.min === 0 && Math.abs(lr.max - 1e-3) < 1e-12 && Math.abs(lr.step - 5e-4) < 1e-12);
  const flat = niceRange(1, 1); // a constant loss still gets a visible range around it
  assert.ok(flat.min < 1 && flat.max > 1 && flat.step > 0);
});

test("status line: step, loss, lr, elapsed and remaining time", () => {
  assert.match(statusText(createTrainState()), /Waiting/);
  const text = statusText(run([progress(10, 0.1234567), progress(20, 0.2)]));
  assert.match(text, /^step 20\/100 · loss 0\.2000 · smoothed 0\.1\d+ · lr 8\.00e-5 · 0:40 elapsed · ~2:40 left$/);
  assert.equal(formatClock(3725), "1:02:05");
});

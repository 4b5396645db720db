// Unit tests of web/lib/waveform.js (run by tests/test_web.py with `node --test`).
import assert from "node:assert/strict";
import test from "node:test";

import { computePeaks, fileRefFromWidgetValue, refKey, sourceFramesForSamples, viewPath } from "../../web/lib/waveform.js";

const TIMELINE = { latent_rate_hz: 44100 / 4096, sample_rate: 44100, max_frames: 2583 };

test("peaks: min and max per column over every channel", () => {
  const left = Float32Array.from([0, 1, -1, 0.5]);
  const right = Float32Array.from([0.2, 0, -0.3, 0.9]);
  const peaks = computePeaks([left, right], 2);
  assert.deepEqual(Array.from(peaks.min), [0, -1]);
  assert.deepEqual(Array.from(peaks.max), [1, Math.fround(0.9)]);
  const wide = computePeaks([left], 8); // more columns than samples: every column still has a sample
  assert.equal(wide.max.length, 8);
  assert.deepEqual(Array.from(computePeaks([], 3).max), [0, 0, 0]);
});

test("source frames as Audio To Latent counts them (the padded tail is a frame)", () => {
  assert.equal(sourceFramesForSamples(3 * 44100, 44100, TIMELINE), 33);
  assert.equal(sourceFramesForSamples(3 * 48000, 48000, TIMELINE), 33);
  assert.equal(sourceFramesForSamples(4096, 44100, TIMELINE), 1);
  assert.equal(sourceFramesForSamples(4097, 44100, TIMELINE), 2);
  assert.equal(sourceFramesForSamples(10 * 44100, 44100, TIMELINE), 108);
});

test("Load Audio widget values become /view references", () => {
  assert.deepEqual(fileRefFromWidgetValue("acestep_source.flac"),
    { filename: "acestep_source.flac", subfolder: "", type: "input" });
  assert.deepEqual(fileRefFromWidgetValue("songs/a b.wav [output]"),
    { filename: "a b.wav", subfolder: "songs", type: "output" });
  assert.equal(fileRefFromWidgetValue(""), null);
  assert.equal(fileRefFromWidgetValue(undefined), null);
  assert.equal(viewPath({ filename: "a b&c.flac", subfolder: "x/y", type: "input" }),
    "/view?filename=a+b%26c.flac&subfolder=x%2Fy&type=input");
  assert.notEqual(refKey({ filename: "a", type: "input" }), refKey({ filename: "a", type: "output" }));
  assert.equal(refKey(null), "");
});

// ACE-Step v1 pack: the pure logic of the waveform region picker (time <-> pixel mapping, latent-frame snapping,
// clamping to what the backend accepts, keyboard nudges, ruler ticks). No DOM, no side effects at import;
// unit-tested by tests/web/timeline.test.mjs.
//
// The backend counts a window edge at s seconds as latent frame int(s * rate) (nodes/latent.py), rate coming
// from the node schema (nodes/web_events.py timeline_info). The picker only ever writes values whose frame is
// the one it draws, with as few decimals as possible (never more than the widget shows), so the number box,
// the drawing and the backend agree.

export function clamp(value, lo, hi) {
  return Math.min(Math.max(value, lo), hi);
}

/** Python's int(seconds * rate) for seconds >= 0: the latent frame the backend reads for a window edge. */
export function frameOf(seconds, rate) {
  return Math.trunc(seconds * rate);
}

/** The shortest number with at most `decimals` decimals whose frame is `frame`, or null (none exists). */
export function valueInFrame(frame, rate, decimals) {
  for (let places = 0; places <= decimals; places++) {
    const scale = 10 ** places;
    let k = Math.ceil((frame / rate) * scale - 1e-7);
    for (let tries = 0; tries < 3; tries++, k++) { // float error may put the first candidate a frame early
      const value = Number((k / scale).toFixed(places));
      const found = frameOf(value, rate);
      if (found === frame) return value;
      if (found > frame) break;
    }
  }
  return null;
}

/** The frame nearest to `frame` within [lo, hi] that a `decimals`-place value can reach, searching toward
 * `direction` first (+1 / -1; 0 = either side, nearest first). {frame, value} or null. */
export function reachableFrame(frame, rate, decimals, lo, hi, direction = 0) {
  const start = clamp(Math.round(frame), lo, hi);
  for (let distance = 0; distance <= 4; distance++) {
    const candidates = distance === 0 ? [start]
      : direction > 0 ? [start + distance] : direction < 0 ? [start - distance]
        : frame >= start ? [start + distance, start - distance] : [start - distance, start + distance];
    for (const candidate of candidates) {
      if (candidate < lo || candidate > hi) continue;
      const value = valueInFrame(candidate, rate, decimals);
      if (value !== null) return { frame: candidate, value };
    }
  }
  return null;
}

/** Snap a time (seconds) to the nearest frame boundary in [minFrame, maxFrame]: {frame, value} or null. */
export function snapSeconds(seconds, rate, { decimals = 1, minFrame = 0, maxFrame = Infinity } = {}) {
  return reachableFrame(seconds * rate, rate, decimals, minFrame, maxFrame);
}

// ------------------------------------------------------------------------------------------ time <-> pixels
export function makeScale(startS, endS, widthPx) {
  const span = Math.max(endS - startS, 1e-9);
  const pxPerS = widthPx / span;
  return {
    startS, endS, widthPx, pxPerS,
    toX: (seconds) => (seconds - startS) * pxPerS,
    toT: (x) => startS + x / pxPerS,
  };
}

/** Which part of a region a pointer at x hits: "start" / "end" handle (within tolerance), "inside" or "outside". */
export function hitTest(x, startX, endX, tolerancePx = 6) {
  const toStart = Math.abs(x - startX);
  const toEnd = Math.abs(x - endX);
  if (Math.min(toStart, toEnd) <= tolerancePx) return toStart <= toEnd ? "start" : "end";
  return x > startX && x < endX ? "inside" : "outside";
}

const TICK_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

/** "m:ss" (or "m:ss.s" for sub-second steps), negative before the song start. */
export function formatTime(seconds, step = 1) {
  const decimals = step < 1 ? 1 : 0;
  const rounded = Number(Math.abs(seconds).toFixed(decimals));
  const minutes = Math.floor(rounded / 60);
  const rest = (rounded - minutes * 60).toFixed(decimals).padStart(decimals ? 4 : 2, "0");
  return `${seconds < 0 && rounded > 0 ? "-" : ""}${minutes}:${rest}`;
}

/** Ruler ticks between startS and endS at least minSpacingPx apart: [{t, label}]. */
export function rulerTicks(startS, endS, widthPx, minSpacingPx = 56) {
  const span = endS - startS;
  if (!(span > 0) || !(widthPx > 0)) return [];
  const minStep = (span * minSpacingPx) / widthPx;
  const largest = TICK_STEPS_S[TICK_STEPS_S.length - 1];
  const step = TICK_STEPS_S.find((s) => s >= minStep) ?? largest * Math.ceil(minStep / largest);
  const ticks = [];
  for (let i = Math.ceil(startS / step - 1e-9); i * step <= endS + 1e-9; i++) {
    const t = Number((i * step).toFixed(3));
    ticks.push({ t, label: formatTime(t, step) });
  }
  return ticks;
}

function seconds(frames, rate) {
  return `${(frames / rate).toFixed(2)} s`;
}

// --------------------------------------------------------------------------------------------------- repaint
// spec: {rate, sourceFrames, decimals}; values: {start_s, end_s} (the widgets).

/** The frames the backend will repaint for these values, and the reason it would refuse them (or null). */
export function readRepaint(values, spec) {
  const { rate, sourceFrames } = spec;
  const startFrame = frameOf(values.start_s, rate);
  const endFrame = frameOf(values.end_s, rate);
  let problem = null;
  if (!(values.start_s >= 0 && values.start_s < values.end_s)) {
    problem = "start_s must be below end_s";
  } else if (endFrame > sourceFrames) {
    problem = `end_s is past the end of the source (${seconds(sourceFrames, rate)})`;
  } else if (endFrame <= startFrame) {
    problem = "the window is shorter than one latent frame";
  }
  return { startFrame, endFrame, problem };
}

function repaintValues(startFrame, endFrame, spec, direction = 0) {
  const { rate, sourceFrames, decimals } = spec;
  const start = reachableFrame(startFrame, rate, decimals, 0, Math.max(0, sourceFrames - 1), direction);
  if (!start) return null;
  const end = reachableFrame(endFrame, rate, decimals, start.frame + 1, sourceFrames, direction);
  return end ? { start_s: start.value, end_s: end.value } : null;
}

/** The values as a window the backend accepts (inside the source, at least one frame), nearest first. */
export function clampRepaint(values, spec) {
  const { startFrame, endFrame } = readRepaint(values, spec);
  const start = clamp(startFrame, 0, spec.sourceFrames - 1);
  return repaintValues(start, clamp(Math.max(endFrame, start + 1), start + 1, spec.sourceFrames), spec);
}

/** The window of `length` frames starting nearest `startFrame` (searching toward `direction` first) whose two edges the widgets can both express (with
 * 0.1 s steps some frames are out of reach; keeping the length matters more than a frame of position). */
function moveRepaint(spec, length, startFrame, direction = 0) {
  const { rate, sourceFrames, decimals } = spec;
  const target = clamp(Math.round(startFrame), 0, sourceFrames - length);
  for (let distance = 0; distance <= 6; distance++) {
    const both = [target + distance, target - distance];
    const candidates = !distance ? [target] : direction > 0 ? [both[0]] : direction < 0 ? [both[1]] : both;
    for (const start of candidates) {
      if (start < 0 || start + length > sourceFrames) continue;
      const a = valueInFrame(start, rate, decimals);
      const b = a === null ? null : valueInFrame(start + length, rate, decimals);
      if (b !== null) return { start_s: a, end_s: b };
    }
  }
  return repaintValues(target, target + length, spec);
}

/** New widget values while dragging. drag: {kind: "start"|"end"|"move"|"create", start_s, end_s (at the
 * press, already clamped), anchor_s (time of the press)}; t: the pointer's time now. */
export function dragRepaint(spec, drag, t) {
  const { rate, sourceFrames, decimals } = spec;
  const startFrame = frameOf(drag.start_s, rate);
  const endFrame = frameOf(drag.end_s, rate);
  const snap = (time, lo, hi) => snapSeconds(time, rate, { decimals, minFrame: lo, maxFrame: hi });
  if (drag.kind === "start") {
    const start = snap(t, 0, endFrame - 1);
    return start && { start_s: start.value, end_s: drag.end_s };
  }
  if (drag.kind === "end") {
    const end = snap(t, startFrame + 1, sourceFrames);
    return end && { start_s: drag.start_s, end_s: end.value };
  }
  if (drag.kind === "move") return moveRepaint(spec, endFrame - startFrame, (drag.start_s + t - drag.anchor_s) * rate);
  const start = snap(Math.min(drag.anchor_s, t), 0, sourceFrames - 1); // "create": a new window
  const end = start && snap(Math.max(drag.anchor_s, t), start.frame + 1, sourceFrames);
  return end ? { start_s: start.value, end_s: end.value } : null;
}

/** Keyboard nudge by `frames` (negative = earlier) of the "start" / "end" handle or the "both" (whole window). */
export function nudgeRepaint(spec, values, handle, frames) {
  const current = clampRepaint(values, spec);
  if (!current) return null;
  const { rate, sourceFrames, decimals } = spec;
  const startFrame = frameOf(current.start_s, rate);
  const endFrame = frameOf(current.end_s, rate);
  const direction = Math.sign(frames);
  if (handle === "start") {
    const start = reachableFrame(startFrame + frames, rate, decimals, 0, endFrame - 1, direction);
    return start && { start_s: start.value, end_s: current.end_s };
  }
  if (handle === "end") {
    const end = reachableFrame(endFrame + frames, rate, decimals, startFrame + 1, sourceFrames, direction);
    return end && { start_s: current.start_s, end_s: end.value };
  }
  const shift = clamp(frames, -startFrame, sourceFrames - endFrame);
  return shift ? moveRepaint(spec, endFrame - startFrame, startFrame + shift, direction) : current;
}

// ---------------------------------------------------------------------------------------------------- extend
// spec: {rate, sourceFrames, maxFrames (longest window), maxSideFrames (widget max), decimals};
// values: {left_s, right_s}. The picker's timeline starts at -left_max: the source spans [0, sourceFrames].

/** Frames the backend adds on each side, and the reason it would refuse the values (or null). */
export function readExtend(values, spec) {
  const { rate, sourceFrames, maxFrames } = spec;
  const leftFrames = frameOf(values.left_s, rate);
  const rightFrames = frameOf(values.right_s, rate);
  let problem = null;
  if (!(values.left_s >= 0 && values.right_s >= 0)) {
    problem = "left_s and right_s must be 0 or more";
  } else if (leftFrames === 0 && rightFrames === 0) {
    problem = values.left_s > 0 || values.right_s > 0 ? "less than one latent frame (0.093 s) to add"
      : "nothing to extend: drag an edge outward";
  } else if (leftFrames > sourceFrames || rightFrames > sourceFrames) {
    problem = `one run adds at most the source length per side (${seconds(sourceFrames, rate)})`;
  } else if (leftFrames > 0 && rightFrames > 0 && leftFrames + sourceFrames + rightFrames > maxFrames) {
    problem = `both sides together exceed ${seconds(maxFrames, rate)}: extend one side per run`;
  }
  return { leftFrames, rightFrames, problem };
}

/** The most frames one side may add given the other side's frames. */
export function extendSideLimit(spec, otherFrames) {
  const { sourceFrames, maxFrames, maxSideFrames } = spec;
  const both = otherFrames > 0 ? maxFrames - sourceFrames - otherFrames : Infinity;
  return Math.max(0, Math.min(sourceFrames, maxSideFrames, both));
}

/** New values while dragging the "left" or "right" edge to time t (source start = 0). */
export function dragExtend(spec, handle, t, values) {
  const { rate, sourceFrames, decimals } = spec;
  const { leftFrames, rightFrames } = readExtend(values, spec);
  if (handle === "left") {
    const left = snapSeconds(-t, rate, { decimals, minFrame: 0, maxFrame: extendSideLimit(spec, rightFrames) });
    return left && { left_s: left.value, right_s: values.right_s };
  }
  const right = snapSeconds(t - sourceFrames / rate, rate,
    { decimals, minFrame: 0, maxFrame: extendSideLimit(spec, leftFrames) });
  return right && { left_s: values.left_s, right_s: right.value };
}

/** Keyboard nudge of the "left" / "right" edge by `frames` outward (positive = longer song). */
export function nudgeExtend(spec, values, handle, frames) {
  const { rate, decimals } = spec;
  const { leftFrames, rightFrames } = readExtend(values, spec);
  const mine = handle === "left" ? leftFrames : rightFrames;
  const limit = extendSideLimit(spec, handle === "left" ? rightFrames : leftFrames);
  const side = reachableFrame(clamp(mine + frames, 0, limit), rate, decimals, 0, limit, Math.sign(frames));
  if (!side) return null;
  return handle === "left" ? { left_s: side.value, right_s: values.right_s }
    : { left_s: values.left_s, right_s: side.value };
}

/** The picker's visible span for extend: every reachable edge, [-left max, source + right max] seconds. */
export function extendView(spec) {
  const side = Math.min(spec.sourceFrames, spec.maxSideFrames) / spec.rate;
  return { startS: -side, endS: spec.sourceFrames / spec.rate + side };
}

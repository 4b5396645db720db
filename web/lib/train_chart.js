// ACE-Step v1 pack: the training chart's state and geometry, from the Train LoRA node's progress / preview
// messages (payloads: nodes/web_events.py train_progress_payload / train_preview_payload). Pure: no DOM, no
// side effects at import; unit-tested by tests/web/train_chart.test.mjs with synthetic messages.

export const MAX_POINTS = 2000; // older points are thinned (every other one) beyond this
export const SMOOTHING = 0.9; // exponential moving average of the loss, drawn over the raw loss

export function createTrainState() {
  return { maxSteps: 0, points: [], previews: [], lastStep: -1, elapsedS: 0, ema: null };
}

function isCount(value, min) {
  return Number.isInteger(value) && value >= min;
}

function finiteOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A new state with one progress message applied; {state, error} (error: why the message was ignored). A step
 * at or below the last one starts a new run (the chart is cleared). */
export function applyProgress(state, message) {
  if (!message || !isCount(message.step, 0) || !isCount(message.max_steps, 1)) {
    return { state, error: "progress message without integer step / max_steps" };
  }
  const base = message.step <= state.lastStep ? createTrainState() : state;
  const loss = finiteOrNull(message.loss);
  const ema = loss === null ? base.ema : base.ema === null ? loss : SMOOTHING * base.ema + (1 - SMOOTHING) * loss;
  let points = [...base.points, { step: message.step, loss, lr: finiteOrNull(message.lr), ema: loss === null ? null : ema }];
  if (points.length > MAX_POINTS) points = points.filter((_, i) => i % 2 === 1 || i === points.length - 1);
  return {
    state: { ...base, maxSteps: message.max_steps, points, lastStep: message.step, ema,
      elapsedS: finiteOrNull(message.elapsed_s) ?? base.elapsedS },
    error: null,
  };
}

/** A new state with a preview message applied (one preview per step, sorted by step); {state, error}. */
export function applyPreview(state, message) {
  const audio = message?.audio;
  if (!message || !isCount(message.step, 0) || typeof audio?.filename !== "string" || !audio.filename) {
    return { state, error: "preview message without step / audio.filename" };
  }
  const preview = { step: message.step, audio: { filename: audio.filename, subfolder: audio.subfolder ?? "",
    type: audio.type === "temp" ? "temp" : "output" } };
  const previews = [...state.previews.filter((p) => p.step !== message.step), preview].sort((a, b) => a.step - b.step);
  return { state: { ...state, previews }, error: null };
}

/** A "nice" axis over [lo, hi] with about `count` ticks: {min, max, step}. */
export function niceRange(lo, hi, count = 4) {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return { min: 0, max: 1, step: 0.25 };
  if (hi - lo < 1e-12) {
    const pad = Math.abs(hi) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  return { min: Math.floor(lo / step) * step, max: Math.ceil(hi / step) * step, step };
}

function ticks(range) {
  const out = [];
  for (let v = range.min; v <= range.max + range.step / 2; v += range.step) out.push(Number(v.toPrecision(6)));
  return out;
}

/** Polyline segments (arrays of [x, y]) of `key` over the points, split where the value is missing. */
function segments(points, key, toX, toY) {
  const out = [];
  let current = [];
  for (const point of points) {
    if (point[key] === null) {
      if (current.length) out.push(current);
      current = [];
    } else {
      current.push([toX(point.step), toY(point[key])]);
    }
  }
  if (current.length) out.push(current);
  return out;
}

/** Everything to draw, in pixels of a width x height plot area (y down): loss, smoothed loss and learning rate
 * segments, the axes' ranges and ticks, and the x positions of the saved previews. */
export function chartGeometry(state, width, height) {
  const steps = Math.max(1, state.maxSteps || (state.lastStep > 0 ? state.lastStep : 1));
  const losses = state.points.map((p) => p.loss).filter((v) => v !== null);
  const lrs = state.points.map((p) => p.lr).filter((v) => v !== null);
  const loss = niceRange(Math.min(...losses), Math.max(...losses));
  const lr = niceRange(0, lrs.length ? Math.max(...lrs) : 1, 2);
  const toX = (step) => (step / steps) * width;
  const lossY = (v) => height - ((v - loss.min) / (loss.max - loss.min)) * height;
  const lrY = (v) => height - ((v - lr.min) / (lr.max - lr.min)) * height;
  return {
    loss, lr, steps,
    lossSegments: segments(state.points, "loss", toX, lossY),
    emaSegments: segments(state.points, "ema", toX, lossY),
    lrSegments: segments(state.points, "lr", toX, lrY),
    lossTicks: ticks(loss).map((v) => ({ v, y: lossY(v) })),
    lrTicks: ticks(lr).map((v) => ({ v, y: lrY(v) })),
    previewX: state.previews.map((p) => ({ step: p.step, x: toX(p.step) })),
  };
}

/** "h:mm:ss" / "m:ss". */
export function formatClock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** The status line: step, loss, learning rate, elapsed and remaining time. */
export function statusText(state) {
  const last = state.points[state.points.length - 1];
  if (!last) return "Waiting for the first training step…";
  const parts = [`step ${last.step}/${state.maxSteps}`];
  parts.push(last.loss === null ? "loss not finite" : `loss ${last.loss.toPrecision(4)}`);
  if (last.ema !== null && last.ema !== undefined) parts.push(`smoothed ${last.ema.toPrecision(4)}`);
  if (last.lr !== null) parts.push(`lr ${last.lr.toExponential(2)}`);
  parts.push(`${formatClock(state.elapsedS)} elapsed`);
  if (last.step > 0 && last.step < state.maxSteps) {
    parts.push(`~${formatClock((state.elapsedS / last.step) * (state.maxSteps - last.step))} left`);
  }
  return parts.join(" · ");
}

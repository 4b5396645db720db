// ACE-Step v1 pack: the region picker's DOM and canvas drawing (waveform, window, handles, ruler, playhead).
// No ComfyUI and no state: the extension (acestep_region_picker.js) builds a model and calls drawPicker().
// Nothing runs at import.

import { makeScale, rulerTicks } from "./timeline.js";

export const RULER_PX = 18;
export const HANDLE_TOLERANCE_PX = 7;

export const PICKER_CSS = `
.acestep-picker { display: flex; flex-direction: column; gap: 4px; width: 100%; height: 100%; box-sizing: border-box;
  font: 11px sans-serif; color: var(--input-text, #ddd); }
.acestep-picker-bar { display: flex; gap: 4px; align-items: center; min-height: 22px; }
.acestep-picker-bar button { font: inherit; padding: 2px 8px; border-radius: 4px; cursor: pointer;
  background: var(--comfy-input-bg, #222); color: inherit; border: 1px solid var(--border-color, #444); }
.acestep-picker-bar button:disabled { opacity: 0.4; cursor: default; }
.acestep-picker-status { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; opacity: 0.85; }
.acestep-picker canvas { flex: 1; width: 100%; min-height: 60px; border-radius: 4px; outline: none;
  background: var(--comfy-input-bg, #1b1b1b); touch-action: none; }
.acestep-picker canvas:focus-visible { box-shadow: 0 0 0 2px #4a9eff; }
.acestep-picker-info { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; opacity: 0.7; }
.acestep-picker-info.is-problem { color: #ff8a7a; opacity: 1; }
`;

const COLORS = {
  wave: "#8fb8de", waveDim: "rgba(143,184,222,0.35)", window: "rgba(255,196,0,0.22)", edge: "#ffc400",
  problem: "rgba(255,100,80,0.3)", problemEdge: "#ff6a50", outside: "rgba(255,255,255,0.04)",
  added: "rgba(120,220,140,0.22)", addedEdge: "#78dc8c", ruler: "rgba(255,255,255,0.45)", playhead: "#fff",
  text: "rgba(255,255,255,0.6)",
};

function button(label, title) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = label;
  el.title = title;
  return el;
}

/** The picker's elements: {root, canvas, status (the window), info (source, or what the backend would refuse),
 * play, playPart, stop}; the usage hint is the canvas's tooltip. */
export function createPickerElement(kind) {
  const root = document.createElement("div");
  root.className = "acestep-picker";
  const bar = document.createElement("div");
  bar.className = "acestep-picker-bar";
  const play = button("▶ Song", "Play the source from its start");
  const playPart = kind === "repaint" ? button("▶ Window", "Play the window that will be repainted (Space)")
    : button("▶ Edge", "Play the source's end (or start) where the new audio will join (Space)");
  const stop = button("■", "Stop");
  const status = document.createElement("span");
  status.className = "acestep-picker-status";
  bar.append(play, playPart, stop, status);
  const canvas = document.createElement("canvas");
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "slider");
  canvas.setAttribute("aria-label", kind === "repaint" ? "repaint window" : "extension");
  canvas.title = kind === "repaint"
    ? "Drag to select a window, drag an edge or the window to change it. Keys: ←/→ one latent frame (Shift: 1 s), "
      + "[ and ] pick an edge, Space plays the window."
    : "Drag an edge outward to add time before or after the song. Keys: ←/→ one latent frame (Shift: 1 s), "
      + "[ and ] pick an edge, Space plays the edge.";
  const info = document.createElement("div");
  info.className = "acestep-picker-info";
  root.append(bar, canvas, info);
  return { root, canvas, status, info, play, playPart, stop };
}

function drawWave(ctx, scale, audio, top, height, clipStartS, clipEndS) {
  const x0 = Math.max(0, Math.floor(scale.toX(audio.startS)));
  const x1 = Math.min(scale.widthPx, Math.ceil(scale.toX(audio.endS)));
  const columns = Math.ceil(scale.toX(audio.endS) - scale.toX(audio.startS));
  if (x1 <= x0 || columns < 1) return;
  const peaks = audio.peaks(columns);
  const offset = Math.round(scale.toX(audio.startS));
  const mid = top + height / 2;
  for (let x = x0; x < x1; x++) {
    const i = x - offset;
    if (i < 0 || i >= peaks.max.length) continue;
    const t = scale.toT(x);
    ctx.fillStyle = t >= clipStartS && t <= clipEndS ? COLORS.wave : COLORS.waveDim;
    const hi = mid - peaks.max[i] * (height / 2);
    const lo = mid - peaks.min[i] * (height / 2);
    ctx.fillRect(x, hi, 1, Math.max(1, lo - hi));
  }
}

function drawEdge(ctx, x, top, height, color, selected) {
  ctx.fillStyle = color;
  ctx.fillRect(Math.round(x) - (selected ? 2 : 1), top, selected ? 4 : 2, height);
  ctx.fillRect(Math.round(x) - 4, top, 8, 6);
  ctx.fillRect(Math.round(x) - 4, top + height - 6, 8, 6);
}

function drawRuler(ctx, scale, top, dpr) {
  ctx.fillStyle = COLORS.ruler;
  ctx.font = `${10 * dpr}px sans-serif`;
  ctx.textBaseline = "top";
  for (const tick of rulerTicks(scale.startS, scale.endS, scale.widthPx, 56 * dpr)) {
    const x = Math.round(scale.toX(tick.t));
    ctx.fillRect(Math.min(x, scale.widthPx - 1), top, 1, 4 * dpr);
    const width = ctx.measureText(tick.label).width;
    const fits = x + 2 * dpr + width <= scale.widthPx; // the last label ends at the right edge
    ctx.fillText(tick.label, fits ? x + 2 * dpr : x - 2 * dpr - width, top + 4 * dpr);
  }
}

/** Draw `model` on `canvas` (sized to its CSS box). Returns the scale used (CSS px <-> seconds) or null.
 * model: {kind, view: {startS, endS}, sourceS, region: {startS, endS}, problem, audio: {startS, endS,
 * peaks(columns)} | null, playheadS, selected, message}. */
export function drawPicker(canvas, model) {
  const dpr = globalThis.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const height = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (!model.view) {
    ctx.fillStyle = COLORS.text;
    ctx.font = `${11 * dpr}px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(model.message ?? "", 8 * dpr, height / 2);
    return null;
  }
  const scale = makeScale(model.view.startS, model.view.endS, width);
  const waveHeight = height - RULER_PX * dpr;
  const srcX0 = scale.toX(0);
  const srcX1 = scale.toX(model.sourceS);
  ctx.fillStyle = COLORS.outside;
  ctx.fillRect(0, 0, Math.max(0, srcX0), waveHeight);
  ctx.fillRect(srcX1, 0, Math.max(0, width - srcX1), waveHeight);
  const x0 = scale.toX(model.region.startS);
  const x1 = scale.toX(model.region.endS);
  const bad = Boolean(model.problem);
  if (model.kind === "repaint") {
    ctx.fillStyle = bad ? COLORS.problem : COLORS.window;
    ctx.fillRect(x0, 0, x1 - x0, waveHeight);
  } else {
    ctx.fillStyle = bad ? COLORS.problem : COLORS.added;
    ctx.fillRect(x0, 0, Math.max(0, srcX0 - x0), waveHeight);
    ctx.fillRect(srcX1, 0, Math.max(0, x1 - srcX1), waveHeight);
  }
  if (model.audio) drawWave(ctx, scale, model.audio, 0, waveHeight, 0, model.sourceS);
  if (!model.audio) {
    ctx.fillStyle = COLORS.text;
    ctx.font = `${11 * dpr}px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(model.message ?? "", Math.max(4 * dpr, srcX0 + 6 * dpr), waveHeight / 2);
  }
  const edge = bad ? COLORS.problemEdge : model.kind === "repaint" ? COLORS.edge : COLORS.addedEdge;
  const [first, second] = model.kind === "repaint" ? ["start", "end"] : ["left", "right"];
  drawEdge(ctx, x0, 0, waveHeight, edge, model.selected === first || model.selected === "both");
  drawEdge(ctx, x1, 0, waveHeight, edge, model.selected === second || model.selected === "both");
  if (model.playheadS != null) {
    ctx.fillStyle = COLORS.playhead;
    ctx.fillRect(Math.round(scale.toX(model.playheadS)), 0, Math.max(1, dpr), waveHeight);
  }
  drawRuler(ctx, scale, waveHeight, dpr);
  return makeScale(model.view.startS, model.view.endS, width / dpr);
}

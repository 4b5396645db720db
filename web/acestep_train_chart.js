// ACE-Step v1 pack: live training chart on the Train LoRA node: loss (raw and smoothed) and learning rate from
// the node's progress events, and one player per preview it saved. Events and payloads: nodes/web_events.py.
import { addDisplayWidget, canAddDomWidget, chainCallback, ensureStyle, fitNode, guarded, loadComfy, warn }
  from "./lib/comfy.js";
import { TRAIN_NODE, TRAIN_PREVIEW_EVENT, TRAIN_PROGRESS_EVENT } from "./lib/contract.js";
import { nodeClass } from "./lib/graph.js";
import { applyPreview, applyProgress, chartGeometry, createTrainState, statusText } from "./lib/train_chart.js";
import { viewPath } from "./lib/waveform.js";

const FEATURE = "AceStepPack.TrainChart";
const PAD = { left: 44, right: 52, top: 8, bottom: 16 };
const CSS = `
.acestep-train { display: flex; flex-direction: column; gap: 4px; width: 100%; height: 100%; box-sizing: border-box;
  font: 11px sans-serif; color: var(--input-text, #ddd); }
.acestep-train canvas { flex: 1; width: 100%; min-height: 80px; border-radius: 4px;
  background: var(--comfy-input-bg, #1b1b1b); }
.acestep-train-status { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.acestep-train-previews { display: flex; flex-direction: column; gap: 2px; max-height: 140px; overflow: auto; }
.acestep-train-previews div { display: flex; align-items: center; gap: 6px; }
.acestep-train-previews audio { flex: 1; height: 26px; min-width: 0; }
`;

function strokeSegments(ctx, segments, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  for (const segment of segments) {
    ctx.beginPath();
    segment.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (segment.length === 1) ctx.lineTo(segment[0][0] + 1, segment[0][1]);
    ctx.stroke();
  }
}

class TrainChart {
  constructor(comfy, node) {
    this.api = comfy.api;
    this.node = node;
    this.state = createTrainState();
    this.root = document.createElement("div");
    this.root.className = "acestep-train";
    this.status = document.createElement("div");
    this.status.className = "acestep-train-status";
    this.canvas = document.createElement("canvas");
    this.previews = document.createElement("div");
    this.previews.className = "acestep-train-previews";
    this.root.append(this.status, this.canvas, this.previews);
    this.widget = addDisplayWidget(node, "acestep_train_chart", this.root,
      { getMinHeight: () => 180, getMaxHeight: () => 520 });
    this.onProgress = ({ detail }) => this.receive(detail, applyProgress);
    this.onPreview = ({ detail }) => this.receive(detail, applyPreview);
    this.api.addEventListener(TRAIN_PROGRESS_EVENT, this.onProgress);
    this.api.addEventListener(TRAIN_PREVIEW_EVENT, this.onPreview);
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.canvas);
    this.render();
  }

  receive(message, apply) {
    if (String(message?.node) !== String(this.node.id)) return; // another node's run
    guarded(FEATURE, "updating the chart", () => {
      const previewCount = this.state.previews.length;
      const { state, error } = apply(this.state, message);
      if (error) {
        warn(FEATURE, `ignored a message: ${error}`, message);
        return;
      }
      this.state = state;
      this.render(state.previews.length !== previewCount || state.previews.length === 0);
    });
  }

  render(previewsChanged = true) {
    this.status.textContent = statusText(this.state);
    this.draw();
    if (previewsChanged) this.renderPreviews();
  }

  renderPreviews() {
    const rows = this.state.previews.map((preview) => {
      const row = document.createElement("div");
      const label = document.createElement("span");
      label.textContent = `step ${preview.step}`;
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = this.api.apiURL(viewPath(preview.audio));
      row.append(label, audio);
      return row;
    });
    this.previews.replaceChildren(...rows);
  }

  draw() {
    const dpr = globalThis.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    this.canvas.width = width;
    this.canvas.height = height;
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    if (!this.state.points.length) return;
    const plotW = width - (PAD.left + PAD.right) * dpr;
    const plotH = height - (PAD.top + PAD.bottom) * dpr;
    const geo = chartGeometry(this.state, plotW, plotH);
    ctx.save();
    ctx.translate(PAD.left * dpr, PAD.top * dpr);
    ctx.font = `${10 * dpr}px sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillStyle = "rgba(255,255,255,0.5)";
    for (const tick of geo.lossTicks) {
      ctx.fillRect(0, tick.y, plotW, 1);
      ctx.textAlign = "right";
      ctx.fillText(String(tick.v), -4 * dpr, tick.y);
    }
    ctx.fillStyle = "#e6a23c";
    for (const tick of geo.lrTicks) {
      ctx.textAlign = "left";
      ctx.fillText(tick.v.toExponential(1), plotW + 4 * dpr, tick.y);
    }
    ctx.fillStyle = "rgba(120,220,140,0.7)";
    for (const preview of geo.previewX) ctx.fillRect(preview.x, 0, Math.max(1, dpr), plotH);
    strokeSegments(ctx, geo.lrSegments, "rgba(230,162,60,0.8)", dpr);
    strokeSegments(ctx, geo.lossSegments, "rgba(143,184,222,0.45)", dpr);
    strokeSegments(ctx, geo.emaSegments, "#8fb8de", 2 * dpr);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillStyle = "rgba(255,255,255,0.5)";
    ctx.fillText(`loss (blue) · lr (orange) · ${geo.steps} steps`, 0, plotH + 3 * dpr);
    ctx.restore();
  }

  dispose() {
    this.api.removeEventListener(TRAIN_PROGRESS_EVENT, this.onProgress);
    this.api.removeEventListener(TRAIN_PREVIEW_EVENT, this.onPreview);
    this.resizeObserver.disconnect();
    for (const audio of this.previews.querySelectorAll("audio")) audio.pause();
  }
}

const comfy = await loadComfy(FEATURE);
if (comfy) {
  comfy.app.registerExtension({
    name: FEATURE,
    setup() {
      ensureStyle("acestep-train-chart-css", CSS);
    },
    nodeCreated(node) {
      if (nodeClass(node) !== TRAIN_NODE || !canAddDomWidget(FEATURE, node)) return;
      guarded(FEATURE, "building the chart", () => {
        const chart = new TrainChart(comfy, node);
        node.acestepTrainChart = chart;
        chainCallback(node, "onRemoved", () => chart.dispose());
        fitNode(node);
      });
    },
  });
}

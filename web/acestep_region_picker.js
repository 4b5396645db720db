// ACE-Step v1 pack: waveform region picker on Repaint Window (start_s / end_s) and Extend Latent (left_s /
// right_s). The source is drawn from the upstream Load Audio file (Load Audio -> Audio To Latent -> this node) or,
// without one, from the last run's audio downstream. Dragging, clicking and the arrow keys write the number
// widgets, snapped to the latent frames the backend reads; the widgets stay the source of truth (the picker
// itself is never saved), so workflows and API prompts hold only numbers.
import { addDisplayWidget, canAddDomWidget, chainCallback, ensureStyle, fitNode, guarded, loadComfy,
  setWidgetValue, warn } from "./lib/comfy.js";
import { EXTEND_NODE, REPAINT_NODE, TIMELINE_OPTION, WINDOW_KEY } from "./lib/contract.js";
import { downstreamPaths, findSourceFileNode, nodeClass, widgetValue } from "./lib/graph.js";
import { createPickerElement, drawPicker, HANDLE_TOLERANCE_PX, PICKER_CSS } from "./lib/picker_view.js";
import * as tl from "./lib/timeline.js";
import { computePeaks, fileRefFromWidgetValue, refKey, sourceFramesForSamples, viewPath } from "./lib/waveform.js";

const FEATURE = "AceStepPack.RegionPicker";
const MODES = {
  [REPAINT_NODE]: { kind: "repaint", names: ["start_s", "end_s"], handles: ["start", "end"] },
  [EXTEND_NODE]: { kind: "extend", names: ["left_s", "right_s"], handles: ["left", "right"] },
};
const EDGE_PREVIEW_S = 5;
const PICKER_HEIGHT_PX = 150;

class RegionPicker {
  constructor(comfy, node, mode, timeline) {
    this.app = comfy.app;
    this.api = comfy.api;
    this.node = node;
    this.mode = mode;
    this.timeline = timeline;
    this.widgets = mode.names.map((name) => node.widgets.find((w) => w.name === name));
    this.el = createPickerElement(mode.kind);
    this.runInfo = null; // the node's last UI output (exact source frames)
    this.source = null; // {key, ref, origin, buffer, frames, offsetS, peaks: Map}
    this.loadingKey = "";
    this.selected = mode.handles[1];
    this.drag = null;
    this.playback = null;
    this.lastSignature = "";
    this.bindEvents();
    this.widget = addDisplayWidget(node, "acestep_region_picker", this.el.root,
      { getMinHeight: () => PICKER_HEIGHT_PX, getMaxHeight: () => PICKER_HEIGHT_PX * 2 });
    this.resizeObserver = new ResizeObserver(() => this.render());
    this.resizeObserver.observe(this.el.canvas);
  }

  // ---------------------------------------------------------------------------------------------- model
  values() {
    const [a, b] = this.widgets.map((w) => Number(w.value));
    return this.mode.kind === "repaint" ? { start_s: a, end_s: b } : { left_s: a, right_s: b };
  }

  decimals() {
    const options = this.widgets[0].options ?? {};
    return Number.isInteger(options.precision) ? options.precision : 2;
  }

  sourceFrames() {
    return this.runInfo?.source_frames ?? this.source?.frames ?? null;
  }

  spec() {
    const frames = this.sourceFrames();
    if (!frames) return null;
    const rate = this.timeline.latent_rate_hz;
    const maxS = this.widgets[0].options?.max ?? this.timeline.max_frames / rate;
    return { rate, sourceFrames: frames, maxFrames: this.timeline.max_frames,
      maxSideFrames: tl.frameOf(maxS, rate), decimals: this.decimals() };
  }

  /** {view, region, problem, sourceS} in seconds on the source's timeline (source start = 0). */
  geometry(spec) {
    const rate = spec.rate;
    const sourceS = spec.sourceFrames / rate;
    if (this.mode.kind === "repaint") {
      const read = tl.readRepaint(this.values(), spec);
      return { view: { startS: 0, endS: sourceS }, sourceS, problem: read.problem,
        region: { startS: read.startFrame / rate, endS: read.endFrame / rate } };
    }
    const read = tl.readExtend(this.values(), spec);
    return { view: tl.extendView(spec), sourceS, problem: read.problem,
      region: { startS: -read.leftFrames / rate, endS: (spec.sourceFrames + read.rightFrames) / rate } };
  }

  write(values) {
    if (!values) return;
    this.mode.names.forEach((name, i) => setWidgetValue(this.app, this.node, this.widgets[i], values[name]));
    this.render();
  }

  // --------------------------------------------------------------------------------------------- source
  findSourceRef() {
    const graph = this.node.graph;
    if (!graph) return null;
    const loader = findSourceFileNode(graph, this.node);
    if (loader) {
      const ref = fileRefFromWidgetValue(widgetValue(loader, "audio"));
      return ref && { ref, origin: "file", offsetS: 0, label: ref.filename };
    }
    if (!this.runInfo) return null; // last run's audio: only once this node ran (its exact source length)
    const outputs = this.app.nodeOutputs ?? {};
    const audioOf = (n) => outputs[String(n.id)]?.audio?.[0];
    const [hit] = downstreamPaths(graph, this.node, (n) => Boolean(audioOf(n)));
    if (!hit) return null;
    const rate = this.timeline.latent_rate_hz;
    const offsetS = hit.path.filter((n) => nodeClass(n) === EXTEND_NODE)
      .reduce((sum, n) => sum + (outputs[String(n.id)]?.[WINDOW_KEY]?.[0]?.left_frames ?? 0) / rate, 0);
    const ref = audioOf(hit.node);
    return { ref, origin: "last run", offsetS, label: `last run: ${ref.filename}` };
  }

  async load(found) {
    const key = refKey(found.ref);
    this.loadingKey = key;
    try {
      const response = await this.api.fetchApi(viewPath(found.ref));
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const data = await response.arrayBuffer();
      const decoder = new OfflineAudioContext(1, 1, this.timeline.sample_rate);
      const buffer = await decoder.decodeAudioData(data);
      if (this.loadingKey !== key) return;
      const frames = found.origin === "file" ? sourceFramesForSamples(buffer.length, buffer.sampleRate, this.timeline)
        : null;
      this.source = { ...found, key, buffer, frames, peaks: new Map(), error: null };
    } catch (error) {
      if (this.loadingKey !== key) return;
      this.source = { ...found, key, buffer: null, frames: null, peaks: new Map(), error: String(error.message) };
      warn(FEATURE, `could not load ${found.ref.filename} for the waveform`, error);
    }
    this.render();
  }

  /** Called on every canvas redraw of the node: pick up widget edits, a new source file, a finished run. */
  sync() {
    const found = this.findSourceRef();
    const key = found ? refKey(found.ref) : "";
    if (key !== (this.source?.key ?? "") && key !== this.loadingKey) {
      this.source = null;
      if (found) this.load(found);
      else this.loadingKey = "";
    }
    if (this.source && found) this.source.offsetS = found.offsetS;
    const signature = JSON.stringify([this.values(), key, this.runInfo?.source_frames, found?.offsetS]);
    if (signature !== this.lastSignature) this.render();
  }

  audioModel() {
    const src = this.source;
    if (!src?.buffer) return null;
    const startS = -src.offsetS;
    return { startS, endS: startS + src.buffer.duration, peaks: (columns) => {
      if (!src.peaks.has(columns)) {
        const channels = Array.from({ length: src.buffer.numberOfChannels }, (_, i) => src.buffer.getChannelData(i));
        src.peaks.clear();
        src.peaks.set(columns, computePeaks(channels, columns));
      }
      return src.peaks.get(columns);
    } };
  }

  // --------------------------------------------------------------------------------------------- render
  render() {
    this.lastSignature = JSON.stringify([this.values(), this.source?.key ?? "", this.runInfo?.source_frames,
      this.source?.offsetS]);
    const spec = this.spec();
    const { canvas, status, info } = this.el;
    this.el.play.disabled = this.el.playPart.disabled = !this.source?.buffer;
    this.el.stop.disabled = !this.playback;
    if (!spec) {
      const waiting = this.loadingKey && !this.source ? "Loading the source audio…"
        : this.source?.error ? `Could not read ${this.source.ref.filename}: ${this.source.error}`
          : "No source yet: connect Load Audio → Audio To Latent, or run once.";
      this.scale = drawPicker(canvas, { view: null, message: waiting });
      status.textContent = info.textContent = "";
      return;
    }
    const geo = this.geometry(spec);
    this.scale = drawPicker(canvas, { kind: this.mode.kind, ...geo, audio: this.audioModel(),
      playheadS: this.playheadS(), selected: this.selected,
      message: this.source?.error ? `no waveform (${this.source.error})` : this.source ? "" : "no waveform" });
    status.textContent = this.windowText(spec);
    info.classList.toggle("is-problem", Boolean(geo.problem));
    info.textContent = geo.problem ? `⚠ ${geo.problem}`
      : `${this.source?.label ?? "source"} · ${geo.sourceS.toFixed(2)} s · ${spec.sourceFrames} latent frames`;
    canvas.setAttribute("aria-valuetext", `${status.textContent}; ${info.textContent}`);
  }

  /** What the backend will do with the widget values, in frame-exact seconds. */
  windowText(spec) {
    const rate = spec.rate;
    if (this.mode.kind === "repaint") {
      const { startFrame, endFrame } = tl.readRepaint(this.values(), spec);
      return `repaint ${(startFrame / rate).toFixed(2)}–${(endFrame / rate).toFixed(2)} s`;
    }
    const { leftFrames, rightFrames } = tl.readExtend(this.values(), spec);
    return `+${(leftFrames / rate).toFixed(2)} s · +${(rightFrames / rate).toFixed(2)} s → ` +
      `${((leftFrames + spec.sourceFrames + rightFrames) / rate).toFixed(2)} s`;
  }

  // -------------------------------------------------------------------------------------------- pointer
  bindEvents() {
    const { canvas, play, playPart, stop } = this.el;
    canvas.addEventListener("pointerdown", (e) => guarded(FEATURE, "drag", () => this.onPointerDown(e)));
    canvas.addEventListener("pointermove", (e) => guarded(FEATURE, "drag", () => this.onPointerMove(e)));
    canvas.addEventListener("pointerup", (e) => this.endDrag(e));
    canvas.addEventListener("pointercancel", (e) => this.endDrag(e));
    canvas.addEventListener("keydown", (e) => guarded(FEATURE, "key", () => this.onKey(e)));
    play.addEventListener("click", () => this.play("song"));
    playPart.addEventListener("click", () => this.play("part"));
    stop.addEventListener("click", () => this.stopPlayback());
  }

  pointerTime(e) {
    const { canvas } = this.el;
    const rect = canvas.getBoundingClientRect(); // screen pixels: the graph's zoom may scale the widget
    const x = (e.clientX - rect.left) * (canvas.clientWidth / Math.max(1, rect.width));
    return { x, t: this.scale.toT(x) };
  }

  onPointerDown(e) {
    const spec = this.spec();
    if (!spec || !this.scale || e.button !== 0) return;
    e.stopPropagation();
    this.el.canvas.focus();
    const { x, t } = this.pointerTime(e);
    const geo = this.geometry(spec);
    const hit = tl.hitTest(x, this.scale.toX(geo.region.startS), this.scale.toX(geo.region.endS),
      HANDLE_TOLERANCE_PX);
    if (this.mode.kind === "repaint") {
      const clamped = tl.clampRepaint(this.values(), spec);
      if (!clamped) return;
      const kind = hit === "inside" ? "move" : hit === "outside" ? "create" : hit;
      this.drag = { kind, ...clamped, anchor_s: t };
      this.selected = kind === "move" ? "both" : kind === "create" ? "end" : kind;
    } else {
      const nearLeft = hit === "start" || (hit !== "end" && Math.abs(t) < Math.abs(t - geo.sourceS));
      this.drag = { kind: nearLeft ? "left" : "right" };
      this.selected = this.drag.kind;
    }
    this.el.canvas.setPointerCapture(e.pointerId);
    this.onPointerMove(e);
  }

  onPointerMove(e) {
    const spec = this.spec();
    if (!spec || !this.scale) return;
    const { x, t } = this.pointerTime(e);
    if (!this.drag) {
      const geo = this.geometry(spec);
      const hit = tl.hitTest(x, this.scale.toX(geo.region.startS), this.scale.toX(geo.region.endS),
        HANDLE_TOLERANCE_PX);
      this.el.canvas.style.cursor = hit === "start" || hit === "end" ? "ew-resize"
        : hit === "inside" && this.mode.kind === "repaint" ? "grab" : "crosshair";
      return;
    }
    e.stopPropagation();
    this.write(this.mode.kind === "repaint" ? tl.dragRepaint(spec, this.drag, t)
      : tl.dragExtend(spec, this.drag.kind, t, this.values()));
  }

  endDrag(e) {
    if (!this.drag) return;
    this.drag = null;
    if (this.el.canvas.hasPointerCapture?.(e.pointerId)) this.el.canvas.releasePointerCapture(e.pointerId);
    this.node.graph?.change?.();
  }

  onKey(e) {
    const spec = this.spec();
    if (!spec) return;
    const [first, second] = this.mode.handles;
    if (e.key === "[" || e.key === "]") {
      this.selected = e.key === "[" ? first : second;
      this.render();
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      const frames = (e.key === "ArrowLeft" ? -1 : 1) * (e.shiftKey ? Math.round(spec.rate) : 1);
      if (this.mode.kind === "repaint") {
        this.write(tl.nudgeRepaint(spec, this.values(), this.selected, frames));
      } else { // outward is longer: the left edge grows to the left
        this.write(tl.nudgeExtend(spec, this.values(), this.selected, this.selected === "left" ? -frames : frames));
      }
    } else if (e.key === " ") {
      if (this.playback) this.stopPlayback();
      else this.play("part");
    } else {
      return; // leave every other key to ComfyUI
    }
    e.preventDefault();
    e.stopPropagation();
  }

  // ------------------------------------------------------------------------------------------- playback
  play(what) {
    const src = this.source;
    const spec = this.spec();
    if (!src?.buffer || !spec) return;
    this.stopPlayback();
    const geo = this.geometry(spec);
    let [fromS, toS] = [-src.offsetS, -src.offsetS + src.buffer.duration];
    if (what === "part" && this.mode.kind === "repaint") {
      [fromS, toS] = [geo.region.startS, geo.region.endS];
    } else if (what === "part") {
      const right = tl.readExtend(this.values(), spec).rightFrames > 0;
      [fromS, toS] = right ? [geo.sourceS - EDGE_PREVIEW_S, geo.sourceS] : [0, EDGE_PREVIEW_S];
    }
    fromS = Math.max(fromS, -src.offsetS);
    toS = Math.min(toS, -src.offsetS + src.buffer.duration);
    if (!(toS > fromS)) return;
    this.audioContext ??= new AudioContext();
    const player = this.audioContext.createBufferSource();
    player.buffer = src.buffer;
    player.connect(this.audioContext.destination);
    player.start(0, fromS + src.offsetS, toS - fromS);
    this.playback = { player, fromS, toS, startedAt: this.audioContext.currentTime };
    player.onended = () => {
      if (this.playback?.player === player) this.stopPlayback();
    };
    const tick = () => {
      if (this.playback?.player !== player) return;
      this.render();
      requestAnimationFrame(tick);
    };
    tick();
  }

  playheadS() {
    if (!this.playback) return null;
    return Math.min(this.playback.toS, this.playback.fromS + this.audioContext.currentTime - this.playback.startedAt);
  }

  stopPlayback() {
    const current = this.playback;
    this.playback = null;
    if (current) guarded(FEATURE, "stop", () => current.player.stop());
    this.render();
  }

  dispose() {
    this.stopPlayback();
    this.resizeObserver.disconnect();
    this.audioContext?.close();
    this.loadingKey = "";
  }
}

const timelines = new Map(); // node class -> timeline_info() from its schema (nodes/web_events.py)

function attach(comfy, node) {
  const mode = MODES[nodeClass(node)];
  if (!mode || !canAddDomWidget(FEATURE, node)) return;
  const timeline = timelines.get(nodeClass(node));
  if (!timeline?.latent_rate_hz || mode.names.some((name) => !node.widgets.some((w) => w.name === name))) {
    warn(FEATURE, `${nodeClass(node)} has no ${mode.names.join("/")} widgets or no ${TIMELINE_OPTION}; the picker ` +
      "is off for it");
    return;
  }
  const picker = new RegionPicker(comfy, node, mode, timeline);
  node.acestepRegionPicker = picker;
  chainCallback(node, "onDrawForeground", () => guarded(FEATURE, "sync", () => picker.sync()));
  chainCallback(node, "onExecuted", (message) => {
    if (message?.[WINDOW_KEY]?.[0]) picker.runInfo = message[WINDOW_KEY][0];
    picker.render();
  });
  chainCallback(node, "onRemoved", () => picker.dispose());
  fitNode(node);
  picker.render();
}

const comfy = await loadComfy(FEATURE);
if (comfy) {
  comfy.app.registerExtension({
    name: FEATURE,
    setup() {
      ensureStyle("acestep-region-picker-css", PICKER_CSS);
    },
    beforeRegisterNodeDef(nodeType, nodeData) {
      const mode = MODES[nodeData?.name];
      if (mode) timelines.set(nodeData.name, nodeData.input?.required?.[mode.names[0]]?.[1]?.[TIMELINE_OPTION]);
    },
    nodeCreated(node) {
      if (MODES[nodeClass(node)]) guarded(FEATURE, "building the picker", () => attach(comfy, node));
    },
    onNodeOutputsUpdated(outputs) { // outputs restored (page reload, workflow tab switch)
      for (const [id, output] of Object.entries(outputs ?? {})) {
        const graph = comfy.app.graph;
        const picker = (graph?.getNodeById(id) ?? graph?.getNodeById(Number(id)))?.acestepRegionPicker;
        if (picker && output?.[WINDOW_KEY]?.[0]) {
          picker.runInfo = output[WINDOW_KEY][0];
          picker.render();
        }
      }
    },
  });
}

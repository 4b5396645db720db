// ACE-Step v1 pack: lyric inspector on Text Encode. Shows how each lyric line is read (detected language, the
// language it is sung in, normalised text, tokens) with the warnings highlighted: after a run from the node's UI
// output, and before one with the "Check lyrics" button, which asks the pack's route for the same report.
import { addDisplayWidget, canAddDomWidget, chainCallback, ensureStyle, fitNode, guarded, loadComfy, warn }
  from "./lib/comfy.js";
import { LYRIC_REPORT_KEY, LYRIC_REPORT_ROUTE, TEXT_ENCODE_NODE } from "./lib/contract.js";
import { findCheckpointWidgets, findSongSeconds, nodeClass, widgetValue } from "./lib/graph.js";
import { renderReportHtml } from "./lib/lyric_report.js";

const FEATURE = "AceStepPack.LyricInspector";
const CSS = `
.acestep-inspector { display: flex; flex-direction: column; gap: 4px; width: 100%; height: 100%;
  box-sizing: border-box; font: 11px sans-serif; color: var(--input-text, #ddd); }
.acestep-inspector-bar { display: flex; gap: 6px; align-items: center; }
.acestep-inspector-bar button { font: inherit; padding: 2px 8px; border-radius: 4px; cursor: pointer; flex: none;
  white-space: nowrap;
  background: var(--comfy-input-bg, #222); color: inherit; border: 1px solid var(--border-color, #444); }
.acestep-inspector-state { opacity: 0.7; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.acestep-inspector-state.is-error { color: #ff8a7a; opacity: 1; }
.acestep-inspector-body { flex: 1; overflow: auto; border-radius: 4px; padding: 4px;
  background: var(--comfy-input-bg, #1b1b1b); }
.acestep-lyrics-summary { font-weight: bold; margin-bottom: 4px; }
.acestep-lyrics table { width: 100%; border-collapse: collapse; }
.acestep-lyrics th { text-align: left; opacity: 0.6; font-weight: normal; }
.acestep-lyrics td { padding: 1px 4px; vertical-align: top; border-top: 1px solid rgba(255,255,255,0.06); }
.acestep-lyrics .acestep-num { text-align: right; opacity: 0.7; width: 1%; white-space: nowrap; }
.acestep-lyrics .is-tag .acestep-text { color: #9ecbff; }
.acestep-lyrics .has-warning td { background: rgba(255,120,60,0.14); }
.acestep-lyrics .has-info td { background: rgba(90,160,255,0.10); }
.acestep-lyrics-norm { opacity: 0.6; font-style: italic; }
.acestep-lyrics-unk code { color: #ff9a7a; }
.acestep-lang-fallback { color: #ffb86b; font-weight: bold; }
.acestep-lang-tag { opacity: 0.7; }
.acestep-lyrics ul { margin: 0; padding-left: 14px; }
.acestep-lyrics-notes td { border-top: none; }
.acestep-lyrics-warning { color: #ffab8a; }
.acestep-lyrics-info { color: #9ec3ff; }
`;

class LyricInspector {
  constructor(comfy, node) {
    this.app = comfy.app;
    this.api = comfy.api;
    this.node = node;
    this.root = document.createElement("div");
    this.root.className = "acestep-inspector";
    const bar = document.createElement("div");
    bar.className = "acestep-inspector-bar";
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.textContent = "Check lyrics";
    this.button.title = "Ask the server how these lyrics will be read, without running the workflow";
    this.state = document.createElement("span");
    this.state.className = "acestep-inspector-state";
    bar.append(this.button, this.state);
    this.body = document.createElement("div");
    this.body.className = "acestep-inspector-body";
    this.root.append(bar, this.body);
    this.shownLyrics = null;
    this.origin = "";
    this.setState("Run the workflow or press Check lyrics to see how each line is read.");
    this.button.addEventListener("click", () => this.check());
    this.widget = addDisplayWidget(node, "acestep_lyric_inspector", this.root,
      { getMinHeight: () => 150, getMaxHeight: () => 900 });
  }

  lyrics() {
    const value = widgetValue(this.node, "lyrics");
    return typeof value === "string" ? value : null;
  }

  setState(text, isError = false) {
    this.state.textContent = text;
    this.state.classList.toggle("is-error", isError);
  }

  show(report, origin, lyrics) {
    this.body.innerHTML = renderReportHtml(report); // every text in it is escaped (lib/lyric_report.js)
    this.shownLyrics = lyrics;
    this.origin = origin;
    this.refreshState();
  }

  /** Mark the report stale once the lyrics changed (called on every redraw of the node). */
  refreshState() {
    if (!this.origin || this.busy) return;
    const stale = this.shownLyrics !== null && this.lyrics() !== null && this.lyrics() !== this.shownLyrics;
    const text = stale ? `${this.origin} · the lyrics changed since: press Check lyrics` : this.origin;
    if (this.state.textContent !== text) this.setState(text);
  }

  async check() {
    const lyrics = this.lyrics();
    if (lyrics === null) {
      this.setState("The lyrics come from a link: run the workflow to see the report.", true);
      return;
    }
    const graph = this.node.graph;
    const body = { lyrics, ...(graph && findCheckpointWidgets(graph, this.node)) };
    const seconds = graph && findSongSeconds(graph, this.node);
    if (seconds) body.duration_s = seconds;
    this.busy = true;
    this.button.disabled = true;
    this.setState("Checking…");
    try {
      const response = await this.api.fetchApi(LYRIC_REPORT_ROUTE, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
      this.busy = false;
      if (!response.ok) {
        this.setState(answer.error ?? `HTTP ${response.status}`, true);
        return;
      }
      this.show(answer, seconds ? `checked before running, for ${seconds} s` : "checked before running", lyrics);
    } catch (error) {
      this.busy = false;
      this.setState(`Could not reach the server: ${error.message}`, true);
      warn(FEATURE, "the lyric report request failed", error);
    } finally {
      this.busy = false;
      this.button.disabled = false;
    }
  }
}

function attach(comfy, node) {
  if (!canAddDomWidget(FEATURE, node)) return;
  const inspector = new LyricInspector(comfy, node);
  node.acestepLyricInspector = inspector;
  chainCallback(node, "onExecuted", (message) => {
    const report = message?.[LYRIC_REPORT_KEY]?.[0];
    if (report) inspector.show(report, "from the last run", widgetValue(node, "lyrics") ?? null);
  });
  chainCallback(node, "onDrawForeground", () => inspector.refreshState());
  fitNode(node);
}

const comfy = await loadComfy(FEATURE);
if (comfy) {
  comfy.app.registerExtension({
    name: FEATURE,
    setup() {
      ensureStyle("acestep-lyric-inspector-css", CSS);
    },
    nodeCreated(node) {
      if (nodeClass(node) === TEXT_ENCODE_NODE) guarded(FEATURE, "building the inspector", () => attach(comfy, node));
    },
    onNodeOutputsUpdated(outputs) { // outputs restored (page reload, workflow tab switch)
      const graph = comfy.app.graph;
      for (const [id, output] of Object.entries(outputs ?? {})) {
        const inspector = (graph?.getNodeById(id) ?? graph?.getNodeById(Number(id)))?.acestepLyricInspector;
        const report = output?.[LYRIC_REPORT_KEY]?.[0];
        if (inspector && report) inspector.show(report, "from the last run", null);
      }
    },
  });
}

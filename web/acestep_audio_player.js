// ACE-Step v1 pack: audio players on our Save Audio node, one per batch item.
// The frontend adds its AUDIO_UI player only to a hard-coded list of core nodes, plays only the first file of
// a batch, and (frontend 1.27.x) throws for a node that returns ui.audio without that widget. We add it as core
// does for SaveAudio; when a run saves more than one file, a list with one labelled player per file replaces it.
import { addDisplayWidget, canAddDomWidget, chainCallback, ensureStyle, fitNode, guarded, loadComfy }
  from "./lib/comfy.js";
import { SAVE_AUDIO_NODE } from "./lib/contract.js";
import { nodeClass } from "./lib/graph.js";
import { viewPath } from "./lib/waveform.js";

const FEATURE = "AceStepPack.AudioPlayer";
const PLAYER_NODES = [SAVE_AUDIO_NODE];
const ROW_PX = 36;
const MIN_WIDTH_PX = 400; // narrower, Chrome's audio controls drop their seek bar
const CSS = `
.acestep-batch { display: flex; flex-direction: column; gap: 2px; width: 100%; font: 11px sans-serif;
  color: var(--input-text, #ddd); }
.acestep-batch-row { display: flex; align-items: center; gap: 6px; height: ${ROW_PX - 2}px; }
.acestep-batch-row span { min-width: 1.8em; opacity: 0.75; white-space: nowrap; }
.acestep-batch-row audio { flex: 1; height: 32px; min-width: 0; }
`;

class BatchPlayers {
  constructor(comfy, node) {
    this.api = comfy.api;
    this.node = node;
    this.items = [];
    this.root = document.createElement("div");
    this.root.className = "acestep-batch";
    this.widget = addDisplayWidget(node, "acestep_batch_players", this.root,
      { getMinHeight: () => this.height(), getMaxHeight: () => this.height() });
  }

  height() {
    return this.items.length > 1 ? this.items.length * ROW_PX + 4 : 0;
  }

  show(audios) {
    this.pauseAll();
    this.items = Array.isArray(audios) ? audios.filter((a) => typeof a?.filename === "string") : [];
    const rows = this.items.length > 1 ? this.items.map((ref, i) => {
      const row = document.createElement("div");
      row.className = "acestep-batch-row";
      const label = document.createElement("span");
      label.textContent = `#${i + 1}`;
      label.title = ref.filename;
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "metadata";
      audio.classList.add("comfy-audio"); // styled like the core player
      audio.title = ref.filename;
      audio.src = this.api.apiURL(viewPath(ref));
      row.append(label, audio);
      return row;
    }) : [];
    this.root.replaceChildren(...rows);
    this.showCorePlayer(this.items.length <= 1);
    if (rows.length && this.node.size[0] < MIN_WIDTH_PX) this.node.setSize([MIN_WIDTH_PX, this.node.size[1]]);
    fitNode(this.node);
  }

  /** The core single player stays for one file; for a batch our labelled list replaces it. */
  showCorePlayer(visible) {
    const core = this.node.widgets?.find((w) => w.name === "audioUI");
    if (!core?.element) return;
    core.element.style.display = visible ? "" : "none";
    if (visible) delete core.computeLayoutSize; // back to the prototype's
    else core.computeLayoutSize = () => ({ minHeight: 0, maxHeight: 0, minWidth: 0 });
    if (!visible) core.element.pause?.();
  }

  pauseAll() {
    for (const audio of this.root.querySelectorAll("audio")) audio.pause();
  }

  dispose() {
    this.pauseAll();
    this.root.replaceChildren();
  }
}

const comfy = await loadComfy(FEATURE);
if (comfy) {
  comfy.app.registerExtension({
    name: FEATURE,
    setup() {
      ensureStyle("acestep-batch-players-css", CSS);
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
      if (!PLAYER_NODES.includes(nodeData?.name)) return;
      nodeData.input = nodeData.input || {};
      nodeData.input.required = nodeData.input.required || {};
      nodeData.input.required.audioUI = ["AUDIO_UI", {}];
    },
    nodeCreated(node) {
      if (!PLAYER_NODES.includes(nodeClass(node)) || !canAddDomWidget(FEATURE, node)) return;
      guarded(FEATURE, "building the batch players", () => {
        const players = new BatchPlayers(comfy, node);
        node.acestepBatchPlayers = players;
        chainCallback(node, "onExecuted", (message) => guarded(FEATURE, "showing the players",
          () => players.show(message?.audio)));
        chainCallback(node, "onRemoved", () => players.dispose());
      });
    },
    onNodeOutputsUpdated(outputs) { // outputs restored (page reload, workflow tab switch)
      const graph = comfy.app.graph;
      for (const [id, output] of Object.entries(outputs ?? {})) {
        const players = (graph?.getNodeById(id) ?? graph?.getNodeById(Number(id)))?.acestepBatchPlayers;
        if (players && output?.audio) guarded(FEATURE, "showing the players", () => players.show(output.audio));
      }
    },
  });
}

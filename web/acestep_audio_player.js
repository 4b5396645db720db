// ACE-Step v1 pack: attach ComfyUI's audio player widget to our Save Audio node.
// The frontend adds its AUDIO_UI widget only to a hard-coded list of core nodes, and (frontend 1.27.x)
// throws for a node that returns ui.audio without it. We do for our node what core does for SaveAudio.
import { app } from "../../scripts/app.js";

const PLAYER_NODES = ["AceStepV1SaveAudio"];

app.registerExtension({
  name: "AceStepPack.AudioPlayer",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!PLAYER_NODES.includes(nodeData.name)) {
      return;
    }
    nodeData.input = nodeData.input || {};
    nodeData.input.required = nodeData.input.required || {};
    nodeData.input.required.audioUI = ["AUDIO_UI", {}];
  },
});

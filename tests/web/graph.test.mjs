// Unit tests of web/lib/graph.js on the example workflows (run by tests/test_web.py with `node --test`).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";

import { downstreamPaths, findCheckpointWidgets, findSongSeconds, findSourceFileNode, nodeClass, upstream }
  from "../../web/lib/graph.js";

// Widget names of the nodes the walks read (the rest of a node's widgets_values is irrelevant here).
const WIDGETS = {
  LoadAudio: ["audio"],
  AceStepV1CheckpointLoader: ["ckpt_name", "dtype", "lyric_vocab"],
  AceStepV1LoraLoader: ["lora_name", "strength"],
  AceStepV1EmptyLatent: ["seconds", "batch_size"],
};

// API name -> the UI workflow's file name (its template title), shared with tests/workflows/ui_to_api.py.
const TEMPLATES = JSON.parse(readFileSync(new URL("../workflows/templates.json", import.meta.url), "utf8"));

/** A LiteGraph-like graph (getNodeById, links, inputs[].link, outputs[].links, widgets) of a UI workflow. */
function graphOf(name) {
  const file = `../../workflows/${TEMPLATES[name]}.json`;
  const workflow = JSON.parse(readFileSync(new URL(file, import.meta.url), "utf8"));
  const nodes = new Map(workflow.nodes.map((n) => [n.id, {
    id: n.id, type: n.type, inputs: n.inputs ?? [], outputs: n.outputs ?? [],
    widgets: (WIDGETS[n.type] ?? []).map((widget, i) => ({ name: widget, value: n.widgets_values?.[i] })),
  }]));
  const links = new Map(workflow.links.map(([id, origin, , target]) => [id, { origin_id: origin, target_id: target }]));
  return { links, getNodeById: (id) => nodes.get(id) ?? null, node: (type) => [...nodes.values()].find((n) => n.type === type) };
}

test("repaint and extend: the window's source is the Load Audio file", () => {
  for (const [name, type] of [["repaint", "AceStepV1RepaintWindow"], ["extend", "AceStepV1ExtendLatent"]]) {
    const graph = graphOf(name);
    const loader = findSourceFileNode(graph, graph.node(type));
    assert.equal(nodeClass(loader), "LoadAudio", name);
    assert.equal(loader.widgets[0].value, "acestep_source.flac");
  }
});

test("a latent from a sampler has no source file; its audio is found downstream", () => {
  const graph = graphOf("long_song_extend_chain");
  const extend = graph.node("AceStepV1ExtendLatent");
  assert.equal(nodeClass(upstream(graph, extend, "latent")), "AceStepV1Sampler");
  assert.equal(findSourceFileNode(graph, extend), null);
  const hits = downstreamPaths(graph, extend, (n) => ["AceStepV1SaveAudio", "PreviewAudio"].includes(n.type));
  assert.deepEqual(hits.map((h) => h.node.type).sort(), ["AceStepV1SaveAudio", "PreviewAudio"]);
  const path = hits[0].path.map((n) => n.type);
  assert.equal(path[0], "AceStepV1ExtendLatent");
  assert.equal(path.filter((t) => t === "AceStepV1ExtendLatent").length, 2); // both extends shift the timeline
});

test("the checkpoint widgets behind Text Encode, through a LoRA loader", () => {
  const plain = graphOf("text2music");
  assert.deepEqual(findCheckpointWidgets(plain, plain.node("AceStepV1TextEncode")),
    { ckpt_name: "ace_step_v1_3.5b.safetensors", lyric_vocab: "" });
  const lora = graphOf("lora");
  assert.equal(findCheckpointWidgets(lora, lora.node("AceStepV1TextEncode")).ckpt_name,
    "ace_step_v1_3.5b.safetensors");
});

test("the song length of a Text Encode: its sampler's Empty Latent, none for a source song", () => {
  const graph = graphOf("text2music");
  assert.equal(findSongSeconds(graph, graph.node("AceStepV1TextEncode")), 60);
  const repaint = graphOf("repaint");
  assert.equal(findSongSeconds(repaint, repaint.node("AceStepV1TextEncode")), null);
});

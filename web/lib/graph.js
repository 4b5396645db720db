// ACE-Step v1 pack: pure walks over a LiteGraph graph (only node.inputs[].link, node.outputs[].links, widgets
// and the graph's links / getNodeById are used), e.g. from a Repaint Window node up to the Load Audio file.
// No side effects at import; unit-tested by tests/web/graph.test.mjs with plain-object graphs.

import { AUDIO_TO_LATENT_NODE, EMPTY_LATENT_NODE, SAMPLER_NODES } from "./contract.js";

const MAX_HOPS = 8;

export function nodeClass(node) {
  return node?.comfyClass ?? node?.type ?? null;
}

export function widgetValue(node, name) {
  return node?.widgets?.find((w) => w.name === name)?.value;
}

export function getLink(graph, id) {
  if (id == null || !graph) return null;
  if (typeof graph.getLink === "function") return graph.getLink(id) ?? null;
  return graph.links?.get?.(id) ?? graph.links?.[id] ?? null;
}

/** The node feeding input `inputName` of `node`, or null. */
export function upstream(graph, node, inputName) {
  const input = node?.inputs?.find((i) => i.name === inputName);
  const link = getLink(graph, input?.link);
  return link ? graph.getNodeById(link.origin_id) ?? null : null;
}

/** Every node fed by any output of `node` (once each). */
export function downstream(graph, node) {
  const found = new Map();
  for (const output of node?.outputs ?? []) {
    for (const id of output.links ?? []) {
      const link = getLink(graph, id);
      const target = link && graph.getNodeById(link.target_id);
      if (target) found.set(target.id, target);
    }
  }
  return [...found.values()];
}

/** The Load Audio node whose file a window node edits: window <- Audio To Latent <- a node with an `audio`
 * file widget. Null when the latent comes from anything else (a sampler, an audio transform). */
export function findSourceFileNode(graph, windowNode) {
  const encoder = upstream(graph, windowNode, "latent");
  if (nodeClass(encoder) !== AUDIO_TO_LATENT_NODE) return null;
  const loader = upstream(graph, encoder, "audio");
  return typeof widgetValue(loader, "audio") === "string" ? loader : null;
}

/** The loader widgets ({ckpt_name, lyric_vocab}) behind a node's `model` input (through LoRA loaders), or null. */
export function findCheckpointWidgets(graph, node) {
  let current = upstream(graph, node, "model");
  for (let hop = 0; current && hop < MAX_HOPS; hop++) {
    const ckpt = widgetValue(current, "ckpt_name");
    if (typeof ckpt === "string") return { ckpt_name: ckpt, lyric_vocab: widgetValue(current, "lyric_vocab") ?? "" };
    current = upstream(graph, current, "model");
  }
  return null;
}

/** Breadth-first paths from `start` to the nodes accepted by `accept(node)`: [{node, path: [start, ..., node]}]. */
export function downstreamPaths(graph, start, accept, maxDepth = 12) {
  const out = [];
  const seen = new Set([start.id]);
  let frontier = [[start]];
  for (let depth = 0; depth < maxDepth && frontier.length; depth++) {
    const next = [];
    for (const path of frontier) {
      for (const node of downstream(graph, path[path.length - 1])) {
        if (seen.has(node.id)) continue;
        seen.add(node.id);
        const longer = [...path, node];
        if (accept(node)) out.push({ node, path: longer });
        next.push(longer);
      }
    }
    frontier = next;
  }
  return out;
}

/** The song length (seconds) a Text Encode node's conditioning is generated at, when the graph says so: its
 * sampler's latent comes from an Empty Latent. Null otherwise (e.g. the length of a source song). */
export function findSongSeconds(graph, textEncode) {
  for (const { node } of downstreamPaths(graph, textEncode, (n) => SAMPLER_NODES.includes(nodeClass(n)), 3)) {
    const latent = upstream(graph, node, "latent");
    const seconds = nodeClass(latent) === EMPTY_LATENT_NODE ? widgetValue(latent, "seconds") : null;
    if (typeof seconds === "number" && seconds > 0) return seconds;
  }
  return null;
}

// Test helpers injected into the ComfyUI page by tests/comfy/test_browser.py (window.acestepTest).
window.acestepTest = {
  app: window.comfyAPI.app.app,
  node(type) { return this.app.graph.nodes.find((n) => (n.comfyClass ?? n.type) === type); },
  widget(node, name) { return node.widgets.find((w) => w.name === name); },
  values(type, names) { const n = this.node(type); return Object.fromEntries(names.map((k) => [k, this.widget(n, k).value])); },
  frame(type) { // put the node at the top left, at zoom 1, and return its screen rectangle
    const n = this.node(type); const ds = this.app.canvas.ds;
    ds.scale = 1; ds.offset[0] = -n.pos[0] + 90; ds.offset[1] = -n.pos[1] + 110;
    this.app.canvas.setDirty(true, true);
    return n.id;
  },
  rect(el) { const r = el.getBoundingClientRect(); return { x: r.left, y: r.top, width: r.width, height: r.height }; },
  nodeRect(type) { // the node's screen rectangle (title included)
    const n = this.node(type); const ds = this.app.canvas.ds; const canvasRect = this.app.canvas.canvas.getBoundingClientRect();
    const title = window.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
    return { x: canvasRect.left + (n.pos[0] + ds.offset[0]) * ds.scale - 8, y: canvasRect.top + (n.pos[1] - title + ds.offset[1]) * ds.scale - 8,
      width: n.size[0] * ds.scale + 16, height: (n.size[1] + title) * ds.scale + 16 };
  },
  pickerX(type, seconds) { // page x of a time on the picker's canvas
    const picker = this.node(type).acestepRegionPicker; const c = picker.el.canvas; const r = c.getBoundingClientRect();
    return r.left + picker.scale.toX(seconds) * r.width / c.clientWidth;
  },
  inkedPixels(canvas) { // pixels that are not the blank background
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data; let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++; return n;
  },
  async promptInputs(type) { const { output } = await this.app.graphToPrompt(); return output[String(this.node(type).id)].inputs; },
  savedValues(type) { return this.app.graph.serialize().nodes.find((n) => n.type === type).widgets_values; },
  batchPlayers(type, count) { // the batch list's players once it has `count` of them
    const n = this.node(type);
    const audios = [...n.acestepBatchPlayers.root.querySelectorAll("audio")];
    return audios.length === count && { srcs: audios.map((a) => a.src), items: n.acestepBatchPlayers.items.map((i) => i.filename),
      core: this.widget(n, "audioUI").element.style.display };
  },
};
true

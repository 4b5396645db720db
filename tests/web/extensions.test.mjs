// The feature files (web/acestep_*.js) load against a stand-in for ComfyUI's frontend module shims
// (/scripts/app.js, /scripts/api.js): each registers one "AceStepPack.<Feature>" extension; a frontend without
// the API they need, or a node without DOM widgets, gets a console warning and the plain widgets, never an
// exception. Run by tests/test_web.py with `node --test`.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "node:test";

const WEB = new URL("../../web/", import.meta.url);
const FEATURES = readdirSync(WEB).filter((name) => name.endsWith(".js")).sort();

/** A scratch site: <root>/scripts/{app,api}.js as given, the pack's web/ under <root>/extensions/acestep/. */
function site(appSource, apiSource) {
  const root = mkdtempSync(join(tmpdir(), "acestep-web-"));
  mkdirSync(join(root, "scripts"));
  writeFileSync(join(root, "scripts", "app.js"), appSource);
  writeFileSync(join(root, "scripts", "api.js"), apiSource);
  cpSync(WEB, join(root, "extensions", "acestep"), { recursive: true });
  return (name) => pathToFileURL(join(root, "extensions", "acestep", name)).href;
}

function captureWarnings() {
  const warnings = [];
  const original = console.warn;
  console.warn = (...args) => warnings.push(args.map(String).join(" "));
  return { warnings, restore: () => { console.warn = original; } };
}

const FAKE_API = `export const api = { addEventListener() {}, removeEventListener() {}, apiURL: (p) => "/api" + p,
  fetchApi: async () => ({ ok: false, status: 500, json: async () => ({}) }) };`;

test("every feature file registers one namespaced extension", async () => {
  const url = site(`export const app = { registered: [], registerExtension(e) { this.registered.push(e); } };
    globalThis.acestepTestApp = app;`, FAKE_API);
  for (const name of FEATURES) await import(url(name));
  const names = globalThis.acestepTestApp.registered.map((e) => e.name);
  assert.equal(names.length, FEATURES.length);
  assert.equal(new Set(names).size, names.length);
  for (const extensionName of names) assert.match(extensionName, /^AceStepPack\.[A-Z]\w+$/);
  const player = globalThis.acestepTestApp.registered.find((e) => e.name === "AceStepPack.AudioPlayer");
  const nodeData = { name: "AceStepV1SaveAudio", input: { required: {} } };
  await player.beforeRegisterNodeDef({}, nodeData);
  assert.deepEqual(nodeData.input.required.audioUI, ["AUDIO_UI", {}]);
  const other = { name: "AceStepV1Sampler", input: { required: {} } };
  await player.beforeRegisterNodeDef({}, other);
  assert.deepEqual(other.input.required, {});
  // A node of ours in a frontend without DOM widgets: a warning, the plain widgets, no exception.
  const { warnings, restore } = captureWarnings();
  try {
    for (const extension of globalThis.acestepTestApp.registered) {
      for (const type of ["AceStepV1RepaintWindow", "AceStepV1ExtendLatent", "AceStepV1TextEncode",
        "AceStepV1SaveAudio", "AceStepV1TrainLoRA", "KSampler"]) {
        extension.nodeCreated?.({ type, widgets: [{ name: "start_s", value: 0 }] });
      }
    }
  } finally {
    restore();
  }
  assert.ok(warnings.some((w) => w.includes("[ACE-Step]") && w.includes("addDOMWidget")), warnings.join("\n"));
});

test("a frontend without the expected API: a console warning at load, no exception", async () => {
  for (const appSource of ["export const app = {};", "export const nothing = 1;"]) {
    const url = site(appSource, FAKE_API);
    const { warnings, restore } = captureWarnings();
    try {
      for (const name of FEATURES) await import(url(name));
    } finally {
      restore();
    }
    assert.equal(warnings.filter((w) => w.startsWith("[ACE-Step]")).length, FEATURES.length, warnings.join("\n"));
    assert.ok(warnings.every((w) => w.includes("plain widgets")));
  }
});

test("helper modules (web/lib/*.js) have no side effects at import", async () => {
  const before = new Set(Object.getOwnPropertyNames(globalThis));
  const { warnings, restore } = captureWarnings();
  try {
    for (const name of readdirSync(new URL("lib/", WEB)).filter((n) => n.endsWith(".js"))) {
      const module = await import(new URL(`lib/${name}`, WEB).href);
      assert.ok(Object.keys(module).length > 0, name);
    }
  } finally {
    restore();
  }
  assert.deepEqual(warnings, []);
  assert.deepEqual(Object.getOwnPropertyNames(globalThis).filter((n) => !before.has(n)), []);
});

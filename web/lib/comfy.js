// ACE-Step v1 pack: the one place the feature files reach ComfyUI's frontend, so that a frontend whose API
// changed degrades to the plain widgets with a console warning instead of an exception at load.
// Nothing runs at import: every function is called by a feature file.

const PREFIX = "[ACE-Step]";

export function warn(feature, message, error) {
  console.warn(`${PREFIX} ${feature}: ${message}`, ...(error ? [error] : []));
}

/** {app, api} of ComfyUI's frontend, or null (with a warning) when its module shims or hooks are missing. */
export async function loadComfy(feature) {
  try {
    const [appModule, apiModule] = await Promise.all([
      import("../../../scripts/app.js"), import("../../../scripts/api.js"),
    ]);
    const { app } = appModule;
    const { api } = apiModule;
    const missing = [
      typeof app?.registerExtension === "function" ? null : "app.registerExtension",
      typeof api?.addEventListener === "function" ? null : "api.addEventListener",
      typeof api?.apiURL === "function" ? null : "api.apiURL",
    ].filter(Boolean);
    if (missing.length) throw new Error(`missing ${missing.join(", ")}`);
    return { app, api };
  } catch (error) {
    warn(feature, "this ComfyUI frontend does not offer the API this feature was written for; the node keeps " +
      "its plain widgets", error);
    return null;
  }
}

/** True when `node` can host DOM widgets (otherwise: warn once per feature and keep the plain widgets). */
const warned = new Set();
export function canAddDomWidget(feature, node) {
  if (typeof node?.addDOMWidget === "function" && Array.isArray(node.widgets)) return true;
  if (!warned.has(feature)) {
    warned.add(feature);
    warn(feature, "node.addDOMWidget is missing in this frontend; the node keeps its plain widgets");
  }
  return false;
}

/** Run `body()`; on an exception warn and return `fallback` (a broken widget must not break the graph). */
export function guarded(feature, what, body, fallback = undefined) {
  try {
    return body();
  } catch (error) {
    warn(feature, `${what} failed; the node keeps its plain widgets`, error);
    return fallback;
  }
}

/** Wrap `object[method]` so that `extra` runs after the original (returns the original's result). */
export function chainCallback(object, method, extra) {
  const original = object[method];
  object[method] = function chained(...args) {
    const result = original?.apply(this, args);
    extra.apply(this, args);
    return result;
  };
}

/** Add a DOM widget that is never saved: not in the workflow's widgets_values, not in the API prompt. */
export function addDisplayWidget(node, name, element, options = {}) {
  const widget = node.addDOMWidget(name, "acestep_display", element, { serialize: false, hideOnZoom: false,
    ...options });
  widget.serialize = false; // LiteGraph's workflow serializer reads this, graphToPrompt reads options.serialize
  widget.options.serialize = false;
  return widget;
}

/** Grow `node` to fit its widgets (never shrink what the user sized). */
export function fitNode(node) {
  const size = node.computeSize?.();
  if (!size || !node.setSize) return;
  node.setSize([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1])]);
  node.setDirtyCanvas?.(true, true);
}

/** Add a <style> element with `css` once per id. */
export function ensureStyle(id, css) {
  if (document.getElementById(id)) return;
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  document.head.append(style);
}

/** Set a widget's value as a user edit would (runs its callback, redraws the graph). */
export function setWidgetValue(app, node, widget, value) {
  if (widget.value === value) return;
  widget.value = value;
  widget.callback?.call(widget, value, app.canvas, node);
  node.setDirtyCanvas?.(true, true);
}

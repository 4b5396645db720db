// ACE-Step v1 pack: the lyric report (nodes/web_events.py lyric_report_json) rendered as escaped HTML for the
// lyric inspector. Pure string building: no DOM, no side effects at import; unit-tested by
// tests/web/lyric_report.test.mjs.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

let displayNames = null;

/** "Galician" for "gl" (the browser's names; the code itself when it has none). */
export function languageName(code) {
  if (!code) return "";
  try {
    displayNames ??= new Intl.DisplayNames(["en"], { type: "language" });
    return displayNames.of(code) ?? code;
  } catch {
    return code;
  }
}

/** "45 s" below two minutes, else "m:ss". */
export function formatSeconds(seconds) {
  const s = Math.round(seconds);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The one-line summary: tokens, the song length they suit, warning counts. */
export function summarize(report) {
  if (!report || report.instrumental) return "No lyrics: instrumental.";
  const parts = [`${report.num_tokens} lyric tokens`];
  if (report.suits) {
    const [low, high] = report.suits.typical_s;
    parts.push(`suits a song of about ${formatSeconds(low)}–${formatSeconds(high)} (at least ` +
      `${formatSeconds(report.suits.min_s)})`);
  }
  if (report.duration_s) parts.push(`checked for ${formatSeconds(report.duration_s)}`);
  const warnings = report.warnings.filter((w) => w.severity !== "info").length;
  const notes = report.warnings.length - warnings;
  parts.push(warnings ? `${warnings} warning${warnings > 1 ? "s" : ""}` : "no warnings");
  if (notes) parts.push(`${notes} note${notes > 1 ? "s" : ""}`);
  return parts.join(" · ");
}

function languageCell(line) {
  if (line.skipped) return `<span class="acestep-lang-skip">skipped</span>`;
  const encoded = escapeHtml(line.encode_language ?? "");
  const encodedTitle = escapeHtml(languageName(line.encode_language));
  if (line.structure_tag) {
    return `<span class="acestep-lang-tag" title="structure tag, read as ${encodedTitle}">tag (${encoded})</span>`;
  }
  const detected = line.detected_language;
  if (detected && detected !== line.encode_language) {
    const detectedTitle = escapeHtml(languageName(detected));
    return `<span class="acestep-lang-fallback" title="detected ${detectedTitle}, sung as ${encodedTitle}">` +
      `${escapeHtml(detected)} → ${encoded}</span>`;
  }
  return `<span title="${encodedTitle}">${encoded}</span>`;
}

function warningItem(warning) {
  const kind = warning.severity === "info" ? "info" : "warning";
  return `<li class="acestep-lyrics-${kind}" data-code="${escapeHtml(warning.code)}">` +
    `${kind === "info" ? "ℹ" : "⚠"} ${escapeHtml(warning.message)}</li>`;
}

function lineRows(line, warnings) {
  const classes = ["acestep-lyrics-line"];
  if (line.structure_tag) classes.push("is-tag");
  if (warnings.some((w) => w.severity !== "info")) classes.push("has-warning");
  else if (warnings.length) classes.push("has-info");
  const unknown = line.unknown_pieces.length
    ? `<div class="acestep-lyrics-unk">[UNK]: ${line.unknown_pieces.map((p) => `<code>${escapeHtml(p)}</code>`)
      .join(" ")}</div>` : "";
  const changed = line.normalized != null && line.normalized.toLowerCase() !== line.text.toLowerCase(); // not just case
  const normalized = changed
    ? `<div class="acestep-lyrics-norm">${escapeHtml(line.normalized)}</div>` : "";
  const rows = [`<tr class="${classes.join(" ")}" data-line="${line.line}"><td class="acestep-num">${line.line}` +
    `</td><td class="acestep-text">${escapeHtml(line.text)}${normalized}${unknown}</td><td>${languageCell(line)}` +
    `</td><td class="acestep-num">${line.skipped ? 0 : line.num_tokens}</td></tr>`];
  if (warnings.length) {
    rows.push(`<tr class="acestep-lyrics-notes"><td></td><td colspan="3"><ul>${warnings.map(warningItem)
      .join("")}</ul></td></tr>`);
  }
  return rows.join("");
}

/** The whole report as HTML (every text escaped). */
export function renderReportHtml(report) {
  const summary = `<div class="acestep-lyrics-summary">${escapeHtml(summarize(report))}</div>`;
  if (!report || report.instrumental) return `<div class="acestep-lyrics">${summary}</div>`;
  const byLine = new Map();
  for (const warning of report.warnings) {
    const key = warning.line ?? 0;
    byLine.set(key, [...(byLine.get(key) ?? []), warning]);
  }
  const whole = byLine.get(0) ?? [];
  const body = report.lines.map((line) => lineRows(line, byLine.get(line.line) ?? [])).join("");
  return `<div class="acestep-lyrics">${summary}` +
    (whole.length ? `<ul class="acestep-lyrics-whole">${whole.map(warningItem).join("")}</ul>` : "") +
    `<table><thead><tr><th>#</th><th>line (as sung)</th><th>language</th><th>tokens</th></tr></thead>` +
    `<tbody>${body}</tbody></table></div>`;
}

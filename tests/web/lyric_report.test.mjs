// Unit tests of web/lib/lyric_report.js (run by tests/test_web.py with `node --test`). The report has the
// shape of nodes/web_events.py lyric_report_json; tests/test_web.py also renders a real one.
import assert from "node:assert/strict";
import test from "node:test";

import { escapeHtml, formatSeconds, languageName, renderReportHtml, summarize } from "../../web/lib/lyric_report.js";

const REPORT = {
  instrumental: false, num_tokens: 90, duration_s: null,
  suits: { min_s: 15, typical_s: [20, 45], tokens_per_second_limit: 6 },
  lines: [
    { line: 1, text: "[verse]", structure_tag: true, detected_language: null, encode_language: "en",
      normalized: "[verse]", num_tokens: 2, unknown_pieces: [], skipped: null },
    { line: 2, text: "Hola amigo, ¿cómo estás?", structure_tag: false, detected_language: "gl", encode_language: "en",
      normalized: "hola amigo, ¿cómo estás?", num_tokens: 14, unknown_pieces: [], skipped: null },
    { line: 3, text: "[Verse 1] <b>", structure_tag: true, detected_language: null, encode_language: "en",
      normalized: "[verse one] <b>", num_tokens: 9, unknown_pieces: ["[", "é"], skipped: null },
    { line: 4, text: "你好世界", structure_tag: false, detected_language: "zh", encode_language: "zh",
      normalized: "ni3hao3shi4jie4", num_tokens: 5, unknown_pieces: [], skipped: null },
  ],
  warnings: [
    { line: null, code: "control_characters", severity: "warning", message: "1 control character(s) removed" },
    { line: 2, code: "language_fallback", severity: "info", message: "detected language 'gl' is not supported" },
    { line: 3, code: "unknown_tag", severity: "warning", message: "unknown structure tag [Verse 1]; did you mean [verse]?" },
  ],
};

test("escapeHtml escapes every markup character", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(escapeHtml(null), "");
});

test("the summary gives tokens, the length they suit and the warning counts", () => {
  assert.equal(summarize(REPORT), "90 lyric tokens · suits a song of about 20 s–45 s (at least 15 s) · 2 warnings · 1 note");
  assert.equal(summarize({ instrumental: true }), "No lyrics: instrumental.");
  assert.match(summarize({ ...REPORT, duration_s: 30, warnings: [] }), /checked for 30 s · no warnings$/);
  assert.equal(formatSeconds(59.6), "60 s");
  assert.equal(formatSeconds(185), "3:05");
});

test("each line shows its languages, normalised text, tokens and warnings", () => {
  const html = renderReportHtml(REPORT);
  assert.match(html, /data-line="2"[^]*gl → en/); // the fallback, highlighted
  assert.match(html, /class="acestep-lang-fallback" title="detected Galician, sung as English"/);
  assert.match(html, /data-line="1"[^]*tag \(en\)/); // a structure tag: no detected language
  assert.doesNotMatch(html, /zh → en/);
  assert.match(html, /<tr class="acestep-lyrics-line is-tag has-warning" data-line="3">/);
  assert.match(html, /did you mean \[verse\]\?/);
  assert.match(html, /\[UNK\]: <code>\[<\/code> <code>é<\/code>/);
  assert.match(html, /ni3hao3shi4jie4/);
  assert.match(html, /<ul class="acestep-lyrics-whole"><li class="acestep-lyrics-warning"/);
  assert.match(html, /<li class="acestep-lyrics-info" data-code="language_fallback">/);
  assert.ok(!html.includes("<b>") && html.includes("&lt;b&gt;"), "lyric text is escaped");
  assert.equal((html.match(/acestep-lyrics-line/g) ?? []).length, 4);
});

test("instrumental and language names", () => {
  assert.match(renderReportHtml({ instrumental: true }), /No lyrics: instrumental/);
  assert.equal(languageName("gl"), "Galician");
  assert.equal(languageName(""), "");
});

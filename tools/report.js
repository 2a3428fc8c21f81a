#!/usr/bin/env node
// report.js: the reference writer of the self-contained HTML report. It reads
// a vmtrace JSON span list (vmtrace.export("json", path)), encodes it as the
// embedded data of report/FORMAT.md, and writes report/report.html with
// report.css, report.js and the data inlined. No dependencies.
//
//   node tools/report.js trace.json [-o out.html] [--generated-at UNIX_MS] [--time-unit-ns N]
//   node tools/report.js --template [-o template.html]
//
// --template writes the page with CSS and JS inlined and the data marker left
// in place: what a native writer embeds, writing its data where the marker is.
//
// As a module: parseJSONExact, encodeData, dataJSON, buildTemplate, buildReport.
"use strict";

const fs = require("fs");
const path = require("path");

const REPORT_DIR = path.resolve(__dirname, "../report");
const MARK_CSS = "/*@VMTRACE_CSS@*/";
const MARK_JS = "/*@VMTRACE_JS@*/";
const MARK_DATA = "@VMTRACE_DATA@";
const FORMAT = "vmtrace-report";
const VERSION = 1;
const KINDS = [
  "pipeline", "fn_call", "llm_call", "tool_call", "import", "parallel", "spawn", "step",
  "vm_setup", "suspension", "resume", "drain", "drain_decision", "pool_submit",
  "pool_dequeue", "channel_emit", "channel_match", "user_timing", "model_route",
  "tool_mount", "deferred_tool_load",
];

// ---- reading: JSON with exact 64-bit integers --------------------------------

/**
 * JSON.parse that keeps integers beyond 2^53 exact, as BigInt (Node's
 * JSON.parse would round start_unix_ns and 64-bit metadata values).
 */
function parseJSONExact(text) {
  let i = 0;
  const n = text.length;
  const NUM = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  function fail(what) {
    throw new SyntaxError(`JSON: ${what} at offset ${i}`);
  }
  function ws() {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else return;
    }
  }
  function str() {
    const start = i++; // the opening quote
    let escaped = false;
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i++);
      if (c === 34) break;
      if (c === 92) { escaped = true; i++; }
    }
    const raw = text.slice(start, i);
    return escaped ? JSON.parse(raw) : raw.slice(1, -1);
  }
  function num() {
    NUM.lastIndex = i;
    const m = NUM.exec(text);
    if (!m) fail("bad number");
    i = NUM.lastIndex;
    if (!m[1] && !m[2]) {
      const v = Number(m[0]);
      return Number.isSafeInteger(v) ? v : BigInt(m[0]);
    }
    return Number(m[0]);
  }
  function word(w, v) {
    if (text.startsWith(w, i)) { i += w.length; return v; }
    return fail("unexpected token");
  }
  function value() {
    ws();
    const c = text.charCodeAt(i);
    if (c === 123) { // {
      i++;
      const o = {};
      ws();
      if (text.charCodeAt(i) === 125) { i++; return o; }
      for (;;) {
        ws();
        if (text.charCodeAt(i) !== 34) fail("expected a key");
        const k = str();
        ws();
        if (text.charCodeAt(i++) !== 58) fail("expected ':'");
        o[k] = value();
        ws();
        const d = text.charCodeAt(i++);
        if (d === 125) return o;
        if (d !== 44) fail("expected ',' or '}'");
      }
    }
    if (c === 91) { // [
      i++;
      const a = [];
      ws();
      if (text.charCodeAt(i) === 93) { i++; return a; }
      for (;;) {
        a.push(value());
        ws();
        const d = text.charCodeAt(i++);
        if (d === 93) return a;
        if (d !== 44) fail("expected ',' or ']'");
      }
    }
    if (c === 34) return str();
    if (c === 116) return word("true", true);
    if (c === 102) return word("false", false);
    if (c === 110) return word("null", null);
    return num();
  }
  const v = value();
  ws();
  if (i !== n) fail("trailing text");
  return v;
}

// ---- writing: JSON that is safe inside <script> ------------------------------

const UNSAFE = /[<>&\u2028\u2029]/g;
const UNSAFE_ESC = { "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" };

/** A JSON string literal with <, >, &, U+2028 and U+2029 escaped. */
function jsonString(s) {
  return JSON.stringify(String(s)).replace(UNSAFE, (c) => UNSAFE_ESC[c]);
}

/** A JSON value (BigInt as digits) with the same escaping in every string. */
function jsonValue(v) {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "string": return jsonString(v);
    case "bigint": return v.toString();
    case "number": return Number.isFinite(v) ? String(v) : "null";
    case "boolean": return v ? "true" : "false";
  }
  if (Array.isArray(v)) return "[" + v.map(jsonValue).join(",") + "]";
  const parts = [];
  for (const k of Object.keys(v)) if (v[k] !== undefined) parts.push(jsonString(k) + ":" + jsonValue(v[k]));
  return "{" + parts.join(",") + "}";
}

// ---- encoding: span list -> FORMAT.md data -----------------------------------

function toBig(v) {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isFinite(v)) return BigInt(Math.round(v));
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  return null;
}

/** Wall-clock start of a span in ns (BigInt), from the finest field it has. */
function spanStartNs(s) {
  const ns = toBig(s.start_unix_ns);
  if (ns !== null) return ns;
  const ms = toBig(s.start_unix_ms);
  if (ms !== null) return ms * 1000000n;
  return toBig(s.start_ns) || 0n;
}

function spanDurationNs(s) {
  if (s.duration_ns !== undefined) return Number(s.duration_ns);
  return Math.round(Number(s.duration_ms || 0) * 1e6);
}

/** Deduplicating string table. */
function stringTable() {
  const list = [];
  const index = new Map();
  return {
    list,
    id(s) {
      s = String(s);
      let k = index.get(s);
      if (k === undefined) { k = list.length; list.push(s); index.set(s, k); }
      return k;
    },
  };
}

/**
 * Encodes a span list (the parsed vmtrace JSON export, dropped_spans element
 * included or not) as the report data object of FORMAT.md.
 */
function encodeData(items, opts = {}) {
  let dropped = 0;
  const spans = [];
  for (const it of items) {
    if (it && typeof it === "object" && "span_id" in it && "kind" in it) spans.push(it);
    else if (it && typeof it === "object" && "dropped_spans" in it) dropped += Number(it.dropped_spans) || 0;
  }
  const unit = opts.timeUnitNs || 1;
  if (!(Number.isInteger(unit) && unit >= 1)) throw new Error("time unit must be a positive integer of ns");
  const kinds = KINDS.slice();
  const kindIndex = new Map(kinds.map((k, i) => [k, i]));
  const strings = stringTable();
  const traceId = opts.traceId || (spans.length ? String(spans[0].trace_id) : "");

  const starts = spans.map(spanStartNs);
  let origin = null;
  for (const s of starts) if (origin === null || s < origin) origin = s;
  if (origin === null) origin = 0n;
  const rel = starts.map((s) => Number(s - origin));
  const ids = spans.map((s) => Number(s.span_id));
  const order = spans.map((_, i) => i).sort((a, b) => rel[a] - rel[b] || ids[a] - ids[b]);

  const cols = { id: [], parent: [], kind: [], name: [], track: [], start: [], duration: [] };
  const meta = [], events = [], links = [];
  let prevId = 0, prevStart = 0;
  order.forEach((src, idx) => {
    const s = spans[src];
    const id = ids[src];
    const parent = s.parent_id === undefined || s.parent_id === null ? 0 : Number(s.parent_id);
    let k = kindIndex.get(s.kind);
    if (k === undefined) { k = kinds.length; kinds.push(String(s.kind)); kindIndex.set(s.kind, k); }
    cols.id.push(id - prevId);
    cols.parent.push(parent ? id - parent : 0);
    cols.kind.push(k);
    cols.name.push(strings.id(s.name === undefined ? "" : s.name));
    cols.track.push(Number(s.track) || 0);
    const startU = Math.round(rel[src] / unit);
    cols.start.push(startU - prevStart);
    cols.duration.push(Math.round(spanDurationNs(s) / unit));
    prevId = id;
    prevStart = startU;
    if (s.metadata && typeof s.metadata === "object") {
      const keys = Object.keys(s.metadata);
      if (keys.length) {
        const parts = [String(idx)];
        for (const key of keys) parts.push(String(strings.id(key)), jsonValue(s.metadata[key]));
        meta.push("[" + parts.join(",") + "]");
      }
    }
    for (const e of s.events || []) {
      let off = e.offset_ns !== undefined ? Number(e.offset_ns) : null;
      if (off === null) {
        const at = toBig(e.time_unix_ns);
        off = at !== null ? Number(at - starts[src]) : Math.round(Number(e.offset_ms || 0) * 1e6);
      }
      const parts = [String(idx), String(strings.id(e.name === undefined ? "" : e.name)), String(Math.round(off / unit))];
      if (e.attributes && Object.keys(e.attributes).length) parts.push(jsonValue(e.attributes));
      events.push("[" + parts.join(",") + "]");
    }
    for (const l of s.links || []) {
      const parts = [String(idx), String(strings.id(l.trace_id === undefined ? "" : l.trace_id)), jsonValue(l.span_id)];
      if (l.attributes && Object.keys(l.attributes).length) parts.push(jsonValue(l.attributes));
      links.push("[" + parts.join(",") + "]");
    }
  });
  return {
    format: FORMAT,
    version: VERSION,
    trace_id: traceId,
    generated_at_unix_ms: opts.generatedAt === undefined ? Date.now() : opts.generatedAt,
    origin_unix_ns: origin.toString(),
    time_unit_ns: unit,
    dropped,
    kinds,
    strings: strings.list,
    count: spans.length,
    spans: cols,
    raw: { meta, events, links }, // pre-rendered JSON text of the sparse tables
  };
}

/** The data object as the JSON text embedded in the page. */
function dataJSON(d) {
  const arr = (a) => "[" + a.join(",") + "]";
  const c = d.spans;
  return "{" + [
    `"format":${jsonString(d.format)}`,
    `"version":${d.version}`,
    `"trace_id":${jsonString(d.trace_id)}`,
    `"generated_at_unix_ms":${d.generated_at_unix_ms}`,
    `"origin_unix_ns":${jsonString(d.origin_unix_ns)}`,
    `"time_unit_ns":${d.time_unit_ns}`,
    `"dropped":${d.dropped}`,
    `"kinds":${arr(d.kinds.map(jsonString))}`,
    `"strings":${arr(d.strings.map(jsonString))}`,
    `"count":${d.count}`,
    `"spans":{` + ["id", "parent", "kind", "name", "track", "start", "duration"]
      .map((k) => `\n${jsonString(k)}:${arr(c[k])}`).join(",") + "}",
    `\n"meta":${arr(d.raw.meta)}`,
    `\n"events":${arr(d.raw.events)}`,
    `\n"links":${arr(d.raw.links)}`,
  ].join(",") + "}";
}

// ---- assembling the page ------------------------------------------------------

function readSource(name) {
  return fs.readFileSync(path.join(REPORT_DIR, name), "utf8");
}

/** Splices text at the single occurrence of marker (no $-patterns involved). */
function splice(page, marker, text) {
  const at = page.indexOf(marker);
  if (at < 0 || page.indexOf(marker, at + 1) >= 0) throw new Error(`report.html: marker ${marker} must occur exactly once`);
  return page.slice(0, at) + text + page.slice(at + marker.length);
}

/** report.html with report.css and report.js inlined; the data marker stays. */
function buildTemplate() {
  const css = readSource("report.css");
  const js = readSource("report.js");
  if (/<\/style|<!--/i.test(css)) throw new Error("report.css must not contain </style or <!--");
  if (/<\/script|<!--|<script/i.test(js)) throw new Error("report.js must not contain <script, </script or <!--");
  let page = readSource("report.html");
  page = splice(page, MARK_CSS, css);
  page = splice(page, MARK_JS, js);
  if (page.indexOf(MARK_DATA) < 0) throw new Error(`report.html: marker ${MARK_DATA} missing`);
  return page;
}

/** The complete report page for a parsed span list. */
function buildReport(items, opts = {}) {
  return splice(buildTemplate(), MARK_DATA, dataJSON(encodeData(items, opts)));
}

module.exports = { parseJSONExact, jsonString, jsonValue, encodeData, dataJSON, buildTemplate, buildReport, KINDS, MARK_DATA };

// ---- command line -------------------------------------------------------------

function main(argv) {
  let input = null, out = null, template = false, generatedAt, timeUnitNs;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-o" || a === "--output") out = argv[++i];
    else if (a === "--template") template = true;
    else if (a === "--generated-at") generatedAt = Number(argv[++i]);
    else if (a === "--time-unit-ns") timeUnitNs = Number(argv[++i]);
    else if (a === "-h" || a === "--help") input = null, argv = [];
    else input = a;
  }
  if (template) {
    fs.writeFileSync(out || "/dev/stdout", buildTemplate());
    return 0;
  }
  if (!input) {
    process.stderr.write("usage: node tools/report.js trace.json [-o out.html] [--generated-at UNIX_MS] [--time-unit-ns N]\n" +
      "       node tools/report.js --template [-o template.html]\n");
    return 2;
  }
  let items;
  try {
    items = parseJSONExact(fs.readFileSync(input, "utf8"));
  } catch (e) {
    process.stderr.write(`report.js: ${input}: ${e.message}\n`);
    return 1;
  }
  if (!Array.isArray(items)) {
    process.stderr.write(`report.js: ${input}: expected a JSON array of spans\n`);
    return 1;
  }
  out = out || input.replace(/\.json$/, "") + ".html";
  fs.writeFileSync(out, buildReport(items, { generatedAt, timeUnitNs }));
  process.stdout.write(out + "\n");
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));

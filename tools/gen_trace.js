#!/usr/bin/env node
// gen_trace.js: synthetic vmtrace traces in the JSON span-list format of
// vmtrace.export("json", path), for the report's tests and benchmarks.
//
//   node tools/gen_trace.js N [-o trace.json] [--seed S] [--dropped D] [--no-hostile]
//
// A trace of about N spans (exactly N when N >= 40): a pipeline root, steps
// with LLM calls (priced and unpriced), tool calls over nested fn_call trees,
// markers, events, links, parallel work on coroutine tracks, one unfinished
// span, and (unless --no-hostile) names and metadata that would run as code
// if a viewer put them into HTML: <script>, quotes, </script>, replacement
// characters left by invalid UTF-8, U+2028.
//
// As a module: generate(n, opts) returns the span objects (start_unix_ns as
// BigInt) and writeSpanList(spans, dropped, path) writes them.
"use strict";

const fs = require("fs");

const TRACE_ID = "trace_01a2383c-33bf-7f07-bf63-75b5bc1b6c72";
const ORIGIN_UNIX_NS = 1796239799232189973n; // wall clock of the collector's t=0
const MODELS = [
  { model: "claude-3-5-haiku", provider: "anthropic", in: 0.8e-6, out: 4e-6 },
  { model: "claude-sonnet-4", provider: "anthropic", in: 3e-6, out: 15e-6 },
  { model: "local-llama-3-8b", provider: "ollama", in: null }, // unpriced: no cost_usd
];
const STEP_NAMES = ["plan", "investigate", "edit", "verify"];
const TOOLS = ["read_file", "grep", "edit_file", "run_tests", "list_dir", "web_search"];
const HOSTILE_NAMES = [
  "<script>window.__vmtracePwned=1</script>",
  '<img src=x onerror="window.__vmtracePwned=2">',
  "\"quotes' & ampersands",
  "</script><script>window.__vmtracePwned=3</script>",
  "bad utf8 \uFFFD\uFFFD here",
  "line\u2028separator\u2029end",
];

/** mulberry32: a small seeded PRNG, so a seed always gives the same trace. */
function rng(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex16(x) {
  return (BigInt.asUintN(64, BigInt(x) * 0x9e3779b97f4a7c15n) | 1n).toString(16).padStart(16, "0");
}

/** Builds the span tree; every builder returns the end time of what it made. */
function generate(n, opts = {}) {
  const seed = opts.seed === undefined ? 1 : opts.seed;
  const hostile = opts.hostile !== false;
  const rand = rng(seed);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo));
  const spans = [];
  let nextId = 1;
  let nextTrack = 1;
  let reserved = 0; // spans kept back for the ending while the steps are made
  const budget = () => n - reserved - spans.length;

  function emit(id, parent, kind, name, track, start, dur, extra) {
    const s = { id, parent, kind, name, track, start, dur };
    if (extra) Object.assign(s, extra);
    spans.push(s);
    return s;
  }
  // A span with children: fill(id, cursor) lays the children out and returns
  // the cursor after them; the span ends a little after its last child.
  function open(parent, kind, name, track, start, fill, extra) {
    const id = nextId++;
    const s = emit(id, parent, kind, name, track, start, 0, extra);
    const end = fill(id, start + between(200, 3000));
    s.dur = end - start + between(100, 2000);
    return start + s.dur;
  }
  function leaf(parent, kind, name, track, start, dur, extra) {
    emit(nextId++, parent, kind, name, track, start, dur, extra);
    return start + dur;
  }
  function marker(parent, kind, track, at, metadata) {
    emit(nextId++, parent, kind, kind, track, at, 0, { metadata });
    return at;
  }
  function fnTree(parent, track, start, depth, limit) {
    let t = start;
    const kids = depth > 5 ? 0 : between(0, depth < 2 ? 4 : 3);
    const name = "fn_" + between(0, 180) + (depth === 0 ? "_entry" : "");
    if (kids === 0 || budget() < 4 || limit <= 1) return leaf(parent, "fn_call", name, track, t, between(300, 40000));
    return open(parent, "fn_call", name, track, t, (id, c) => {
      for (let k = 0; k < kids && budget() > 2; k++) c = fnTree(id, track, c, depth + 1, limit - 1) + between(50, 900);
      return c;
    });
  }
  function llmCall(parent, track, start, name) {
    const m = pick(MODELS);
    const usage = {
      model: m.model,
      provider: m.provider,
      input_tokens: between(200, 8000),
      output_tokens: between(20, 1200),
      cache_read_tokens: rand() < 0.5 ? 0 : between(256, 4096),
      cache_write_tokens: rand() < 0.7 ? 0 : between(256, 4096),
    };
    if (m.in !== null) {
      const cost = usage.input_tokens * m.in + usage.output_tokens * m.out +
        usage.cache_read_tokens * m.in * 0.1 + usage.cache_write_tokens * m.in * 1.25;
      usage.cost_usd = Math.round(cost * 1e8) / 1e8;
    }
    const dur = between(2e6, 40e6);
    const first = Math.floor(dur * (0.2 + rand() * 0.5));
    return leaf(parent, "llm_call", name, track, start, dur, {
      metadata: usage,
      events: [{ name: "first_token", offset: first, attributes: rand() < 0.3 ? { chunk: "1" } : undefined }],
    });
  }
  function toolCall(parent, track, start, name) {
    return open(parent, "tool_call", name, track, start, (id, c) => {
      const trees = between(1, 4);
      for (let k = 0; k < trees && budget() > 3; k++) c = fnTree(id, track, c, 0, 7) + between(100, 2000);
      return c;
    }, rand() < 0.3 ? { metadata: { tool: name, args: { path: "src/" + name + ".lua" } } } : undefined);
  }
  function parallel(parent, start) {
    return open(parent, "parallel", "fan_out", 0, start, (id, c) => {
      let end = c;
      const branches = between(2, 4);
      for (let b = 0; b < branches && budget() > 6; b++) {
        const track = 1 + (nextTrack++ % 4); // a pool of four worker coroutines
        const at = c + between(100, 5000);
        // The spawn span sits on the parent's track; its work runs on its own.
        leaf(id, "spawn", "worker_" + b, 0, at, between(500, 3000));
        const spawnId = nextId - 1;
        const done = open(spawnId, "tool_call", pick(TOOLS), track, at + 200, (tid, tc) => {
          for (let k = 0; k < 3 && budget() > 3; k++) tc = fnTree(tid, track, tc, 1, 4) + between(100, 900);
          return tc;
        });
        end = Math.max(end, done);
      }
      return end;
    });
  }
  function step(parent, start, index) {
    const name = STEP_NAMES[index % STEP_NAMES.length];
    const extra = index % 7 === 3 ? { metadata: { files: ["src/parser.lua"], attempt: index } } : undefined;
    return open(parent, "step", name, 0, start, (id, c) => {
      if (index % 5 === 0) marker(id, "tool_mount", 0, c, { source: "mcp", tool_count: 3, tool_names: ["read_file", "edit_file", "run_tests"] });
      c = llmCall(id, 0, c + 300, name + "_llm") + between(100, 3000);
      if (index === 0 && hostile) {
        for (const h of HOSTILE_NAMES) c = leaf(id, "tool_call", h, 0, c, between(1e5, 9e5), { metadata: { note: "</script><!-- " + h, html: "<b>bold</b> & <i>it</i>" } }) + 500;
      }
      if (index % 3 === 1) {
        c = marker(id, "deferred_tool_load", 0, c, { tool_name: "grep", query: "search file contents", score: 0.92 }) + 100;
      }
      const tools = between(1, 4);
      for (let k = 0; k < tools && budget() > 8; k++) c = toolCall(id, 0, c, pick(TOOLS)) + between(200, 4000);
      if (index % 4 === 2) {
        marker(id, "model_route", 0, c, { from_model: "claude-3-5-haiku", to_model: "claude-sonnet-4", reason: "no_progress" });
        c = llmCall(id, 0, c + 100, name + "_retry") + 500;
      }
      if (index % 6 === 1 && budget() > 20) c = parallel(id, c) + 1000;
      if (index % 9 === 2) c = leaf(id, "user_timing", "test_suite", 0, c, between(1e6, 9e6), { metadata: { suite: "unit" } }) + 200;
      return c;
    }, extra);
  }

  reserved = 4; // suspension, resume, the unfinished step and its child
  const rootId = nextId++;
  const root = emit(rootId, 0, "pipeline", "synthetic_run", 0, 0, 0, { metadata: { script: "examples/agent.lua", spans_requested: n, max_integer: 9223372036854775807n } });
  let t = 1000;
  let index = 0;
  while (budget() > 12) t = step(rootId, t, index++) + between(1000, 20000);
  reserved = 0;
  // Suspension and resume; resume links back to the suspension.
  const suspId = nextId;
  t = leaf(rootId, "suspension", "await_approval", 0, t, between(1e6, 8e6), { metadata: { reason: "human approval" } });
  t = leaf(rootId, "resume", "approved", 0, t + 500, between(1e5, 4e6), {
    links: [
      { trace_id: TRACE_ID, span_id: String(suspId), attributes: { relation: "resumes" } },
      { trace_id: "trace_01a2383c-0000-7000-8000-000000000001", span_id: "00f067aa0ba902b7" },
    ],
  });
  // A step still open when the trace was written: unfinished.
  t = open(rootId, "step", "interrupted", 0, t + 1000, (id, c) => llmCall(id, 0, c, "interrupted_llm"), { metadata: { unfinished: true } });
  while (budget() > 0) t = leaf(rootId, "fn_call", "tail_" + budget(), 0, t + 100, between(100, 5000)) ;
  root.dur = t - root.start + 5000;
  return spans.map(finishSpan);
}

/** Turns a generated record into the exporter's span object. */
function finishSpan(s) {
  const startUnix = ORIGIN_UNIX_NS + BigInt(s.start);
  const o = {
    trace_id: TRACE_ID,
    span_id: s.id,
    parent_id: s.parent || undefined,
    kind: s.kind,
    name: s.name,
    start_ms: Math.floor(s.start / 1e6),
    start_unix_ms: Number(startUnix / 1000000n),
    duration_ms: Math.floor(s.dur / 1e6),
    start_ns: s.start,
    start_unix_ns: startUnix,
    duration_ns: s.dur,
    track: s.track,
    otel_span_id: hex16(s.id),
  };
  if (s.metadata) o.metadata = s.metadata;
  if (s.links) o.links = s.links;
  if (s.events) {
    o.events = s.events.map((e) => {
      const at = startUnix + BigInt(e.offset);
      const ev = {
        name: e.name,
        time_unix_ms: Number(at / 1000000n),
        offset_ms: Math.floor(e.offset / 1e6),
        time_unix_ns: at,
        offset_ns: e.offset,
      };
      if (e.attributes) ev.attributes = e.attributes;
      return ev;
    });
  }
  return o;
}

/** JSON text of a value; BigInt as plain digits, undefined members left out. */
function toJSON(v) {
  return JSON.stringify(v, (k, x) => (typeof x === "bigint" ? "\u0000big" + x.toString() : x))
    .replace(/"\\u0000big(-?\d+)"/g, "$1");
}

/** Writes spans in completion order (children before parents), as vmtrace does. */
function writeSpanList(spans, dropped, path) {
  const order = spans.slice().sort((a, b) => {
    const ea = a.start_ns + a.duration_ns, eb = b.start_ns + b.duration_ns;
    return ea - eb || b.span_id - a.span_id;
  });
  const fd = fs.openSync(path, "w");
  let buf = "[\n";
  for (let i = 0; i < order.length; i++) {
    buf += toJSON(order[i]) + (i + 1 < order.length || dropped ? ",\n" : "\n");
    if (buf.length > 1 << 20) { fs.writeSync(fd, buf); buf = ""; }
  }
  if (dropped) buf += JSON.stringify({ dropped_spans: dropped }) + "\n";
  fs.writeSync(fd, buf + "]\n");
  fs.closeSync(fd);
}

module.exports = { generate, writeSpanList, toJSON, TRACE_ID, HOSTILE_NAMES };

if (require.main === module) {
  const args = process.argv.slice(2);
  let out = null, seed = 1, dropped = 0, hostile = true, n = NaN;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-o") out = args[++i];
    else if (a === "--seed") seed = Number(args[++i]);
    else if (a === "--dropped") dropped = Number(args[++i]);
    else if (a === "--no-hostile") hostile = false;
    else n = Number(a);
  }
  if (!(n >= 1)) {
    process.stderr.write("usage: node tools/gen_trace.js N [-o trace.json] [--seed S] [--dropped D] [--no-hostile]\n");
    process.exit(2);
  }
  const spans = generate(n, { seed, hostile });
  writeSpanList(spans, dropped, out || "/dev/stdout");
  if (out) process.stderr.write(`gen_trace: ${spans.length} spans -> ${out}\n`);
}

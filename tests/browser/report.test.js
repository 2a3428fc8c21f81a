#!/usr/bin/env node
// report.test.js: opens a vmtrace HTML report in headless Chromium from
// file://, with every request that is not file: or data: blocked, and checks
// what a user sees: no errors, no remote request, the header's totals, names
// and tokens of the trace, details on click, search, links, hostile names
// shown as text and never run, and a 100,000-span report that renders.
//
//   node tests/browser/report.test.js [--trace trace.json] [--report report.html]
//                                     [--writer 'CMD {in} {out}'] [--no-big]
//
// Without --trace it generates a known trace (tools/gen_trace.js). The report
// is made from the trace by tools/report.js, by --writer (any command that
// turns a JSON span list into a report, e.g. 'bin/vmtrace report {in} -o {out}'),
// or given ready-made with --report (then --trace names the span list it was
// made from, for the expected values). Prints TAP; exits 1 on a failure and
// 77 when Chromium or puppeteer-core is missing.
"use strict";

const fs = require("fs");
const path = require("path");
const { execSync } = require("child_process");
const { ROOT, loadPuppeteer, launch, guardedPage, tap, fileUrl } = require("./lib");

const OUT = path.join(ROOT, "build/browser");

// ---- arguments -------------------------------------------------------------------

function parseArgs(argv) {
  const a = { trace: null, report: null, writer: null, big: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--trace") a.trace = argv[++i];
    else if (argv[i] === "--report") a.report = argv[++i];
    else if (argv[i] === "--writer") a.writer = argv[++i];
    else if (argv[i] === "--no-big") a.big = false;
    else {
      process.stderr.write("usage: node tests/browser/report.test.js [--trace trace.json] [--report report.html] [--writer 'CMD {in} {out}'] [--no-big]\n");
      process.exit(2);
    }
  }
  return a;
}

/** Turns a span list into a report with the reference writer or the given command. */
function writeReport(writer, input, output) {
  if (!writer) {
    const report = require(path.join(ROOT, "tools/report.js"));
    const items = report.parseJSONExact(fs.readFileSync(input, "utf8"));
    fs.writeFileSync(output, report.buildReport(items));
    return;
  }
  const q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  execSync(writer.replace(/\{in\}/g, q(input)).replace(/\{out\}/g, q(output)), { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
}

// ---- what the trace says the page must show ----------------------------------------

function fmtInt(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
function fmtCost(c) {
  return "$" + (c >= 100 ? c.toFixed(2) : c.toFixed(4));
}

/** Expected figures, computed from the span list independently of the viewer. */
function expectations(items) {
  const spans = items.filter((s) => s && s.span_id !== undefined);
  const dropped = items.reduce((a, s) => a + (s && s.dropped_spans ? s.dropped_spans : 0), 0);
  const byId = new Map(spans.map((s) => [Number(s.span_id), s]));
  const t = { calls: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: 0, unpriced: 0 };
  const models = new Map();
  for (const s of spans) {
    if (s.kind !== "llm_call") continue;
    const m = s.metadata || {};
    t.calls++;
    t.input += m.input_tokens || 0;
    t.output += m.output_tokens || 0;
    t.cacheRead += m.cache_read_tokens || 0;
    t.cacheWrite += m.cache_write_tokens || 0;
    if (typeof m.cost_usd === "number") t.cost += m.cost_usd; else t.unpriced++;
    const g = models.get(m.model) || { input: 0, unpriced: 0 };
    g.input += m.input_tokens || 0;
    if (typeof m.cost_usd !== "number") g.unpriced++;
    models.set(m.model, g);
  }
  t.tokens = t.input + t.output + t.cacheRead + t.cacheWrite;
  const nameCount = new Map();
  for (const s of spans) nameCount.set(s.name, (nameCount.get(s.name) || 0) + 1);
  const hostile = spans.filter((s) => /<script|onerror|<\/script/i.test(s.name));
  const llm = spans.filter((s) => s.kind === "llm_call" && s.metadata && s.metadata.model)
    .sort((a, b) => b.duration_ns - a.duration_ns)[0];
  const kinds = new Set(spans.map((s) => s.kind));
  const unique = spans.find((s) => nameCount.get(s.name) === 1 && s.kind !== "pipeline" && !kinds.has(s.name) && /^[\w.-]{4,}$/.test(s.name));
  const linked = spans.find((s) => (s.links || []).some((l) => l.trace_id === s.trace_id && byId.has(Number(l.span_id))));
  return {
    traceId: spans.length ? spans[0].trace_id : "",
    count: spans.length,
    dropped,
    unfinished: spans.filter((s) => s.metadata && s.metadata.unfinished === true).length,
    totals: t,
    models,
    root: spans.find((s) => s.parent_id === undefined || s.parent_id === null),
    steps: [...new Set(spans.filter((s) => s.kind === "step").map((s) => s.name))],
    llm, unique, hostile,
    linked,
    linkTarget: linked ? Number(linked.links.find((l) => l.trace_id === linked.trace_id && byId.has(Number(l.span_id))).span_id) : null,
  };
}

// ---- page helpers -----------------------------------------------------------------------

async function stat(page, name) {
  return page.$eval(`[data-stat="${name}"] dd`, (e) => e.textContent).catch(() => null);
}

/** Reveals span id on the timeline and clicks the middle of its rectangle. */
async function clickSpan(page, id) {
  await page.evaluate((x) => window.__vmtraceReport.reveal(x), id);
  const r = await page.evaluate((x) => window.__vmtraceReport.spanRect(x), id);
  if (!r) return null;
  await page.mouse.click(r.cx, r.cy);
  return r;
}

async function detailsText(page) {
  return page.$eval("#details", (e) => e.textContent);
}

/** RGB of a canvas pixel at client coordinates (device pixels are read). */
async function canvasPixel(page, x, y) {
  return page.evaluate((cx, cy) => {
    const c = document.getElementById("timeline");
    const r = c.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const d = c.getContext("2d").getImageData(Math.round((cx - r.left) * dpr), Math.round((cy - r.top) * dpr), 1, 1).data;
    return [d[0], d[1], d[2], d[3]];
  }, x, y);
}

// ---- the tests ---------------------------------------------------------------------------

async function testKnownReport(t, browser, reportPath, ex) {
  const { page, log } = await guardedPage(browser);
  await page.evaluateOnNewDocument(() => { window.__vmtracePwned = undefined; });
  const started = Date.now();
  await page.goto(fileUrl(reportPath), { waitUntil: "load" });
  const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 20000 })
    .then((h) => h.jsonValue()).catch(() => null);
  t.ok(ready === "true", `report is ready (dataset.ready = "true") after ${Date.now() - started} ms`, { ready });
  if (ready !== "true") return page;

  t.ok(await stat(page, "spans") === fmtInt(ex.count), `header shows the span count ${fmtInt(ex.count)}`, await stat(page, "spans"));
  const head = await page.$eval("#header", (e) => e.textContent);
  t.ok(head.includes(ex.traceId), "header shows the trace id");
  t.ok(await stat(page, "dropped") === fmtInt(ex.dropped) && await stat(page, "unfinished") === fmtInt(ex.unfinished),
    `header shows ${ex.dropped} dropped and ${ex.unfinished} unfinished`, { dropped: await stat(page, "dropped"), unfinished: await stat(page, "unfinished") });
  const T = ex.totals;
  const want = { "LLM calls": fmtInt(T.calls), tokens: fmtInt(T.tokens), input: fmtInt(T.input), output: fmtInt(T.output),
    "cache read": fmtInt(T.cacheRead), "cache write": fmtInt(T.cacheWrite), cost: fmtCost(T.cost), "unpriced calls": fmtInt(T.unpriced) };
  const got = {};
  for (const k of Object.keys(want)) got[k] = await stat(page, k);
  t.ok(JSON.stringify(got) === JSON.stringify(want), `header totals: ${T.calls} calls, ${fmtInt(T.tokens)} tokens, ${fmtCost(T.cost)}`, { want, got });
  t.ok(/report made\s*\d{4}-\d\d-\d\d/.test(head), "header shows when the report was made");

  const bigInts = Object.values((ex.root && ex.root.metadata) || {}).filter((v) => typeof v === "bigint");
  if (bigInts.length) {
    await page.evaluate((x) => window.__vmtraceReport.select(x), Number(ex.root.span_id));
    const text = await detailsText(page);
    t.ok(bigInts.every((v) => text.includes(v.toString())), `64-bit metadata integers keep every digit (${bigInts.join(", ")})`, text.slice(0, 600));
  }

  const treeText = await page.$eval("#tree", (e) => e.innerText);
  t.ok(ex.root && treeText.includes(ex.root.name), `tree shows the root span "${ex.root && ex.root.name}"`);
  await page.click('.tabs button[data-tab="llm"]');
  const llmText = await page.$eval("#tab-llm", (e) => e.innerText);
  const missingSteps = ex.steps.filter((s) => !llmText.includes(s));
  t.ok(missingSteps.length === 0, `LLM view names every step (${ex.steps.join(", ")})`, { missingSteps });
  const modelProblems = [];
  for (const [model, g] of ex.models) {
    if (!llmText.includes(model)) modelProblems.push(`model ${model} missing`);
    if (!llmText.includes(fmtInt(g.input))) modelProblems.push(`input tokens ${fmtInt(g.input)} of ${model} missing`);
  }
  t.ok(modelProblems.length === 0, `LLM view shows every model and its input tokens (${[...ex.models.keys()].join(", ")})`, modelProblems);
  const unpricedText = await page.$eval("#tab-llm", (e) => { const u = e.querySelector("table.unpriced"); return u ? u.innerText : ""; });
  const unpricedModels = [...ex.models].filter(([, g]) => g.unpriced).map(([m]) => m);
  t.ok(unpricedModels.every((m) => unpricedText.includes(m)) && (unpricedModels.length > 0 || unpricedText === ""),
    `unpriced calls listed by model (${unpricedModels.join(", ") || "none"})`, { unpricedText });
  const flame = await page.$eval("canvas.flame", (c) => c.width > 0 && c.height > 0).catch(() => false);
  t.ok(flame, "token flame graph is drawn when the LLM tab opens");
  await page.click('.tabs button[data-tab="tree"]');

  if (ex.llm) {
    const r = await clickSpan(page, Number(ex.llm.span_id));
    const sel = await page.evaluate(() => window.__vmtraceReport.selectedId());
    const text = await detailsText(page);
    t.ok(r && sel === Number(ex.llm.span_id) && text.includes(`"model": "${ex.llm.metadata.model}"`) &&
      text.includes(`"input_tokens": ${ex.llm.metadata.input_tokens}`),
      `clicking llm_call "${ex.llm.name}" on the timeline shows its metadata`, { rect: r, selected: sel, details: text.slice(0, 400) });
  } else t.skip("clicking a span shows its metadata", "no llm_call with metadata in the trace");

  if (ex.unique) {
    await page.click("#search", { clickCount: 3 });
    await page.type("#search", ex.unique.name);
    await page.waitForFunction((q) => /matches/.test(document.getElementById("search-count").textContent) &&
      document.querySelector("#tab-results p") && document.querySelector("#tab-results p").textContent.includes(q), { timeout: 5000 }, ex.unique.name).catch(() => null);
    const ids = await page.evaluate(() => window.__vmtraceReport.matchIds(50));
    const listed = await page.$$eval("#tab-results button[data-span-id]", (bs) => bs.map((b) => Number(b.dataset.spanId)));
    t.ok(ids.includes(Number(ex.unique.span_id)) && listed.includes(Number(ex.unique.span_id)),
      `search "${ex.unique.name}" finds span ${ex.unique.span_id} and lists it`, { ids, listed });
    await page.evaluate((x) => window.__vmtraceReport.reveal(x), Number(ex.unique.span_id));
    const r = await page.evaluate((x) => window.__vmtraceReport.spanRect(x), Number(ex.unique.span_id));
    const px = r ? await canvasPixel(page, r.x - 1, r.cy) : null;
    t.ok(px && px[0] > 200 && px[1] > 160 && px[2] < 120, "the match is highlighted on the timeline (yellow outline)", { rect: r, pixel: px });
    await page.click(`#tab-results button[data-span-id="${ex.unique.span_id}"]`);
    t.ok(await page.evaluate(() => window.__vmtraceReport.selectedId()) === Number(ex.unique.span_id), "clicking a search result selects the span");
    await page.click("#search", { clickCount: 3 });
    await page.keyboard.press("Escape");
  } else t.skip("search finds a span", "no span with a unique name");

  if (ex.hostile.length) {
    const pwned = await page.evaluate(() => window.__vmtracePwned);
    const count = await page.evaluate(() => window.__vmtraceReport.search("__vmtracePwned"));
    const shown = await page.$$eval("#tab-results .result-name", (es) => es.map((e) => e.textContent));
    const missing = ex.hostile.map((s) => s.name).filter((nm) => !shown.includes(nm));
    const scripts = await page.evaluate(() => document.scripts.length);
    const imgs = await page.evaluate(() => document.images.length);
    t.ok(pwned === undefined && missing.length === 0 && count >= ex.hostile.length && scripts === 2 && imgs === 0,
      `${ex.hostile.length} hostile names are shown as text and never run`, { pwned, missing, shown, scripts, imgs });
    await page.evaluate((x) => window.__vmtraceReport.select(x), Number(ex.hostile[0].span_id));
    const h2 = await page.$eval("#details h2", (e) => e.textContent);
    const meta = await detailsText(page);
    // metadata keys come sorted by their bytes from vmtrace (serde_json's order)
    const sorted = (o) => (o && typeof o === "object" && !Array.isArray(o)
      ? Object.fromEntries(Object.keys(o).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => [k, sorted(o[k])]))
      : o);
    const md = ex.hostile[0].metadata;
    t.ok(h2.endsWith(ex.hostile[0].name) && (!md || meta.includes(JSON.stringify(md, null, 2)) || meta.includes(JSON.stringify(sorted(md), null, 2))),
      "details show a hostile name and its metadata verbatim", { h2, want: ex.hostile[0].name });
    await page.evaluate(() => window.__vmtraceReport.search(""));
  } else t.skip("hostile names are not executed", "the trace has no hostile names");

  if (ex.linked) {
    await clickSpan(page, Number(ex.linked.span_id));
    const button = await page.$(`#details [data-link-target="${ex.linkTarget}"]`);
    if (button) await button.click();
    const sel = await page.evaluate(() => window.__vmtraceReport.selectedId());
    t.ok(button && sel === ex.linkTarget, `a link on span ${ex.linked.span_id} jumps to span ${ex.linkTarget}`, { button: !!button, selected: sel });
  } else t.skip("a link jumps to its target", "no link to a span of the same trace");

  // Keyboard zoom and reset.
  await page.focus("#timeline");
  const v0 = await page.evaluate(() => window.__vmtraceReport.view());
  await page.keyboard.press("0");
  const reset = await page.evaluate(() => window.__vmtraceReport.view());
  await page.keyboard.press("+");
  await page.keyboard.press("ArrowRight");
  const zoomed = await page.evaluate(() => window.__vmtraceReport.view());
  t.ok(zoomed.v1 - zoomed.v0 < (reset.v1 - reset.v0) * 0.7 && zoomed.v0 > reset.v0, "keys zoom (+), pan (arrows) and reset (0) the timeline", { v0, reset, zoomed });

  await testPointer(t, page, ex);

  await new Promise((r) => setTimeout(r, 100));
  t.ok(log.consoleErrors.length === 0 && log.pageErrors.length === 0, "no console error and no page error", log);
  const others = log.requests.filter((u) => u !== fileUrl(reportPath));
  t.ok(log.blocked.length === 0 && others.length === 0, "no request but the report file itself (none blocked, no subresource)", { blocked: log.blocked, others });
  await page.close();
}

/** Mouse on the timeline, the overview strip, the tree and the flame graph. */
async function testPointer(t, page, ex) {
  const hook = (fn, arg) => page.evaluate(fn, arg);
  await hook(() => window.__vmtraceReport.setView(0, 1));
  const box = await page.$eval("#timeline", (c) => { const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  const before = await hook(() => window.__vmtraceReport.view());
  await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2);
  await page.mouse.wheel({ deltaY: -400 });
  await new Promise((r) => setTimeout(r, 50));
  const zoomed = await hook(() => window.__vmtraceReport.view());
  await page.mouse.move(box.x + box.w / 2, box.y + box.h / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.w / 2 - 200, box.y + box.h / 2, { steps: 5 });
  await page.mouse.up();
  const panned = await hook(() => window.__vmtraceReport.view());
  t.ok(zoomed.v1 - zoomed.v0 < (before.v1 - before.v0) * 0.8 && panned.v0 > zoomed.v0,
    "mouse wheel zooms and dragging pans the timeline", { before, zoomed, panned });

  const mini = await page.$eval("#minimap", (c) => { const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
  await page.mouse.click(mini.x + mini.w * 0.9, mini.y + mini.h / 2);
  const moved = await hook(() => window.__vmtraceReport.view());
  t.ok(moved.v0 > panned.v0, "clicking the overview strip moves the view there", { panned, moved });

  if (ex.llm) {
    await hook((x) => window.__vmtraceReport.reveal(x), Number(ex.llm.span_id));
    const r = await hook((x) => window.__vmtraceReport.spanRect(x), Number(ex.llm.span_id));
    await page.mouse.move(r.cx, r.cy);
    const tip = await page.waitForFunction(() => { const e = document.getElementById("tooltip"); return !e.hidden && e.textContent; }, { timeout: 2000 })
      .then((h) => h.jsonValue()).catch(() => null);
    t.ok(tip && tip.includes(ex.llm.name) && tip.includes("llm_call"), "hovering a span shows a tooltip with its name, kind and duration", { tip });
    await page.mouse.move(1, 1);
  }

  await page.click('.tabs button[data-tab="tree"]');
  await page.evaluate(() => { document.getElementById("tree").scrollTop = 0; });
  const rowsBefore = await page.$$eval(".tree-row", (rs) => rs.filter((r) => r.offsetParent !== null).length);
  const firstToggle = await page.$(".tree-row:not([hidden]) .toggle");
  await firstToggle.click();
  const rowsAfter = await page.$$eval(".tree-row", (rs) => rs.filter((r) => r.offsetParent !== null).length);
  await (await page.$(".tree-row:not([hidden]) .toggle")).click();
  const rowsAgain = await page.$$eval(".tree-row", (rs) => rs.filter((r) => r.offsetParent !== null).length);
  t.ok(rowsAfter < rowsBefore && rowsAgain === rowsBefore, "the tree's root collapses and expands", { rowsBefore, rowsAfter, rowsAgain });

  await page.click('.tabs button[data-tab="llm"]');
  await page.click('.flame-bar button[data-metric="cost"]');
  const costFrames = await page.evaluate(() => document.querySelector('.flame-bar button[data-metric="cost"]').classList.contains("active"));
  await page.click('.flame-bar button[data-metric="tokens"]');
  t.ok(costFrames, "the flame graph switches between tokens and cost");
  await page.click('.tabs button[data-tab="tree"]');
}

/** Odd but valid input: a missing parent, a coroutine track only, invalid UTF-8, dropped spans. */
async function testOddTrace(t, browser, writer) {
  const base = (id, extra) => Object.assign({
    trace_id: "trace_odd", span_id: id, kind: "fn_call", name: "f" + id, start_ms: 0, start_unix_ms: 1700000000000,
    duration_ms: 0, start_ns: id * 1000, start_unix_ns: 1700000000000000000 + id * 1000, duration_ns: 500, track: 7, otel_span_id: "00000000000000" + String(id).padStart(2, "0"),
  }, extra || {});
  // (parent 2 is not in the file; vmtrace's reader takes parent ids below the span's own)
  const spans = [base(5, { parent_id: 2, kind: "step", name: "orphan", duration_ns: 100000 }), base(6, { parent_id: 5, name: "NAME_BAD" }), base(7, { parent_id: 5, duration_ns: 0, kind: "tool_mount", name: "tool_mount" })];
  let text = "[\n" + spans.map((s) => JSON.stringify(s)).join(",\n") + ',\n{"dropped_spans":5}\n]\n';
  // Bytes that are not UTF-8 in a name: the writer must show U+FFFD, not fail.
  const bytes = Buffer.concat(text.split("NAME_BAD").flatMap((part, k) => (k ? [Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0xc3]), Buffer.from(part)] : [Buffer.from(part)])));
  const input = path.join(OUT, "odd.json"), output = path.join(OUT, "odd.html");
  fs.writeFileSync(input, bytes);
  try {
    writeReport(writer, input, output);
  } catch (e) {
    t.ok(false, "the writer accepts a trace with invalid UTF-8 and a missing parent", String(e.message));
    return;
  }
  const { page, log } = await guardedPage(browser);
  await page.goto(fileUrl(output));
  const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 10000 }).then((h) => h.jsonValue()).catch(() => null);
  const names = ready === "true" ? await page.evaluate(() => { window.__vmtraceReport.search("bad"); return [...document.querySelectorAll("#tab-results .result-name")].map((e) => e.textContent); }) : [];
  const dropped = await stat(page, "dropped");
  const tree = await page.$eval("#tree", (e) => e.innerText).catch(() => "");
  t.ok(ready === "true" && names.length === 1 && names[0].startsWith("bad\uFFFD") && !/[\xff\xfe]/.test(names[0]) && dropped === "5" &&
    tree.includes("orphan") && log.pageErrors.length === 0 && log.consoleErrors.length === 0,
    "invalid UTF-8 shows as U+FFFD, a span whose parent is missing is a root, dropped spans are counted", { ready, names, dropped, log });
  await page.close();
}

/** Data no writer should make, which the viewer must still survive: no spans, a parent cycle, an unknown kind. */
async function testViewerRobustness(t, browser) {
  const report = require(path.join(ROOT, "tools/report.js"));
  const cases = {
    empty: [],
    cycle: [
      { trace_id: "trace_c", span_id: 1, parent_id: 2, kind: "fn_call", name: "a", start_unix_ns: 10n, duration_ns: 50, track: 0 },
      { trace_id: "trace_c", span_id: 2, parent_id: 1, kind: "fn_call", name: "b", start_unix_ns: 20n, duration_ns: 10, track: 0 },
      { trace_id: "trace_c", span_id: 3, kind: "brand_new_kind", name: "c", start_unix_ns: 15n, duration_ns: 0, track: 3 },
    ],
  };
  cases.microseconds = require(path.join(ROOT, "tools/gen_trace.js")).generate(300, { seed: 9 });
  const what = { empty: "a trace with no spans", cycle: "a parent cycle and an unknown kind", microseconds: "times in µs (time_unit_ns 1000)" };
  for (const [name, items] of Object.entries(cases)) {
    const file = path.join(OUT, `robust-${name}.html`);
    fs.writeFileSync(file, report.buildReport(items, { timeUnitNs: name === "microseconds" ? 1000 : 1 }));
    const { page, log } = await guardedPage(browser);
    await page.goto(fileUrl(file));
    const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 10000 }).then((h) => h.jsonValue()).catch(() => null);
    const spans = ready === "true" ? await page.evaluate(() => window.__vmtraceReport.stats().spans) : null;
    t.ok(ready === "true" && spans === items.length && log.pageErrors.length === 0 && log.consoleErrors.length === 0,
      `the viewer renders ${what[name]}`, { ready, spans, log });
    await page.close();
  }
}

/** Data that breaks the format: the page says what is wrong instead of drawing garbage. */
async function testBadData(t, browser) {
  const report = require(path.join(ROOT, "tools/report.js"));
  const data = '{"format":"vmtrace-report","version":1,"trace_id":"t","generated_at_unix_ms":0,"origin_unix_ns":"0",' +
    '"time_unit_ns":1,"dropped":0,"kinds":["pipeline"],"strings":["a"],"count":1,' +
    '"spans":{"id":[1],"parent":[0],"kind":[0],"name":[7],"track":[0],"start":[0],"duration":[5]},"meta":[],"events":[],"links":[]}';
  const template = report.buildTemplate();
  const at = template.indexOf(report.MARK_DATA);
  const file = path.join(OUT, "bad-data.html");
  fs.writeFileSync(file, template.slice(0, at) + data + template.slice(at + report.MARK_DATA.length));
  const { page } = await guardedPage(browser);
  await page.goto(fileUrl(file));
  const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 10000 }).then((h) => h.jsonValue()).catch(() => null);
  const message = await page.$eval("#error", (e) => (e.hidden ? "" : e.textContent));
  t.ok(ready === "error" && /name 7 is not an index into strings/.test(message), "data that breaks the format is reported on the page (dataset.ready = \"error\")", { ready, message });
  await page.close();
}

async function testBigReport(t, browser, reportPath, n) {
  const { page, log } = await guardedPage(browser);
  const started = Date.now();
  await page.goto(fileUrl(reportPath), { waitUntil: "load", timeout: 60000 });
  const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 60000 })
    .then((h) => h.jsonValue()).catch(() => null);
  const ms = Date.now() - started;
  const stats = ready === "true" ? await page.evaluate(() => window.__vmtraceReport.stats()) : null;
  t.ok(ready === "true" && stats.spans === n && log.pageErrors.length === 0 && log.consoleErrors.length === 0 && log.blocked.length === 0,
    `a ${n}-span report renders (ready in ${ms} ms here; the budget is measured by ready_bench.js)`, { ready, stats, log });
  await page.close();
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const puppeteer = loadPuppeteer();
  fs.mkdirSync(OUT, { recursive: true });
  let tracePath = args.trace;
  if (!tracePath) {
    const gen = require(path.join(ROOT, "tools/gen_trace.js"));
    tracePath = path.join(OUT, "known.json");
    gen.writeSpanList(gen.generate(400, { seed: 7 }), 2, tracePath);
  }
  let reportPath = args.report;
  if (!reportPath) {
    reportPath = path.join(OUT, "known.html");
    writeReport(args.writer, tracePath, reportPath);
  }
  const t = tap();
  t.comment(`report ${path.relative(process.cwd(), reportPath)} from ${path.relative(process.cwd(), tracePath)}`);
  const ex = expectations(require(path.join(ROOT, "tools/report.js")).parseJSONExact(fs.readFileSync(tracePath, "utf8")));
  const browser = await launch(puppeteer);
  try {
    await testKnownReport(t, browser, reportPath, ex);
    if (!args.report) await testOddTrace(t, browser, args.writer);
    await testViewerRobustness(t, browser);
    await testBadData(t, browser);
    if (args.big) {
      const gen = require(path.join(ROOT, "tools/gen_trace.js"));
      const bigReport = path.join(OUT, "big.html"), spans = gen.generate(100000, { seed: 3 });
      if (args.writer) {
        const bigTrace = path.join(OUT, "big.json");
        gen.writeSpanList(spans, 0, bigTrace);
        writeReport(args.writer, bigTrace, bigReport);
      } else {
        // The reference writer takes the generated spans as they are: no JSON round trip.
        fs.writeFileSync(bigReport, require(path.join(ROOT, "tools/report.js")).buildReport(spans));
      }
      await testBigReport(t, browser, bigReport, 100000);
    }
  } catch (e) {
    t.ok(false, "the browser session ran to its end", String(e && e.stack || e));
  } finally {
    await browser.close();
  }
  process.exitCode = t.done();
}

main();

#!/usr/bin/env node
// ready_bench.js: how fast a big report becomes ready in headless Chromium,
// and how big its file is per span. A benchmark, not a test: it prints its
// figures (and exits 1 only with --check when the 100,000-span report misses
// its 3 s budget).
//
//   node tests/browser/ready_bench.js [--spans N] [--runs R] [--no-million] [--writer 'CMD {in} {out}'] [--check]
//
// Ready time is navigation start -> document.documentElement.dataset.ready,
// read inside the page (performance.now() when the viewer set it), the
// minimum of R runs, each in a fresh tab. The file size is given per span for
// the whole file, for the data alone (file less the page template), and for a
// trace whose spans carry no metadata, events or links.
"use strict";

const fs = require("fs");
const path = require("path");
const { execSync } = require("child_process");
const { ROOT, loadPuppeteer, launch, guardedPage, fileUrl } = require("./lib");
const gen = require(path.join(ROOT, "tools/gen_trace.js"));
const report = require(path.join(ROOT, "tools/report.js"));

const OUT = path.join(ROOT, "build/bench");
const BUDGET_MS = 3000;

function parseArgs(argv) {
  const a = { spans: 100000, runs: 3, million: true, writer: null, check: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--spans") a.spans = Number(argv[++i]);
    else if (argv[i] === "--runs") a.runs = Number(argv[++i]);
    else if (argv[i] === "--no-million") a.million = false;
    else if (argv[i] === "--writer") a.writer = argv[++i];
    else if (argv[i] === "--check") a.check = true;
    else { process.stderr.write("usage: node tests/browser/ready_bench.js [--spans N] [--runs R] [--no-million] [--writer 'CMD {in} {out}'] [--check]\n"); process.exit(2); }
  }
  return a;
}

function stripped(spans) {
  return spans.map((s) => {
    const o = Object.assign({}, s);
    delete o.metadata; delete o.events; delete o.links;
    return o;
  });
}

/** Writes the report of spans: in process with the reference writer, or through --writer. */
function writeReport(writer, spans, out) {
  if (!writer) {
    fs.writeFileSync(out, report.buildReport(spans));
    return;
  }
  const input = out.replace(/\.html$/, ".json");
  gen.writeSpanList(spans, 0, input);
  const q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
  execSync(writer.replace(/\{in\}/g, q(input)).replace(/\{out\}/g, q(out)), { cwd: ROOT, stdio: "inherit" });
}

function sizeLine(label, file, n, templateBytes) {
  const bytes = fs.statSync(file).size;
  return `${label}: ${(bytes / 1e6).toFixed(2)} MB, ${(bytes / n).toFixed(1)} bytes/span ` +
    `(data alone ${((bytes - templateBytes) / n).toFixed(1)} bytes/span)`;
}

async function readyTimes(browser, file, runs, timeoutMs) {
  const times = [];
  for (let r = 0; r < runs; r++) {
    const { page, log } = await guardedPage(browser);
    const started = Date.now();
    await page.goto(fileUrl(file), { waitUntil: "load", timeout: timeoutMs });
    const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: timeoutMs, polling: 50 })
      .then((h) => h.jsonValue()).catch(() => null);
    if (ready !== "true" || log.pageErrors.length || log.consoleErrors.length || log.blocked.length) {
      await page.close();
      throw new Error(`${path.basename(file)} did not become ready: ${JSON.stringify({ ready, log })}`);
    }
    const inPage = await page.evaluate(() => window.__vmtraceReport.timings);
    // Redraw cost of the timeline: the whole run, then 1% of it.
    const draw = await page.evaluate(() => {
      const h = window.__vmtraceReport;
      const full = h.drawTime(10);
      h.setView(0.5, 0.51);
      const zoomed = h.drawTime(10);
      h.setView(0, 1);
      return { full, zoomed };
    });
    times.push({ readyAt: inPage.readyAt, wall: Date.now() - started, script: inPage.total, timings: inPage, draw });
    await page.close();
  }
  return times;
}

function fmtRuns(times) {
  const best = times.reduce((a, b) => (b.readyAt < a.readyAt ? b : a));
  return `${best.readyAt.toFixed(0)} ms (runs: ${times.map((t) => t.readyAt.toFixed(0)).join(", ")} ms; ` +
    `viewer script ${best.script.toFixed(0)} ms of it: parse ${best.timings.parse.toFixed(0)}, ` +
    `decode+derive ${(best.timings.decode + best.timings.derive).toFixed(0)}, render ${(best.script - best.timings.parse - best.timings.decode - best.timings.derive).toFixed(0)}); ` +
    `timeline redraw ${best.draw.full.toFixed(1)} ms for the whole run, ${best.draw.zoomed.toFixed(1)} ms for 1% of it`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const puppeteer = loadPuppeteer();
  fs.mkdirSync(OUT, { recursive: true });
  const templateBytes = Buffer.byteLength(report.buildTemplate()) - "@VMTRACE_DATA@".length;
  console.log(`page template (HTML+CSS+JS, no data): ${(templateBytes / 1024).toFixed(1)} KiB`);

  const n = args.spans;
  let spans = gen.generate(n, { seed: 11 });
  const file = path.join(OUT, `${n}.html`), bare = path.join(OUT, `${n}-bare.html`);
  writeReport(args.writer, spans, file);
  writeReport(args.writer, stripped(spans), bare);
  spans = null;
  console.log(sizeLine(`${n} spans`, file, n, templateBytes));
  console.log(sizeLine(`${n} spans without metadata, events or links`, bare, n, templateBytes));

  const browser = await launch(puppeteer, { protocolTimeout: 600000 });
  let status = 0;
  try {
    const times = await readyTimes(browser, file, args.runs, 60000);
    const best = Math.min(...times.map((t) => t.readyAt));
    console.log(`${n} spans ready (navigation start -> dataset.ready, min of ${args.runs}): ${fmtRuns(times)}; budget ${BUDGET_MS} ms: ${best <= BUDGET_MS ? "within" : "OVER"}`);
    if (args.check && best > BUDGET_MS) status = 1;

    if (args.million) {
      const m = 1000000;
      let big = gen.generate(m, { seed: 12 });
      const bigFile = path.join(OUT, `${m}.html`), bigBare = path.join(OUT, `${m}-bare.html`);
      writeReport(args.writer, big, bigFile);
      writeReport(args.writer, stripped(big), bigBare);
      big = null;
      console.log(sizeLine(`${m} spans`, bigFile, m, templateBytes));
      console.log(sizeLine(`${m} spans without metadata, events or links`, bigBare, m, templateBytes));
      try {
        const t = await readyTimes(browser, bigFile, 1, 300000);
        console.log(`${m} spans ready (one run): ${fmtRuns(t)}`);
      } catch (e) {
        console.log(`${m} spans: not ready: ${e.message.slice(0, 300)}`);
      }
    }
  } finally {
    await browser.close();
  }
  process.exitCode = status;
}

main().catch((e) => { console.error(e); process.exitCode = 1; });

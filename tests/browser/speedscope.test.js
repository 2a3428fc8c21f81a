#!/usr/bin/env node
// speedscope.test.js: does speedscope (npm `speedscope`, its own importer,
// run in headless Chromium from file://) open a Chrome trace export, and do
// identical calls merge into one frame? See report/INTEROP.md for why this
// runs the packaged app instead of calling its importer from Node.
//
//   node tests/browser/speedscope.test.js [TRACE.json ...]
//
// For each file: speedscope imports it under the file's own name (the name
// picks the importer: *.chrome.json is read as a DevTools timeline and
// fails), and, through speedscope's own export (.speedscope.json), every
// group of B/X events with the same (cat, name) gives exactly one frame,
// whose name carries no per-span args. Without arguments it checks itself:
// a well-formed trace must pass and the two known faults (a *.chrome.json
// name, per-span args) must be caught. Prints TAP; exits 1 on a failure, 77
// when Chromium or the npm packages are missing.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { ROOT, NPM_DIR, loadPuppeteer, launch, guardedPage, tap, fileUrl, pinned, SKIP } = require("./lib");

const APP = path.join(NPM_DIR, "node_modules/speedscope/dist/release/index.html");

function requireSpeedscope() {
  if (!fs.existsSync(APP)) {
    process.stdout.write(`1..0 # SKIP ${APP} not found; run: npm install --prefix build/npm --no-audit --no-fund speedscope@${pinned("speedscope")}\n`);
    process.exit(SKIP);
  }
}

/** Events speedscope turns into frames: B and X (it ignores i, M, E for naming). */
function frameEvents(trace) {
  const events = Array.isArray(trace) ? trace : trace && Array.isArray(trace.traceEvents) ? trace.traceEvents : [];
  return events.filter((e) => e && (e.ph === "X" || e.ph === "B"));
}

/**
 * Opens speedscope on `contents` as if the file were called `name`; returns
 * {ok, error, frames, profiles} using speedscope's own export of what it imported.
 */
async function importWithSpeedscope(browser, contents, name, tmp) {
  const loader = path.join(tmp, `load-${Date.now()}-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(loader, `speedscope.loadFileFromBase64(${JSON.stringify(name)}, ${JSON.stringify(Buffer.from(contents).toString("base64"))});\n`);
  const downloads = fs.mkdtempSync(path.join(tmp, "dl-"));
  const cdp = await browser.target().createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
  const { page, log } = await guardedPage(browser, { width: 1400, height: 900 }, ["file:", "data:", "blob:"]);
  const notes = [];
  page.on("console", (m) => { if (/Importing as|Failed to load format/.test(m.text())) notes.push(m.text()); });
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  try {
    await page.goto(fileUrl(APP) + "#localProfilePath=" + loader, { waitUntil: "load" });
    const outcome = await page.waitForFunction(() => {
      if (/ - speedscope$/.test(document.title)) return "imported";
      if (/Something went wrong/.test(document.body.innerText)) return "error";
      return false;
    }, { timeout: 15000 }).then((h) => h.jsonValue()).catch(() => (dialogs.length ? "dialog" : "timeout"));
    const failure = notes.find((n) => /Failed to load format/.test(n));
    if (outcome !== "imported" || failure) {
      return { ok: false, error: failure || dialogs[0] || outcome, importer: notes[0], blocked: log.blocked };
    }
    const [button] = await page.$$('xpath/.//*[contains(text(), "Export")]');
    if (!button) return { ok: false, error: "no Export button", importer: notes[0] };
    await button.click();
    let file = null;
    for (let i = 0; i < 100 && !file; i++) {
      file = fs.readdirSync(downloads).find((f) => f.endsWith(".speedscope.json"));
      if (!file) await new Promise((r) => setTimeout(r, 100));
    }
    if (!file) return { ok: false, error: "speedscope's export produced no file", importer: notes[0] };
    const exported = JSON.parse(fs.readFileSync(path.join(downloads, file), "utf8"));
    return {
      ok: true,
      importer: notes[0],
      frames: exported.shared.frames.map((f) => f.name),
      profiles: exported.profiles.map((p) => p.name),
      blocked: log.blocked,
      pageErrors: log.pageErrors,
    };
  } finally {
    await page.close();
    await cdp.detach();
  }
}

/** (cat, name) groups with more than one event whose frames did not merge into one. */
function unmerged(events, frames) {
  const groups = new Map();
  for (const e of events) {
    const key = JSON.stringify([e.cat || "", e.name || ""]);
    groups.set(key, (groups.get(key) || 0) + 1);
  }
  const problems = [];
  for (const [key, count] of groups) {
    if (count < 2) continue;
    const name = JSON.parse(key)[1] || "(unnamed)";
    const mine = frames.filter((f) => f === name || f.startsWith(name + " {"));
    if (mine.length !== 1) problems.push({ cat: JSON.parse(key)[0], name, events: count, frames: mine.length, example: mine[0] });
  }
  return { problems, groups: [...groups.values()].filter((c) => c > 1).length };
}

/** The checks for one Chrome trace, under its own name; returns true when all pass. */
async function checkFile(t, browser, file, tmp, expect) {
  const contents = fs.readFileSync(file);
  const name = path.basename(file);
  let trace = null;
  try { trace = JSON.parse(contents.toString("utf8")); } catch (e) { /* reported below */ }
  const events = frameEvents(trace);
  let allOk = true;
  const ok = (cond, desc, diag) => {
    allOk = allOk && cond;
    if (expect === "fail") return cond; // self-check mode reports the verdict instead
    return t.ok(cond, desc, diag);
  };
  ok(trace !== null && events.length > 0, `${name}: is JSON with B/X trace events (${events.length})`);
  let res = await importWithSpeedscope(browser, contents, name, tmp);
  ok(res.ok, `${name}: speedscope imports it under its own name (${res.importer || "no importer"})`, res);
  if (!res.ok) {
    // Tell a naming fault from a content fault: retry under a neutral name.
    const neutral = name.replace(/(\.chrome)?\.json$/, "") + ".trace.json";
    res = await importWithSpeedscope(browser, contents, neutral, tmp);
    if (expect !== "fail") t.comment(`${name}: as ${neutral} speedscope ${res.ok ? "imports it" : "fails too: " + res.error}`);
  }
  if (res.ok) {
    const { problems, groups } = unmerged(events, res.frames);
    // speedscope names a frame "name" or "name JSON(args)": a frame name must be an event name.
    const names = new Set(events.map((e) => e.name || "(unnamed)"));
    const withArgs = res.frames.filter((f) => !names.has(f));
    ok(problems.length === 0 && withArgs.length === 0,
      `${name}: identical (cat, name) calls merge: ${groups} repeated groups, ${res.frames.length} frames, each named by its event name alone`,
      { problems: problems.slice(0, 5), framesWithArgs: withArgs.slice(0, 3), profiles: res.profiles });
  } else {
    ok(false, `${name}: frames could not be checked, speedscope did not import it`);
  }
  return allOk;
}

/** Chrome traces for the self-check: the shape that works, and the two known faults. */
function selfCheckFiles(dir) {
  const meta = [
    { name: "process_name", ph: "M", pid: 1, tid: 0, args: { name: "vmtrace self-check" } },
    { name: "thread_name", ph: "M", pid: 1, tid: 1, args: { name: "main" } },
  ];
  const spans = [];
  let ts = 0;
  spans.push({ name: "pipeline run", cat: "pipeline", ph: "X", ts: 0, dur: 1000, pid: 1, tid: 1 });
  for (let k = 0; k < 3; k++) {
    ts += 10;
    spans.push({ name: "step plan", cat: "step", ph: "X", ts, dur: 200, pid: 1, tid: 1 });
    spans.push({ name: "llm_call plan_fix", cat: "llm_call", ph: "X", ts: ts + 10, dur: 150, pid: 1, tid: 1 });
    spans.push({ name: "model_route model_route", cat: "model_route", ph: "i", s: "t", ts: ts + 5, pid: 1, tid: 1, args: { span_id: 100 + k } });
    ts += 250;
  }
  const good = { traceEvents: meta.concat(spans) };
  const withArgs = { traceEvents: meta.concat(spans.map((e, k) => Object.assign({}, e, { args: { span_id: k + 1 } }))) };
  const files = {
    good: path.join(dir, "selfcheck.trace.json"),
    badName: path.join(dir, "selfcheck.chrome.json"),
    badArgs: path.join(dir, "selfcheck-args.trace.json"),
  };
  fs.writeFileSync(files.good, JSON.stringify(good));
  fs.writeFileSync(files.badName, JSON.stringify(good));
  fs.writeFileSync(files.badArgs, JSON.stringify(withArgs));
  return files;
}

async function main() {
  const files = process.argv.slice(2);
  if (files.some((f) => f.startsWith("-"))) {
    process.stderr.write("usage: node tests/browser/speedscope.test.js [TRACE.json ...]\n");
    process.exit(2);
  }
  const puppeteer = loadPuppeteer();
  requireSpeedscope();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vmtrace-speedscope-"));
  const t = tap();
  const browser = await launch(puppeteer, { args: ["--enable-unsafe-swiftshader"] });
  try {
    if (files.length) {
      for (const f of files) await checkFile(t, browser, f, tmp);
    } else {
      const dir = path.join(ROOT, "build/speedscope");
      fs.mkdirSync(dir, { recursive: true });
      const self = selfCheckFiles(dir);
      t.comment("self-check: a well-formed trace passes, the known faults are caught");
      await checkFile(t, browser, self.good, tmp);
      t.ok(!(await checkFile(t, browser, self.badName, tmp, "fail")), "the checks catch a *.chrome.json name (read as a DevTools timeline)");
      t.ok(!(await checkFile(t, browser, self.badArgs, tmp, "fail")), "the checks catch per-span args in frame names");
    }
  } catch (e) {
    t.ok(false, "the browser session ran to its end", String(e && e.stack || e));
  } finally {
    await browser.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exitCode = t.done();
}

main();

#!/usr/bin/env node
// screenshot.js: a 1280x800 picture of the report, for the README, made in
// headless Chromium.
//
//   node tests/browser/screenshot.js [trace.json | report.html] [-o build/report.png]
//
// Given a JSON span list (e.g. the demo's out/trace.json) it writes its report
// with tools/report.js first; given nothing, it uses a small demo-like trace
// from tools/gen_trace.js. The first LLM call is selected so that the details
// panel shows its metadata.
"use strict";

const fs = require("fs");
const path = require("path");
const { ROOT, loadPuppeteer, launch, guardedPage, fileUrl } = require("./lib");

async function main() {
  const argv = process.argv.slice(2);
  let input = null, out = path.join(ROOT, "build/report.png");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "-o") out = argv[++i];
    else input = argv[i];
  }
  const puppeteer = loadPuppeteer();
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  let html = input;
  if (!input || !/\.html?$/.test(input)) {
    const report = require(path.join(ROOT, "tools/report.js"));
    let items;
    const demo = path.join(ROOT, "out/trace.json"); // what the demo (examples/agent.lua) writes
    if (!input && fs.existsSync(demo)) input = demo;
    if (input) items = report.parseJSONExact(fs.readFileSync(input, "utf8"));
    else items = require(path.join(ROOT, "tools/gen_trace.js")).generate(400, { seed: 5, hostile: false });
    html = path.join(ROOT, "build/screenshot-report.html");
    fs.mkdirSync(path.dirname(html), { recursive: true });
    fs.writeFileSync(html, report.buildReport(items));
  }
  const browser = await launch(puppeteer);
  try {
    const { page, log } = await guardedPage(browser, { width: 1280, height: 800 });
    await page.goto(fileUrl(html), { waitUntil: "load" });
    const ready = await page.waitForFunction(() => document.documentElement.dataset.ready, { timeout: 30000 }).then((h) => h.jsonValue());
    if (ready !== "true") throw new Error(`report not ready: ${ready} ${JSON.stringify(log)}`);
    await page.evaluate(() => {
      const hook = window.__vmtraceReport;
      hook.search("llm_call");
      const first = hook.matchIds(1)[0];
      hook.search("");
      if (first !== undefined) {
        hook.select(first);
        // Selecting zooms to the span; zoom back out so the whole run is in the picture.
        document.getElementById("zoom-reset").click();
      }
      document.querySelector('.tabs button[data-tab="tree"]').click();
    });
    await new Promise((r) => setTimeout(r, 150));
    await page.screenshot({ path: out });
    if (log.consoleErrors.length || log.pageErrors.length || log.blocked.length) throw new Error(JSON.stringify(log));
    console.log(out);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(`screenshot.js: ${e.message}`); process.exitCode = 1; });

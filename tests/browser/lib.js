// lib.js: what the browser tests share: finding puppeteer-core and Chromium,
// launching a headless browser that reaches nothing but file: and data:, and
// a tiny TAP reporter.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const ROOT = path.resolve(__dirname, "../..");
const NPM_DIR = process.env.VMTRACE_NPM_DIR || path.join(ROOT, "build/npm");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SKIP = 77; // the exit status that means "skipped" (automake's convention)

/** puppeteer-core from NODE_PATH or build/npm; exits 77 with the install command when missing. */
function loadPuppeteer() {
  const tries = [path.join(NPM_DIR, "node_modules/puppeteer-core"), "puppeteer-core"];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
    }
  }
  process.stdout.write("1..0 # SKIP puppeteer-core is not installed; run: tests/browser/run.sh " +
    "(or npm install --prefix build/npm --no-audit --no-fund puppeteer-core@" + pinned("puppeteer-core") + ")\n");
  process.exit(SKIP);
}

function pinned(name) {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "package.json"), "utf8"));
  return pkg.dependencies[name];
}

function requireChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    process.stdout.write(`1..0 # SKIP ${CHROMIUM} not found; run as root: apt-get install -y chromium\n`);
    process.exit(SKIP);
  }
}

/** A headless Chromium with a fresh profile, no network features, no sandbox. */
async function launch(puppeteer, opts = {}) {
  requireChromium();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "vmtrace-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage", `--user-data-dir=${profile}`,
    ].concat(opts.args || []),
    protocolTimeout: opts.protocolTimeout || 120000,
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      fs.rmSync(profile, { recursive: true, force: true });
    }
  };
  return browser;
}

/**
 * A page that lets only file: and data: requests (or the given schemes)
 * through and records what it blocked, every request, console errors and
 * page errors.
 */
async function guardedPage(browser, viewport, allow) {
  const schemes = allow || ["file:", "data:"];
  const page = await browser.newPage();
  await page.setViewport(viewport || { width: 1280, height: 800 });
  const log = { requests: [], blocked: [], consoleErrors: [], pageErrors: [] };
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    const url = req.url();
    log.requests.push(url);
    if (schemes.some((s) => url.startsWith(s))) req.continue();
    else { log.blocked.push(url); req.abort("blockedbyclient"); }
  });
  page.on("console", (msg) => { if (msg.type() === "error") log.consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => log.pageErrors.push(String(err && err.message ? err.message : err)));
  return { page, log };
}

/** TAP: ok/not ok lines, a plan at the end, the exit status. */
function tap() {
  let n = 0, failed = 0;
  process.stdout.write("TAP version 13\n");
  return {
    ok(cond, desc, diag) {
      n++;
      if (!cond) failed++;
      process.stdout.write(`${cond ? "ok" : "not ok"} ${n} - ${desc}\n`);
      if (!cond && diag !== undefined) {
        const text = typeof diag === "string" ? diag : JSON.stringify(diag, null, 2);
        process.stdout.write(text.split("\n").map((l) => "  # " + l).join("\n") + "\n");
      }
      return cond;
    },
    skip(desc, why) {
      n++;
      process.stdout.write(`ok ${n} - ${desc} # SKIP ${why}\n`);
    },
    comment(text) {
      process.stdout.write(String(text).split("\n").map((l) => "# " + l).join("\n") + "\n");
    },
    done() {
      process.stdout.write(`1..${n}\n# ${n - failed} passed, ${failed} failed\n`);
      return failed ? 1 : 0;
    },
    get failed() { return failed; },
  };
}

function fileUrl(p) {
  return require("url").pathToFileURL(path.resolve(p)).href;
}

module.exports = { ROOT, NPM_DIR, CHROMIUM, SKIP, loadPuppeteer, launch, guardedPage, tap, fileUrl, pinned };

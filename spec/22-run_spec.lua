-- `vmtrace run [options] script.lua [args...]` (issue 11), in child
-- processes: the script runs as lua5.4 runs it (arg, ..., output, exit
-- status, uncaught errors, os.exit), under one pipeline span named after
-- it, and what was recorded is written at the end in the format -o names,
-- also when the script fails or exits; option errors name the option.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local q, read, write = helper.shq, helper.read, helper.write
local BIN = q(helper.ROOT .. "/bin/vmtrace")

local DIR = os.tmpname()
os.remove(DIR)
assert(os.execute("mkdir -p " .. q(DIR)))

local n = 0
local function path(name)
  n = n + 1
  return ("%s/%d-%s"):format(DIR, n, name)
end

local function script(text, name)
  local p = path(name or "script.lua")
  write(p, text)
  return p
end

-- Run a shell command line; its stdout, stderr and exit status.
local function sh(cmd, env)
  local err = path("stderr")
  local p = io.popen((env or "") .. " " .. cmd .. " 2>" .. q(err))
  local out = p:read("a")
  local _, how, code = p:close()
  return { out = out, err = read(err), how = how, code = code }
end

local function run(args, env) return sh(BIN .. " run " .. args, env) end
local function lua(args, env) return sh("lua5.4 " .. args, env) end

-- The spans of a JSON span file.
local function spans_of(file)
  local list = assert(vmtrace.json_decode(read(file)))
  local out = {}
  for _, s in ipairs(list) do
    if s.span_id then out[#out + 1] = s end
  end
  return out
end

-- A script's file name, as a Lua pattern.
local function name_of(p) return (p:match("[^/]*$"):gsub("%p", "%%%0")) end

local function kinds(spans)
  local k = {}
  for _, s in ipairs(spans) do k[s.kind] = (k[s.kind] or 0) + 1 end
  return k
end

local SAMPLE = [[
package.path = arg[0]:match("^(.*)/[^/]*$") .. "/?.lua;" .. package.path
local helper = require "runhelper"
local function parse(s) local n = helper.twice(tonumber(s)) return n end
local gen = coroutine.wrap(function() coroutine.yield(parse(arg[1] or "1")) end)
print("result", gen())
]]

describe("vmtrace run", function()
  before_each(function()
    write(DIR .. "/runhelper.lua", "local M = {}\nfunction M.twice(x) return 2 * x end\nreturn M\n")
  end)

  it("with no script prints the usage and fails; --help prints it", function()
    local r = run("")
    assert.equal(1, r.code)
    assert.equal("", r.out)
    assert.matches("^usage: vmtrace run %[options%] script.lua %[args...%]", r.err)
    local h = sh(BIN .. " run --help")
    assert.equal(0, h.code)
    assert.matches("--min%-ms N", h.out)
  end)

  it("runs the script as lua5.4 does: arg, ..., its output", function()
    local s = script([[
print(arg[0] == ..., arg[-1], arg[0]:match("[^/]*$"), arg[1], arg[2], arg[3], #arg, select("#", ...), ...)
io.write("no newline")
]])
    local want = lua(q(s) .. " one 'two words' ''")
    local got = run(q(s) .. " one 'two words' ''")
    assert.equal(0, got.code)
    assert.equal(want.out, got.out)
    assert.equal("", got.err)
    assert.matches("^false\tlua5.4\t", got.out)
  end)

  it("records one pipeline span named after the script, the root of every other span", function()
    local s = script(SAMPLE, "sample.lua")
    local out = path("trace.json")
    local r = run("--calls -o " .. q(out) .. " " .. q(s) .. " 21")
    assert.equal(0, r.code)
    assert.equal("result\t42\n", r.out)
    local spans = spans_of(out)
    local by_id, roots = helper.by_id(spans), {}
    for _, sp in ipairs(spans) do
      if not sp.parent_id then roots[#roots + 1] = sp end
    end
    assert.equal(1, #roots)
    assert.equal("pipeline", roots[1].kind)
    assert.equal(s:match("[^/]*$"), roots[1].name)
    for _, sp in ipairs(spans) do
      local top = sp
      while top.parent_id do top = by_id[top.parent_id] end
      assert.equal(roots[1], top)
    end
    local k = kinds(spans)
    assert.equal(1, k.import)   -- runhelper
    assert.equal(1, k.spawn)    -- the coroutine
    assert.is_true(k.fn_call >= 4) -- main chunk, runhelper's chunk, parse, twice, the body
    local names = {}
    for _, sp in ipairs(spans) do names[sp.name] = true end
    assert.is_true(names["runhelper.twice"] and names.parse)
  end)

  it("without --calls: import and spawn spans, no fn_call; --no-requires and --no-coroutines drop them", function()
    local s = script(SAMPLE, "sample.lua")
    local out = path("trace.json")
    assert.equal(0, run("-o " .. q(out) .. " " .. q(s)).code)
    assert.same({ pipeline = 1, import = 1, spawn = 1 }, kinds(spans_of(out)))
    assert.equal(0, run("--no-requires --no-coroutines -o " .. q(out) .. " " .. q(s)).code)
    assert.same({ pipeline = 1 }, kinds(spans_of(out)))
  end)

  it("--include and --exclude (repeatable) choose the chunks traced; --min-ms drops short calls", function()
    local s = script(SAMPLE, "sample.lua")
    local out = path("trace.json")
    local function fn_names(args)
      assert.equal(0, run(args .. " -o " .. q(out) .. " " .. q(s)).code)
      local names = {}
      for _, sp in ipairs(spans_of(out)) do
        if sp.kind == "fn_call" then names[#names + 1] = sp.name end
      end
      table.sort(names)
      return names
    end
    assert.same({ "runhelper.lua", "runhelper.twice" }, fn_names("--calls --include runhelper"))
    assert.same({}, fn_names("--calls --exclude runhelper --exclude sample"))
    assert.same({ "runhelper.lua", "runhelper.twice" }, -- patterns match chunk names
      fn_names("--calls --include runhelper --include sample --exclude sample"))
    assert.same({}, fn_names("--calls --min-ms 10000 --no-requires --no-coroutines"))
    assert.same({ (name_of(s):gsub("%%", "")) }, fn_names("--calls --min-ms 10000")) -- holds spans: kept
  end)

  it("keeps the exit status of os.exit and writes the trace first", function()
    local s = script([[
local function leave() os.exit(tonumber(arg[1])) end
print("before")
leave()
print("never")
]])
    local out = path("trace.json")
    local r = run("--calls -o " .. q(out) .. " " .. q(s) .. " 3")
    assert.equal(3, r.code)
    assert.equal("before\n", r.out)
    local spans = spans_of(out)
    assert.equal(3, #spans) -- pipeline, main chunk, leave: ended at the exit
    assert.equal(0, run("-o " .. q(out) .. " " .. q(s) .. " 0").code)
    local t = script("os.exit(true)")
    assert.equal(0, run(q(t)).code)
    local f = script("os.exit(false)")
    assert.equal(1, run(q(f)).code)
  end)

  it("an uncaught error: lua5.4's message and traceback, status 1, the trace written", function()
    local s = script([[
local function fail() error("it broke") end
local function middle() fail() end
middle()
]])
    local out = path("trace.json")
    local want = lua(q(s))
    local got = run("--calls -o " .. q(out) .. " " .. q(s))
    assert.equal(1, got.code)
    assert.equal(want.err, got.err)
    assert.matches("it broke\nstack traceback:\n", got.err, 1, true)
    local spans = spans_of(out)
    assert.equal(4, #spans)
    for _, sp in ipairs(spans) do
      assert.equal("error", sp.metadata.status, sp.name)
      assert.equal(s .. ":1: it broke", sp.metadata.error, sp.name)
    end
  end)

  it("error objects that are not strings are reported as lua5.4 reports them", function()
    for _, text in ipairs {
      'error(setmetatable({}, { __tostring = function() return "custom" end }))',
      "error({})",
      "error(42)",
    } do
      local s = script(text)
      local want, got = lua(q(s)), run(q(s))
      assert.equal(want.code, got.code)
      assert.equal(want.err, got.err)
    end
  end)

  it("a script that cannot be loaded fails as in lua5.4", function()
    local missing = DIR .. "/nosuch.lua"
    assert.equal(lua(q(missing)).err, run(q(missing)).err)
    local bad = script("local x = = 1")
    local want, got = lua(q(bad)), run(q(bad))
    assert.equal(1, got.code)
    assert.equal(want.err, got.err)
  end)

  it("-o FILE.ndjson streams live: the running script sees its own span, and a killed run keeps it", function()
    local out = path("live.ndjson")
    local s = script([[
local f = assert(io.open(arg[1], "rb"))
local text = f:read("a")
f:close()
print(text:find('"pipeline"', 1, true) ~= nil)
local stat = io.open("/proc/self/stat"):read("l")
os.execute("kill -9 " .. stat:match("^%d+"))
]])
    local r = run("-o " .. q(out) .. " " .. q(s) .. " " .. q(out))
    assert.equal("true\n", r.out)
    assert.is_true(r.how == "signal" or r.code == 128 + 9, r.how .. " " .. r.code)
    local count, info = vmtrace.load(out)
    assert.equal(1, count)
    assert.equal(1, info.unfinished)
    assert.equal("pipeline", vmtrace.spans()[1].kind)
  end)

  it("-o takes the format from the name; --to overrides it", function()
    local s = script(SAMPLE, "sample.lua")
    local checks = {
      ["t.json"] = function(text) assert.matches('^%[%s*{"trace_id"', text) end,
      ["t.otlp.json"] = function(text) assert.matches('^{"resourceSpans"', text) end,
      ["t.trace.json"] = function(text) assert.matches('"traceEvents"', text) end,
      ["t.chrome.json"] = function(text) assert.matches('"traceEvents"', text) end,
      ["t.folded"] = function(text) assert.matches("^pipeline " .. name_of(s), text) end,
      ["t.ndjson"] = function(text) assert.matches('"kind":"pipeline"', text) end,
    }
    for name, check in pairs(checks) do
      local out = path(name)
      local r = run("-o " .. q(out) .. " " .. q(s))
      assert.equal(0, r.code, name .. ": " .. r.err)
      check(read(out))
    end
    local out = path("t.txt")
    assert.equal(0, run("-o " .. q(out) .. " --to folded " .. q(s)).code)
    assert.matches("^pipeline " .. name_of(s), read(out))
  end)

  it("-o FILE.html says clearly when this build has no HTML report, before running the script", function()
    local marker = path("ran")
    local s = script("io.open(" .. ("%q"):format(marker) .. ", 'w'):close()")
    local out = path("report.html")
    local r = run("-o " .. q(out) .. " " .. q(s))
    local ok_html = vmtrace.export("html", os.tmpname())
    if ok_html then
      assert.equal(0, r.code)
      assert.is_not_nil(helper.try_read(out))
    else
      assert.equal(1, r.code)
      assert.matches("^vmtrace run: %-o .*report.html: the HTML report is not available in this build", r.err)
      assert.is_nil(helper.try_read(marker))
    end
  end)

  it("--summary and --profile print on stderr at the end", function()
    local s = script(SAMPLE, "sample.lua")
    local r = run("--calls --summary --profile " .. q(s) .. " 2")
    assert.equal(0, r.code)
    assert.equal("result\t4\n", r.out)
    assert.matches("^Trace: %d+ spans, %d+ms total\n\npipeline " .. name_of(s) .. " %d+ms\n", r.err)
    assert.matches("fn_call runhelper.twice", r.err, 1, true)
    assert.matches("\nRun profile: trace_", r.err, 1, true)
    assert.matches("time by kind", r.err, 1, true)
  end)

  it("--otlp sends the spans to the collector OTEL_* names", function()
    if not os.execute("command -v node >/dev/null 2>&1") then
      pending("node is not installed")
      return
    end
    local record, log, pidfile = path("requests.jsonl"), path("receiver.out"), path("receiver.pid")
    local h = assert(io.popen(("echo $$ > %s; exec env -u LD_PRELOAD node %s --record %s > %s 2>&1")
      :format(q(pidfile), q(helper.ROOT .. "/tests/otlp/receiver.js"), q(record), q(log)), "w"))
    local port
    for _ = 1, 400 do
      port = (helper.try_read(log) or ""):match("listening (%d+)")
      if port then break end
      os.execute("sleep 0.05")
    end
    assert.is_not_nil(port, "the receiver did not start")
    local s = script(SAMPLE, "sample.lua")
    local r = run("--otlp " .. q(s), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" .. port)
    os.execute("kill " .. read(pidfile):match("%d+"))
    h:close()
    assert.equal(0, r.code, r.err)
    local names = {}
    for line in (helper.try_read(record) or ""):gmatch("[^\n]+") do
      local rec = vmtrace.json_decode(line)
      for _, rs in ipairs(rec.body and rec.body.resourceSpans or {}) do
        for _, ss in ipairs(rs.scopeSpans) do
          for _, sp in ipairs(ss.spans) do names[sp.name] = true end
        end
      end
    end
    assert.is_true(names[s:match("[^/]*$")] and names.runhelper and names[s:match("[^/]*$") .. ":4"],
      "spans received: " .. (helper.try_read(record) or ""))
  end)

  it("errors in options name the option", function()
    local s = script("print(1)")
    local cases = {
      { "--min-ms abc " .. q(s), "^vmtrace run: %-%-min%-ms needs a number of milliseconds >= 0, got 'abc'" },
      { "--calls --min-ms", "^vmtrace run: %-%-min%-ms needs a number" },
      { "--include", "^vmtrace run: %-%-include needs a Lua pattern" },
      { "--calls --include '[' " .. q(s), "^vmtrace run: %-%-include '%[' is not a Lua pattern" },
      { "--include x " .. q(s), "^vmtrace run: %-%-include is for calls: add %-%-calls" },
      { "--frobnicate " .. q(s), "^vmtrace run: unknown option %-%-frobnicate" },
      { "--to yaml -o x " .. q(s), "^vmtrace run: %-%-to: unknown format 'yaml'" },
      { "-o trace.xyz " .. q(s), "^vmtrace run: %-o trace.xyz: cannot tell the format" },
      { "-o", "^vmtrace run: %-o needs a file name" },
    }
    for _, c in ipairs(cases) do
      local r = run(c[1])
      assert.equal(1, r.code, c[1])
      assert.equal("", r.out, c[1])
      assert.matches(c[2], r.err)
      assert.is_nil(r.err:find("traceback", 1, true), r.err)
    end
  end)
end)

-- bench/auto.lua: the cost of automatic spans (vmtrace.auto, issue 11).
-- Figures and goals, not tests.
--
-- Run from the repo root:  make bench   (or: lua5.4 bench/auto.lua)
-- Needs build/vmtrace/core.so and build/benchfloor.so (bench/floor.c).
--
-- The workload is fib(25) from bench/auto_fib.lua: 242,785 Lua calls. In
-- ROUNDS interleaved rounds, each variant runs once per round; times are the
-- best round's, ratios the median of each round's ratio (the variants of a
-- round run back to back, so a lucky round for one of them skews nothing):
--   untraced   no hook
--   empty_hook a call/return hook that does nothing (benchfloor.hook)
--   traced     vmtrace.auto{calls = {include = {"auto_fib"}}}: every call
--              an fn_call span                          goal <= 6.0x untraced (moonshot 4.0x)
--   excluded   vmtrace.auto{calls = {exclude = {"auto_fib"}}}: the hook
--              runs, nothing is recorded                goal <= 1.5x empty_hook (moonshot 1.1x)
--   min_ms     calls traced with min_ms = 1000: every span dropped (info)
--   memory     resident memory in a fresh process after fib(20) and after
--              fib(27) (14x the calls) under min_ms     goal: flat (< 256 kB growth)
--   clock      one CLOCK_MONOTONIC reading, measured in C (a traced call takes
--              two: its start and its end); "traced" is also shown without them
-- With valgrind installed, callgrind counts the instructions of fib(20) in
-- each variant (a fresh process each), per call. The exit status is 0 even
-- when a goal is missed; the last line says how many were met.

local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root
  .. "/bench/?.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath

local floor = require "benchfloor"
local vmtrace = require "vmtrace"
local fibmod = require "auto_fib"
local fib = fibmod.fib

local N, CALLS, ROUNDS = 25, 242785, 15

local VARIANTS = {
  untraced = function() end,
  empty_hook = function() floor.hook(true) end,
  traced = function() vmtrace.auto { calls = { include = { "auto_fib" } } } end,
  excluded = function() vmtrace.auto { calls = { exclude = { "auto_fib" } } } end,
  min_ms = function() vmtrace.auto { calls = { include = { "auto_fib" }, min_ms = 1000 } } end,
}

local function stop(name)
  if name == "empty_hook" then floor.hook(false) else vmtrace.auto(false) end
end

local function resident_kb()
  local f = assert(io.open("/proc/self/statm", "r"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4
end

-- child modes ------------------------------------------------------------------------

if arg[1] == "--mem" then -- resident kB after fib(20), then after fib(27), under min_ms
  vmtrace.enable()
  VARIANTS.min_ms()
  fib(20)
  collectgarbage("collect")
  local a = resident_kb()
  fib(27)
  collectgarbage("collect")
  local b = resident_kb()
  local st = vmtrace.stats()
  vmtrace.auto(false)
  print(a, b, st.completed + st.open)
  os.exit(0)
elseif arg[1] == "--one" then -- one variant of fib(n), for callgrind
  vmtrace.enable()
  VARIANTS[arg[2]]()
  fib(tonumber(arg[3]))
  stop(arg[2])
  os.exit(0)
end

-- the timed rounds --------------------------------------------------------------------

local ORDER = { "untraced", "empty_hook", "traced", "excluded", "min_ms" }
local best, rounds = {}, {}
for round = 1, ROUNDS do
  rounds[round] = {}
  for _, name in ipairs(ORDER) do
    vmtrace.enable() -- a fresh collector every round
    collectgarbage("collect")
    VARIANTS[name]()
    local t0 = floor.clock()
    fib(N)
    local dt = floor.clock() - t0
    stop(name)
    if name == "traced" and round == 1 then
      local n = 0
      for _, s in ipairs(vmtrace.take_spans()) do
        if s.kind == "fn_call" then n = n + 1 end
      end
      assert(n == CALLS, ("traced: %d fn_call spans, expected %d"):format(n, CALLS))
    end
    if name == "min_ms" then
      assert(vmtrace.stats().completed == 0, "min_ms: spans were kept")
    end
    best[name] = math.min(best[name] or math.huge, dt)
    rounds[round][name] = dt
  end
end

-- the median over rounds of a / b
local function ratio(a, b)
  local r = {}
  for i = 1, #rounds do r[i] = rounds[i][a] / rounds[i][b] end
  table.sort(r)
  return r[(#r + 1) // 2]
end
vmtrace.disable()

local met, goals = 0, 0
local function row(name, value, unit, ratio, note, goal)
  local status = ""
  if goal ~= nil then
    goals = goals + 1
    if goal then met = met + 1 end
    status = goal and "ok" or "MISSED"
  end
  print(("%-12s %12s %-6s %8s  %-44s %s"):format(name, value, unit,
    ratio and ("%.2fx"):format(ratio) or "", note or "", status))
end

print(("fib(%d): %d calls, %d interleaved rounds: best time, median ratio"):format(N, CALLS, ROUNDS))
local function ns(name) return best[name] / CALLS end
row("untraced", ("%.1f"):format(best.untraced / 1e6), "ms", nil, ("%.1f ns/call"):format(ns "untraced"))
row("empty_hook", ("%.1f"):format(best.empty_hook / 1e6), "ms", ratio("empty_hook", "untraced"),
  ("%.1f ns/call (x untraced)"):format(ns "empty_hook"))
row("traced", ("%.1f"):format(best.traced / 1e6), "ms", ratio("traced", "untraced"),
  ("%.1f ns/call (x untraced; goal 6.0x, moonshot 4.0x)"):format(ns "traced"),
  ratio("traced", "untraced") <= 6.0)
row("excluded", ("%.1f"):format(best.excluded / 1e6), "ms", ratio("excluded", "empty_hook"),
  ("%.1f ns/call (x empty_hook; goal 1.5x, moonshot 1.1x)"):format(ns "excluded"),
  ratio("excluded", "empty_hook") <= 1.5)
row("min_ms", ("%.1f"):format(best.min_ms / 1e6), "ms", ratio("min_ms", "untraced"),
  ("%.1f ns/call (x untraced; every span dropped)"):format(ns "min_ms"))
local clock_ns = floor.clock_cost(200000)
row("clock", ("%.1f"):format(clock_ns), "ns", nil, "one clock_gettime(CLOCK_MONOTONIC), in C")
row("traced-clk", ("%.1f"):format((best.traced - 2 * clock_ns * CALLS) / 1e6), "ms",
  ratio("traced", "untraced") - 2 * clock_ns * CALLS / best.untraced,
  "traced without its two clock readings per call (info)")

-- memory under min_ms, in a fresh process
local self = root .. "/bench/auto.lua"
local p = io.popen(("%s %q --mem"):format(arg[-1] or "lua5.4", self))
local out = p:read("a")
p:close()
local a, b, kept = out:match("(%d+)%s+(%d+)%s+(%d+)")
if a then
  a, b = tonumber(a), tonumber(b)
  row("min_ms_rss", ("%d -> %d"):format(a, b), "kB", nil,
    ("fib(20) then fib(27) (+3.9M calls), %s spans kept"):format(kept), b - a < 256)
else
  row("min_ms_rss", "?", "", nil, "child failed: " .. out, false)
end

-- instruction counts, when valgrind is there
local vg = io.popen("command -v valgrind 2>/dev/null"):read("l")
if vg and vg ~= "" and os.getenv("VT_BENCH_NO_CALLGRIND") == nil then
  local ir = {}
  for _, name in ipairs(ORDER) do
    local cmd = ("valgrind --tool=callgrind --callgrind-out-file=/dev/null %q %q --one %s 20 2>&1")
      :format(arg[-1] or "lua5.4", self, name)
    local q = io.popen(cmd)
    local text = q:read("a")
    q:close()
    ir[name] = tonumber((text:match("Collected : (%d+)") or ""))
  end
  if ir.untraced then
    local calls20 = 21891
    print(("callgrind, fib(20) (%d calls), instructions per call beyond untraced:"):format(calls20))
    for _, name in ipairs(ORDER) do
      if ir[name] and name ~= "untraced" then
        print(("  %-12s %8.0f"):format(name, (ir[name] - ir.untraced) / calls20))
      end
    end
  end
end

print(("%d of %d goals met"):format(met, goals))

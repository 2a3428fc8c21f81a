-- bench/bench.lua: vmtrace's benchmarks (figures and goals, not tests).
--
-- Run from the repo root:  make bench   (or: lua5.4 bench/bench.lua)
-- Needs build/vmtrace/core.so and build/benchfloor.so (bench/floor.c).
-- With VMTRACE_BENCH_INSTALLED=1 it measures the module LUA_PATH/LUA_CPATH
-- find (make bench installs the rock into build/rocktree and runs it so),
-- not the checkout's build; --quick leaves out the 1M-span summary, the
-- OTLP/HTTP exporter and the soak.
--
-- Every figure is measured in this run, against floors measured in this run:
--   floor_clock   f(f("fn_call", "work")) with f = benchfloor.clock: the span
--                 loop's two Lua->C calls, each reading CLOCK_MONOTONIC: the
--                 least a start+finish can cost
--   floor_empty   the same two calls of benchfloor.empty (does nothing): the
--                 least a disabled start+finish can cost
--   floor_meta2   floor_clock's span with two benchfloor.empty(id, k, v)
--                 calls between: the least a span with two set_metadata
--                 calls can cost (info)
--   floor_noargs  f(); f() with benchfloor.empty, without arguments (info)
--   on            finish(start("fn_call", "work")), tracing on    goal <= 1.5x floor_clock
--   off           the same, tracing off                           goal <= 1.2x floor_empty
--   close         do local s <close> = vmtrace.span(...) end      goal <= 2.5x floor_clock
--   meta2         a span with set_metadata(id, "tool_name", "grep") and
--                 set_metadata(id, "tokens", 12)                  goal <= 1.5x on
--   coroutine     "on" inside a coroutine                         goal <= 1.2x on
--   plain         the same with bench/plain.lua, a Lua collector  (informational)
--   memory        resident bytes per completed span, no metadata  goal <= 64 B/span
--   meta_key      resident bytes per metadata key (spans with two) (info)
--   summary       vmtrace.summary() over 1,000,000 spans          goal < 2 s
--   otlp_export   export("otlp") of 1,000,000 meta2 spans, per span, against
--                 recording them                                  goal <= 0.5x recording
--   otlp_memory   peak resident memory growth during that export  goal < 1 MB
--   otlp_on       start+finish with the OTLP/HTTP exporter on     goal <= 2.0x exporter off
--   soak_growth   10M spans under max_spans = 100000: resident memory from 1M
--                 to 10M spans                                     goal < 1 MB
-- The operations are bench/ops.lua's (each defined there once, shared with
-- the instruction counts below), each timed as one call of its loop.
-- Timings are the best of ROUNDS interleaved rounds of ITERS operations each.
-- Memory is measured in a fresh child process per collector (freed memory
-- from earlier rounds would otherwise hide new allocations). With valgrind
-- installed, callgrind counts the instructions of each span-path figure
-- (bench/ops.lua, 100,000 operations, a fresh process each, less the
-- process's own): stable on a noisy machine, where times are not. The exit
-- status is 0 even when a goal is missed; the last line says how many were met.

local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
local INSTALLED = os.getenv("VMTRACE_BENCH_INSTALLED") == "1"
local QUICK = false
for _, a in ipairs(arg or {}) do if a == "--quick" then QUICK = true end end
if INSTALLED then
  package.path = root .. "/bench/?.lua;" .. package.path
else
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root
    .. "/bench/?.lua;" .. package.path
  package.cpath = root .. "/build/?.so;" .. package.cpath
end

local ITERS = 2000000
local ROUNDS = 5
local MEM_SPANS = 1000000
local PIPELINES = 1000            -- x 1000 spans each = 1,000,000 spans

local ok_floor, floor = pcall(function()
  return assert(package.loadlib(root .. "/build/benchfloor.so", "luaopen_benchfloor"))()
end)
if not ok_floor then
  io.stderr:write("bench: cannot load benchfloor (build it with: gcc -O2 -shared -fPIC ",
    "-I/usr/include/lua5.4 bench/floor.c -o build/benchfloor.so)\n", tostring(floor), "\n")
  os.exit(1)
end
local clock = floor.clock
package.loaded.benchfloor = floor -- for bench/plain.lua

local ok_vm, vmtrace = pcall(require, "vmtrace")
if not ok_vm then
  if not (arg and arg[1] == "--mem") then io.stderr:write("bench: cannot load vmtrace: ", tostring(vmtrace), "\n") end
  vmtrace = nil
end
local plain = require "plain"
local ops = require "ops"

local function full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

---------------------------------------------------------------------------
-- memory: child-process mode  (lua5.4 bench/bench.lua --mem vmtrace|plain)
---------------------------------------------------------------------------

local function page_size()
  local p = io.popen("getconf PAGESIZE 2>/dev/null")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return n or 4096
end

local function resident_bytes(pagesize)
  local f = assert(io.open("/proc/self/statm", "r"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * pagesize
end

if arg and arg[1] == "--mem" then
  local keys = arg[2] == "vmtrace2"
  local api = (arg[2] == "vmtrace" or keys) and vmtrace or (arg[2] == "plain" and plain) or nil
  if api == nil then print("nil"); os.exit(0) end
  local pagesize = page_size()
  api.enable()
  ops.on(1, api)   -- first-use allocations are not per span
  api.enable()
  full_gc()
  local before = resident_bytes(pagesize)
  if keys then ops.meta2(MEM_SPANS, api) else ops.on(MEM_SPANS, api) end
  full_gc()
  local after = resident_bytes(pagesize)
  print(string.format("%.3f", (after - before) / MEM_SPANS))
  os.exit(0)
end

-- soak: child-process mode (lua5.4 bench/bench.lua --soak): 10,000,000
-- spans, each with one metadata key, under configure{max_spans = 100000};
-- prints resident kB after every million spans
if arg and arg[1] == "--soak" then
  local pagesize = page_size()
  vmtrace.enable()
  vmtrace.configure { max_spans = 100000 }
  local start, finish, set = vmtrace.start, vmtrace.finish, vmtrace.set_metadata
  local root = start("pipeline", "soak")
  local out = {}
  for i = 1, 10000000 do
    local id = start("fn_call", "work")
    set(id, "i", i)
    finish(id)
    if i % 1000000 == 0 then
      full_gc()
      out[#out + 1] = string.format("%d", resident_bytes(pagesize) // 1024)
    end
  end
  finish(root)
  print(table.concat(out, " "), vmtrace.dropped())
  os.exit(0)
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function child_mem(which, mode)
  local interp, i = nil, -1
  while arg[i] do interp = arg[i]; i = i - 1 end
  local cmd = string.format("%s %s %s %s", shell_quote(interp or "lua5.4"),
    shell_quote(arg[0]), mode or "--mem", which)
  if mode then
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    return out
  end
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return tonumber(out:match("[%d%.]+"))
end

---------------------------------------------------------------------------
-- timed operations (bench/ops.lua): each returns ns per operation for n
-- operations, the one call of ops[name]'s loop timed as a whole
---------------------------------------------------------------------------

-- the empty loop and the floors: no collector
local function timed(name)
  local op = ops[name]
  return function(n)
    local t0 = clock()
    op(n, floor)
    return (clock() - t0) / n
  end
end

-- a traced operation with api (vmtrace or plain): tracing on ("off" turns it
-- off), a collected heap before, the spans dropped after
local function traced(name, api)
  local op = ops[name]
  return function(n)
    api.enable()
    full_gc()
    local t0 = clock()
    op(n, api)
    local ns = (clock() - t0) / n
    api.disable()
    api.enable(); api.disable()   -- drop the spans (enable resets)
    return ns
  end
end

local cases = {
  { "loop", timed("loop") },
  { "floor_clock", timed("floor_clock") },
  { "floor_empty", timed("floor_empty") },
  { "floor_noargs", timed("floor_noargs") },
  { "floor_meta2", timed("floor_meta2") },
  { "plain_on", traced("on", plain) },
  { "plain_off", traced("off", plain) },
}
if vmtrace then
  for _, name in ipairs { "on", "off", "close", "meta2", "coroutine" } do
    table.insert(cases, { name, traced(name, vmtrace) })
  end
end

---------------------------------------------------------------------------
-- realistic tree for the summary: per pipeline 1 + 27 steps x (1 step +
-- 1 llm_call with 7 usage keys + 4 tool_calls with tool_name + 31 fn_calls)
-- = 1000 spans
---------------------------------------------------------------------------

local STEP_NAMES, FN_NAMES = {}, {}
for s = 1, 27 do STEP_NAMES[s] = "step_" .. s end
for f = 1, 8 do FN_NAMES[f] = ({ "parse", "render_prompt", "plan", "validate",
  "merge", "score", "dedupe", "format" })[f] end
local TOOLS = { "read_file", "grep", "run_tests", "edit_file" }
local MODELS = { "claude-sonnet-4", "gpt-4.1-mini" }
local PROVIDERS = { "anthropic", "openai" }

local function build_tree(api, npipelines)
  local start, finish, set = api.start, api.finish, api.set_metadata
  for p = 1, npipelines do
    local pid = start("pipeline", "agent_run")
    for s = 1, 27 do
      local sid = start("step", STEP_NAMES[s])
      local lid = start("llm_call", "chat")
      local m = (p + s) % 2 + 1
      local input, output = 1000 + (p * 7 + s * 13) % 4000, 50 + (p + s * 3) % 700
      local cache_read = (s > 1) and 800 or 0
      set(lid, "model", MODELS[m])
      set(lid, "provider", PROVIDERS[m])
      set(lid, "input_tokens", input)
      set(lid, "output_tokens", output)
      set(lid, "cache_read_tokens", cache_read)
      set(lid, "cache_write_tokens", (s == 1) and 1024 or 0)
      set(lid, "cost_usd", (input * 3 + output * 15 + cache_read * 0.3) / 1e6)
      finish(lid)
      for t = 1, 4 do
        local tid = start("tool_call", TOOLS[t])
        set(tid, "tool_name", TOOLS[t])
        finish(tid)
      end
      for f = 1, 31 do
        finish(start("fn_call", FN_NAMES[f % 8 + 1]))
      end
      finish(sid)
    end
    finish(pid)
  end
end

local function count_lines(s)
  local n, pos = 1, 0
  while true do
    pos = s:find("\n", pos + 1, true)
    if not pos then return n end
    n = n + 1
  end
end

-- best wall time in seconds of fn over `rounds` calls; stops early when slow
local function time_best(fn, rounds)
  local best, result
  for _ = 1, rounds do
    full_gc()
    local t0 = clock()
    result = fn()
    local dt = (clock() - t0) / 1e9
    if not best or dt < best then best = dt end
    if dt > 5 then break end
  end
  return best, result
end

---------------------------------------------------------------------------
-- run
---------------------------------------------------------------------------

local rows, met, missed = {}, 0, 0
local function row(name, value, unit, ratio, goal, verdict)
  rows[#rows + 1] = { name, value, unit, ratio or "-", goal or "-", verdict or "info" }
  if verdict == "PASS" then met = met + 1 elseif verdict == "FAIL" then missed = missed + 1 end
end
local function goal_row(name, value, unit, ratio, goal, limit, strict, vfmt)
  local pass = value ~= nil and ratio ~= nil and (strict and ratio < limit or ratio <= limit)
  row(name, value and string.format(vfmt or "%.1f", value) or "n/a", unit,
    ratio and string.format("%.2fx", ratio) or "n/a", goal, pass and "PASS" or "FAIL")
end

print(string.format("vmtrace bench: %s, %s, %d ops per round, best of %d rounds",
  _VERSION, INSTALLED and "the installed module (" .. (package.searchpath("vmtrace.core", package.cpath) or "?") .. ")"
    or "the Makefile build", ITERS, ROUNDS))
io.stdout:flush()

-- rounds are interleaved so that drift affects every case alike
local best = {}
for _ = 1, ROUNDS do
  for _, case in ipairs(cases) do
    local ns = case[2](ITERS)
    if not best[case[1]] or ns < best[case[1]] then best[case[1]] = ns end
  end
end

local fc, fe = best.floor_clock, best.floor_empty
row("loop", string.format("%.1f", best.loop), "ns/op", nil, nil, "info")
row("floor_clock", string.format("%.1f", fc), "ns/op", "1.00x", nil, "info")
row("floor_empty", string.format("%.1f", fe), "ns/op", "1.00x", nil, "info")
row("floor_noargs", string.format("%.1f", best.floor_noargs), "ns/op",
  string.format("%.2fx", best.floor_noargs / fe), "(x floor_empty)", "info")
row("floor_meta2", string.format("%.1f", best.floor_meta2), "ns/op",
  string.format("%.2fx", best.floor_meta2 / fc), "(x floor_clock)", "info")
goal_row("on", best.on, "ns/op", best.on and best.on / fc, "<=1.5x floor_clock", 1.5)
goal_row("off", best.off, "ns/op", best.off and best.off / fe, "<=1.2x floor_empty", 1.2)
goal_row("close", best.close, "ns/op", best.close and best.close / fc,
  "<=2.5x floor_clock", 2.5)
goal_row("meta2", best.meta2, "ns/op", best.meta2 and best.on and best.meta2 / best.on,
  "<=1.5x on", 1.5)
goal_row("coroutine", best.coroutine, "ns/op", best.coroutine and best.coroutine / best.on,
  "<=1.2x on (main)", 1.2)
row("plain_on", string.format("%.1f", best.plain_on), "ns/op",
  string.format("%.2fx", best.plain_on / fc), "(x floor_clock)", "info")
row("plain_off", string.format("%.1f", best.plain_off), "ns/op",
  string.format("%.2fx", best.plain_off / fe), "(x floor_empty)", "info")
if best.on then
  row("on/plain_on", string.format("%.3f", best.on / best.plain_on), "ratio",
    string.format("%.2fx", best.on / best.plain_on), "(vmtrace/plain)", "info")
  row("off/plain_off", string.format("%.3f", best.off / best.plain_off), "ratio",
    string.format("%.2fx", best.off / best.plain_off), "(vmtrace/plain)", "info")
end

-- memory, each in a fresh process
local mem_vm = vmtrace and child_mem("vmtrace") or nil
local mem_plain = child_mem("plain")
goal_row("memory", mem_vm, "B/span", mem_vm and mem_vm / 64, "<=64 B/span", 1.0)
local mem_vm2 = vmtrace and child_mem("vmtrace2") or nil
if mem_vm and mem_vm2 then
  row("meta_key", string.format("%.1f", (mem_vm2 - mem_vm) / 2), "B/key", nil,
    "(tool_name=grep, tokens=12)", "info")
end
row("plain_memory", mem_plain and string.format("%.1f", mem_plain) or "n/a", "B/span",
  (mem_vm and mem_plain) and string.format("%.2fx", mem_vm / mem_plain) or "-",
  "(vmtrace/plain)", "info")

if not QUICK then
-- summary of a realistic 1,000,000-span tree
local nspans = PIPELINES * 1000
local check, vm_summary_secs
if vmtrace then
  -- first a correctness check on a small tree: same text as plain.lua's
  -- (durations masked, since the two trees are built at different times)
  vmtrace.enable(); plain.enable()
  build_tree(vmtrace, 2); build_tree(plain, 2)
  local a = vmtrace.summary():gsub("%d+ms", "Nms")
  local b = plain.summary():gsub("%d+ms", "Nms")
  if a == b then
    check = "match"
  else
    check = "DIFFER"
    local la, lb = {}, {}
    for l in (a .. "\n"):gmatch("(.-)\n") do la[#la + 1] = l end
    for l in (b .. "\n"):gmatch("(.-)\n") do lb[#lb + 1] = l end
    for i = 1, math.max(#la, #lb) do
      if la[i] ~= lb[i] then
        io.stderr:write(string.format("summary differs at line %d:\n  vmtrace: %s\n  plain:   %s\n",
          i, tostring(la[i]), tostring(lb[i])))
        break
      end
    end
  end
  vmtrace.enable(); vmtrace.disable(); plain.enable(); plain.disable()

  vmtrace.enable()
  local tb0 = clock()
  build_tree(vmtrace, PIPELINES)
  local build_s = (clock() - tb0) / 1e9
  vmtrace.disable()
  local secs, text = time_best(vmtrace.summary, 3)
  local lines = count_lines(text)
  if lines ~= nspans + 2 then
    io.stderr:write(string.format("summary: expected %d lines, got %d\n", nspans + 2, lines))
  end
  text = nil
  vm_summary_secs = secs
  goal_row("summary", secs, "s", secs / 2.0, "<2 s (1M spans)", 1.0, true, "%.3f")
  row("build_tree", string.format("%.3f", build_s), "s", nil, "(1M spans, vmtrace)", "info")
  vmtrace.enable(); vmtrace.disable()
  full_gc()
else
  goal_row("summary", nil, "s", nil, "<2 s (1M spans)", 1.0, true)
end

do
  plain.enable()
  local tb0 = clock()
  build_tree(plain, PIPELINES)
  local build_s = (clock() - tb0) / 1e9
  plain.disable()
  local secs, text = time_best(plain.summary, 1)
  local lines = count_lines(text)
  if lines ~= nspans + 2 then
    io.stderr:write(string.format("plain summary: expected %d lines, got %d\n", nspans + 2, lines))
  end
  text = nil
  local vm_secs = vm_summary_secs
  row("plain_summary", string.format("%.3f", secs), "s",
    vm_secs and string.format("%.2fx", vm_secs / secs) or "-", "(vmtrace/plain)", "info")
  row("plain_build", string.format("%.3f", build_s), "s", nil, "(1M spans, plain)", "info")
  plain.enable(); plain.disable()
  full_gc()
end
if check then row("summary_text", check, "-", nil, "(vmtrace == plain)", "info") end
end

-- OTLP/JSON export of 1,000,000 spans with two metadata keys each, to
-- /dev/null: time per span, and resident memory before and after (the
-- exporter streams through a fixed window, so it must not grow)
local function proc_status(key)
  for l in io.lines("/proc/self/status") do
    local n = l:match("^" .. key .. ":%s+(%d+)")
    if n then return tonumber(n) end
  end
end
if vmtrace then
  local record_ns
  for _ = 1, 3 do -- recording the spans (ops.meta2), best of 3
    vmtrace.enable()
    full_gc()
    local t0 = clock()
    ops.meta2(MEM_SPANS, vmtrace)
    local ns = (clock() - t0) / MEM_SPANS
    if not record_ns or ns < record_ns then record_ns = ns end
  end
  full_gc()
  local hwm0 = proc_status("VmHWM")
  local best_ns
  for _ = 1, 3 do
    local t0 = clock()
    assert(vmtrace.export("otlp", "/dev/null"))
    local ns = (clock() - t0) / MEM_SPANS
    if not best_ns or ns < best_ns then best_ns = ns end
  end
  local grew = proc_status("VmHWM") - hwm0
  row("otlp_record", string.format("%.1f", record_ns), "ns/span", nil,
    "(recording the exported spans)", "info")
  goal_row("otlp_export", best_ns, "ns/span", best_ns / record_ns, "<=0.5x recording", 0.5)
  goal_row("otlp_memory", grew, "kB", grew / 1024, "peak RSS growth < 1 MB", 1.0, true, "%d")
  vmtrace.enable(); vmtrace.disable()
  full_gc()
end

-- the OTLP/HTTP exporter against a fast local receiver (node, answering 200
-- at once): start+finish with the exporter on vs off, what enqueueing costs
-- per span, and how many spans per second one exporter thread delivers
local function start_receiver()
  local f = io.popen("node " .. root .. "/tests/otlp/receiver.js --fast & echo pid $!")
  local pid, port
  for line in f:lines() do
    pid = pid or line:match("^pid (%d+)")
    port = line:match("^listening (%d+)")
    if port then break end
  end
  return pid, port, f
end

if vmtrace and not QUICK and os.execute("command -v node >/dev/null 2>&1") then
  local pid, port, pipe = start_receiver()
  if port then
    local N = ITERS
    local function loop()
      local t0 = clock()
      ops.on(N, vmtrace)
      return (clock() - t0) / N
    end
    local best_off, best_on
    for _ = 1, 3 do
      vmtrace.enable()
      full_gc()
      local off = loop()
      vmtrace.enable()
      full_gc()
      assert(vmtrace.otlp.start { endpoint = "http://127.0.0.1:" .. port .. "/v1/traces",
        max_queue = 2 * N, batch_size = 2048, delay_ms = 200 })
      local on = loop()
      vmtrace.otlp.shutdown(60000)
      best_off = math.min(best_off or off, off)
      best_on = math.min(best_on or on, on)
    end
    goal_row("otlp_on", best_on, "ns/op", best_on / best_off, "<=2.0x exporter off", 2.0)
    row("otlp_enqueue", string.format("%.1f", best_on - best_off), "ns/span", nil,
      "(the enqueue, per span)", "info")
    -- delivery: spans per second through one exporter thread
    vmtrace.enable()
    local M = 1000000
    assert(vmtrace.otlp.start { endpoint = "http://127.0.0.1:" .. port .. "/v1/traces",
      max_queue = M, batch_size = 4096, delay_ms = 10 })
    local t0 = clock()
    ops.on(M, vmtrace)
    assert(vmtrace.otlp.flush(120000))
    local secs = (clock() - t0) / 1e9
    local st = vmtrace.otlp.stats()
    vmtrace.otlp.shutdown(1000)
    row("otlp_delivery", string.format("%.0f", st.exported / secs), "spans/s", nil,
      string.format("(%d spans, %d batches, one thread)", st.exported, st.batches), "info")
    vmtrace.enable(); vmtrace.disable()
  end
  if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  if pipe then pipe:close() end
end

-- soak, in a fresh process: resident memory after warm-up (1M spans) and at
-- 10M spans under max_spans = 100000 must be flat
if vmtrace and not QUICK then
  local out = child_mem("", "--soak")
  local rss, dropped = {}, tonumber(out:match("(%d+)%s*$"))
  for n in out:gmatch("%d+") do rss[#rss + 1] = tonumber(n) end
  if #rss >= 11 then
    local growth = rss[10] - rss[1]
    row("soak_rss_1M", string.format("%d", rss[1]), "kB", nil, "(after 1M spans, max_spans 100000)", "info")
    row("soak_rss_10M", string.format("%d", rss[10]), "kB", nil, "(after 10M spans)", "info")
    goal_row("soak_growth", growth, "kB", growth / 1024, "1M->10M growth < 1 MB", 1.0, true, "%d")
    row("soak_dropped", string.format("%d", dropped), "spans", nil, "(counted)", "info")
  else
    goal_row("soak_growth", nil, "kB", nil, "1M->10M growth < 1 MB", 1.0)
  end
end

-- instruction counts (callgrind): per operation, less the process's own
local function instructions(case, n)
  local out = os.tmpname()
  local interp, i = nil, -1
  while arg[i] do interp = arg[i]; i = i - 1 end
  local cmd = string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s %s %s %d >/dev/null 2>&1",
    shell_quote(out), shell_quote(interp or "lua5.4"), shell_quote(root .. "/bench/ops.lua"), case, n)
  local ok = os.execute(cmd)
  local f = io.open(out)
  local total
  if ok and f then
    for l in f:lines() do
      local t = l:match("^summary:%s+(%d+)") or l:match("^totals:%s+(%d+)")
      if t then total = tonumber(t) end
    end
  end
  if f then f:close() end
  os.remove(out)
  return total
end
if vmtrace and os.execute("command -v valgrind >/dev/null 2>&1") then
  local N = 100000
  local base = instructions("none", N)
  local ir = {}
  for _, case in ipairs { "floor_clock", "floor_empty", "on", "off", "close", "meta2", "otlp" } do
    local t = instructions(case, N)
    ir[case] = (t and base) and (t - base) / N or nil
  end
  if ir.otlp and ir.meta2 then ir.otlp = ir.otlp - ir.meta2 end
  local function irow(name, v, ref, refname)
    row("ir_" .. name, v and string.format("%.0f", v) or "n/a", "instr/op",
      (v and ref) and string.format("%.2fx", v / ref) or nil, "(x " .. refname .. ", callgrind)", "info")
  end
  irow("floor_clock", ir.floor_clock, ir.floor_clock, "floor_clock")
  irow("floor_empty", ir.floor_empty, ir.floor_empty, "floor_empty")
  irow("on", ir.on, ir.floor_clock, "floor_clock")
  irow("off", ir.off, ir.floor_empty, "floor_empty")
  irow("close", ir.close, ir.floor_clock, "floor_clock")
  irow("meta2", ir.meta2, ir.on, "on")
  irow("otlp_export", ir.otlp, ir.meta2, "meta2, per span")
else
  row("ir", "n/a", "-", nil, "(instruction counts need valgrind)", "info")
end

local w = { 0, 0, 0, 0, 0, 0 }
for _, r in ipairs(rows) do
  for i = 1, 6 do w[i] = math.max(w[i], #r[i]) end
end
local fmt = string.format("%%-%ds  %%%ds  %%-%ds  %%%ds  %%-%ds  %%s", w[1], w[2], w[3], w[4], w[5])
for _, r in ipairs(rows) do
  print(string.format(fmt, r[1], r[2], r[3], r[4], r[5], r[6]))
end
print(string.format("goals: %d met, %d missed", met, missed))

-- bench/ops.lua: the operations vmtrace's benchmarks measure, each defined
-- once. Required (require "ops", as bench.lua does), it returns them: ops.X(n,
-- api) does operation X n times, in one loop, with api's functions (vmtrace,
-- or bench/plain.lua's collector, for the span operations; the benchfloor
-- module for the floor_* ones); bench.lua times the call as a whole.
-- Run, it does one of them N times, for callgrind to count its instructions
-- (bench.lua runs it: valgrind --tool=callgrind lua5.4 bench/ops.lua CASE N),
-- with tracing on (off: the case turns it off). Case "none" loads everything
-- and does nothing: the baseline subtracted from the others.
-- VMTRACE_BENCH_INSTALLED=1: the installed module (LUA_PATH/LUA_CPATH as
-- luarocks path sets them), not the checkout's build.
--
-- Each loop keeps its functions in locals, read before the loop: what a
-- loop iteration costs is the calls alone.

local ops = {}

function ops.none() end

-- an empty loop
function ops.loop(n)
  for _ = 1, n do end
end

-- a span: finish(start("fn_call", "work"))
function ops.on(n, api)
  local start, finish = api.start, api.finish
  for _ = 1, n do finish(start("fn_call", "work")) end
end

-- the same with tracing off
function ops.off(n, api)
  api.disable()
  ops.on(n, api)
end

-- a scoped span: do local s <close> = span("fn_call", "work") end
function ops.close(n, api)
  local span = api.span
  for _ = 1, n do local s <close> = span("fn_call", "work") end
end

-- a span with a string and an integer metadata key
function ops.meta2(n, api)
  local start, finish, set = api.start, api.finish, api.set_metadata
  for _ = 1, n do
    local id = start("tool_call", "work")
    set(id, "tool_name", "grep")
    set(id, "tokens", 12)
    finish(id)
  end
end

-- The floors are the span loops with benchfloor's functions in place of
-- vmtrace's, doing nothing but (clock) reading the monotonic clock and
-- returning it: the same Lua->C calls with the same arguments.
-- f(f("fn_call", "work")) with f = clock: the least a start+finish can cost
function ops.floor_clock(n, floor)
  ops.on(n, { start = floor.clock, finish = floor.clock })
end

-- the same with f = empty: the least a disabled start+finish can cost
function ops.floor_empty(n, floor)
  ops.on(n, { start = floor.empty, finish = floor.empty })
end

-- meta2 with clock for start and finish and empty for set_metadata: the
-- least its calls can cost
function ops.floor_meta2(n, floor)
  ops.meta2(n, { start = floor.clock, set_metadata = floor.empty, finish = floor.clock })
end

-- two calls without arguments, f(); f()
function ops.floor_noargs(n, floor)
  local f = floor.empty
  for _ = 1, n do f(); f() end
end

-- "on" inside a coroutine (its own active stack)
function ops.coroutine(n, api)
  coroutine.wrap(ops.on)(n, api)
end

-- meta2, then the OTLP export of those spans: less meta2, the export's count
function ops.otlp(n, api)
  ops.meta2(n, api)
  assert(api.export("otlp", "/dev/null"))
end

-- required: require passes the file's path as the second argument
local _, from = ...
if type(from) == "string" and from:match("ops%.lua$") then return ops end

local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
if os.getenv("VMTRACE_BENCH_INSTALLED") ~= "1" then
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  package.cpath = root .. "/build/?.so;" .. package.cpath
end
local floor = assert(package.loadlib(root .. "/build/benchfloor.so", "luaopen_benchfloor"))()
local vmtrace = require "vmtrace"
local case, n = arg[1], tonumber(arg[2] or "100000")
vmtrace.enable()
assert(ops[case], "unknown case " .. tostring(case))(n, case:match("^floor_") and floor or vmtrace)

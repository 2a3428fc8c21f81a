-- bench/ops.lua: one operation of bench.lua, N times, for callgrind to count
-- instructions (bench.lua runs it: valgrind --tool=callgrind lua5.4
-- bench/ops.lua CASE N). Case "none" loads everything and does nothing: the
-- baseline subtracted from the others. VMTRACE_BENCH_INSTALLED=1: the
-- installed module (LUA_PATH/LUA_CPATH as luarocks path sets them), not the
-- checkout's build.
local root = (arg and arg[0] or ""):match("^(.*)/bench/[^/]*$") or "."
if os.getenv("VMTRACE_BENCH_INSTALLED") ~= "1" then
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
  package.cpath = root .. "/build/?.so;" .. package.cpath
end
local floor = assert(package.loadlib(root .. "/build/benchfloor.so", "luaopen_benchfloor"))()
local vmtrace = require "vmtrace"
local case, n = arg[1], tonumber(arg[2] or "100000")
local start, finish, set, span = vmtrace.start, vmtrace.finish, vmtrace.set_metadata, vmtrace.span
local clock, empty = floor.clock, floor.empty
vmtrace.enable()
local cases = {
  none = function() end,
  floor_clock = function() for _ = 1, n do clock(clock("fn_call", "work")) end end,
  floor_empty = function() for _ = 1, n do empty(empty("fn_call", "work")) end end,
  on = function() for _ = 1, n do finish(start("fn_call", "work")) end end,
  off = function()
    vmtrace.disable()
    for _ = 1, n do finish(start("fn_call", "work")) end
  end,
  close = function() for _ = 1, n do local s <close> = span("fn_call", "work") end end,
  meta2 = function()
    for _ = 1, n do
      local id = start("tool_call", "work")
      set(id, "tool_name", "grep")
      set(id, "tokens", 12)
      finish(id)
    end
  end,
  -- meta2, then the OTLP export of those spans: less meta2, the export's count
  otlp = function()
    for _ = 1, n do
      local id = start("tool_call", "work")
      set(id, "tool_name", "grep")
      set(id, "tokens", 12)
      finish(id)
    end
    assert(vmtrace.export("otlp", "/dev/null"))
  end,
}
assert(cases[case], "unknown case " .. tostring(case))()

-- Automatic spans (issue 11): vmtrace.auto's fn_call spans from the call
-- hook (names, metadata, include/exclude, min_ms, max_depth, errors, tail
-- calls, coroutines, hook chaining, the switch), import spans from require,
-- spawn spans for coroutines; and vmtrace.wrap / vmtrace.instrument.

local vmtrace = require "vmtrace"
local core = require "vmtrace.core"
local helper = require "spec.helper"

local THIS = debug.getinfo(1, "S").source:sub(2) -- this file, as Lua names it

local function fn_calls(spans)
  local out = {}
  for _, s in ipairs(spans or vmtrace.spans()) do
    if s.kind == "fn_call" then out[#out + 1] = s end
  end
  return out
end

local function named(name, spans)
  local out = {}
  for _, s in ipairs(spans or vmtrace.spans()) do
    if s.name == name then out[#out + 1] = s end
  end
  return out
end

local function one(name, kind)
  local found
  for _, s in ipairs(vmtrace.spans()) do
    if s.name == name and (kind == nil or s.kind == kind) then
      assert.is_nil(found, "more than one span " .. name)
      found = s
    end
  end
  assert.is_not_nil(found, "no span " .. name)
  return found
end

local function line_of(f) return debug.getinfo(f, "S").linedefined end

local function busy(ms)
  local t = vmtrace.monotonic_ms()
  while vmtrace.monotonic_ms() - t < ms do end
end

-- a directory of fixture modules, on package.path while a test runs
local DIR = os.tmpname()
os.remove(DIR)
assert(os.execute("mkdir -p " .. helper.shq(DIR)))
local function module(name, text)
  helper.write(DIR .. "/" .. name .. ".lua", text)
  package.loaded[name] = nil
  return DIR .. "/" .. name .. ".lua"
end

describe("vmtrace.auto", function()
  local saved_path
  before_each(function()
    saved_path = package.path
    package.path = DIR .. "/?.lua;" .. package.path
    vmtrace.enable()
  end)
  after_each(function()
    vmtrace.auto(false)
    package.path = saved_path
    vmtrace.disable()
  end)

  describe("calls", function()
    it("fib(15) makes exactly 1,973 fn_call spans, each a child of its caller's", function()
      local function fib(n)
        if n < 2 then return n end
        return fib(n - 1) + fib(n - 2)
      end
      vmtrace.auto { calls = true }
      assert.equal(610, fib(15))
      vmtrace.auto(false)
      local spans = fn_calls()
      assert.equal(1973, #spans)
      local by_id, roots = helper.by_id(spans), 0
      for _, s in ipairs(spans) do
        assert.equal("fib", s.name)
        if s.parent_id then assert.equal("fib", by_id[s.parent_id].name) else roots = roots + 1 end
      end
      assert.equal(1, roots)
      assert.equal(0, vmtrace.stats().open)
    end)

    it("keeps times in order to the ns: each span within its parent's, siblings one after another", function()
      -- the hook reads the clock the quick way (rdtsc), spans made by hand
      -- the ordered way (rdtscp): both stay in order (README "Clock")
      local function fib(n)
        if n < 2 then
          vmtrace.finish(vmtrace.start("tool_call", "leaf"))
          return n
        end
        return fib(n - 1) + fib(n - 2)
      end
      vmtrace.auto { calls = true }
      for _ = 1, 3 do fib(12) end
      vmtrace.auto(false)
      local doc = assert(vmtrace.json_decode(vmtrace.export("otlp")))
      local spans = doc.resourceSpans[1].scopeSpans[1].spans
      assert.equal(3 * (465 + 233), #spans) -- fib(12): 465 calls, 233 leaves
      local by, last_child = {}, {}
      for _, s in ipairs(spans) do
        s.t0, s.t1 = math.tointeger(s.startTimeUnixNano), math.tointeger(s.endTimeUnixNano)
        assert.is_true(s.t0 <= s.t1)
        by[s.spanId] = s
      end
      local checked = 0
      for _, s in ipairs(spans) do
        local p = s.parentSpanId and by[s.parentSpanId]
        if p then
          assert.is_true(p.t0 <= s.t0 and s.t1 <= p.t1, "a span outside its parent's time")
          checked = checked + 1
        end
      end
      assert.equal(#spans - 3, checked)
      table.sort(spans, function(a, b) return a.t0 < b.t0 or (a.t0 == b.t0 and a.t1 < b.t1) end)
      for _, s in ipairs(spans) do -- in start order, a sibling starts after the one before ends
        local key = s.parentSpanId or ""
        local prev = last_child[key]
        if prev then assert.is_true(prev.t1 <= s.t0, "siblings overlap") end
        last_child[key] = s
      end
    end)

    it("gives every span source = \"path:LINE\" of the function's definition", function()
      local function leaf() return 1 end
      vmtrace.auto { calls = true }
      leaf()
      vmtrace.auto(false)
      assert.same({ source = THIS .. ":" .. line_of(leaf) }, one("leaf").metadata)
    end)

    it("auto(false) removes the hook: later calls record nothing", function()
      local function f() return 1 end
      vmtrace.auto { calls = true }
      assert.is_true(core._auto_hooked())
      f()
      vmtrace.auto(false)
      assert.is_false(core._auto_hooked())
      f()
      assert.equal(1, #named("f"))
    end)

    it("names a function as a person would: module.field, global, local, upvalue, method", function()
      module("autocart", [[
local M = {}
function M.add(x) return x + 1 end
function M:total() return self.n end
return M
]])
      vmtrace.auto { calls = { include = { "autocart", "21%-auto_spec" } }, requires = false }
      local cart = require "autocart"
      local y = cart.add(1)
      local obj = setmetatable({ n = 2 }, { __index = cart })
      local t = obj:total()
      function auto_spec_global() return y + t end -- luacheck: ignore
      local z = auto_spec_global()
      local function parse() return z end
      local p = parse()
      local function outer() local r = parse() return r end
      outer()
      vmtrace.auto(false)
      auto_spec_global = nil
      assert.equal(4, p)
      assert.equal(1, #named("autocart.add"))
      assert.equal(1, #named("autocart.total"))
      assert.equal(1, #named("auto_spec_global"))
      assert.equal(2, #named("parse")) -- a local, then an upvalue
      assert.equal(DIR .. "/autocart.lua:2", named("autocart.add")[1].metadata.source)
      assert.equal(1, #named("autocart.lua")) -- the module's main chunk, called by require
    end)

    it("names a function Lua cannot name by its definition site, until a call names it", function()
      local anon = function() return 1 end
      local site = "21-auto_spec.lua:" .. line_of(anon)
      vmtrace.auto { calls = true }
      pcall(anon) -- called from C: no name
      pcall(function() return 2 end)
      anon()      -- called by name: named from now on
      pcall(anon)
      vmtrace.auto(false)
      local names = {}
      for _, s in ipairs(fn_calls()) do names[#names + 1] = s.name end
      assert.same({ site, "21-auto_spec.lua:" .. (line_of(anon) + 4), "anon", "anon" }, names)
    end)

    it("traces by default the files under the caller's directory, not the installed rocks'", function()
      local tree = DIR .. "/tree/share/lua/5.4"
      assert(os.execute("mkdir -p " .. helper.shq(tree)))
      helper.write(tree .. "/autorock.lua", "return { run = function(f) local r = f() return r end }\n")
      package.loaded.autorock = nil
      package.path = tree .. "/?.lua;" .. package.path
      local rock = require "autorock"
      local function mine() return 1 end
      vmtrace.auto { calls = true }
      rock.run(mine)
      vmtrace.auto(false)
      assert.equal(0, #named("autorock.run"))
      assert.equal(1, #fn_calls())
      assert.equal(THIS .. ":" .. line_of(mine), fn_calls()[1].metadata.source)
      assert.equal("f", fn_calls()[1].name) -- what the rock's call calls it
      assert.is_nil(fn_calls()[1].parent_id) -- the rock's frame made no span
      vmtrace.enable()
      vmtrace.auto { calls = { include = { "autorock" } } } -- include: only what matches
      rock.run(mine)
      vmtrace.auto(false)
      assert.equal(1, #named("autorock.run"))
      assert.equal(1, #fn_calls())
    end)

    it("never traces vmtrace's own Lua files, and exclude wins over the defaults", function()
      local function mine() return 1 end
      vmtrace.auto { calls = { include = { "." } } }
      local co = vmtrace.coroutine.wrap(function() mine() end) -- vmtrace's wrap is Lua
      co()
      vmtrace.auto(false)
      for _, s in ipairs(fn_calls()) do
        assert.is_nil(s.metadata.source:find("/vmtrace/", 1, true), s.metadata.source)
      end
      assert.equal(1, #named("mine"))
      vmtrace.enable()
      vmtrace.auto { calls = { exclude = { "21%-auto_spec" } } }
      mine()
      vmtrace.auto(false)
      assert.equal(0, #fn_calls())
    end)

    it("traces C functions only with c = true", function()
      local function f() return ("x"):rep(3) .. string.upper("a") end
      vmtrace.auto { calls = true }
      f()
      vmtrace.auto(false)
      assert.same({ "f" }, { fn_calls()[1].name, fn_calls()[2] })
      vmtrace.enable()
      vmtrace.auto { calls = { c = true } }
      f()
      vmtrace.auto(false)
      local rep, upper = one("string.rep"), one("string.upper")
      assert.equal(one("f").span_id, rep.parent_id)
      assert.equal(one("f").span_id, upper.parent_id)
      assert.equal("[C]", rep.metadata.source)
    end)

    it("max_depth: no span deeper than that", function()
      local function down(n) if n > 0 then return (down(n - 1)) end return 0 end
      vmtrace.auto { calls = { max_depth = 3 } }
      down(10)
      vmtrace.auto(false)
      local spans = fn_calls()
      assert.equal(3, #spans)
      local by_id = helper.by_id(spans)
      for _, s in ipairs(spans) do
        local depth, p = 1, s.parent_id
        while p do depth, p = depth + 1, by_id[p].parent_id end
        assert.is_true(depth <= 3)
      end
    end)

    it("calls tracing follows the switch: disable removes the hook, enable puts it back", function()
      local function f() return 1 end
      vmtrace.auto { calls = true }
      f()
      vmtrace.disable()
      assert.is_false(core._auto_hooked())
      f()
      assert.equal(1, #named("f"))
      vmtrace.enable()
      assert.is_true(core._auto_hooked())
      f()
      assert.equal(1, #named("f")) -- enable reset the collector: this is the new trace's
      vmtrace.auto(false)
      assert.is_false(core._auto_hooked())
    end)

    it("disable finishes the spans of calls still running", function()
      local function inner() vmtrace.disable() end
      local function outer() inner() end
      vmtrace.auto { calls = true }
      outer()
      assert.equal(0, vmtrace.stats().open)
      assert.equal(2, #fn_calls())
    end)

    it("a reset inside a traced call: the call's return finishes nothing of the new trace", function()
      local m
      local function f() vmtrace.reset(); m = vmtrace.start("step", "after_reset") end
      local function g() return 1 end
      vmtrace.auto { calls = true }
      f()
      assert.is_true(vmtrace.get(m).open) -- f's end did not take m for its span
      g()
      vmtrace.finish(m)
      vmtrace.auto(false)
      assert.equal(1, #named("g"))
      assert.equal(m, named("g")[1].parent_id)
      assert.is_nil(vmtrace.get(m).parent_id)
      assert.equal(0, #named("f")) -- the reset dropped f's span
    end)

    it("sinks hear of automatic spans", function()
      local seen = {}
      local sink = vmtrace.add_sink { on_end = function(ev) seen[#seen + 1] = ev.name end }
      local function f() return 1 end
      vmtrace.auto { calls = true }
      f()
      f()
      vmtrace.auto(false)
      vmtrace.remove_sink(sink)
      assert.same({ "f", "f" }, seen)
    end)

    it("refuses bad options with a message naming them", function()
      helper.assert_bad_argument(function() vmtrace.auto { call = true } end, "auto", 1,
        "unknown option 'call'")
      helper.assert_bad_argument(function() vmtrace.auto { calls = { min_ms = -1 } } end, "auto", 1,
        "calls.min_ms")
      helper.assert_bad_argument(function() vmtrace.auto { calls = { max_depth = 1.5 } } end, "auto", 1,
        "calls.max_depth")
      helper.assert_bad_argument(function() vmtrace.auto { calls = { include = { "[" } } } end, "auto",
        1, "calls.include[1]", "Lua pattern")
      helper.assert_bad_argument(function() vmtrace.auto { calls = { oops = 1 } } end, "auto", 1,
        "calls.oops")
      helper.assert_bad_argument(function() vmtrace.auto { requires = "yes" } end, "auto", 1,
        "opts.requires")
      helper.assert_bad_argument(function() vmtrace.auto(42) end, "auto", 1, "number")
      assert.is_false(core._auto_hooked())
    end)

    it("auto() with no argument turns on calls, requires and coroutines", function()
      module("autoall", "return {}\n")
      local function f() return 1 end
      vmtrace.auto()
      f()
      require "autoall"
      coroutine.wrap(function() end)()
      vmtrace.auto(false)
      local k = {}
      for _, s in ipairs(vmtrace.spans()) do k[s.kind] = true end
      assert.same({ fn_call = true, import = true, spawn = true }, k)
    end)

    it("auto(opts) again replaces the settings", function()
      local function f() return 1 end
      vmtrace.auto { calls = true }
      vmtrace.auto { calls = { exclude = { "21%-auto_spec" } } }
      f()
      vmtrace.auto(false)
      assert.equal(0, #named("f"))
    end)
  end)

  describe("min_ms", function()
    it("drops shorter calls leaving nothing in memory, however many", function()
      local function short() return 1 end
      vmtrace.auto { calls = { min_ms = 50 } }
      for _ = 1, 1000 do short() end -- this loop is no call: only short's spans wait
      local names = vmtrace.stats().names
      for _ = 1, 100000 do short() end
      local st = vmtrace.stats()
      vmtrace.auto(false)
      assert.equal(0, st.open + st.completed)
      assert.equal(names, st.names)
      assert.equal(0, #vmtrace.spans())
    end)

    it("keeps a long call with its (longer) callers; its short callees go", function()
      local function short() return 1 end
      local function long() short(); busy(30); short() end
      local function outer() short(); long() end
      vmtrace.auto { calls = { min_ms = 20 } }
      outer()
      vmtrace.auto(false)
      local spans = fn_calls()
      assert.equal(3, #spans) -- outer, long, and busy inside it (traced too)
      local l, o = one("long"), one("outer")
      assert.equal(l.span_id, one("busy").parent_id)
      assert.equal(o.span_id, l.parent_id)
      assert.is_true(l.duration_ms >= 20)
      assert.is_true(o.start_ms <= l.start_ms)
      assert.is_true(o.span_id < l.span_id)
      assert.same({ source = THIS .. ":" .. line_of(long) }, l.metadata)
    end)

    it("keeps a short call that holds a recorded span, as its parent", function()
      local function holder() local s = vmtrace.start("tool_call", "grep") vmtrace.finish(s) end
      local function outer() holder() end
      vmtrace.auto { calls = { min_ms = 1000 } }
      outer()
      vmtrace.auto(false)
      assert.equal(one("holder").span_id, one("grep").parent_id)
      assert.equal(one("outer").span_id, one("holder").parent_id)
    end)

    it("current_span_id inside a waiting call is that call's span", function()
      local id
      local function f() id = vmtrace.current_span_id() end
      vmtrace.auto { calls = { min_ms = 1000 } }
      f()
      vmtrace.auto(false)
      assert.equal(one("f").span_id, id)
    end)
  end)

  describe("errors", function()
    it("finish the unwound frames' spans failed, with the message; the catcher's next call is its child", function()
      local function c() error("deep trouble") end
      local function b() c() end
      local function a() b() end
      local function after() return 1 end
      local function outer()
        local ok = pcall(a)
        after()
        return ok
      end
      vmtrace.auto { calls = true }
      assert.is_false(outer())
      vmtrace.auto(false)
      local msg = THIS .. ":" .. line_of(c) .. ": deep trouble"
      for _, name in ipairs { "21-auto_spec.lua:" .. line_of(a), "b", "c" } do
        local s = one(name)
        assert.equal("error", s.metadata.status, name)
        assert.equal(msg, s.metadata.error, name)
      end
      assert.equal(one("outer").span_id, one("after").parent_id)
      assert.is_nil(one("outer").metadata.status)
      assert.is_nil(one("after").metadata.status)
      assert.equal(0, vmtrace.stats().open)
    end)

    it("give an error object that is not a string its __tostring, or its fields as JSON", function()
      local E = setmetatable({}, { __tostring = function() return "custom error" end })
      local function f() error(E) end
      local function g() error({ code = 7 }) end
      vmtrace.auto { calls = true }
      pcall(f)
      pcall(g)
      vmtrace.auto(false)
      assert.equal("custom error", named("21-auto_spec.lua:" .. line_of(f))[1].metadata.error)
      assert.equal('{"code":7}', named("21-auto_spec.lua:" .. line_of(g))[1].metadata.error)
    end)

    it("get their message when a to-be-closed value runs first as the error unwinds", function()
      local function f()
        local s <close> = vmtrace.span("step", "guarded")
        error("closing time")
      end
      local function outer() return pcall(f) end
      vmtrace.auto { calls = true }
      outer()
      vmtrace.auto(false)
      local span = named("21-auto_spec.lua:" .. line_of(f))[1]
      assert.equal("error", span.metadata.status)
      assert.equal(THIS .. ":" .. (line_of(f) + 2) .. ": closing time", span.metadata.error)
      assert.equal(span.span_id, one("guarded").parent_id)
    end)

    it("thrown across a C function (a table.sort comparator) leave the stack right", function()
      local function cmp() error("no order") end
      local function sorter() table.sort({ 3, 1, 2 }, cmp) end
      local function next_one() return 1 end
      local function outer() pcall(sorter); next_one() end
      vmtrace.auto { calls = true }
      outer()
      vmtrace.auto(false)
      assert.equal("error", one("21-auto_spec.lua:" .. line_of(cmp)).metadata.status) -- called from C
      assert.equal(one("outer").span_id, one("next_one").parent_id)
    end)
  end)

  describe("tail calls", function()
    it("finish the replaced frame's span; the tail-called one is its sibling, tail_call = true", function()
      local function target() return 1 end
      local function caller() return target() end
      local function after() return 2 end
      local function outer() caller(); after() end
      vmtrace.auto { calls = true }
      outer()
      vmtrace.auto(false)
      local o, c = one("outer"), one("caller")
      local t = named("21-auto_spec.lua:" .. line_of(target))[1] -- Lua cannot name a tail call
      assert.equal(o.span_id, c.parent_id)
      assert.equal(o.span_id, t.parent_id)
      assert.is_true(t.metadata.tail_call)
      assert.is_nil(c.metadata.tail_call)
      assert.equal(o.span_id, one("after").parent_id)
      assert.equal(0, vmtrace.stats().open)
    end)

    it("a tail-recursive loop keeps the stack flat", function()
      local max_open = 0
      local function loop(n)
        if n % 10000 == 0 then max_open = math.max(max_open, vmtrace.stats().open) end
        if n == 0 then return "done" end
        return loop(n - 1)
      end
      vmtrace.auto { calls = true }
      assert.equal("done", loop(100000))
      vmtrace.auto(false)
      assert.is_true(max_open <= 2, "open spans: " .. max_open)
      assert.equal(100001, #fn_calls())
      assert.equal(0, vmtrace.stats().open)
    end)
  end)

  describe("coroutines", function()
    it("a spawn span from first resume to death, parented where created; the coroutine's spans under it", function()
      local co
      local function work() return 1 end
      local function body()
        coroutine.yield(work())
        work()
      end
      local function make() co = coroutine.create(body) end
      local function drive() coroutine.resume(co) coroutine.resume(co) end
      vmtrace.auto { calls = true, coroutines = true }
      make()
      drive()
      vmtrace.auto(false)
      local site = "21-auto_spec.lua:" .. line_of(body)
      local spawn = one(site, "spawn") -- named after its body, called from C
      assert.equal(one("make").span_id, spawn.parent_id)
      local body_span = one(site, "fn_call")
      assert.equal(spawn.span_id, body_span.parent_id)
      for _, w in ipairs(named("work")) do assert.equal(body_span.span_id, w.parent_id) end
      assert.equal(2, #named("work"))
      assert.equal("dead", coroutine.status(co))
      assert.equal(0, vmtrace.stats().open)
    end)

    it("spawn spans without calls: from the coroutine wrappers alone", function()
      local gen = coroutine.wrap(function() coroutine.yield(1) return 2 end)
      vmtrace.auto { coroutines = true }
      local run = vmtrace.start("step", "run")
      local function body() local s = vmtrace.start("tool_call", "inside") vmtrace.finish(s) end
      local co = coroutine.create(body)
      coroutine.resume(co)
      vmtrace.finish(run)
      vmtrace.auto(false)
      local spawn = one("21-auto_spec.lua:" .. line_of(body), "spawn")
      assert.equal(one("run").span_id, spawn.parent_id)
      assert.equal(spawn.span_id, one("inside").parent_id)
      assert.is_false(core._auto_hooked())
      assert.equal(1, gen())
    end)

    it("coroutine.wrap: a failure marks the spawn and the body failed; the error is Lua's own", function()
      local function body() coroutine.yield(1) error("gen died") end
      local function run()
        local g = coroutine.wrap(body)
        g()
        return select(2, pcall(g))
      end
      local plain = run()
      vmtrace.auto { calls = true, coroutines = true }
      local traced = run()
      vmtrace.auto(false)
      assert.equal(plain, traced)
      local spawn = named("21-auto_spec.lua:" .. line_of(body))
      local sp, fn
      for _, s in ipairs(spawn) do if s.kind == "spawn" then sp = s else fn = s end end
      assert.equal("error", sp.metadata.status)
      assert.equal(THIS .. ":" .. line_of(body) .. ": gen died", sp.metadata.error)
      assert.equal("error", fn.metadata.status)
      assert.equal(sp.span_id, fn.parent_id)
    end)

    it("coroutine.resume returning false: the coroutine's spans failed with the message", function()
      local function inner() error("co failed") end
      local function body() inner() end
      vmtrace.auto { calls = true, coroutines = true }
      local co = coroutine.create(body)
      local ok, err = coroutine.resume(co)
      vmtrace.auto(false)
      assert.is_false(ok)
      for _, s in ipairs(vmtrace.spans()) do
        assert.equal("error", s.metadata.status, s.name)
        assert.equal(err, s.metadata.error, s.name)
      end
      assert.equal(3, #vmtrace.spans()) -- spawn, body, inner
    end)

    it("interleaved coroutines never parent their spans to each other's", function()
      local function step(tag) return tag end
      local function body(tag) for _ = 1, 3 do step(tag) coroutine.yield() end end
      vmtrace.auto { calls = true, coroutines = true }
      local a, b = coroutine.create(body), coroutine.create(body)
      for _ = 1, 4 do coroutine.resume(a, "a") coroutine.resume(b, "b") end
      vmtrace.auto(false)
      local by_id = helper.by_id(vmtrace.spans())
      local spawns = {}
      for _, s in ipairs(vmtrace.spans()) do
        if s.kind == "spawn" then spawns[#spawns + 1] = s end
      end
      assert.equal(2, #spawns)
      for _, s in ipairs(named("step")) do
        local p = by_id[s.parent_id] -- body, then its spawn
        assert.equal("fn_call", p.kind)
        assert.equal("spawn", by_id[p.parent_id].kind)
      end
      local under = {}
      for _, s in ipairs(named("step")) do
        local sp = by_id[by_id[s.parent_id].parent_id].span_id
        under[sp] = (under[sp] or 0) + 1
      end
      assert.same({ [spawns[1].span_id] = 3, [spawns[2].span_id] = 3 }, under)
    end)

    it("traces coroutines made by C code (not through coroutine.create's wrapper)", function()
      local create = coroutine.create -- lcorolib's own C function, taken before auto
      local function work() return 1 end
      vmtrace.auto { calls = true, coroutines = true }
      local co = create(function() work() end)
      local run = vmtrace.start("step", "runner")
      coroutine.resume(co)
      vmtrace.finish(run)
      vmtrace.auto(false)
      local spawn
      for _, s in ipairs(vmtrace.spans()) do if s.kind == "spawn" then spawn = s end end
      assert.is_not_nil(spawn)
      assert.equal(one("runner").span_id, spawn.parent_id) -- parented where first resumed
      local body = named(spawn.name, fn_calls())[1]
      assert.equal(spawn.span_id, body.parent_id)
      assert.equal(body.span_id, one("work").parent_id)
    end)

    it("traces a coroutine made before auto was turned on", function()
      local function work() return 1 end
      local co = coroutine.create(function() coroutine.yield() work() end)
      coroutine.resume(co)
      vmtrace.auto { calls = true, coroutines = true }
      coroutine.resume(co)
      vmtrace.auto(false)
      assert.equal(1, #named("work"))
    end)

    it("coroutine.close ends a suspended coroutine's spans", function()
      local function body() coroutine.yield() end
      vmtrace.auto { calls = true, coroutines = true }
      local co = coroutine.create(body)
      coroutine.resume(co)
      assert.equal(2, vmtrace.stats().open)
      coroutine.close(co)
      assert.equal(0, vmtrace.stats().open)
      vmtrace.auto(false)
    end)

    it("coroutines = false: no spawn spans; the coroutine's calls are still traced", function()
      local function work() return 1 end
      local function outer()
        local co = coroutine.create(function() work() end)
        coroutine.resume(co)
      end
      vmtrace.auto { calls = true }
      outer()
      vmtrace.auto(false)
      for _, s in ipairs(vmtrace.spans()) do assert.equal("fn_call", s.kind) end
      assert.equal(1, #named("work"))
    end)

    it("a coroutine collected while suspended finishes its spans as abandoned", function()
      local function body() coroutine.yield() end
      vmtrace.auto { calls = true, coroutines = true }
      do
        local co = coroutine.create(body)
        coroutine.resume(co)
      end
      assert.equal(2, vmtrace.stats().open)
      collectgarbage()
      collectgarbage()
      assert.equal(0, vmtrace.stats().open)
      vmtrace.auto(false)
      for _, s in ipairs(vmtrace.spans()) do assert.is_true(s.metadata.abandoned, s.name) end
      assert.equal(2, #vmtrace.spans())
    end)

    it("auto turned on inside a coroutine traces it and the main thread", function()
      local function work() return 1 end
      local co = coroutine.create(function()
        vmtrace.auto { calls = true }
        work()
        coroutine.yield()
        work()
      end)
      coroutine.resume(co)
      work()
      coroutine.resume(co)
      vmtrace.auto(false)
      assert.equal(3, #named("work"))
    end)

    it("auto(false) puts the coroutine functions back", function()
      local create, wrap, resume = coroutine.create, coroutine.wrap, coroutine.resume
      vmtrace.auto { coroutines = true }
      assert.are_not.equal(create, coroutine.create)
      vmtrace.auto(false)
      assert.equal(create, coroutine.create)
      assert.equal(wrap, coroutine.wrap)
      assert.equal(resume, coroutine.resume)
    end)
  end)

  describe("hook chaining", function()
    it("a hook set before auto keeps its events and gets its place back after auto(false)", function()
      local lines = 0
      local function counter() lines = lines + 1 end
      local function f()
        local a = 1
        return a + 1
      end
      debug.sethook(counter, "l")
      vmtrace.auto { calls = true }
      local before = lines
      f()
      assert.is_true(lines - before >= 2)
      assert.equal(counter, (debug.gethook()))
      vmtrace.auto(false)
      assert.equal(counter, (debug.gethook()))
      debug.sethook()
      assert.equal(1, #named("f"))
    end)

    it("debug.sethook while auto is on is chained; calls are still traced", function()
      local calls = 0
      local function f() return 1 end
      vmtrace.auto { calls = true }
      debug.sethook(function(ev) if ev == "call" then calls = calls + 1 end end, "c")
      f()
      f()
      local hook, mask = debug.gethook()
      assert.equal("function", type(hook))
      assert.equal("c", mask)
      debug.sethook()
      assert.is_nil(debug.gethook())
      f()
      vmtrace.auto(false)
      assert.is_true(calls >= 2)
      assert.equal(3, #named("f"))
    end)

    it("a count hook is chained too", function()
      local counts = 0
      vmtrace.auto { calls = true }
      debug.sethook(function() counts = counts + 1 end, "", 100)
      for _ = 1, 1000 do local _ = {} end
      debug.sethook()
      vmtrace.auto(false)
      assert.is_true(counts > 5)
    end)
  end)

  describe("requires", function()
    it("an import span per require that loads a module, named after it, with the file found", function()
      local path = module("autoimp", "local x = 1\nreturn { x = x }\n")
      local function load_it() local m = require("autoimp") return m end
      vmtrace.auto { calls = { include = { "autoimp", "21%-auto_spec" } }, requires = true }
      load_it()
      load_it() -- loaded already: no span
      vmtrace.auto(false)
      local imp = one("autoimp", "import")
      assert.equal(path, imp.metadata.path)
      assert.equal(named("load_it")[1].span_id, imp.parent_id)
      assert.equal(imp.span_id, one("autoimp.lua").parent_id)
      local n = 0
      for _, s in ipairs(vmtrace.spans()) do if s.kind == "import" then n = n + 1 end end
      assert.equal(1, n)
    end)

    it("a failed require is an import span failed with the message; the error goes on", function()
      module("autobroken", "local x = nil\nreturn x.y\n")
      vmtrace.auto { calls = { root = DIR }, requires = true }
      local ok1, err1 = pcall(require, "autobroken")
      local ok2, err2 = pcall(require, "auto_no_such_module")
      vmtrace.auto(false)
      assert.is_false(ok1)
      assert.is_false(ok2)
      local b, m = one("autobroken", "import"), one("auto_no_such_module", "import")
      assert.equal("error", b.metadata.status)
      assert.equal(err1, b.metadata.error)
      assert.equal("error", m.metadata.status)
      assert.equal(err2, m.metadata.error)
      assert.matches("module 'auto_no_such_module' not found", err2, 1, true)
      assert.equal("error", one("autobroken.lua").metadata.status) -- the chunk unwound
      assert.equal(b.span_id, one("autobroken.lua").parent_id)
      assert.equal(0, vmtrace.stats().open)
    end)

    it("a failing module's traceback still shows where it failed", function()
      local path = module("autotb", "local x = nil\nreturn x.y\n")
      vmtrace.auto { requires = true }
      local ok, tb = xpcall(require, debug.traceback, "autotb")
      vmtrace.auto(false)
      assert.is_false(ok)
      assert.matches(path .. ":2: in main chunk", tb, 1, true)
      assert.equal("error", one("autotb", "import").metadata.status)
    end)

    it("auto(false) puts require back", function()
      local req = require
      vmtrace.auto { requires = true }
      assert.are_not.equal(req, _G.require)
      vmtrace.auto(false)
      assert.equal(req, _G.require)
    end)
  end)
end)

describe("vmtrace.wrap and vmtrace.instrument", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.disable() end)

  it("wrap: a span around each call, its results passed through", function()
    local grep = vmtrace.wrap(function(a, b) return a + b, "x" end, "tool_call", "grep")
    local run = vmtrace.start("pipeline", "run")
    local x, y = grep(1, 2)
    vmtrace.finish(run)
    assert.same({ 3, "x" }, { x, y })
    local s = one("grep")
    assert.equal("tool_call", s.kind)
    assert.equal(one("run").span_id, s.parent_id)
  end)

  it("wrap: an error marks the span, goes on unchanged, and keeps its traceback", function()
    local function failing() error("tool broke") end
    local f = vmtrace.wrap(failing, "tool_call", "t")
    local ok, tb = xpcall(f, debug.traceback)
    assert.is_false(ok)
    assert.matches(THIS:gsub("%p", "%%%0") .. ":" .. line_of(failing) .. ": tool broke", tb)
    assert.matches("\t" .. THIS .. ":" .. line_of(failing) .. ": in function <", tb, 1, true) -- the frame that raised
    assert.equal("error", one("t").metadata.status)
    assert.matches("tool broke", one("t").metadata.error, 1, true)
  end)

  it("wrap: the function may yield", function()
    local f = vmtrace.wrap(function(x) local y = coroutine.yield(x) return y * 2 end, "step", "s")
    local co = coroutine.create(f)
    assert.same({ true, 5 }, { coroutine.resume(co, 5) })
    assert.same({ true, 14 }, { coroutine.resume(co, 7) })
    assert.equal(1, #named("s"))
  end)

  it("wrap: defaults fn_call named by the definition site; no span while tracing is off", function()
    local function f() return 1 end
    local w = vmtrace.wrap(f)
    w()
    assert.equal("fn_call", one("21-auto_spec.lua:" .. line_of(f)).kind)
    vmtrace.disable()
    assert.equal(1, w())
    assert.equal(1, #vmtrace.spans())
    helper.assert_bad_argument(function() vmtrace.wrap(42) end, "wrap", 1, "function")
    helper.assert_bad_argument(function() vmtrace.wrap(f, "nope") end, "wrap", 2, "unknown span kind 'nope'")
    helper.assert_bad_argument(function() vmtrace.wrap(f, "step", 3) end, "wrap", 3, "string")
  end)

  it("instrument: every function field traced, named <module>.<key>, once", function()
    local tools = { search = function(q) return "found " .. q end, limit = 3 }
    package.loaded.autotools = tools
    assert.equal(tools, vmtrace.instrument(tools, { kind = "tool_call" }))
    local wrapped = tools.search
    vmtrace.instrument(tools, { kind = "tool_call" }) -- again: nothing changes
    assert.equal(wrapped, tools.search)
    assert.equal("found x", tools.search("x"))
    assert.equal(3, tools.limit)
    package.loaded.autotools = nil
    assert.equal("tool_call", one("autotools.search").kind)
    local other = vmtrace.instrument({ go = function() end }, { prefix = "agent" })
    other.go()
    assert.equal("fn_call", one("agent.go").kind)
    helper.assert_bad_argument(function() vmtrace.instrument(1) end, "instrument", 1, "table")
    helper.assert_bad_argument(function() vmtrace.instrument({}, { kind = "x" }) end, "instrument", 2,
      "unknown span kind 'x'")
    helper.assert_bad_argument(function() vmtrace.instrument({}, { nope = 1 }) end, "instrument", 2,
      "unknown option 'nope'")
  end)
end)

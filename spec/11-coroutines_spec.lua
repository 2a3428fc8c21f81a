-- Per-coroutine active stacks: spans started in a coroutine parent to that
-- coroutine's open span (or, for its first one, to the span current where it
-- was created through vmtrace.coroutine, else the main thread's current span);
-- interleaved coroutines never parent to each other's spans.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

-- Resume each coroutine in turn until all are dead; errors fail the test.
local function interleave(...)
  local cos = { ... }
  local alive = #cos
  while alive > 0 do
    alive = 0
    for _, co in ipairs(cos) do
      if coroutine.status(co) ~= "dead" then
        assert(coroutine.resume(co))
        if coroutine.status(co) ~= "dead" then alive = alive + 1 end
      end
    end
  end
end

-- A body that opens a, yields, opens b (under a), yields, finishes b, yields,
-- opens and finishes c (under a), finishes a. Ids go into ids[tag .. ".x"].
local function body(tag, ids)
  return function()
    ids[tag .. ".a"] = vmtrace.start("fn_call", tag .. ".a")
    coroutine.yield()
    ids[tag .. ".b"] = vmtrace.start("tool_call", tag .. ".b")
    ids[tag .. ".cur_b"] = vmtrace.current_span_id()
    coroutine.yield()
    vmtrace.finish(ids[tag .. ".b"])
    ids[tag .. ".cur_after_b"] = vmtrace.current_span_id()
    coroutine.yield()
    ids[tag .. ".c"] = vmtrace.start("fn_call", tag .. ".c")
    vmtrace.finish(ids[tag .. ".c"])
    vmtrace.finish(ids[tag .. ".a"])
    ids[tag .. ".cur_end"] = vmtrace.current_span_id()
  end
end

describe("vmtrace coroutines", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.disable() end)

  describe("interleaved coroutines", function()
    local function check_tree(root, ids, tags)
      local by = helper.by_id(vmtrace.spans())
      for _, t in ipairs(tags) do
        assert.equal(root, by[ids[t .. ".a"]].parent_id, t .. ".a parent")
        assert.equal(ids[t .. ".a"], by[ids[t .. ".b"]].parent_id, t .. ".b parent")
        assert.equal(ids[t .. ".a"], by[ids[t .. ".c"]].parent_id, t .. ".c parent")
        assert.equal(ids[t .. ".b"], ids[t .. ".cur_b"])
        assert.equal(ids[t .. ".a"], ids[t .. ".cur_after_b"])
        assert.equal(root, ids[t .. ".cur_end"])
      end
    end

    it("never parent their spans to each other's (coroutine.create)", function()
      local root = vmtrace.start("pipeline", "root")
      local ids = {}
      local co1 = coroutine.create(body("one", ids))
      local co2 = coroutine.create(body("two", ids))
      local co3 = coroutine.create(body("three", ids))
      interleave(co1, co2, co3)
      assert.equal(root, vmtrace.current_span_id())
      vmtrace.finish(root)
      check_tree(root, ids, { "one", "two", "three" })
      assert.equal(10, #vmtrace.spans())
    end)

    it("never parent their spans to each other's (vmtrace.coroutine.create)", function()
      local root = vmtrace.start("pipeline", "root")
      local ids = {}
      local co1 = vmtrace.coroutine.create(body("one", ids))
      local co2 = vmtrace.coroutine.create(body("two", ids))
      interleave(co1, co2)
      vmtrace.finish(root)
      check_tree(root, ids, { "one", "two" })
    end)

    it("leave the main thread's current span alone", function()
      local root = vmtrace.start("pipeline", "root")
      local co = coroutine.create(function()
        vmtrace.start("fn_call", "in co")
        coroutine.yield()
      end)
      coroutine.resume(co)
      assert.equal(root, vmtrace.current_span_id())
      local m = vmtrace.start("fn_call", "main child")
      assert.equal(root, vmtrace.get(m).parent_id)
    end)

    it("parent the first span to the main thread's current span, or none", function()
      local co = coroutine.wrap(function()
        return vmtrace.start("fn_call", "orphan")
      end)
      local id = co()
      assert.is_nil(vmtrace.get(id).parent_id)
    end)

    it("a coroutine's span does not become the parent of a span in main", function()
      local ids = {}
      local co = coroutine.create(body("co", ids))
      coroutine.resume(co) -- co.a is open in the coroutine
      local m = vmtrace.start("fn_call", "main")
      assert.is_nil(vmtrace.get(m).parent_id)
      assert.equal(m, vmtrace.current_span_id())
    end)
  end)

  describe("current_span_id inside a coroutine", function()
    it("is the main thread's current span before the coroutine opens one", function()
      local root = vmtrace.start("pipeline", "root")
      local seen = coroutine.wrap(function() return vmtrace.current_span_id() end)()
      assert.equal(root, seen)
    end)

    it("is the coroutine's own innermost open span", function()
      vmtrace.start("pipeline", "root")
      local co = coroutine.wrap(function()
        local a = vmtrace.start("fn_call", "a")
        coroutine.yield(vmtrace.current_span_id() == a)
        local b = vmtrace.start("fn_call", "b")
        coroutine.yield(vmtrace.current_span_id() == b)
        vmtrace.finish(b)
        coroutine.yield(vmtrace.current_span_id() == a)
      end)
      assert.is_true(co())
      assert.is_true(co())
      assert.is_true(co())
    end)

    it("is nil while tracing is off", function()
      local root = vmtrace.start("pipeline", "root")
      assert.is_not_nil(root)
      vmtrace.disable()
      local seen = coroutine.wrap(function() return vmtrace.current_span_id() end)()
      assert.is_nil(seen)
    end)
  end)

  describe("vmtrace.coroutine", function()
    it("create inherits the span current where it was created", function()
      local p = vmtrace.start("pipeline", "p")
      local co = vmtrace.coroutine.create(function()
        local cur = vmtrace.current_span_id()
        return cur, vmtrace.start("fn_call", "in co")
      end)
      local q = vmtrace.start("fn_call", "q") -- the creator's current span changes
      assert.equal(q, vmtrace.current_span_id())
      local ok, cur, child = coroutine.resume(co)
      assert.is_true(ok)
      assert.equal(p, cur)
      assert.equal(p, vmtrace.get(child).parent_id)
      assert.equal(q, vmtrace.current_span_id())
    end)

    it("wrap inherits the span current where it was created", function()
      local p = vmtrace.start("pipeline", "p")
      local f = vmtrace.coroutine.wrap(function()
        return vmtrace.start("fn_call", "in wrap")
      end)
      vmtrace.start("fn_call", "q")
      local child = f()
      assert.equal(p, vmtrace.get(child).parent_id)
    end)

    it("inherits even when the creator's span finished before the first resume", function()
      local p = vmtrace.start("pipeline", "p")
      local f = vmtrace.coroutine.wrap(function()
        return vmtrace.start("fn_call", "late")
      end)
      vmtrace.finish(p)
      assert.is_nil(vmtrace.current_span_id())
      local child = f()
      assert.equal(p, vmtrace.get(child).parent_id)
    end)

    it("inherits nothing when created with no current span", function()
      local f = vmtrace.coroutine.wrap(function()
        return vmtrace.start("fn_call", "root in co")
      end)
      vmtrace.start("pipeline", "opened later")
      local child = f()
      assert.is_nil(vmtrace.get(child).parent_id)
    end)

    it("created inside a coroutine inherits that coroutine's current span", function()
      vmtrace.start("pipeline", "root")
      local outer_span, inner_child
      local outer = coroutine.wrap(function()
        outer_span = vmtrace.start("fn_call", "outer")
        local inner = vmtrace.coroutine.wrap(function()
          return vmtrace.start("fn_call", "inner")
        end)
        vmtrace.start("fn_call", "outer sibling") -- current changes before the resume
        inner_child = inner()
      end)
      outer()
      assert.equal(outer_span, vmtrace.get(inner_child).parent_id)
    end)

    it("later spans in the coroutine nest under its own open spans", function()
      local p = vmtrace.start("pipeline", "p")
      local f = vmtrace.coroutine.wrap(function()
        local a = vmtrace.start("fn_call", "a")
        local b = vmtrace.start("fn_call", "b")
        vmtrace.finish(b)
        vmtrace.finish(a)
        local c = vmtrace.start("fn_call", "c")
        vmtrace.finish(c)
        return a, b, c
      end)
      local a, b, c = f()
      assert.equal(p, vmtrace.get(a).parent_id)
      assert.equal(a, vmtrace.get(b).parent_id)
      assert.equal(p, vmtrace.get(c).parent_id)
    end)

    it("wrap passes arguments and yielded values like coroutine.wrap", function()
      local f = vmtrace.coroutine.wrap(function(a, b)
        local c = coroutine.yield(a + b, "first")
        return c * 2, nil, "last"
      end)
      local r1 = table.pack(f(1, 2))
      assert.same({ n = 2, 3, "first" }, r1)
      local r2 = table.pack(f(5))
      assert.same({ n = 3, 10, nil, "last" }, r2)
    end)

    it("wrap propagates a string error like coroutine.wrap", function()
      local f = vmtrace.coroutine.wrap(function() error("co failed") end)
      local g = coroutine.wrap(function() error("co failed") end)
      local ok, err = pcall(function() f() end)
      local gok, gerr = pcall(function() g() end)
      assert.is_false(ok)
      assert.is_false(gok)
      assert.is_string(err)
      assert.truthy(err:find("co failed$"))
      -- the same message as coroutine.wrap's, positions included
      -- (coroutine.wrap adds the caller's position to a string error)
      local function shape(msg) return (msg:gsub(":%d+:", ":N:")) end
      assert.equal(shape(gerr), shape(err))
    end)

    it("wrap propagates a table error object unchanged", function()
      local obj = { code = 3 }
      local f = vmtrace.coroutine.wrap(function() error(obj) end)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.is_true(rawequal(obj, err))
    end)

    it("wrap is dead after an error, like coroutine.wrap", function()
      local f = vmtrace.coroutine.wrap(function() error("once") end)
      assert.is_false(pcall(f))
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("dead coroutine", 1, true))
    end)

    it("vmtrace.with inside a coroutine can yield, its span staying the coroutine's", function()
      local root = vmtrace.start("pipeline", "root")
      local f = coroutine.wrap(function()
        return vmtrace.with("fn_call", "w", function(x)
          local y = coroutine.yield(vmtrace.current_span_id())
          return x + y
        end, 1)
      end)
      local w = f()
      assert.is_true(vmtrace.get(w).open)
      assert.equal(root, vmtrace.get(w).parent_id)
      assert.equal(root, vmtrace.current_span_id())
      assert.equal(42, f(41))
      assert.is_nil(vmtrace.get(w).open)
    end)

    it("a scoped span in a coroutine nests under the inherited span", function()
      local p = vmtrace.start("pipeline", "p")
      local f = vmtrace.coroutine.wrap(function()
        local s <close> = vmtrace.span("tool_call", "scoped")
        coroutine.yield(s.id)
      end)
      vmtrace.start("fn_call", "q")
      local id = f()
      assert.equal(p, vmtrace.get(id).parent_id)
      f()
      assert.is_nil(vmtrace.get(id).open)
    end)

    it("user timing in a coroutine takes the inherited span as parent", function()
      local p = vmtrace.start("pipeline", "p")
      local f = vmtrace.coroutine.wrap(function()
        return require("vmtrace.timing").start("co timing")
      end)
      vmtrace.start("fn_call", "q")
      assert.equal(p, f().parent_span_id)
    end)

    it("create returns a real coroutine", function()
      local co = vmtrace.coroutine.create(function() coroutine.yield(1) end)
      assert.equal("thread", type(co))
      assert.equal("suspended", coroutine.status(co))
      assert.same({ true, 1 }, { coroutine.resume(co) })
    end)
  end)

  describe("finishing a span from another coroutine", function()
    it("works and removes it from its own coroutine's stack", function()
      local root = vmtrace.start("pipeline", "root")
      local a, b
      local co = coroutine.create(function()
        a = vmtrace.start("fn_call", "a")
        b = vmtrace.start("fn_call", "b")
        coroutine.yield()
        local cur = vmtrace.current_span_id()
        local c = vmtrace.start("fn_call", "c")
        coroutine.yield(cur, c)
      end)
      coroutine.resume(co)
      -- main finishes the coroutine's innermost span
      assert.equal("integer", math.type(vmtrace.finish(b)))
      assert.equal(root, vmtrace.current_span_id())
      local _, cur, c = coroutine.resume(co)
      assert.equal(a, cur)
      assert.equal(a, vmtrace.get(c).parent_id)
      assert.is_nil(vmtrace.get(b).open)
      assert.equal(b, vmtrace.spans()[1].span_id)
    end)

    it("removes a span from the middle of its coroutine's stack", function()
      local a, b
      local co = coroutine.create(function()
        a = vmtrace.start("fn_call", "a")
        b = vmtrace.start("fn_call", "b")
        coroutine.yield()
        vmtrace.finish(b)
        coroutine.yield(vmtrace.current_span_id())
      end)
      coroutine.resume(co)
      vmtrace.finish(a) -- not the top of co's stack
      local _, cur = coroutine.resume(co)
      assert.is_nil(cur) -- a and b are both gone; co was created with no current span
      assert.equal(2, #vmtrace.spans())
    end)

    it("works from a sibling coroutine", function()
      local root = vmtrace.start("pipeline", "root")
      local a
      local owner = coroutine.create(function()
        a = vmtrace.start("fn_call", "a")
        coroutine.yield()
        coroutine.yield(vmtrace.current_span_id())
      end)
      coroutine.resume(owner)
      local other = coroutine.wrap(function()
        local mine = vmtrace.start("fn_call", "mine")
        vmtrace.finish(a)
        return mine, vmtrace.current_span_id()
      end)
      local mine, cur_in_other = other()
      assert.equal(mine, cur_in_other) -- the sibling's own stack is untouched
      local _, cur = coroutine.resume(owner)
      assert.equal(root, cur)
    end)

    it("a coroutine can finish a span the main thread opened", function()
      local p = vmtrace.start("pipeline", "p")
      local q = vmtrace.start("fn_call", "q")
      coroutine.wrap(function() vmtrace.finish(q) end)()
      assert.equal(p, vmtrace.current_span_id())
    end)
  end)

  describe("per-coroutine state", function()
    it("is freed with the coroutine", function()
      collectgarbage()
      collectgarbage()
      local before = vmtrace.stats().stacks
      do
        local co = coroutine.create(function()
          vmtrace.finish(vmtrace.start("fn_call", "one"))
          coroutine.yield()
        end)
        coroutine.resume(co)
        assert.equal(before + 1, vmtrace.stats().stacks)
      end
      collectgarbage()
      collectgarbage()
      assert.equal(before, vmtrace.stats().stacks)
    end)

    it("returns to its previous size after 100,000 short-lived coroutines", function()
      local N = 100000
      collectgarbage()
      collectgarbage()
      local before = vmtrace.stats().stacks
      local root = vmtrace.start("pipeline", "root")
      local function work(i)
        vmtrace.finish(vmtrace.start("fn_call", "co"))
        return i
      end
      for i = 1, N do
        local co = coroutine.create(work)
        local ok, r = coroutine.resume(co, i)
        assert(ok and r == i)
      end
      collectgarbage()
      collectgarbage()
      assert.equal(before, vmtrace.stats().stacks)
      vmtrace.finish(root)
      local spans = vmtrace.spans()
      assert.equal(N + 1, #spans)
      assert.equal(root, spans[1].parent_id)
      assert.equal(root, spans[N].parent_id)
    end)

    it("returns to its previous size after 100,000 vmtrace.coroutine.wrap coroutines", function()
      local N = 100000
      collectgarbage()
      collectgarbage()
      local before = vmtrace.stats().stacks
      local root = vmtrace.start("pipeline", "root")
      for i = 1, N do
        local f = vmtrace.coroutine.wrap(function()
          local id = vmtrace.start("fn_call", "co")
          vmtrace.finish(id)
          return id
        end)
        f()
      end
      collectgarbage()
      collectgarbage()
      assert.equal(before, vmtrace.stats().stacks)
      vmtrace.finish(root)
      assert.equal(N + 1, vmtrace.stats().completed)
      assert.equal(root, vmtrace.spans()[N].parent_id)
    end)
  end)
end)

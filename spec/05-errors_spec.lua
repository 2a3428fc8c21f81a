-- Bad input: every wrong argument raises
-- "vmtrace.<function>: bad argument #<n> (...)", and nothing recorded before
-- the error is changed by it.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local bad = helper.assert_bad_argument

describe("vmtrace errors", function()
  local root, done, snap

  -- A small recorded state that every error must leave alone.
  before_each(function()
    vmtrace.enable()
    root = vmtrace.start("pipeline", "root")
    vmtrace.set_metadata(root, "keep", { 1, "two" })
    done = vmtrace.start("fn_call", "done")
    vmtrace.set_metadata(done, "k", "v")
    vmtrace.finish(done)
    snap = helper.snapshot({ root })
  end)

  after_each(function()
    helper.assert_intact(snap, { root })
    vmtrace.disable()
  end)

  describe("start", function()
    it("rejects an unknown kind and lists the kinds", function()
      local err = bad(function() vmtrace.start("fn", "x") end, "start", 1,
        "unknown span kind 'fn'", "expected one of")
      for _, kind in ipairs(helper.KINDS) do
        assert.is_truthy(err:find(kind, 1, true), "kind list should name " .. kind)
      end
      assert.is_truthy(err:find("pipeline, fn_call, llm_call", 1, true))
    end)

    it("kinds are case-sensitive", function()
      bad(function() vmtrace.start("Pipeline", "x") end, "start", 1, "unknown span kind 'Pipeline'")
    end)

    it("rejects a kind that is not a string", function()
      bad(function() vmtrace.start(nil, "x") end, "start", 1, "nil")
      -- a number is not a kind's name, even one Lua would turn into a string
      bad(function() vmtrace.start(1, "x") end, "start", 1, "span kind string expected, got number")
      bad(function() vmtrace.start({}, "x") end, "start", 1, "table")
    end)

    it("rejects a name that is not a string", function()
      bad(function() vmtrace.start("pipeline") end, "start", 2, "string expected")
      bad(function() vmtrace.start("pipeline", nil) end, "start", 2, "string expected, got nil")
      bad(function() vmtrace.start("pipeline", {}) end, "start", 2, "string expected, got table")
      bad(function() vmtrace.start("pipeline", true) end, "start", 2, "string expected, got boolean")
    end)

    it("rejects opts that are not a table", function()
      bad(function() vmtrace.start("pipeline", "x", "detached") end, "start", 3, "string")
      bad(function() vmtrace.start("pipeline", "x", true) end, "start", 3, "boolean")
    end)

    it("rejects malformed links", function()
      bad(function() vmtrace.start("pipeline", "x", { links = "l" }) end, "start", 3)
      bad(function() vmtrace.start("pipeline", "x", { links = { "not a table" } }) end, "start", 3)
      bad(function() vmtrace.start("pipeline", "x", { links = { { span_id = "1" } } }) end,
        "start", 3, "trace_id")
      bad(function() vmtrace.start("pipeline", "x", { links = { { trace_id = "t" } } }) end,
        "start", 3, "span_id")
      bad(function() vmtrace.start("pipeline", "x", { links = { { trace_id = "t", span_id = true } } }) end,
        "start", 3, "span_id")
      bad(function() vmtrace.start("pipeline", "x", { links = { { trace_id = {}, span_id = "1" } } }) end,
        "start", 3, "trace_id")
    end)

    it("rejects link attributes that are not a table of strings", function()
      bad(function()
        vmtrace.start("pipeline", "x", { links = { { trace_id = "t", span_id = "1", attributes = "a" } } })
      end, "start", 3, "attributes")
      bad(function()
        vmtrace.start("pipeline", "x", { links = { { trace_id = "t", span_id = "1", attributes = { "a" } } } })
      end, "start", 3, "attributes")
      bad(function()
        vmtrace.start("pipeline", "x", { links = { { trace_id = "t", span_id = "1", attributes = { a = {} } } } })
      end, "start", 3, "attributes")
    end)

    -- A name start has seen takes a fast path (its string's address is
    -- cached); options and bad arguments must still be seen there.
    it("a name seen before still has its options checked and applied", function()
      local seen = vmtrace.start("step", "seen")
      vmtrace.finish(seen)
      bad(function() vmtrace.start("step", "seen", 42) end, "start", 3)
      bad(function() vmtrace.start("step", "seen", false) end, "start", 3, "boolean")
      local id = vmtrace.start("step", "seen", { metadata = { via = "opts" } })
      assert.same({ via = "opts" }, vmtrace.get(id).metadata)
      local plain = vmtrace.start("step", "seen", nil)
      assert.equal("seen", vmtrace.get(plain).name)
      assert.is_nil(vmtrace.get(plain).metadata)
      -- the same inside a coroutine (its own stack)
      coroutine.wrap(function()
        local co = vmtrace.start("step", "seen", { metadata = { in_co = true } })
        assert.same({ in_co = true }, vmtrace.get(co).metadata)
        bad(function() vmtrace.start("step", "seen", "x") end, "start", 3)
        vmtrace.finish(co)
      end)()
      vmtrace.finish(plain)
      vmtrace.finish(id)
      -- a kind's own string as the name, and a name that is a kind's string
      local k = vmtrace.start("fn_call", "fn_call")
      assert.equal("fn_call", vmtrace.get(k).name)
      bad(function() vmtrace.start("seen", "x") end, "start", 1, "unknown span kind 'seen'")
      vmtrace.finish(k)
      snap = helper.snapshot({ root }) -- the new spans are expected
    end)

    it("a failed start records no span and does not use up an id", function()
      pcall(vmtrace.start, "nope", "x")
      pcall(vmtrace.start, "pipeline", "x", { links = { { trace_id = "t" } } })
      assert.equal(3, vmtrace.start("step", "next"))
      vmtrace.finish(3)
      snap = helper.snapshot({ root }) -- the new span is expected
    end)

    -- While off, start checks only the kind (a typo fails at once); the
    -- disabled path must stay within 1.5x of two empty C calls, so the name
    -- and options are checked when something is recorded (README, "The switch").
    it("checks the kind even while tracing is off", function()
      vmtrace.disable()
      bad(function() vmtrace.start("fn", "x") end, "start", 1, "unknown span kind 'fn'")
      bad(function() vmtrace.start(nil, "x") end, "start", 1, "expected, got nil")
      assert.equal(0, vmtrace.start("pipeline", "x"))
    end)

    it("records nothing for a bad name while off, and refuses it while on", function()
      bad(function() vmtrace.start("pipeline", nil) end, "start", 2, "string expected, got nil")
      bad(function() vmtrace.start("pipeline", "x", 42) end, "start", 3)
      vmtrace.disable()
      assert.equal(0, vmtrace.start("pipeline", nil))
      assert.equal(0, vmtrace.start("pipeline", "x", 42))
    end)
  end)

  describe("finish / get / span_link", function()
    it("finish wants an integer id", function()
      bad(function() vmtrace.finish("abc") end, "finish", 1, "integer expected, got string")
      bad(function() vmtrace.finish(nil) end, "finish", 1, "integer expected, got nil")
      bad(function() vmtrace.finish({}) end, "finish", 1, "integer expected, got table")
      bad(function() vmtrace.finish(1.5) end, "finish", 1)
      bad(function() vmtrace.finish() end, "finish", 1)
    end)

    it("finish raises for wrong types even while tracing is off", function()
      vmtrace.disable()
      bad(function() vmtrace.finish("abc") end, "finish", 1, "integer expected, got string")
    end)

    it("get and span_link want an integer id", function()
      bad(function() vmtrace.get("abc") end, "get", 1, "integer expected, got string")
      bad(function() vmtrace.get({}) end, "get", 1, "integer expected, got table")
      bad(function() vmtrace.span_link("abc") end, "span_link", 1, "integer expected, got string")
      bad(function() vmtrace.span_link(true) end, "span_link", 1, "integer expected, got boolean")
    end)
  end)

  describe("set_metadata", function()
    it("wants an integer id and a string key", function()
      bad(function() vmtrace.set_metadata("abc", "k", 1) end, "set_metadata", 1, "integer expected, got string")
      bad(function() vmtrace.set_metadata(root, nil, 1) end, "set_metadata", 2, "string expected, got nil")
      bad(function() vmtrace.set_metadata(root, {}, 1) end, "set_metadata", 2, "string expected, got table")
    end)

    it("rejects values that are not JSON", function()
      bad(function() vmtrace.set_metadata(root, "keep", print) end, "set_metadata", 3, "function")
      bad(function() vmtrace.set_metadata(root, "keep", function() end) end, "set_metadata", 3, "function")
      bad(function() vmtrace.set_metadata(root, "keep", io.stdout) end, "set_metadata", 3, "userdata")
      bad(function() vmtrace.set_metadata(root, "keep", coroutine.create(print)) end, "set_metadata", 3, "thread")
    end)

    it("rejects values hidden inside tables", function()
      bad(function() vmtrace.set_metadata(root, "keep", { f = print }) end, "set_metadata", 3, "function")
      bad(function() vmtrace.set_metadata(root, "keep", { 1, 2, { io.stdout } }) end, "set_metadata", 3, "userdata")
      bad(function() vmtrace.set_metadata(root, "new", { ok = 1, deep = { co = coroutine.create(print) } }) end,
        "set_metadata", 3, "thread")
    end)

    it("rejects tables that are neither an array nor an object", function()
      bad(function() vmtrace.set_metadata(root, "keep", { 1, 2, x = 3 }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [1] = 1, [3] = 3 }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [2] = "no first" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [0] = "zero" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [-1] = "neg" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [1.5] = "float key" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [true] = "bool key" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { [{}] = "table key" }) end, "set_metadata", 3)
      bad(function() vmtrace.set_metadata(root, "keep", { a = { [print] = 1 } }) end, "set_metadata", 3)
    end)

    it("rejects cyclic tables", function()
      local t = {}
      t.self = t
      bad(function() vmtrace.set_metadata(root, "keep", t) end, "set_metadata", 3, "cycl")
      local a, b = {}, {}
      a[1], b[1] = b, a
      bad(function() vmtrace.set_metadata(root, "keep", a) end, "set_metadata", 3, "cycl")
    end)

    it("rejects nesting deeper than 64 tables", function()
      local t = { "bottom" }
      for _ = 2, 65 do t = { t } end
      bad(function() vmtrace.set_metadata(root, "keep", t) end, "set_metadata", 3, "64")
      local deep = {}
      for _ = 1, 10000 do deep = { x = deep } end
      bad(function() vmtrace.set_metadata(root, "keep", deep) end, "set_metadata", 3)
    end)

    it("leaves the span usable after an error", function()
      pcall(vmtrace.set_metadata, root, "keep", print)
      assert.is_true(vmtrace.set_metadata(root, "after", 1))
      assert.equal(1, vmtrace.get(root).metadata.after)
      assert.same({ 1, "two" }, vmtrace.get(root).metadata.keep)
      snap = helper.snapshot({ root }) -- the new key is expected
    end)
  end)

  describe("set_metadata_if_absent", function()
    it("checks its arguments like set_metadata", function()
      bad(function() vmtrace.set_metadata_if_absent("abc", "k", 1) end, "set_metadata_if_absent", 1,
        "integer expected, got string")
      bad(function() vmtrace.set_metadata_if_absent(done, nil, 1) end, "set_metadata_if_absent", 2,
        "string expected, got nil")
      bad(function() vmtrace.set_metadata_if_absent(root, "fresh", print) end, "set_metadata_if_absent", 3,
        "function")
      local t = {}
      t[1] = t
      bad(function() vmtrace.set_metadata_if_absent(root, "fresh", t) end, "set_metadata_if_absent", 3)
      bad(function() vmtrace.set_metadata_if_absent(root, "fresh", { 1, x = 2 }) end, "set_metadata_if_absent", 3)
    end)
  end)

  describe("record_event", function()
    it("wants an integer id, a string name and a table of string keys", function()
      bad(function() vmtrace.record_event("abc", "ev") end, "record_event", 1, "integer expected, got string")
      bad(function() vmtrace.record_event(root, nil) end, "record_event", 2, "string expected, got nil")
      bad(function() vmtrace.record_event(root, {}) end, "record_event", 2, "string expected, got table")
      bad(function() vmtrace.record_event(root, "ev", "attrs") end, "record_event", 3)
      bad(function() vmtrace.record_event(root, "ev", { 1, 2 }) end, "record_event", 3)
      bad(function() vmtrace.record_event(root, "ev", { a = print }) end, "record_event", 3, "function")
    end)

    it("a failed record_event adds no event", function()
      pcall(vmtrace.record_event, root, "ev", { a = print })
      assert.is_nil(vmtrace.get(root).events)
    end)
  end)
end)

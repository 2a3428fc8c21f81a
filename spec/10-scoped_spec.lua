-- Scoped spans: `local s <close> = vmtrace.span(kind, name [, opts])` and
-- vmtrace.with(kind, name, fn, ...).

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local WALL = 1700000000000

local function pack(...) return { n = select("#", ...), ... } end

describe("vmtrace scoped spans", function()
  local added

  local function count_ends()
    local n = { ends = 0 }
    local sink = vmtrace.add_sink { on_end = function() n.ends = n.ends + 1 end }
    added[#added + 1] = sink
    return n
  end

  before_each(function()
    added = {}
    vmtrace.enable()
  end)
  after_each(function()
    for _, s in ipairs(added) do vmtrace.remove_sink(s) end
    while vmtrace.unmock_time() do end
    vmtrace.disable()
  end)

  describe("vmtrace.span", function()
    it("opens a span for the scope and finishes it on exit", function()
      local id
      do
        local s <close> = vmtrace.span("tool_call", "read_file")
        id = s.id
        assert.equal("integer", math.type(id))
        assert.is_true(id > 0)
        assert.equal(id, vmtrace.current_span_id())
        assert.is_true(vmtrace.get(id).open)
      end
      assert.is_nil(vmtrace.current_span_id())
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal(id, spans[1].span_id)
      assert.equal("tool_call", spans[1].kind)
      assert.equal("read_file", spans[1].name)
      assert.is_nil(spans[1].metadata)
    end)

    it("nests scoped spans", function()
      local outer_id, inner_id
      do
        local outer <close> = vmtrace.span("pipeline", "outer")
        outer_id = outer.id
        do
          local inner <close> = vmtrace.span("fn_call", "inner")
          inner_id = inner.id
        end
        assert.equal(outer_id, vmtrace.current_span_id())
      end
      assert.equal(outer_id, vmtrace.get(inner_id).parent_id)
      assert.equal(inner_id, vmtrace.spans()[1].span_id)
      assert.equal(outer_id, vmtrace.spans()[2].span_id)
    end)

    it("s:set and s:event annotate the span and return true", function()
      local id
      do
        local s <close> = vmtrace.span("llm_call", "chat")
        id = s.id
        assert.is_true(s:set("model", "m"))
        assert.is_true(s:set("tokens", 12))
        assert.is_true(s:event("first_token", { at = 3 }))
        assert.is_true(s:event("done"))
      end
      local span = vmtrace.get(id)
      assert.same({ model = "m", tokens = 12 }, span.metadata)
      assert.equal(2, #span.events)
      assert.equal("first_token", span.events[1].name)
      assert.same({ at = 3 }, span.events[1].attributes)
      assert.equal("done", span.events[2].name)
    end)

    it("takes opts: metadata, links and detached", function()
      local parent = vmtrace.start("pipeline", "p")
      local link = vmtrace.span_link(parent)
      local id
      do
        local s <close> = vmtrace.span("drain", "drain",
          { detached = true, links = { link }, metadata = { phase = "settle" } })
        id = s.id
      end
      local span = vmtrace.get(id)
      assert.is_nil(span.parent_id)
      assert.equal(1, #span.links)
      assert.equal(tostring(parent), span.links[1].span_id)
      assert.same({ phase = "settle" }, span.metadata)
    end)

    it("s:finish returns duration_ms the first time, then nil", function()
      vmtrace.mock_time(WALL)
      local s <close> = vmtrace.span("fn_call", "f")
      vmtrace.advance_time(12)
      assert.equal(12, s:finish())
      assert.is_nil(s:finish())
      assert.equal(12, vmtrace.get(s.id).duration_ms)
      assert.is_false(s:set("late", true))
      assert.is_false(s:event("late"))
      assert.is_nil(vmtrace.get(s.id).metadata)
    end)

    it("closing after s:finish does not finish again", function()
      local ends = count_ends()
      local id
      do
        local s <close> = vmtrace.span("fn_call", "once")
        id = s.id
        s:finish()
        -- a span opened after the finish must survive the scope's close
        vmtrace.start("fn_call", "after")
      end
      assert.equal(1, ends.ends)
      assert.equal(1, #vmtrace.spans())
      assert.equal(id, vmtrace.spans()[1].span_id)
      assert.equal(id + 1, vmtrace.current_span_id())
    end)

    it("closing twice is harmless", function()
      local ends = count_ends()
      local s = vmtrace.span("fn_call", "twice")
      local close = getmetatable(s).__close
      close(s)
      close(s)
      assert.equal(1, ends.ends)
      assert.equal(1, #vmtrace.spans())
    end)

    it("durations follow the mock clock", function()
      vmtrace.mock_time(WALL)
      local id
      do
        local s <close> = vmtrace.span("fn_call", "timed")
        id = s.id
        vmtrace.advance_time(30)
      end
      assert.equal(30, vmtrace.get(id).duration_ms)
      assert.equal(WALL, vmtrace.get(id).start_unix_ms)
    end)

    it("closing through an error marks status and error", function()
      local id
      local ok, err = pcall(function()
        local s <close> = vmtrace.span("tool_call", "boom")
        id = s.id
        s:set("k", 1)
        error("tool exploded")
      end)
      assert.is_false(ok)
      local span = vmtrace.get(id)
      assert.is_nil(span.open)
      assert.equal("error", span.metadata.status)
      assert.equal(err, span.metadata.error)
      assert.truthy(span.metadata.error:find("tool exploded", 1, true))
      assert.equal(1, span.metadata.k)
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("closing through an error with a table object uses its __tostring", function()
      local id
      local obj = setmetatable({}, { __tostring = function() return "custom failure" end })
      local ok, err = pcall(function()
        local s <close> = vmtrace.span("fn_call", "t")
        id = s.id
        error(obj)
      end)
      assert.is_false(ok)
      assert.is_true(rawequal(obj, err))
      assert.equal("error", vmtrace.get(id).metadata.status)
      assert.equal("custom failure", vmtrace.get(id).metadata.error)
    end)

    it("a normal exit sets no status", function()
      local id
      do
        local s <close> = vmtrace.span("fn_call", "fine")
        id = s.id
      end
      assert.is_nil(vmtrace.get(id).metadata)
    end)

    it("rejects an unknown kind, listing the kinds", function()
      helper.assert_bad_argument(function() vmtrace.span("bogus", "x") end,
        "span", 1, "bogus", "pipeline", "deferred_tool_load")
    end)

    it("rejects a bad key in s:set", function()
      local s <close> = vmtrace.span("fn_call", "f")
      local ok, err = pcall(s.set, s, 5, "v")
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #2", 1, true))
      assert.truthy(err:find("string", 1, true))
    end)

    describe("while tracing is off", function()
      it("hands out an inert handle that records nothing", function()
        vmtrace.disable()
        vmtrace.reset()
        do
          local s <close> = vmtrace.span("fn_call", "off")
          assert.equal(0, s.id)
          assert.is_false(s:set("k", "v"))
          assert.is_false(s:event("e"))
          assert.is_nil(s:finish())
          assert.is_nil(vmtrace.current_span_id())
        end
        assert.same({}, vmtrace.spans())
        vmtrace.enable()
        assert.same({}, vmtrace.spans())
      end)

      it("stays inert when tracing is turned on inside the scope", function()
        vmtrace.disable()
        do
          local s <close> = vmtrace.span("fn_call", "off")
          vmtrace.enable()
          local other = vmtrace.start("fn_call", "on")
          assert.equal(0, s.id)
          assert.is_false(s:set("k", 1))
          assert.equal(other, vmtrace.current_span_id())
        end
        assert.same({}, vmtrace.spans())
      end)

      it("still survives an error through the scope", function()
        vmtrace.disable()
        local ok, err = pcall(function()
          local s <close> = vmtrace.span("fn_call", "off")
          error("x", 0)
        end)
        assert.is_false(ok)
        assert.equal("x", err)
        assert.same({}, vmtrace.spans())
      end)
    end)

    describe("a handle dropped without being closed", function()
      it("finishes its span, marked abandoned, when collected", function()
        local function leak()
          local s = vmtrace.span("tool_call", "leaked")
          s:set("k", "v")
          return s.id
        end
        local id = leak()
        assert.is_true(vmtrace.get(id).open)
        collectgarbage()
        collectgarbage()
        local span = vmtrace.get(id)
        assert.is_nil(span.open)
        assert.is_true(span.metadata.abandoned)
        assert.equal("v", span.metadata.k)
        assert.is_nil(vmtrace.current_span_id())
        assert.equal(1, #vmtrace.spans())
      end)

      it("is not marked abandoned when it was closed", function()
        local function closed()
          local s <close> = vmtrace.span("fn_call", "closed")
          return s.id
        end
        local id = closed()
        collectgarbage()
        collectgarbage()
        assert.is_nil(vmtrace.get(id).metadata)
      end)
    end)

    describe("across reset()", function()
      it("closing a handle from before a reset does not touch the new spans", function()
        local ends = count_ends()
        local new_id
        do
          local s <close> = vmtrace.span("fn_call", "old")
          local old_id = s.id
          vmtrace.reset()
          new_id = vmtrace.start("pipeline", "new")
          assert.equal(old_id, new_id) -- ids restart: the same number, another span
          assert.is_false(s:set("k", "v"))
          assert.is_false(s:event("e"))
          assert.is_nil(s:finish())
        end
        local span = vmtrace.get(new_id)
        assert.is_true(span.open)
        assert.equal("new", span.name)
        assert.is_nil(span.metadata)
        assert.is_nil(span.events)
        assert.equal(new_id, vmtrace.current_span_id())
        assert.same({}, vmtrace.spans())
        assert.equal(0, ends.ends)
      end)

      it("an error closing an old handle does not mark the new span", function()
        local new_id
        pcall(function()
          local s <close> = vmtrace.span("fn_call", "old")
          vmtrace.reset()
          new_id = vmtrace.start("pipeline", "new")
          error("late")
        end)
        local span = vmtrace.get(new_id)
        assert.is_true(span.open)
        assert.is_nil(span.metadata)
      end)

      it("collecting an old handle does not touch the new spans", function()
        local function leak() return vmtrace.span("fn_call", "old").id end
        leak()
        vmtrace.reset()
        local new_id = vmtrace.start("pipeline", "new")
        collectgarbage()
        collectgarbage()
        assert.is_true(vmtrace.get(new_id).open)
        assert.is_nil(vmtrace.get(new_id).metadata)
        assert.same({}, vmtrace.spans())
      end)
    end)
  end)

  describe("vmtrace.with", function()
    it("runs fn inside a span and returns its result", function()
      local inside
      local r = vmtrace.with("fn_call", "work", function()
        inside = vmtrace.current_span_id()
        return "done"
      end)
      assert.equal("done", r)
      assert.is_not_nil(inside)
      local span = vmtrace.get(inside)
      assert.equal("fn_call", span.kind)
      assert.equal("work", span.name)
      assert.is_nil(span.open)
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("returns all of fn's results, nils in the middle included", function()
      local r = pack(vmtrace.with("fn_call", "multi", function()
        return 1, nil, "three", nil, false
      end))
      assert.equal(5, r.n)
      assert.equal(1, r[1])
      assert.is_nil(r[2])
      assert.equal("three", r[3])
      assert.is_nil(r[4])
      assert.is_false(r[5])
    end)

    it("returns nothing when fn returns nothing", function()
      assert.equal(0, select("#", vmtrace.with("fn_call", "none", function() end)))
    end)

    it("passes the arguments, nils included", function()
      local got = pack(vmtrace.with("fn_call", "args", function(...)
        return select("#", ...), ...
      end, "a", nil, 3))
      assert.same({ n = 4, 3, "a", nil, 3 }, got)
    end)

    it("nests under the current span and is the parent inside fn", function()
      local parent = vmtrace.start("pipeline", "p")
      local child
      vmtrace.with("fn_call", "w", function()
        child = vmtrace.start("tool_call", "t")
        vmtrace.finish(child)
      end)
      vmtrace.finish(parent)
      local by = helper.by_id(vmtrace.spans())
      local w = by[child].parent_id
      assert.equal(parent, by[w].parent_id)
      assert.equal("w", by[w].name)
    end)

    it("takes its duration from the mock clock", function()
      vmtrace.mock_time(WALL)
      vmtrace.with("fn_call", "w", function() vmtrace.advance_time(8) end)
      assert.equal(8, vmtrace.spans()[1].duration_ms)
    end)

    it("accepts a callable table", function()
      local callable = setmetatable({}, { __call = function(_, x) return x * 2 end })
      assert.equal(10, vmtrace.with("fn_call", "callable", callable, 5))
    end)

    it("marks an error and re-raises the original message", function()
      local ok, err = pcall(vmtrace.with, "tool_call", "bad", function()
        error("it broke", 0)
      end)
      assert.is_false(ok)
      assert.equal("it broke", err)
      local span = vmtrace.spans()[1]
      assert.equal("bad", span.name)
      assert.equal("error", span.metadata.status)
      assert.equal("it broke", span.metadata.error)
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("keeps position information of the original error", function()
      local ok, err = pcall(vmtrace.with, "tool_call", "bad", function()
        error("with position")
      end)
      assert.is_false(ok)
      assert.truthy(err:find("10%-scoped_spec%.lua:%d+: with position$"))
      assert.equal(err, vmtrace.spans()[1].metadata.error)
    end)

    it("re-raises a table error object unchanged", function()
      local obj = { code = 42 }
      local ok, err = pcall(vmtrace.with, "fn_call", "t", function() error(obj) end)
      assert.is_false(ok)
      assert.is_true(rawequal(obj, err))
      local span = vmtrace.spans()[1]
      assert.equal("error", span.metadata.status)
      assert.is_string(span.metadata.error)
    end)

    it("uses a table error's __tostring as the message", function()
      local obj = setmetatable({}, { __tostring = function() return "E42: no quota" end })
      local ok, err = pcall(vmtrace.with, "fn_call", "t", function() error(obj) end)
      assert.is_false(ok)
      assert.is_true(rawequal(obj, err))
      assert.equal("E42: no quota", vmtrace.spans()[1].metadata.error)
    end)

    it("keeps metadata set inside fn alongside the error", function()
      pcall(vmtrace.with, "llm_call", "c", function()
        vmtrace.set_metadata(vmtrace.current_span_id(), "model", "m")
        error("timeout", 0)
      end)
      assert.same({ model = "m", status = "error", error = "timeout" },
        vmtrace.spans()[1].metadata)
    end)

    it("finishes only its own span, leaving spans opened inside fn open", function()
      local inner
      vmtrace.with("fn_call", "outer", function()
        inner = vmtrace.start("tool_call", "left open")
      end)
      assert.is_true(vmtrace.get(inner).open)
      assert.equal(1, #vmtrace.spans())
      assert.equal("outer", vmtrace.spans()[1].name)
    end)

    describe("while tracing is off", function()
      it("runs fn, returns its results and records nothing", function()
        vmtrace.disable()
        vmtrace.reset()
        local r = pack(vmtrace.with("fn_call", "off", function(a) return a, nil, a end, 7))
        assert.same({ n = 3, 7, nil, 7 }, r)
        assert.same({}, vmtrace.spans())
      end)

      it("still re-raises errors", function()
        vmtrace.disable()
        vmtrace.reset()
        local obj = {}
        local ok, err = pcall(vmtrace.with, "fn_call", "off", function() error(obj) end)
        assert.is_false(ok)
        assert.is_true(rawequal(obj, err))
        assert.same({}, vmtrace.spans())
      end)
    end)

    it("rejects fn that is not callable", function()
      helper.assert_bad_argument(function() vmtrace.with("fn_call", "x", 5) end,
        "with", 3, "function")
      assert.same({}, vmtrace.spans())
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("names itself for an unknown kind", function()
      helper.assert_bad_argument(function() vmtrace.with("bogus", "x", function() end) end,
        "with", 1, "bogus", "pipeline")
    end)
  end)
end)

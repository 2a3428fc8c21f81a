-- Starting, finishing and reading spans: ids, the span tree, out-of-order
-- finishes, links, detached spans and events.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local function is_nonneg_integer(v)
  return math.type(v) == "integer" and v >= 0
end

describe("vmtrace spans", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.disable() end)

  describe("kinds", function()
    it("lists the seed's 21 kinds in order", function()
      assert.same(helper.KINDS, vmtrace.kinds)
    end)

    it("accepts every kind and records it on the span", function()
      for i, kind in ipairs(helper.KINDS) do
        local id = vmtrace.start(kind, "span " .. i)
        vmtrace.finish(id)
      end
      local spans = vmtrace.spans()
      assert.equal(#helper.KINDS, #spans)
      for i, kind in ipairs(helper.KINDS) do
        assert.equal(kind, spans[i].kind)
        assert.equal("span " .. i, spans[i].name)
      end
    end)
  end)

  describe("start / finish", function()
    -- seed: test_span_collector_basic
    it("records a basic span", function()
      local id = vmtrace.start("pipeline", "main")
      assert.equal(1, id)
      assert.equal(1, vmtrace.current_span_id())
      assert.is_not_nil(vmtrace.span_link(id))
      vmtrace.finish(id)
      assert.is_nil(vmtrace.current_span_id())
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal("main", spans[1].name)
      assert.is_nil(spans[1].parent_id)
    end)

    it("hands out integer ids counting up from 1", function()
      for expected = 1, 10 do
        local id = vmtrace.start("fn_call", "f")
        assert.equal("integer", math.type(id))
        assert.equal(expected, id)
      end
    end)

    it("keeps counting ids across finishes and take_spans", function()
      vmtrace.finish(vmtrace.start("fn_call", "a"))
      vmtrace.finish(vmtrace.start("fn_call", "b"))
      vmtrace.take_spans()
      assert.equal(3, vmtrace.start("fn_call", "c"))
    end)

    it("finish returns the duration in ms, the same the span table reports", function()
      local id = vmtrace.start("tool_call", "t")
      local d = vmtrace.finish(id)
      assert.is_true(is_nonneg_integer(d))
      assert.equal(d, vmtrace.get(id).duration_ms)
      assert.equal(d, vmtrace.spans()[1].duration_ms)
    end)

    it("finish returns nil for an id that is finished, unknown, 0 or negative", function()
      local id = vmtrace.start("pipeline", "once")
      assert.is_not_nil(vmtrace.finish(id))
      assert.is_nil(vmtrace.finish(id))
      assert.is_nil(vmtrace.finish(999))
      assert.is_nil(vmtrace.finish(0))
      assert.is_nil(vmtrace.finish(-1))
      assert.equal(1, #vmtrace.spans())
    end)

    it("keeps names byte for byte", function()
      local names = { "", "with space", "naïve ✓", "nul\0inside", "\xff\xc0 not utf-8" }
      for _, name in ipairs(names) do vmtrace.finish(vmtrace.start("step", name)) end
      for i, s in ipairs(vmtrace.spans()) do assert.equal(names[i], s.name) end
    end)
  end)

  describe("span tables", function()
    it("a completed span has the seed's fields", function()
      local before = os.time()
      local id = vmtrace.start("llm_call", "gpt")
      local d = vmtrace.finish(id)
      local after = os.time()
      local s = vmtrace.get(id)
      assert.equal(vmtrace.trace_id(), s.trace_id)
      assert.equal(id, s.span_id)
      assert.equal("integer", math.type(s.span_id))
      assert.is_nil(s.parent_id)
      assert.equal("llm_call", s.kind)
      assert.equal("gpt", s.name)
      assert.is_true(is_nonneg_integer(s.start_ms))
      assert.is_true(is_nonneg_integer(s.start_unix_ms))
      assert.equal(d, s.duration_ms)
      assert.is_falsy(s.open)
      -- wall clock milliseconds (one second of slack for clock granularity)
      assert.is_true(s.start_unix_ms >= (before - 1) * 1000)
      assert.is_true(s.start_unix_ms <= (after + 2) * 1000)
    end)

    it("leaves out metadata, links and events when they are empty", function()
      local id = vmtrace.start("fn_call", "bare")
      vmtrace.finish(id)
      local s = vmtrace.get(id)
      assert.is_nil(s.metadata)
      assert.is_nil(s.links)
      assert.is_nil(s.events)
      assert.is_nil(vmtrace.spans()[1].metadata)
    end)

    it("an open span has open = true and no duration", function()
      local id = vmtrace.start("pipeline", "running")
      local s = vmtrace.get(id)
      assert.is_true(s.open)
      assert.is_nil(s.duration_ms)
      assert.equal(id, s.span_id)
      assert.equal("pipeline", s.kind)
      assert.equal("running", s.name)
      assert.equal(vmtrace.trace_id(), s.trace_id)
      assert.is_true(is_nonneg_integer(s.start_ms))
      assert.is_true(is_nonneg_integer(s.start_unix_ms))
      vmtrace.finish(id)
      local done = vmtrace.get(id)
      assert.is_falsy(done.open)
      assert.is_true(is_nonneg_integer(done.duration_ms))
      assert.equal(s.start_ms, done.start_ms)
      assert.equal(s.start_unix_ms, done.start_unix_ms)
    end)

    it("get returns nil for unknown ids and 0", function()
      vmtrace.start("pipeline", "x")
      assert.is_nil(vmtrace.get(0))
      assert.is_nil(vmtrace.get(2))
      assert.is_nil(vmtrace.get(-5))
    end)

    it("start_ms does not go backwards from one span to the next", function()
      local ids = {}
      for i = 1, 20 do ids[i] = vmtrace.start("step", "s" .. i) end
      for i = 20, 1, -1 do vmtrace.finish(ids[i]) end
      for i = 2, 20 do
        assert.is_true(vmtrace.get(ids[i]).start_ms >= vmtrace.get(ids[i - 1]).start_ms)
      end
    end)

    it("returns fresh tables: changing one does not change the record", function()
      local id = vmtrace.start("pipeline", "main")
      vmtrace.set_metadata(id, "k", { 1, 2 })
      vmtrace.finish(id)
      local s = vmtrace.get(id)
      s.name = "changed"
      s.metadata.k[1] = 99
      vmtrace.spans()[1].kind = "changed"
      assert.equal("main", vmtrace.get(id).name)
      assert.same({ 1, 2 }, vmtrace.get(id).metadata.k)
      assert.equal("pipeline", vmtrace.spans()[1].kind)
    end)
  end)

  describe("parent and child", function()
    -- seed: test_span_parent_child
    it("a span started inside another is its child", function()
      local parent = vmtrace.start("pipeline", "main")
      local child = vmtrace.start("fn_call", "helper")
      vmtrace.finish(child)
      vmtrace.finish(parent)
      local spans = vmtrace.spans()
      assert.equal(2, #spans)
      assert.equal(parent, spans[1].parent_id)
      assert.is_nil(spans[2].parent_id)
    end)

    it("current_span_id follows the innermost open span", function()
      assert.is_nil(vmtrace.current_span_id())
      local a = vmtrace.start("pipeline", "a")
      assert.equal(a, vmtrace.current_span_id())
      local b = vmtrace.start("fn_call", "b")
      assert.equal(b, vmtrace.current_span_id())
      local c = vmtrace.start("tool_call", "c")
      assert.equal(c, vmtrace.current_span_id())
      vmtrace.finish(c)
      assert.equal(b, vmtrace.current_span_id())
      vmtrace.finish(b)
      assert.equal(a, vmtrace.current_span_id())
      vmtrace.finish(a)
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("builds a deeper tree; siblings share their parent", function()
      local root = vmtrace.start("pipeline", "root")
      local s1 = vmtrace.start("step", "one")
      local g = vmtrace.start("llm_call", "grandchild")
      vmtrace.finish(g)
      vmtrace.finish(s1)
      local s2 = vmtrace.start("step", "two")
      vmtrace.finish(s2)
      vmtrace.finish(root)
      local by = helper.by_id(vmtrace.spans())
      assert.is_nil(by[root].parent_id)
      assert.equal(root, by[s1].parent_id)
      assert.equal(root, by[s2].parent_id)
      assert.equal(s1, by[g].parent_id)
    end)

    it("spans() lists spans in the order they finished: children before parents", function()
      local a = vmtrace.start("pipeline", "a")
      local b = vmtrace.start("step", "b")
      local c = vmtrace.start("fn_call", "c")
      vmtrace.finish(c)
      vmtrace.finish(b)
      local d = vmtrace.start("step", "d")
      vmtrace.finish(d)
      vmtrace.finish(a)
      local order = {}
      for i, s in ipairs(vmtrace.spans()) do order[i] = s.span_id end
      assert.same({ c, b, d, a }, order)
    end)

    it("a parent starts no later and lasts no shorter than its child", function()
      local parent = vmtrace.start("pipeline", "parent")
      local child = vmtrace.start("fn_call", "child")
      local t = os.clock()
      while os.clock() - t < 0.002 do end -- some work inside the child
      local dc = vmtrace.finish(child)
      local dp = vmtrace.finish(parent)
      assert.is_true(dp >= dc)
      assert.is_true(vmtrace.get(child).start_ms >= vmtrace.get(parent).start_ms)
    end)

    it("a span started after a root finished is a new root", function()
      vmtrace.finish(vmtrace.start("pipeline", "first"))
      local second = vmtrace.start("pipeline", "second")
      assert.is_nil(vmtrace.get(second).parent_id)
    end)
  end)

  describe("out-of-order finish", function()
    it("finishing a middle span leaves the inner one current", function()
      local a = vmtrace.start("pipeline", "a")
      local b = vmtrace.start("step", "b")
      local c = vmtrace.start("fn_call", "c")
      assert.is_not_nil(vmtrace.finish(b))
      assert.equal(c, vmtrace.current_span_id())
      assert.is_true(vmtrace.get(c).open)
      vmtrace.finish(c)
      -- b is gone from the stack, so the current span is a again
      assert.equal(a, vmtrace.current_span_id())
      local d = vmtrace.start("tool_call", "d")
      assert.equal(a, vmtrace.get(d).parent_id)
      -- c keeps the parent it was started under
      assert.equal(b, vmtrace.get(c).parent_id)
    end)

    it("finishing the parent first keeps the child open and current", function()
      local parent = vmtrace.start("pipeline", "parent")
      local child = vmtrace.start("fn_call", "child")
      vmtrace.finish(parent)
      assert.equal(child, vmtrace.current_span_id())
      local grandchild = vmtrace.start("tool_call", "grandchild")
      assert.equal(child, vmtrace.get(grandchild).parent_id)
      vmtrace.finish(grandchild)
      vmtrace.finish(child)
      assert.is_nil(vmtrace.current_span_id())
      local order = {}
      for i, s in ipairs(vmtrace.spans()) do order[i] = s.span_id end
      assert.same({ parent, grandchild, child }, order)
      assert.equal(parent, vmtrace.get(child).parent_id)
    end)

    it("finishing the outermost of many leaves the rest stacked", function()
      local ids = {}
      for i = 1, 5 do ids[i] = vmtrace.start("step", "s" .. i) end
      vmtrace.finish(ids[1])
      for i = 5, 2, -1 do
        assert.equal(ids[i], vmtrace.current_span_id())
        vmtrace.finish(ids[i])
      end
      assert.is_nil(vmtrace.current_span_id())
      assert.equal(5, #vmtrace.spans())
    end)
  end)

  describe("take_spans", function()
    it("returns the completed spans in finish order and drains them", function()
      local a = vmtrace.start("pipeline", "a")
      local b = vmtrace.start("fn_call", "b")
      vmtrace.finish(b)
      vmtrace.finish(a)
      local peeked = vmtrace.spans()
      local taken = vmtrace.take_spans()
      assert.same(peeked, taken)
      assert.equal(b, taken[1].span_id)
      assert.equal(a, taken[2].span_id)
      assert.same({}, vmtrace.spans())
      assert.same({}, vmtrace.take_spans())
      assert.is_nil(vmtrace.get(a))
      assert.is_nil(vmtrace.get(b))
      assert.equal("No spans recorded.", vmtrace.summary())
    end)

    it("spans() is not destructive", function()
      local id = vmtrace.start("pipeline", "x")
      vmtrace.set_metadata(id, "k", "v")
      vmtrace.finish(id)
      local first = vmtrace.spans()
      assert.equal(1, #first)
      assert.same({ id, "pipeline", "x", { k = "v" } },
        { first[1].span_id, first[1].kind, first[1].name, first[1].metadata })
      local second = vmtrace.spans()
      assert.equal(1, #second)
      assert.same(first[1], second[1], "a second read gives the same span")
      assert.equal(1, #vmtrace.take_spans(), "the span was still there to take")
    end)

    it("leaves open spans open; they complete later as usual", function()
      local parent = vmtrace.start("pipeline", "parent")
      local child = vmtrace.start("fn_call", "child")
      vmtrace.finish(child)
      local taken = vmtrace.take_spans()
      assert.equal(1, #taken)
      assert.equal(child, taken[1].span_id)
      assert.equal(parent, vmtrace.current_span_id())
      assert.is_true(vmtrace.get(parent).open)
      assert.is_not_nil(vmtrace.finish(parent))
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal(parent, spans[1].span_id)
    end)

    it("returns an empty array when nothing completed", function()
      vmtrace.start("pipeline", "open")
      assert.same({}, vmtrace.take_spans())
      assert.same({}, vmtrace.spans())
    end)
  end)

  describe("links", function()
    it("span_link of an open span is {trace_id, span_id = decimal string}", function()
      local id = vmtrace.start("pipeline", "p")
      for _ = 1, 9 do vmtrace.start("step", "s") end
      local last = vmtrace.current_span_id()
      assert.same({ trace_id = vmtrace.trace_id(), span_id = "1" }, vmtrace.span_link(id))
      assert.same({ trace_id = vmtrace.trace_id(), span_id = "10" }, vmtrace.span_link(last))
    end)

    it("span_link is nil for completed, unknown and 0 ids", function()
      local id = vmtrace.start("pipeline", "p")
      vmtrace.finish(id)
      assert.is_nil(vmtrace.span_link(id))
      assert.is_nil(vmtrace.span_link(42))
      assert.is_nil(vmtrace.span_link(0))
    end)

    it("current_span_link links the current span, or is nil", function()
      assert.is_nil(vmtrace.current_span_link())
      local a = vmtrace.start("pipeline", "a")
      local b = vmtrace.start("step", "b")
      assert.same(vmtrace.span_link(b), vmtrace.current_span_link())
      vmtrace.finish(b)
      assert.same({ trace_id = vmtrace.trace_id(), span_id = tostring(a) }, vmtrace.current_span_link())
      vmtrace.finish(a)
      assert.is_nil(vmtrace.current_span_link())
    end)

    -- seed: test_span_links_are_preserved
    it("links given at start are kept on the span", function()
      local parent = vmtrace.start("suspension", "suspend worker")
      local link = vmtrace.span_link(parent)
      assert.is_not_nil(link)
      vmtrace.finish(parent)

      local child = vmtrace.start("resume", "resume worker", { links = { link } })
      vmtrace.finish(child)

      local spans = vmtrace.spans()
      assert.equal(2, #spans)
      assert.is_nil(spans[2].parent_id)
      assert.equal(1, #spans[2].links)
      assert.equal(tostring(parent), spans[2].links[1].span_id)
    end)

    it("keeps several links in order, with their attributes", function()
      local remote_trace = "trace_0190b2c4-0000-7000-8000-000000000001"
      local id = vmtrace.start("channel_match", "batch", {
        links = {
          { trace_id = remote_trace, span_id = "00f067aa0ba902b7", attributes = { reason = "batched", ["k\0ey"] = "v\0al" } },
          { trace_id = vmtrace.trace_id(), span_id = 7 },
          { trace_id = remote_trace, span_id = "3", attributes = {} },
        },
      })
      vmtrace.finish(id)
      local links = vmtrace.get(id).links
      assert.equal(3, #links)
      assert.same({ trace_id = remote_trace, span_id = "00f067aa0ba902b7",
                    attributes = { reason = "batched", ["k\0ey"] = "v\0al" } }, links[1])
      -- an integer span id becomes its decimal string; empty attributes are left out
      assert.same({ trace_id = vmtrace.trace_id(), span_id = "7" }, links[2])
      assert.same({ trace_id = remote_trace, span_id = "3" }, links[3])
    end)

    it("links are visible on an open span and do not change the parent", function()
      local p = vmtrace.start("pipeline", "p")
      local id = vmtrace.start("pool_dequeue", "task", { links = { { trace_id = "t", span_id = "99" } } })
      local s = vmtrace.get(id)
      assert.equal(p, s.parent_id)
      assert.same({ { trace_id = "t", span_id = "99" } }, s.links)
    end)

    it("an empty links array records no links", function()
      local id = vmtrace.start("pipeline", "p", { links = {} })
      vmtrace.finish(id)
      assert.is_nil(vmtrace.get(id).links)
    end)

    it("copies the link tables: changing them later changes nothing", function()
      local attrs = { a = "1" }
      local link = { trace_id = "t", span_id = "5", attributes = attrs }
      local id = vmtrace.start("pipeline", "p", { links = { link } })
      link.span_id = "6"
      attrs.a = "2"
      vmtrace.finish(id)
      assert.same({ trace_id = "t", span_id = "5", attributes = { a = "1" } }, vmtrace.get(id).links[1])
    end)
  end)

  describe("detached spans", function()
    -- seed: test_detached_span_links_do_not_inherit_active_parent
    it("a detached span with links has no parent whatever is active", function()
      local pipeline = vmtrace.start("pipeline", "pipeline")
      local link = vmtrace.span_link(pipeline)
      assert.is_not_nil(link)
      local drain = vmtrace.start("drain", "drain", { detached = true, links = { link } })
      vmtrace.finish(drain)
      vmtrace.finish(pipeline)

      local found
      for _, s in ipairs(vmtrace.spans()) do
        if s.kind == "drain" then found = s end
      end
      assert.is_not_nil(found)
      assert.is_nil(found.parent_id)
      assert.equal(1, #found.links)
      assert.equal(tostring(pipeline), found.links[1].span_id)
    end)

    it("becomes the current span, and spans inside it are its children", function()
      local outer = vmtrace.start("pipeline", "outer")
      local detached = vmtrace.start("drain", "drain", { detached = true })
      assert.equal(detached, vmtrace.current_span_id())
      local inside = vmtrace.start("drain_decision", "decide")
      assert.equal(detached, vmtrace.get(inside).parent_id)
      vmtrace.finish(inside)
      vmtrace.finish(detached)
      assert.equal(outer, vmtrace.current_span_id())
      assert.is_nil(vmtrace.get(detached).parent_id)
    end)

    it("detached = false behaves like no option", function()
      local outer = vmtrace.start("pipeline", "outer")
      local inner = vmtrace.start("step", "inner", { detached = false })
      assert.equal(outer, vmtrace.get(inner).parent_id)
    end)
  end)

  describe("events", function()
    it("record_event appends named events to an open span", function()
      local id = vmtrace.start("llm_call", "call")
      assert.is_true(vmtrace.record_event(id, "request_sent"))
      assert.is_true(vmtrace.record_event(id, "first_token", { tokens = 1, phase = "stream" }))
      local d = vmtrace.finish(id)
      local events = vmtrace.get(id).events
      assert.equal(2, #events)
      assert.equal("request_sent", events[1].name)
      assert.is_nil(events[1].attributes)
      assert.equal("first_token", events[2].name)
      assert.same({ tokens = 1, phase = "stream" }, events[2].attributes)
      for _, ev in ipairs(events) do
        assert.is_true(is_nonneg_integer(ev.time_unix_ms))
        assert.is_true(is_nonneg_integer(ev.offset_ms))
        assert.is_true(ev.offset_ms <= d)
        assert.is_true(ev.time_unix_ms >= vmtrace.get(id).start_unix_ms)
      end
      assert.is_true(events[2].offset_ms >= events[1].offset_ms)
    end)

    it("events are visible on the open span", function()
      local id = vmtrace.start("step", "s")
      vmtrace.record_event(id, "halfway")
      local s = vmtrace.get(id)
      assert.is_true(s.open)
      assert.equal(1, #s.events)
      assert.equal("halfway", s.events[1].name)
    end)

    it("event attributes keep JSON values; empty attributes are left out", function()
      local id = vmtrace.start("tool_call", "t")
      vmtrace.record_event(id, "a", { list = { 1, "two", true }, obj = { x = 1.5 }, none = vmtrace.null })
      vmtrace.record_event(id, "b", {})
      vmtrace.finish(id)
      local events = vmtrace.get(id).events
      assert.same({ list = { 1, "two", true }, obj = { x = 1.5 }, none = vmtrace.null }, events[1].attributes)
      assert.is_nil(events[2].attributes)
    end)

    it("record_event returns false and records nothing on a completed, unknown or 0 span", function()
      local id = vmtrace.start("step", "s")
      vmtrace.record_event(id, "during")
      vmtrace.finish(id)
      assert.is_false(vmtrace.record_event(id, "after"))
      assert.is_false(vmtrace.record_event(12345, "nowhere"))
      assert.is_false(vmtrace.record_event(0, "nothing"))
      local events = vmtrace.get(id).events
      assert.equal(1, #events)
      assert.equal("during", events[1].name)
    end)

    it("keeps event names byte for byte and in order", function()
      local id = vmtrace.start("step", "s")
      local names = { "one", "t\0wo", "\xff", "" }
      for _, n in ipairs(names) do vmtrace.record_event(id, n) end
      vmtrace.finish(id)
      local events = vmtrace.get(id).events
      assert.equal(#names, #events)
      for i, n in ipairs(names) do assert.equal(n, events[i].name) end
    end)
  end)
end)

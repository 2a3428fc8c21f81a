-- Event sinks (the seed's events module): add_sink{on_start, on_end} and
-- remove_sink. Sinks see every span start and end; a failing sink neither loses
-- the span nor stops the other sinks, and is reported once on stderr.

local vmtrace = require "vmtrace"
local timing = require "vmtrace.timing"
local helper = require "spec.helper"

local WALL = 1700000000000

describe("vmtrace sinks", function()
  local added, real_stderr

  -- add_sink that the after_each removes again
  local function add(sink)
    local s = vmtrace.add_sink(sink)
    added[#added + 1] = s
    return s
  end

  -- a sink recording every event as {"start"|"end", ev}
  local function recorder()
    local log = {}
    local sink = add {
      on_start = function(ev) log[#log + 1] = { "start", ev } end,
      on_end = function(ev) log[#log + 1] = { "end", ev } end,
    }
    return log, sink
  end

  local function capture_stderr()
    local out = {}
    io.stderr = { write = function(self, ...)
      for i = 1, select("#", ...) do out[#out + 1] = tostring(select(i, ...)) end
      return self
    end }
    return out
  end

  before_each(function()
    added = {}
    real_stderr = io.stderr
    vmtrace.enable()
  end)

  after_each(function()
    io.stderr = real_stderr
    for _, s in ipairs(added) do vmtrace.remove_sink(s) end
    while vmtrace.unmock_time() do end
    vmtrace.disable()
  end)

  describe("under max_spans", function()
    it("every end reaches the sinks, with its metadata, even when the span is evicted first", function()
      -- an error unwinding three traced frames ends their spans in one hook
      -- event; under max_spans = 1 two were evicted before the delivery and
      -- their ends never reached the sinks (uncounted)
      local log = recorder()
      vmtrace.configure { max_spans = 1 }
      local function c() error("boom") end
      local function b() c() end
      local function a() b() end
      vmtrace.auto { calls = true }
      pcall(a)
      vmtrace.auto(false)
      vmtrace.configure { max_spans = 0 }
      local ends = {}
      for _, e in ipairs(log) do
        if e[1] == "end" then ends[#ends + 1] = e[2].name .. ":" .. tostring(e[2].metadata.status) end
      end
      assert.equal(3, #ends, table.concat(ends, " "))
      for _, e in ipairs(ends) do assert.matches(":error$", e) end
      assert.equal(0, vmtrace.stats().sink_dropped)
      assert.equal(2, vmtrace.dropped())
    end)
  end)

  describe("add_sink", function()
    it("returns the sink it was given", function()
      local sink = { on_start = function() end }
      assert.is_true(rawequal(sink, add(sink)))
    end)

    it("delivers a start event with span_id, parent_id, name, kind and metadata", function()
      local log = recorder()
      local parent = vmtrace.start("pipeline", "main")
      local child = vmtrace.start("fn_call", "helper")
      assert.equal(2, #log)
      assert.equal("start", log[1][1])
      local ev = log[1][2]
      assert.equal(parent, ev.span_id)
      assert.is_nil(ev.parent_id)
      assert.equal("main", ev.name)
      assert.equal("pipeline", ev.kind)
      assert.same({}, ev.metadata)
      ev = log[2][2]
      assert.equal("start", log[2][1])
      assert.equal(child, ev.span_id)
      assert.equal(parent, ev.parent_id)
      assert.equal("helper", ev.name)
      assert.equal("fn_call", ev.kind)
    end)

    it("puts the span's links in the start event's metadata", function()
      local log = recorder()
      local a = vmtrace.start("suspension", "suspend")
      local link = vmtrace.span_link(a)
      vmtrace.finish(a)
      local b = vmtrace.start("resume", "resume", { links = { link } })
      local ev = log[3][2]
      assert.equal("start", log[3][1])
      assert.equal(b, ev.span_id)
      assert.is_table(ev.metadata.links)
      assert.equal(1, #ev.metadata.links)
      assert.equal(tostring(a), ev.metadata.links[1].span_id)
      assert.equal(vmtrace.trace_id(), ev.metadata.links[1].trace_id)
    end)

    it("has no links key in a start event of a span without links", function()
      local log = recorder()
      vmtrace.start("fn_call", "plain")
      assert.is_nil(log[1][2].metadata.links)
    end)

    it("delivers an end event with span_id and metadata including duration_ms", function()
      local log = recorder()
      vmtrace.mock_time(WALL)
      local id = vmtrace.start("llm_call", "chat")
      vmtrace.set_metadata(id, "model", "m")
      vmtrace.set_metadata(id, "tokens", 10)
      vmtrace.advance_time(17)
      vmtrace.finish(id)
      assert.equal(2, #log)
      assert.equal("end", log[2][1])
      local ev = log[2][2]
      assert.equal(id, ev.span_id)
      assert.same({ model = "m", tokens = 10, duration_ms = 17 }, ev.metadata)
    end)

    it("end event duration_ms equals the span's duration", function()
      local log = recorder()
      local id = vmtrace.start("fn_call", "f")
      local d = vmtrace.finish(id)
      assert.equal(d, log[2][2].metadata.duration_ms)
      assert.equal(vmtrace.get(id).duration_ms, log[2][2].metadata.duration_ms)
    end)

    it("does not put duration_ms into the span's own metadata", function()
      recorder()
      local id = vmtrace.start("fn_call", "f")
      vmtrace.finish(id)
      assert.is_nil(vmtrace.get(id).metadata)
    end)

    it("delivers events in order to every sink", function()
      local log1 = recorder()
      local log2 = recorder()
      local a = vmtrace.start("pipeline", "a")
      local b = vmtrace.start("fn_call", "b")
      vmtrace.finish(b)
      vmtrace.finish(a)
      for _, log in ipairs { log1, log2 } do
        assert.equal(4, #log)
        assert.same({ "start", "start", "end", "end" },
          { log[1][1], log[2][1], log[3][1], log[4][1] })
        assert.same({ a, b, b, a },
          { log[1][2].span_id, log[2][2].span_id, log[3][2].span_id, log[4][2].span_id })
      end
    end)

    it("accepts a sink with only one of on_start / on_end", function()
      local starts, ends = 0, 0
      add { on_start = function() starts = starts + 1 end }
      add { on_end = function() ends = ends + 1 end }
      vmtrace.finish(vmtrace.start("fn_call", "f"))
      assert.equal(1, starts)
      assert.equal(1, ends)
    end)

    it("delivers nothing while tracing is off", function()
      local log = recorder()
      vmtrace.disable()
      vmtrace.finish(vmtrace.start("fn_call", "off"))
      vmtrace.model_route("a", "b", "c")
      assert.equal(0, #log)
    end)

    it("rejects what is not a sink", function()
      helper.assert_bad_argument(function() vmtrace.add_sink(print) end,
        "add_sink", 1, "table")
      helper.assert_bad_argument(function() vmtrace.add_sink({}) end,
        "add_sink", 1, "on_start")
      helper.assert_bad_argument(function() vmtrace.add_sink({ on_end = 5 }) end,
        "add_sink", 1, "on_end", "function")
    end)
  end)

  describe("a sink that raises", function()
    it("does not lose the span nor stop the other sinks", function()
      local err_out = capture_stderr()
      add {
        on_start = function() error("sink start failed") end,
        on_end = function() error("sink end failed") end,
      }
      local log = recorder()
      local id = vmtrace.start("tool_call", "t")
      vmtrace.set_metadata(id, "k", "v")
      assert.equal(id, vmtrace.current_span_id())
      local d = vmtrace.finish(id)
      assert.equal("integer", math.type(d))
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal(id, spans[1].span_id)
      assert.equal("v", spans[1].metadata.k)
      assert.equal(2, #log)
      assert.equal("start", log[1][1])
      assert.equal("end", log[2][1])
      assert.equal(id, log[2][2].span_id)
      assert.is_true(#err_out > 0)
    end)

    it("does not stop sinks added before it", function()
      capture_stderr()
      local log = recorder()
      add { on_start = function() error("x") end }
      vmtrace.finish(vmtrace.start("fn_call", "f"))
      assert.equal(2, #log)
    end)

    it("is reported once on stderr, with its error", function()
      local err_out = capture_stderr()
      add { on_start = function() error("sink exploded") end,
            on_end = function() error("sink exploded at end") end }
      for i = 1, 5 do vmtrace.finish(vmtrace.start("fn_call", "f" .. i)) end
      local text = table.concat(err_out)
      local _, reports = text:gsub("sink exploded", "")
      assert.equal(1, reports, "expected exactly one report, got: " .. text)
      assert.equal(5, #vmtrace.spans())
    end)

    it("is reported separately for each failing sink", function()
      local err_out = capture_stderr()
      add { on_start = function() error("first sink") end }
      add { on_start = function() error("second sink") end }
      vmtrace.finish(vmtrace.start("fn_call", "a"))
      vmtrace.finish(vmtrace.start("fn_call", "b"))
      local text = table.concat(err_out)
      assert.truthy(text:find("first sink", 1, true))
      assert.truthy(text:find("second sink", 1, true))
      local _, n1 = text:gsub("first sink", "")
      assert.equal(1, n1)
    end)

    it("does not break vmtrace.with or the value it returns", function()
      capture_stderr()
      add { on_end = function() error("nope") end }
      assert.equal(42, vmtrace.with("fn_call", "w", function() return 42 end))
      assert.equal(1, #vmtrace.spans())
    end)
  end)

  describe("remove_sink", function()
    it("stops delivery and returns true, then false", function()
      local log, sink = recorder()
      vmtrace.finish(vmtrace.start("fn_call", "seen"))
      assert.equal(2, #log)
      assert.is_true(vmtrace.remove_sink(sink))
      vmtrace.finish(vmtrace.start("fn_call", "unseen"))
      assert.equal(2, #log)
      assert.is_false(vmtrace.remove_sink(sink))
    end)

    it("returns false for something never added", function()
      assert.is_false(vmtrace.remove_sink({ on_start = function() end }))
    end)

    it("leaves the other sinks in place", function()
      local log1, s1 = recorder()
      local log2 = recorder()
      vmtrace.remove_sink(s1)
      vmtrace.finish(vmtrace.start("fn_call", "f"))
      assert.equal(0, #log1)
      assert.equal(2, #log2)
    end)

    it("can be called by a sink on itself while it is being delivered to", function()
      local calls = 0
      local sink
      sink = add { on_start = function()
        calls = calls + 1
        vmtrace.remove_sink(sink)
      end }
      local log = recorder()
      vmtrace.finish(vmtrace.start("fn_call", "a"))
      vmtrace.finish(vmtrace.start("fn_call", "b"))
      assert.equal(1, calls)
      assert.equal(4, #log)
    end)
  end)

  describe("reaches sinks from", function()
    it("markers, with their metadata in both events", function()
      local log = recorder()
      vmtrace.mock_time(WALL)
      local parent = vmtrace.start("pipeline", "p")
      vmtrace.model_route("small", "big", "stuck")
      vmtrace.tool_mount({ "read" }, "mcp")
      vmtrace.deferred_tool_load("grep", "q", 2.0)
      vmtrace.marker("step", "mark", { n = 1 })
      local kinds = {}
      for _, e in ipairs(log) do kinds[#kinds + 1] = e[1] .. ":" .. e[2].span_id end
      assert.same({
        "start:1", "start:2", "end:2", "start:3", "end:3", "start:4", "end:4", "start:5", "end:5",
      }, kinds)
      local route_start, route_end = log[2][2], log[3][2]
      assert.equal("model_route", route_start.kind)
      assert.equal(parent, route_start.parent_id)
      assert.equal("big", route_end.metadata.to_model)
      assert.equal(0, route_end.metadata.duration_ms)
      assert.equal(1, log[9][2].metadata.n)
      assert.equal(0, log[9][2].metadata.duration_ms)
    end)

    it("vmtrace.with, including its error status", function()
      local log = recorder()
      vmtrace.with("fn_call", "ok", function() end)
      pcall(vmtrace.with, "fn_call", "bad", function() error("failed here") end)
      assert.equal(4, #log)
      assert.equal("ok", log[1][2].name)
      assert.equal("end", log[2][1])
      assert.equal("bad", log[3][2].name)
      assert.equal("end", log[4][1])
      assert.equal("error", log[4][2].metadata.status)
      assert.truthy(log[4][2].metadata.error:find("failed here", 1, true))
    end)

    it("scoped spans", function()
      local log = recorder()
      do
        local s <close> = vmtrace.span("tool_call", "scoped")
        s:set("k", 1)
      end
      assert.equal(2, #log)
      assert.equal("scoped", log[1][2].name)
      assert.equal("tool_call", log[1][2].kind)
      assert.equal("end", log[2][1])
      assert.equal(1, log[2][2].metadata.k)
    end)

    it("user timing spans", function()
      local log = recorder()
      local h = timing.start("t", { a = 1 })
      timing.finish(h)
      assert.equal(2, #log)
      assert.equal("user_timing", log[1][2].kind)
      assert.equal(1, log[1][2].metadata.a)
      assert.equal(1, log[2][2].metadata.a)
      assert.is_number(log[2][2].metadata.duration_ms)
    end)

    it("user timing spans while tracing is off (they always record)", function()
      vmtrace.disable()
      local log = recorder()
      local h = timing.start("off")
      timing.finish(h)
      assert.equal(2, #log)
      assert.equal("start", log[1][1])
      assert.equal(h.span_id, log[1][2].span_id)
      assert.equal("end", log[2][1])
      assert.equal(h.span_id, log[2][2].span_id)
    end)
  end)
end)

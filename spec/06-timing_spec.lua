-- vmtrace.timing (the seed's std/timing): start / event / finish / timed /
-- elapsed_ms. User timing always records, even while tracing is off; its spans
-- have kind user_timing and show in vmtrace.spans().

local vmtrace = require "vmtrace"
local timing = require "vmtrace.timing"
local helper = require "spec.helper"

local WALL = 1000000000000 -- the seed's MockClock::at_wall_ms(1_000_000_000_000)

local function find_span(name)
  for _, s in ipairs(vmtrace.spans()) do
    if s.name == name then return s end
  end
  return nil
end

local function unmock_all()
  while vmtrace.unmock_time() do end
end

describe("vmtrace.timing", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    unmock_all()
    vmtrace.disable()
  end)

  describe("while tracing is off", function()
    -- seed: test_user_timing_records_when_tracing_disabled
    it("always records (port of test_user_timing_records_when_tracing_disabled)", function()
      vmtrace.disable()
      vmtrace.reset()
      local h = timing.start("script.work", { phase = "warmup" })
      assert.is_true(h.span_id ~= 0)
      assert.is_string(h.trace_id)
      assert.is_true(#h.trace_id > 0)
      assert.is_nil(h.parent_span_id)
      assert.is_true(h.started_at_ms > 0)

      assert.is_true(timing.event(h, "checkpoint"))

      local seg = timing.finish(h)
      assert.equal("user_timing", seg.kind)
      assert.equal(1, #seg.events)
      assert.equal("checkpoint", seg.events[1].name)
      assert.equal("warmup", seg.metadata.phase)

      -- the span survives in the collector snapshot
      local s = find_span("script.work")
      assert.is_not_nil(s, "user_timing span should be in vmtrace.spans()")
      assert.equal("user_timing", s.kind)
      assert.equal(h.span_id, s.span_id)
      assert.equal("warmup", s.metadata.phase)
      assert.equal(1, #s.events)
      assert.equal("checkpoint", s.events[1].name)
    end)

    it("still leaves ordinary spans unrecorded", function()
      vmtrace.disable()
      vmtrace.reset()
      local h = timing.start("t")
      assert.equal(0, vmtrace.start("fn_call", "ignored"))
      timing.finish(h)
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal("user_timing", spans[1].kind)
      assert.equal("t", spans[1].name)
    end)

    it("gives exact durations under the mock clock", function()
      vmtrace.disable()
      vmtrace.mock_time(WALL)
      local h = timing.start("off")
      vmtrace.advance_time(33)
      assert.equal(33, timing.finish(h).duration_ms)
    end)
  end)

  describe("start", function()
    it("returns a handle with the documented fields", function()
      vmtrace.mock_time(WALL)
      local h = timing.start("load", { file = "a.txt", size = 12 })
      assert.equal("load", h.name)
      assert.equal("user_timing", h.kind)
      assert.equal("integer", math.type(h.span_id))
      assert.is_true(h.span_id > 0)
      assert.equal(vmtrace.trace_id(), h.trace_id)
      assert.is_nil(h.parent_span_id)
      assert.equal(WALL, h.started_at_ms)
      assert.equal(0, h.monotonic_started_ms)
      assert.same({ file = "a.txt", size = 12 }, h.attributes)
    end)

    it("has empty attributes when none are given", function()
      local h = timing.start("bare")
      assert.same({}, h.attributes)
      timing.finish(h)
      assert.is_nil(find_span("bare").metadata)
    end)

    it("makes the attributes the span's metadata", function()
      local h = timing.start("m", { phase = "warmup", n = 3 })
      assert.same({ phase = "warmup", n = 3 }, vmtrace.get(h.span_id).metadata)
      timing.finish(h)
    end)

    it("takes the current span as parent while tracing is on", function()
      local parent = vmtrace.start("pipeline", "main")
      local h = timing.start("inner")
      assert.equal(parent, h.parent_span_id)
      local seg = timing.finish(h)
      assert.equal(parent, seg.parent_span_id)
      vmtrace.finish(parent)
      assert.equal(parent, find_span("inner").parent_id)
    end)

    it("is the current span while open (spans started inside nest under it)", function()
      local h = timing.start("outer")
      local child = vmtrace.start("fn_call", "child")
      vmtrace.finish(child)
      timing.finish(h)
      assert.equal(h.span_id, find_span("child").parent_id)
      assert.is_nil(vmtrace.current_span_id())
    end)

    it("shares the id sequence with ordinary spans", function()
      local a = vmtrace.start("fn_call", "a")
      local h = timing.start("t")
      local b = vmtrace.start("fn_call", "b")
      assert.equal(a + 1, h.span_id)
      assert.equal(h.span_id + 1, b)
    end)

    it("rejects a name that is not a string", function()
      helper.assert_bad_argument(function() timing.start(42) end,
        "timing.start", 1, "string")
    end)

    it("rejects attributes that are not a table", function()
      helper.assert_bad_argument(function() timing.start("x", "attrs") end,
        "timing.start", 2, "table")
    end)

    it("rejects attributes that are not JSON-able, naming only timing.start", function()
      helper.assert_bad_argument(function() timing.start("x", { f = print }) end,
        "timing.start", 2, "function")
      local err = helper.assert_bad_argument(function() timing.start("x", { 1, 2 }) end,
        "timing.start", 2, "string keys")
      assert.is_falsy(err:find("_start_always", 1, true),
        "the message should not name an internal function: " .. err)
      assert.same({}, vmtrace.spans())
    end)
  end)

  describe("event", function()
    it("records events with attributes, in order", function()
      vmtrace.mock_time(WALL)
      local h = timing.start("ev")
      assert.is_true(timing.event(h, "first", { rows = 1 }))
      vmtrace.advance_time(5)
      assert.is_true(timing.event(h, "second"))
      local seg = timing.finish(h)
      assert.equal(2, #seg.events)
      assert.equal("first", seg.events[1].name)
      assert.same({ rows = 1 }, seg.events[1].attributes)
      assert.equal(0, seg.events[1].offset_ms)
      assert.equal(WALL, seg.events[1].time_unix_ms)
      assert.equal("second", seg.events[2].name)
      assert.equal(5, seg.events[2].offset_ms)
      assert.equal(WALL + 5, seg.events[2].time_unix_ms)
    end)

    it("returns false once the handle is finished", function()
      local h = timing.start("done")
      timing.finish(h)
      assert.is_false(timing.event(h, "late"))
      assert.is_nil(find_span("done").events)
    end)

    it("rejects a table that is not a handle, naming the function and argument", function()
      helper.assert_bad_argument(function() timing.event({ span_id = 1 }, "x") end,
        "timing.event", 1, "handle")
    end)

    it("rejects a non-table handle", function()
      helper.assert_bad_argument(function() timing.event(1, "x") end,
        "timing.event", 1, "handle")
    end)

    it("rejects event attributes that are not JSON-able, naming timing.event", function()
      local h = timing.start("n")
      helper.assert_bad_argument(function() timing.event(h, "e", { f = print }) end,
        "timing.event", 3, "function")
      helper.assert_bad_argument(function() timing.event(h, "e", 5) end,
        "timing.event", 3, "table")
      assert.is_nil(timing.finish(h).events)
    end)

    it("rejects an event name that is not a string", function()
      local h = timing.start("n")
      helper.assert_bad_argument(function() timing.event(h, 7) end,
        "timing.event", 2, "string")
      timing.finish(h)
    end)
  end)

  describe("finish", function()
    it("returns a segment with the documented fields", function()
      vmtrace.mock_time(WALL)
      local parent = vmtrace.start("pipeline", "p")
      local h = timing.start("seg", { phase = "warmup" })
      vmtrace.advance_time(120)
      local seg = timing.finish(h)
      assert.equal("seg", seg.name)
      assert.equal(vmtrace.trace_id(), seg.trace_id)
      assert.equal(h.span_id, seg.span_id)
      assert.equal(parent, seg.parent_span_id)
      assert.equal("user_timing", seg.kind)
      assert.equal(WALL, seg.started_at_ms)
      assert.equal(0, seg.monotonic_started_ms)
      assert.equal(120, seg.duration_ms)
      assert.equal(WALL + 120, seg.ended_at_ms)
      assert.same({ phase = "warmup" }, seg.attributes)
      assert.same({ phase = "warmup" }, seg.metadata)
      assert.is_nil(seg.status)
      assert.is_nil(seg.error)
      assert.is_nil(seg.events)
    end)

    it("ended_at_ms is started_at_ms + duration_ms", function()
      local h = timing.start("real clock")
      local seg = timing.finish(h)
      assert.equal(seg.started_at_ms + seg.duration_ms, seg.ended_at_ms)
      assert.is_true(seg.duration_ms >= 0)
    end)

    it("agrees with the span in vmtrace.spans()", function()
      vmtrace.mock_time(WALL)
      local h = timing.start("same")
      vmtrace.advance_time(9)
      local seg = timing.finish(h)
      local s = find_span("same")
      assert.equal(seg.duration_ms, s.duration_ms)
      assert.equal(9, s.duration_ms)
      assert.equal(seg.started_at_ms, s.start_unix_ms)
      assert.equal(seg.span_id, s.span_id)
    end)

    it("merges the attributes given to finish into the metadata", function()
      local h = timing.start("merge", { phase = "warmup" })
      local seg = timing.finish(h, { rows = 3 })
      assert.same({ phase = "warmup", rows = 3 }, seg.metadata)
      assert.same({ phase = "warmup", rows = 3 }, seg.attributes)
      assert.same({ phase = "warmup", rows = 3 }, find_span("merge").metadata)
    end)

    it("keeps status and error out of attributes but reports them", function()
      local h = timing.start("failed", { phase = "x" })
      local seg = timing.finish(h, { status = "error", error = "it broke" })
      assert.equal("error", seg.status)
      assert.equal("it broke", seg.error)
      assert.same({ phase = "x" }, seg.attributes)
      assert.same({ phase = "x", status = "error", error = "it broke" }, seg.metadata)
    end)

    it("returns the very same segment when finished twice", function()
      local h = timing.start("twice")
      local seg1 = timing.finish(h)
      local seg2 = timing.finish(h, { late = true })
      assert.is_true(rawequal(seg1, seg2))
      assert.is_nil(seg2.metadata.late)
      assert.equal(1, #vmtrace.spans())
      assert.is_nil(vmtrace.spans()[1].metadata)
    end)

    it("rejects a table that is not a handle, naming the function and argument", function()
      helper.assert_bad_argument(function() timing.finish({}) end,
        "timing.finish", 1, "handle")
    end)

    it("rejects attributes that are not a table", function()
      local h = timing.start("bad attrs")
      helper.assert_bad_argument(function() timing.finish(h, 5) end,
        "timing.finish", 2, "table")
    end)

    it("rejects attributes that are not JSON-able, naming timing.finish, and keeps the span", function()
      local h = timing.start("bad attrs", { a = 1 })
      helper.assert_bad_argument(function() timing.finish(h, { f = print }) end,
        "timing.finish", 2, "function")
      local seg = timing.finish(h)
      assert.same({ a = 1 }, seg.metadata)
      assert.equal(1, #vmtrace.spans())
    end)
  end)

  describe("elapsed_ms", function()
    it("follows the mock clock while open and is the duration once finished", function()
      vmtrace.mock_time(WALL)
      local h = timing.start("e")
      assert.equal(0, timing.elapsed_ms(h))
      vmtrace.advance_time(15)
      assert.equal(15, timing.elapsed_ms(h))
      vmtrace.advance_time(5)
      local seg = timing.finish(h)
      assert.equal(20, seg.duration_ms)
      vmtrace.advance_time(1000)
      assert.equal(20, timing.elapsed_ms(h))
    end)

    it("is a non-negative integer under the real clock", function()
      local h = timing.start("e")
      local ms = timing.elapsed_ms(h)
      assert.equal("integer", math.type(ms))
      assert.is_true(ms >= 0)
      timing.finish(h)
    end)

    it("rejects a table that is not a handle", function()
      helper.assert_bad_argument(function() timing.elapsed_ms({ name = "x" }) end,
        "timing.elapsed_ms", 1, "handle")
    end)
  end)

  describe("timed", function()
    it("returns fn's result and the segment", function()
      vmtrace.mock_time(WALL)
      local result, seg = timing.timed("work", function()
        vmtrace.advance_time(7)
        return 42
      end)
      assert.equal(42, result)
      assert.equal("work", seg.name)
      assert.equal("user_timing", seg.kind)
      assert.equal(7, seg.duration_ms)
      assert.same({}, seg.attributes)
      assert.is_not_nil(find_span("work"))
    end)

    it("takes attributes before the function", function()
      local result, seg = timing.timed("with attrs", { step = 2 }, function()
        return "ok"
      end)
      assert.equal("ok", result)
      assert.same({ step = 2 }, seg.attributes)
      assert.same({ step = 2 }, find_span("with attrs").metadata)
    end)

    it("passes the handle to fn, which can record events on it", function()
      local seen
      local _, seg = timing.timed("h", function(h)
        seen = h
        assert.is_true(timing.event(h, "mid"))
      end)
      assert.equal("h", seen.name)
      assert.equal(seg.span_id, seen.span_id)
      assert.equal(1, #seg.events)
      assert.equal("mid", seg.events[1].name)
    end)

    it("marks the span as failed and re-raises when fn raises", function()
      local ok, err = pcall(timing.timed, "boom", function() error("kaput") end)
      assert.is_false(ok)
      assert.is_string(err)
      assert.truthy(err:find("kaput", 1, true))
      local s = find_span("boom")
      assert.is_not_nil(s, "the failed span should still be recorded")
      assert.equal("error", s.metadata.status)
      assert.equal(err, s.metadata.error)
    end)

    it("re-raises a table error object unchanged", function()
      local obj = { code = 7 }
      local ok, err = pcall(timing.timed, "tbl", { a = 1 }, function() error(obj) end)
      assert.is_false(ok)
      assert.is_true(rawequal(obj, err))
      local s = find_span("tbl")
      assert.equal("error", s.metadata.status)
      assert.is_string(s.metadata.error)
      assert.equal(1, s.metadata.a)
    end)

    it("records failures while tracing is off too", function()
      vmtrace.disable()
      vmtrace.reset()
      assert.is_false(pcall(timing.timed, "off", function() error("nope") end))
      local s = find_span("off")
      assert.equal("error", s.metadata.status)
      assert.truthy(s.metadata.error:find("nope", 1, true))
    end)

    it("names itself for attributes that are not JSON-able", function()
      helper.assert_bad_argument(function() timing.timed("z", { f = print }, function() end) end,
        "timing.timed", 2, "function")
      assert.same({}, vmtrace.spans())
    end)

    it("rejects a missing function", function()
      helper.assert_bad_argument(function() timing.timed("x") end,
        "timing.timed", 2, "function")
      helper.assert_bad_argument(function() timing.timed("x", {}, "f") end,
        "timing.timed", 3, "function")
    end)
  end)
end)

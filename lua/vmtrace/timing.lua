--- vmtrace.timing: the `std/timing` API. Time a piece of work without
-- subtracting clock readings by hand. It always records, even while tracing is
-- off: its spans have kind `user_timing` and appear in vmtrace.spans().
-- @module vmtrace.timing
local core = require "vmtrace.core"

local M = {}

local Handle = { __name = "vmtrace.timing.Handle" }
Handle.__index = Handle
local private = setmetatable({}, { __mode = "k" }) -- handle -> {gen, segment}

local function fail(fn, n, msg, level)
  core._argerror("timing." .. fn, n, msg, (level or 1) + 1)
end

local function check_handle(fn, h)
  local p = getmetatable(h) == Handle and private[h]
  if not p then
    fail(fn, 1, ("timing handle from vmtrace.timing.start expected, got %s")
      :format(type(h) == "table" and "another table" or type(h)), 2)
  end
  return p
end

local function copy(t)
  local r = {}
  if t then for k, v in pairs(t) do r[k] = v end end
  return r
end

-- Is the span still the one this handle started (no reset since)?
local function live(h, p)
  return p.gen == core.generation()
end

--- Start timing `name`; `attrs` become the span's metadata. Returns a handle
-- with name, span_id, trace_id, parent_span_id, started_at_ms,
-- monotonic_started_ms, attributes and kind = "user_timing".
local function start(fn, name, attrs)
  if type(name) ~= "string" then fail(fn, 1, "string expected, got " .. type(name), 2) end
  if attrs ~= nil and type(attrs) ~= "table" then
    fail(fn, 2, "table of attributes expected, got " .. type(attrs), 2)
  end
  local id, parent = core._start_always(name, attrs, "timing." .. fn)
  local s = core.get(id) or {}
  local h = setmetatable({
    name = name,
    kind = "user_timing",
    span_id = id,
    trace_id = core.trace_id(),
    parent_span_id = parent,
    started_at_ms = s.start_unix_ms or core.now_ms(),
    monotonic_started_ms = core.monotonic_ms(),
    attributes = copy(attrs),
  }, Handle)
  private[h] = { gen = core.generation() }
  return h
end

--- Start timing `name`; `attrs` become the span's metadata. Returns a handle
-- with name, span_id, trace_id, parent_span_id, started_at_ms,
-- monotonic_started_ms, attributes and kind = "user_timing".
function M.start(name, attrs)
  return start("start", name, attrs)
end

--- Record a sub-phase event; true, or false once the span is finished.
function M.event(h, name, attrs)
  local p = check_handle("event", h)
  if type(name) ~= "string" then fail("event", 2, "string expected, got " .. type(name)) end
  if p.segment or not live(h, p) then return false end
  return core._event(h.span_id, name, attrs, "timing.event")
end

--- Milliseconds since the handle started (its duration once finished).
function M.elapsed_ms(h)
  local p = check_handle("elapsed_ms", h)
  if p.segment then return p.segment.duration_ms end
  local ms = live(h, p) and core._elapsed_ms(h.span_id)
  return ms or math.max(0, core.monotonic_ms() - h.monotonic_started_ms)
end

local function segment_of(h, s, duration)
  local md = s and s.metadata or copy(h.attributes)
  local attributes = copy(md)
  attributes.status, attributes["error"] = nil, nil
  local seg = {
    name = h.name,
    trace_id = h.trace_id,
    span_id = h.span_id,
    parent_span_id = h.parent_span_id,
    kind = "user_timing",
    started_at_ms = h.started_at_ms,
    monotonic_started_ms = h.monotonic_started_ms,
    ended_at_ms = h.started_at_ms + duration,
    duration_ms = duration,
    attributes = attributes,
    metadata = md,
    status = md.status,
    ["error"] = md["error"],
    events = s and s.events,
  }
  return seg
end

--- Finish timing; `attrs` are added to the metadata first. Returns the
-- segment: name, trace_id, span_id, parent_span_id, kind, started_at_ms,
-- monotonic_started_ms, ended_at_ms, duration_ms, attributes (metadata
-- without status and error), status and error when set, metadata, and events
-- when any. Finishing again returns the same segment.
function M.finish(h, attrs)
  local p = check_handle("finish", h)
  if p.segment then return p.segment end
  if attrs ~= nil and type(attrs) ~= "table" then
    fail("finish", 2, "table of attributes expected, got " .. type(attrs))
  end
  local duration, s
  if live(h, p) then
    if attrs then core._merge(h.span_id, attrs, "timing.finish", 2) end
    duration = core.finish(h.span_id)
    s = core.get(h.span_id)
  end
  if not duration then -- the collector was reset meanwhile: time it ourselves
    duration = math.max(0, core.monotonic_ms() - h.monotonic_started_ms)
    s = nil
  end
  p.segment = segment_of(h, s, duration)
  return p.segment
end

--- Run fn(handle) timed as `name`; returns fn's first result and the
-- segment. When fn raises, the span gets status = "error",
-- error = <message> and an `exception` event (type, message and the
-- traceback of where the error was raised), and the error is raised again.
function M.timed(name, attrs, fn)
  if fn == nil and type(attrs) ~= "table" then attrs, fn = nil, attrs end
  if type(fn) ~= "function" then
    fail("timed", attrs and 3 or 2, "function expected, got " .. type(fn))
  end
  local h = start("timed", name, attrs)
  local ok, result = xpcall(fn, core._errh, h) -- _errh keeps the traceback
  if not ok then
    if live(h, private[h]) then core._mark_error(h.span_id, result) end
    M.finish(h)
    core._reraise(result)
  end
  return result, M.finish(h)
end

return M

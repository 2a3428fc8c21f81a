--- vmtrace: tracing spans for Lua agents.
-- The public module. The span functions are the C functions of vmtrace.core
-- themselves (no Lua wrapper on the hot path); this file adds the constants,
-- markers, LLM usage, event sinks, `with` and coroutines that inherit spans.
-- @module vmtrace
local core = require "vmtrace.core"
local pricing = require "vmtrace.pricing"

local M = {}
for k, v in pairs(core) do
  if k:sub(1, 1) ~= "_" then M[k] = v end
end
M.pricing = pricing

local start, finish, get = core.start, core.finish, core.get
local type, select, error, pcall = type, select, error, pcall

--- Canonical metadata keys (the seed's `meta` module).
M.meta = {
  -- llm_call token and cost attribution
  MODEL = "model",
  PROVIDER = "provider",
  INPUT_TOKENS = "input_tokens",
  OUTPUT_TOKENS = "output_tokens",
  CACHE_READ_TOKENS = "cache_read_tokens",
  CACHE_WRITE_TOKENS = "cache_write_tokens",
  COST_USD = "cost_usd",
  -- model_route
  FROM_MODEL = "from_model",
  TO_MODEL = "to_model",
  REASON = "reason",
  -- tool_mount
  TOOL_NAMES = "tool_names",
  TOOL_COUNT = "tool_count",
  SOURCE = "source",
  DETAIL = "detail",
  -- deferred_tool_load
  TOOL_NAME = "tool_name",
  QUERY = "query",
  SCORE = "score",
}
local meta = M.meta

local check = require "vmtrace.check"
local argerror, check_type, as = check.argerror, check.type, check.as

---------------------------------------------------------------------------
-- markers
---------------------------------------------------------------------------

--- A zero-duration span of `kind` under the current span, carrying
-- `metadata`. No-op while tracing is off.
local SAME = { 1, 2, 3 }

local function marker(fn, kind, name, metadata)
  return as(fn, SAME, pcall(core._instant, kind, name, metadata and { metadata = metadata }))
end

function M.marker(kind, name, metadata)
  check_type("marker", 3, metadata, "table", true)
  return marker("marker", kind, name, metadata)
end

--- A model routing / escalation decision (a `model_route` marker).
function M.model_route(from_model, to_model, reason)
  check_type("model_route", 1, from_model, "string")
  check_type("model_route", 2, to_model, "string")
  check_type("model_route", 3, reason, "string")
  return marker("model_route", "model_route", "model_route", {
    [meta.FROM_MODEL] = from_model, [meta.TO_MODEL] = to_model, [meta.REASON] = reason,
  })
end

--- A batch of tools promoted into the active surface (a `tool_mount`
-- marker); no-op for an empty list.
function M.tool_mount(tool_names, source, detail)
  check_type("tool_mount", 1, tool_names, "table")
  check_type("tool_mount", 2, source, "string")
  check_type("tool_mount", 3, detail, "string", true)
  local n = #tool_names
  for i = 1, n do
    if type(tool_names[i]) ~= "string" then
      argerror("tool_mount", 1, ("tool_names[%d] must be a string, got %s"):format(i, type(tool_names[i])))
    end
  end
  if n == 0 then return 0 end
  return marker("tool_mount", "tool_mount", "tool_mount", {
    [meta.TOOL_NAMES] = tool_names, [meta.TOOL_COUNT] = n, [meta.SOURCE] = source,
    [meta.DETAIL] = detail,
  })
end

--- One deferred tool schema promoted via tool search (a
-- `deferred_tool_load` marker).
function M.deferred_tool_load(tool_name, query, score)
  check_type("deferred_tool_load", 1, tool_name, "string")
  check_type("deferred_tool_load", 2, query, "string")
  check_type("deferred_tool_load", 3, score, "number", true)
  return marker("deferred_tool_load", "deferred_tool_load", "deferred_tool_load", {
    [meta.TOOL_NAME] = tool_name, [meta.QUERY] = query, [meta.SCORE] = score,
  })
end

---------------------------------------------------------------------------
-- LLM usage
---------------------------------------------------------------------------

local TOKEN_KEYS = { "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens" }

--- Attach token and cost attribution to an open llm_call span: the seed's
-- LlmCallUsage keys (missing token counts are 0). `cost_usd` is
-- `usage.cost_usd`, else priced from the catalog (vmtrace.pricing), and left
-- out when the model is unpriced. Returns true when the span took it.
function M.llm_usage(id, usage)
  if math.type(id) ~= "integer" then
    argerror("llm_usage", 1, "integer expected, got " .. (math.type(id) or type(id)))
  end
  check_type("llm_usage", 2, usage, "table")
  local fields = {
    [meta.MODEL] = usage.model or "", [meta.PROVIDER] = usage.provider or "",
  }
  check_type("llm_usage", 2, fields.model, "string")
  check_type("llm_usage", 2, fields.provider, "string")
  for _, k in ipairs(TOKEN_KEYS) do
    local n = usage[k] or 0
    if math.type(n) ~= "integer" and not (math.type(n) == "float" and n == math.floor(n)) then
      argerror("llm_usage", 2, ("usage.%s must be an integer, got %s"):format(k, tostring(n)))
    end
    fields[k] = math.tointeger(n)
  end
  local cost = usage.cost_usd
  if cost ~= nil and type(cost) ~= "number" then
    argerror("llm_usage", 2, ("usage.cost_usd must be a number, got %s"):format(type(cost)))
  end
  if cost == nil then cost = pricing.cost(fields) end
  fields[meta.COST_USD] = cost
  return as("llm_usage", { 1, 2 }, pcall(core._merge, id, fields))
end

--- Calls, tokens and cost of the completed llm_call spans, in total and by
-- model: `{calls=, input_tokens=, output_tokens=, cache_read_tokens=,
-- cache_write_tokens=, cost_usd=, by_model = {[model] = {...}}}`.
function M.llm_totals()
  local function zero()
    return { calls = 0, input_tokens = 0, output_tokens = 0, cache_read_tokens = 0,
             cache_write_tokens = 0, cost_usd = 0.0 }
  end
  local total = zero()
  total.by_model = {}
  for _, s in ipairs(core.spans()) do
    if s.kind == "llm_call" then
      local md = s.metadata or {}
      local model = type(md.model) == "string" and md.model or ""
      local per = total.by_model[model]
      if not per then per = zero(); total.by_model[model] = per end
      for _, t in ipairs { total, per } do
        t.calls = t.calls + 1
        for _, k in ipairs(TOKEN_KEYS) do
          if math.type(md[k]) == "integer" then t[k] = t[k] + md[k] end
        end
        if type(md.cost_usd) == "number" then t.cost_usd = t.cost_usd + md.cost_usd end
      end
    end
  end
  return total
end

---------------------------------------------------------------------------
-- event sinks (the seed's events module)
---------------------------------------------------------------------------

local sinks = {}
local reported = setmetatable({}, { __mode = "k" })

local function copy(t)
  local r = {}
  if t then for k, v in pairs(t) do r[k] = v end end
  return r
end

local function deliver(sink, field, ev)
  local fn = sink[field]
  if not fn then return end
  local ok, err = pcall(fn, ev)
  if not ok and not reported[sink] then
    reported[sink] = true
    io.stderr:write(("vmtrace: a sink's %s raised (reported once per sink): %s\n")
      :format(field, tostring(err)))
  end
end

-- Called by the C side after a span starts (dur == nil) or ends.
local function dispatch(id, dur)
  local s = get(id)
  if not s then return end
  local field, ev = "on_start", nil
  if dur == nil then
    local md = copy(s.metadata)
    if s.links then md.links = s.links end
    ev = { span_id = id, parent_id = s.parent_id, name = s.name, kind = s.kind, metadata = md }
  else
    local md = copy(s.metadata)
    md.duration_ms = dur
    field = "on_end"
    ev = { span_id = id, name = s.name, kind = s.kind, metadata = md }
  end
  local list = { table.unpack(sinks) }   -- sinks may remove themselves
  for i = 1, #list do deliver(list[i], field, ev) end
end

--- Register `sink = {on_start = fn, on_end = fn}`; each gets every span
-- start and end event. Returns the sink (the handle for remove_sink).
function M.add_sink(sink)
  check_type("add_sink", 1, sink, "table")
  if sink.on_start == nil and sink.on_end == nil then
    argerror("add_sink", 1, "sink needs on_start or on_end")
  end
  for _, f in ipairs { "on_start", "on_end" } do
    if sink[f] ~= nil and type(sink[f]) ~= "function" then
      argerror("add_sink", 1, ("sink.%s must be a function, got %s"):format(f, type(sink[f])))
    end
  end
  sinks[#sinks + 1] = sink
  core._set_dispatch(dispatch)
  return sink
end

--- Remove a sink added with add_sink; true when it was registered.
function M.remove_sink(sink)
  for i = #sinks, 1, -1 do
    if sinks[i] == sink then
      table.remove(sinks, i)
      if #sinks == 0 then core._set_dispatch(nil) end
      return true
    end
  end
  return false
end

---------------------------------------------------------------------------
-- exports
---------------------------------------------------------------------------

local profile_text = require("vmtrace.profile").text
local otlp = require "vmtrace.otlp"
local env_resource = otlp.env_resource

--- The OTLP/HTTP exporter (vmtrace.otlp.start, flush, shutdown, stats).
M.otlp = otlp

--- Write the completed spans as `format` ("json", "otlp", "chrome",
-- "folded" or "profile") to `dest`: a path (replaced only once the export
-- is whole), a file handle, or nil to get a string. Returns true (or the
-- string), or nil and a message on an I/O error.
-- opts: weight = "time" | "tokens" | "cost" (folded); service_name and
-- resource = {k = v} (otlp; defaults from OTEL_SERVICE_NAME and
-- OTEL_RESOURCE_ATTRIBUTES).
function M.export(format, dest, opts)
  check_type("export", 3, opts, "table", true)
  if format == "profile" then
    return core._write("profile", dest, profile_text(core.profile()))
  end
  if format == "otlp" then
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    if o.resource ~= nil and type(o.resource) ~= "table" then
      argerror("export", 3, "opts.resource must be a table, got " .. type(o.resource))
    end
    local resource = env_resource()
    for k, v in pairs(o.resource or {}) do resource[k] = v end
    o.resource = resource
    o.service_name = o.service_name or os.getenv("OTEL_SERVICE_NAME") or resource["service.name"]
    opts = o
  end
  return core.export(format, dest, opts)
end

---------------------------------------------------------------------------
-- scoped spans
---------------------------------------------------------------------------

local function with_done(id, ok, ...)
  if ok then
    finish(id)
    return ...
  end
  local err = ...
  core._mark_error(id, err)
  finish(id)
  error(err, 0)
end

--- Run fn(...) inside a span; returns all of fn's results. When fn raises,
-- the span gets status = "error" and error = <message>, and the error is
-- raised again.
function M.with(kind, name, fn, ...)
  local mt = getmetatable(fn)
  if type(fn) ~= "function" and not (mt and mt.__call) then
    argerror("with", 3, "function expected, got " .. type(fn))
  end
  return with_done(as("with", SAME, pcall(start, kind, name)), pcall(fn, ...))
end

---------------------------------------------------------------------------
-- coroutines that inherit the current span
---------------------------------------------------------------------------

M.coroutine = {}

--- coroutine.create whose first span is a child of the span current here.
function M.coroutine.create(fn)
  check_type("coroutine.create", 1, fn, "function")
  local co = coroutine.create(fn)
  core._adopt(co)
  return co
end

local function wrap_result(co, ok, ...)
  if ok then return ... end
  local err = ...
  coroutine.close(co)
  error(err, type(err) == "string" and 2 or 0)
end

--- coroutine.wrap whose first span is a child of the span current here.
function M.coroutine.wrap(fn)
  check_type("coroutine.wrap", 1, fn, "function")
  local co = M.coroutine.create(fn)
  return function(...)
    return wrap_result(co, coroutine.resume(co, ...))
  end
end

return M

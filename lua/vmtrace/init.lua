--- vmtrace: tracing spans for Lua agents.
-- The public module. Nearly everything is the C functions of vmtrace.core
-- themselves (no Lua wrapper on any path); this file adds the constants,
-- the price catalog, the OTLP/HTTP exporter's loader and coroutines that
-- inherit the current span.
-- @module vmtrace
local core = require "vmtrace.core"

local M = {}
for k, v in pairs(core) do
  if k:sub(1, 1) ~= "_" then M[k] = v end
end
M._VERSION = core._VERSION

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

--- The price catalog that prices LLM calls (vmtrace.pricing).
M.pricing = require "vmtrace.pricing"

--- The OTLP/HTTP exporter (vmtrace.otlp.start, flush, shutdown, stats).
M.otlp = require "vmtrace.otlp"

--- Automatic spans: vmtrace.auto(opts), vmtrace.auto(false) (vmtrace.auto).
function M.auto(opts) require("vmtrace.auto").auto(opts, 2) end -- no tail call: level 2 is the caller

---------------------------------------------------------------------------
-- coroutines that inherit the current span
---------------------------------------------------------------------------

M.coroutine = {}

--- coroutine.create whose first span is a child of the span current here.
function M.coroutine.create(fn)
  if type(fn) ~= "function" then
    core._argerror("coroutine.create", 1, "function expected, got " .. type(fn))
  end
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
  if type(fn) ~= "function" then
    core._argerror("coroutine.wrap", 1, "function expected, got " .. type(fn))
  end
  local co = M.coroutine.create(fn)
  return function(...)
    return wrap_result(co, coroutine.resume(co, ...))
  end
end

return M

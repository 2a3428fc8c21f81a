--- vmtrace: tracing spans for Lua agents.
-- The public module. The span functions are the C functions of vmtrace.core
-- themselves (no Lua wrapper on the hot path); this file adds the constants.
-- @module vmtrace
local core = require "vmtrace.core"

local M = {}
for k, v in pairs(core) do M[k] = v end

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

return M

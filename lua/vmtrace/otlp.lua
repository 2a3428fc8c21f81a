--- vmtrace.otlp: send spans to an OpenTelemetry Collector (or Jaeger, Tempo)
-- over OTLP/HTTP as they finish. The exporter is a C module of its own,
-- vmtrace.otlp_http (libcurl, zlib, a thread), loaded on the first start, so
-- `require "vmtrace"` works where libcurl is not installed. Its settings
-- default to the standard environment variables (OTEL_EXPORTER_OTLP_*,
-- OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
-- OTEL_BSP_*); see csrc/lua/l_otlp_http.c.
-- @module vmtrace.otlp
local core = require "vmtrace.core"

local M = {}
local http -- the module, once loaded

local function module(level)
  if not http then
    local ok, m = pcall(require, "vmtrace.otlp_http")
    if not ok then
      error("vmtrace.otlp.start: cannot load the OTLP/HTTP exporter module vmtrace.otlp_http, "
        .. "which needs libcurl and zlib (Debian: apt-get install libcurl4 zlib1g): "
        .. tostring(m), level + 1)
    end
    http = m
  end
  return http
end

--- Start exporting. opts (all optional): endpoint (the full traces URL),
-- headers = {name = value}, service_name, resource = {k = v}, timeout_ms,
-- compression = "gzip" | "none", sampler, sampler_arg, batch_size,
-- max_queue, max_queue_bytes, delay_ms, max_retry_ms, backoff_ms, close_ms.
-- Returns true, or nil and a message.
function M.start(opts)
  return module(2).start(opts)
end

--- Wait until the spans queued so far are sent: true when they all were,
-- within timeout_ms (default 30000); false when time ran out or a batch
-- failed.
function M.flush(timeout_ms)
  if not http then
    if timeout_ms ~= nil and (math.type(timeout_ms) ~= "integer" or timeout_ms < 0) then
      core._argerror("otlp.flush", 1, "timeout in milliseconds (integer >= 0) expected, got "
        .. tostring(timeout_ms))
    end
    return true
  end
  return http.flush(timeout_ms)
end

--- Flush, then stop the exporter thread (also done when the Lua state closes,
-- waiting at most close_ms, 5 s by default): true when everything was sent.
function M.shutdown(timeout_ms)
  if not http then
    if timeout_ms ~= nil and (math.type(timeout_ms) ~= "integer" or timeout_ms < 0) then
      core._argerror("otlp.shutdown", 1, "timeout in milliseconds (integer >= 0) expected, got "
        .. tostring(timeout_ms))
    end
    return true
  end
  return http.shutdown(timeout_ms)
end

--- {queued, queued_bytes, exported, dropped, failed_batches, failed_spans,
-- retries, batches, last_error?}, or nil when no exporter runs.
function M.stats()
  return http and http.stats()
end

return M

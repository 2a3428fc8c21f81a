--- vmtrace.otlp: send spans to an OpenTelemetry Collector (or Jaeger, Tempo)
-- over OTLP/HTTP as they finish. The exporter is a C module of its own,
-- vmtrace.otlp_http (libcurl, zlib, a thread), loaded on the first start, so
-- `require "vmtrace"` works where libcurl is not installed. Its settings
-- default to the standard environment variables (OTEL_EXPORTER_OTLP_*,
-- OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG],
-- OTEL_BSP_*, OTEL_SPAN_*_LIMIT); see csrc/lua/l_otlp_http.c. The console
-- exporter (OTEL_TRACES_EXPORTER=console) is in the core module
-- (csrc/io/console.c) and needs no libcurl.
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

local EXPORTERS = "otlp, console, none"

-- The exporters named by opts.exporter or OTEL_TRACES_EXPORTER (default
-- "otlp"): a set, from a comma-separated list.
local function exporters(opts)
  local given, from = opts and opts.exporter, "opts.exporter"
  if given == nil then
    given, from = os.getenv("OTEL_TRACES_EXPORTER"), "OTEL_TRACES_EXPORTER"
    if given == nil or given:match("^%s*$") then return { otlp = true } end
  elseif type(given) ~= "string" then
    core._argerror("otlp.start", 1, ("opts.exporter must be a string (%s), got %s")
      :format(EXPORTERS, type(given)), 3)
  end
  local set = {}
  for name in given:gmatch("[^,]+") do
    name = name:match("^%s*(.-)%s*$")
    if name == "logging" then name = "console" end -- the deprecated name
    if name ~= "otlp" and name ~= "console" and name ~= "none" then
      core._argerror("otlp.start", 1, ("unknown exporter '%s' in %s (expected %s)")
        :format(name, from, EXPORTERS), 3)
    end
    set[name] = true
  end
  return set
end

--- Start exporting. opts (all optional): exporter = "otlp" (OTLP/HTTP, the
-- default), "console" (each finished span as one line on stderr, no libcurl
-- needed), "none", or a comma-separated list ("otlp,console"); default from
-- OTEL_TRACES_EXPORTER. For the OTLP exporter: endpoint (the full traces
-- URL), headers = {name = value}, service_name, resource = {k = v},
-- timeout_ms, compression = "gzip" | "none", sampler, sampler_arg,
-- batch_size, max_queue, max_queue_bytes, delay_ms, max_retry_ms,
-- backoff_ms, close_ms, and the span limits (attribute_count_limit, ...;
-- default: those of vmtrace.configure, then the OTEL_* variables).
-- Returns true, or nil and a message. "console" and "none" leave an OTLP
-- exporter already running alone (otlp.shutdown stops it).
function M.start(opts)
  if opts ~= nil and type(opts) ~= "table" then
    core._argerror("otlp.start", 1, "options table expected, got " .. type(opts))
  end
  local set = exporters(opts)
  core._console(set.console or false)
  if not set.otlp then return true end
  local o = {}
  for k, v in pairs(core._limits()) do o[k] = v end -- configure{}'s limits
  for k, v in pairs(opts or {}) do
    if k ~= "exporter" then o[k] = v end
  end
  return module(2).start(o)
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
-- Stops the console exporter too.
function M.shutdown(timeout_ms)
  core._console(false)
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

--- vmtrace.otlp: send spans to an OpenTelemetry Collector (or Jaeger, Tempo)
-- over OTLP/HTTP as they finish. A background thread batches and posts them;
-- the script only enqueues. Settings default to the standard environment
-- variables (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME,
-- OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*).
-- @module vmtrace.otlp
local core = require "vmtrace.core"
local check = require "vmtrace.check"

local M = {}

local function unescape(x)
  return (x:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- "k=v,k2=v2" lists of the OTel environment variables, percent-decoded.
function M.parse_list(raw)
  local out = {}
  for pair in (raw or ""):gmatch("[^,]+") do
    local k, v = pair:match("^%s*(.-)%s*=%s*(.-)%s*$")
    if k and k ~= "" then out[unescape(k)] = unescape(v) end
  end
  return out
end

--- The resource attributes of OTEL_RESOURCE_ATTRIBUTES.
function M.env_resource()
  return M.parse_list(os.getenv("OTEL_RESOURCE_ATTRIBUTES"))
end

local function env(name) local v = os.getenv(name); return v ~= "" and v or nil end

local function env_int(name)
  local v = env(name)
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 then
    error(("vmtrace.otlp.start: the environment variable %s must be an integer, got %q")
      :format(name, v), 3)
  end
  return n
end

local KNOWN = {
  endpoint = true, headers = true, service_name = true, resource = true, timeout_ms = true,
  compression = true, sampler = true, sampler_arg = true, batch_size = true, max_queue = true,
  delay_ms = true, max_retry_ms = true, backoff_ms = true,
}

--- Start exporting. opts (all optional): endpoint (the full traces URL),
-- headers = {name = value}, service_name, resource = {k = v}, timeout_ms,
-- compression = "gzip" | "none", sampler, sampler_arg, batch_size,
-- max_queue, delay_ms, max_retry_ms, backoff_ms. Returns true, or nil and a
-- message.
function M.start(opts)
  check.type("otlp.start", 1, opts, "table", true)
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN[k] then check.argerror("otlp.start", 1, ("unknown option '%s'"):format(tostring(k))) end
  end
  local endpoint = opts.endpoint or env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  if not endpoint then
    local base = env("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318"
    endpoint = base:gsub("/+$", "") .. "/v1/traces"
  end
  check.type("otlp.start", 1, endpoint, "string")
  -- header names are case-insensitive: the later source wins whatever the case
  local headers, names = {}, {}
  local function merge(t)
    for k, v in pairs(t) do
      local key = type(k) == "string" and k:lower() or k
      headers[key], names[key] = v, k
    end
  end
  merge(M.parse_list(env("OTEL_EXPORTER_OTLP_HEADERS")))
  merge(M.parse_list(env("OTEL_EXPORTER_OTLP_TRACES_HEADERS")))
  if opts.headers ~= nil then
    check.type("otlp.start", 1, opts.headers, "table")
    merge(opts.headers)
  end
  local list = {}
  for key, v in pairs(headers) do
    local k = names[key]
    -- a header's value is a secret: errors name the header, never the value
    if type(k) ~= "string" or not k:match("^[%w!#$%%&'*+.^_`|~-]+$") then
      check.argerror("otlp.start", 1, ("header name %q is not a valid HTTP field name"):format(tostring(k)))
    end
    if type(v) ~= "string" or v:find("[\r\n]") then
      check.argerror("otlp.start", 1, ("header %s must have a one-line string value"):format(k))
    end
    list[#list + 1] = k .. ": " .. v
  end
  local resource = M.env_resource()
  if opts.resource ~= nil then
    check.type("otlp.start", 1, opts.resource, "table")
    for k, v in pairs(opts.resource) do resource[k] = v end
  end
  local compression = opts.compression or env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
    or env("OTEL_EXPORTER_OTLP_COMPRESSION") or "none"
  if compression ~= "gzip" and compression ~= "none" then
    check.argerror("otlp.start", 1, ("compression must be \"gzip\" or \"none\", got %q"):format(tostring(compression)))
  end
  local ratio = opts.sampler_arg or env("OTEL_TRACES_SAMPLER_ARG")
  if ratio ~= nil then
    ratio = tonumber(ratio)
    if not ratio then check.argerror("otlp.start", 1, "the sampler argument must be a number from 0 to 1") end
  end
  return core._otlp_start {
    endpoint = endpoint,
    headers = list,
    service_name = opts.service_name or env("OTEL_SERVICE_NAME") or resource["service.name"],
    resource = resource,
    timeout_ms = opts.timeout_ms or env_int("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
      or env_int("OTEL_EXPORTER_OTLP_TIMEOUT"),
    gzip = compression == "gzip",
    sampler = opts.sampler or env("OTEL_TRACES_SAMPLER"),
    ratio = ratio,
    batch_size = opts.batch_size or env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    max_queue = opts.max_queue or env_int("OTEL_BSP_MAX_QUEUE_SIZE"),
    delay_ms = opts.delay_ms or env_int("OTEL_BSP_SCHEDULE_DELAY"),
    max_retry_ms = opts.max_retry_ms or env_int("OTEL_BSP_EXPORT_TIMEOUT"),
    backoff_ms = opts.backoff_ms,
  }
end

--- Wait until the spans queued so far are sent (or failed): true when done
-- within timeout_ms (default 30000).
M.flush = core._otlp_flush

--- Flush, then stop the exporter thread (also done when the Lua state
-- closes, waiting at most 5 s): true when everything was sent in time.
M.shutdown = core._otlp_shutdown

--- {queued, exported, dropped, failed_batches, failed_spans, retries,
-- batches, last_error?}, or nil when no exporter runs.
M.stats = core._otlp_stats

return M

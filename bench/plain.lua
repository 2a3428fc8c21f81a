-- bench/plain.lua: a span collector written in plain Lua.
--
-- This is what a user would write without vmtrace, and the comparison point
-- of bench/bench.lua. It keeps the semantics of vmtrace's core (and of the
-- seed's SpanCollector):
--   * span ids count up from 1 after each reset; 0 means "not recorded"
--   * an active stack gives each new span its parent; finishing a span that
--     is not on top removes it from wherever it is in the stack
--   * open spans are looked up by id; completed spans are kept in finish order
--   * metadata per span (created on first use), set_metadata on open spans,
--     set_metadata_if_absent on open or completed spans (through the id map)
--   * enable([on]) resets; while off, start returns 0 and the rest are no-ops
--   * summary() prints the seed's format_summary text
--
-- It is meant to be a fair opponent, not a straw man: one table per span, an
-- id-indexed array (ids are consecutive, so it stays in the table's array
-- part) that serves both as the open-span map and as the id -> span map, no
-- closures or garbage on the hot path, and a summary that indexes children
-- once instead of rescanning every span per node.
--
-- Time comes from benchfloor.clock() (CLOCK_MONOTONIC in ns): a Lua user has
-- nothing better than a C clock binding (os.clock is CPU time, os.time whole
-- seconds).

local benchfloor = require "benchfloor"
local clock = benchfloor.clock

local M = {}

local KINDS = {
  "pipeline", "fn_call", "llm_call", "tool_call", "import", "parallel",
  "spawn", "step", "vm_setup", "suspension", "resume", "drain",
  "drain_decision", "pool_submit", "pool_dequeue", "channel_emit",
  "channel_match", "user_timing", "model_route", "tool_mount",
  "deferred_tool_load",
}
local is_kind = {}
for _, k in ipairs(KINDS) do is_kind[k] = true end
M.kinds = KINDS

local enabled = false
local next_id = 1
local by_id = {}      -- id -> span (open spans have duration_ms == nil)
local stack = {}      -- active stack of ids
local depth = 0       -- stack height
local completed = {}  -- completed spans in finish order
local ncompleted = 0
local epoch_ns = clock()
local wall_offset_ms = 0
local trace_id = ""

local function new_trace_id()
  return string.format("trace_%08x%08x", math.random(0, 0x7fffffff),
                       math.random(0, 0x7fffffff))
end

function M.reset()
  next_id = 1
  by_id = {}
  stack = {}
  depth = 0
  completed = {}
  ncompleted = 0
  epoch_ns = clock()
  wall_offset_ms = os.time() * 1000 - epoch_ns // 1000000
  trace_id = new_trace_id()
end

function M.enable(on)
  if on == nil then on = true end
  enabled = on and true or false
  if enabled then M.reset() end
end

function M.disable() enabled = false end
function M.is_enabled() return enabled end
function M.trace_id() return trace_id end

function M.start(kind, name)
  if not enabled then return 0 end
  if not is_kind[kind] then
    error("plain.start: bad argument #1 (unknown kind '" .. tostring(kind) .. "')", 2)
  end
  local id = next_id
  next_id = id + 1
  by_id[id] = {
    span_id = id,
    parent_id = stack[depth],   -- nil at a root
    kind = kind,
    name = name,
    start_ns = clock(),
  }
  depth = depth + 1
  stack[depth] = id
  return id
end

function M.finish(id)
  local span = by_id[id]
  if span == nil or span.duration_ms ~= nil then return nil end
  local d = (clock() - span.start_ns) // 1000000
  span.duration_ms = d
  ncompleted = ncompleted + 1
  completed[ncompleted] = span
  if stack[depth] == id then
    stack[depth] = nil
    depth = depth - 1
  else
    for i = depth - 1, 1, -1 do
      if stack[i] == id then
        table.remove(stack, i)
        depth = depth - 1
        break
      end
    end
  end
  return d
end

function M.set_metadata(id, key, value)
  local span = by_id[id]
  if span == nil or span.duration_ms ~= nil then return end
  local m = span.metadata
  if m == nil then m = {}; span.metadata = m end
  m[key] = value
end

function M.set_metadata_if_absent(id, key, value)
  local span = by_id[id]
  if span == nil then return end
  local m = span.metadata
  if m == nil then m = {}; span.metadata = m end
  if m[key] == nil then m[key] = value end
end

function M.current_span_id()
  if not enabled then return nil end
  return stack[depth]
end

local function to_table(span)
  return {
    trace_id = trace_id,
    span_id = span.span_id,
    parent_id = span.parent_id,
    kind = span.kind,
    name = span.name,
    start_ms = (span.start_ns - epoch_ns) // 1000000,
    start_unix_ms = wall_offset_ms + span.start_ns // 1000000,
    duration_ms = span.duration_ms,
    metadata = span.metadata,
  }
end

function M.spans()
  local out = {}
  for i = 1, ncompleted do out[i] = to_table(completed[i]) end
  return out
end

function M.take_spans()
  local out = M.spans()
  for i = 1, ncompleted do by_id[completed[i].span_id] = nil end
  completed = {}
  ncompleted = 0
  return out
end

-- JSON text of a metadata value, as serde_json's Display prints it.
local encode
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b',
                  ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function escape_char(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end
local function encode_float(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  local s
  for prec = 15, 17 do
    s = string.format("%." .. prec .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end
function encode(v)
  local t = type(v)
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', escape_char) .. '"'
  elseif t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return encode_float(v)
  elseif t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local n = #v
    if n > 0 or next(v) == nil then
      local parts = {}
      for i = 1, n do parts[i] = encode(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do
      parts[i] = encode(k) .. ":" .. encode(v[k])
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

function M.summary()
  if ncompleted == 0 then return "No spans recorded." end
  -- children of each parent id, in completion order; roots under key 0
  local children = {}
  local total_ms = 0
  for i = 1, ncompleted do
    local s = completed[i]
    local p = s.parent_id or 0
    if p == 0 then total_ms = total_ms + s.duration_ms end
    local c = children[p]
    if c == nil then children[p] = { s } else c[#c + 1] = s end
  end
  local lines = { string.format("Trace: %d spans, %dms total", ncompleted, total_ms), "" }
  local nlines = 2
  local indents = { [0] = "" }
  local function print_tree(parent, d)
    local list = children[parent]
    if list == nil then return end
    local indent = indents[d]
    if indent == nil then indent = string.rep("  ", d); indents[d] = indent end
    for i = 1, #list do
      local s = list[i]
      local line = indent .. s.kind .. " " .. s.name .. " " .. s.duration_ms .. "ms"
      local m = s.metadata
      if m ~= nil and next(m) ~= nil then
        local keys = {}
        for k in pairs(m) do keys[#keys + 1] = k end
        table.sort(keys)
        for j = 1, #keys do
          local k = keys[j]
          keys[j] = k .. "=" .. encode(m[k])
        end
        line = line .. " (" .. table.concat(keys, ", ") .. ")"
      end
      nlines = nlines + 1
      lines[nlines] = line
      print_tree(s.span_id, d + 1)
    end
  end
  print_tree(0, 0)
  return table.concat(lines, "\n")
end

M.reset()
return M

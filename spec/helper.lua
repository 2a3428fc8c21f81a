-- spec/helper.lua: shared helpers for the vmtrace specs.
--
-- Owns: the error-message matcher, the "spans are intact" snapshot, and a
-- reference Lua port of the seed's format_summary (with a serde_json-style
-- value renderer) that the summary specs compare the C version against.

local vmtrace = require "vmtrace"
local assert = require "luassert" -- a required module does not see busted's globals

local helper = {}

--- How the suite runs (tools/runtests.sh): plain, asan, valgrind or gc. Under
-- ASan, child processes carry its runtime: their resident memory includes
-- its shadow and quarantine, and `ulimit -v` stops them from starting, so
-- specs measuring memory keep their functional checks only.
helper.MODE = os.getenv("VMTRACE_TEST_MODE") or "plain"
helper.MEASURES_MEMORY = helper.MODE ~= "asan"
--- A time limit scaled for the slower builds.
function helper.time_limit(secs)
  return secs * ((helper.MODE == "asan" and 5) or (helper.MODE == "valgrind" and 3) or 1)
end

--- The seed's 21 span kinds, in its order.
helper.KINDS = {
  "pipeline", "fn_call", "llm_call", "tool_call", "import", "parallel",
  "spawn", "step", "vm_setup", "suspension", "resume", "drain",
  "drain_decision", "pool_submit", "pool_dequeue", "channel_emit",
  "channel_match", "user_timing", "model_route", "tool_mount",
  "deferred_tool_load",
}

--- The seed's meta module: constant name -> key.
helper.META = {
  MODEL = "model", PROVIDER = "provider",
  INPUT_TOKENS = "input_tokens", OUTPUT_TOKENS = "output_tokens",
  CACHE_READ_TOKENS = "cache_read_tokens",
  CACHE_WRITE_TOKENS = "cache_write_tokens", COST_USD = "cost_usd",
  FROM_MODEL = "from_model", TO_MODEL = "to_model", REASON = "reason",
  TOOL_NAMES = "tool_names", TOOL_COUNT = "tool_count", SOURCE = "source",
  DETAIL = "detail",
  TOOL_NAME = "tool_name", QUERY = "query", SCORE = "score",
}

--- Calls fn and asserts it raised
-- `vmtrace.<fname>: bad argument #<argn> (...)` containing every keyword.
-- Returns the message.
function helper.assert_bad_argument(fn, fname, argn, ...)
  local ok, err = pcall(fn)
  assert.is_false(ok, ("expected vmtrace.%s to raise"):format(fname))
  assert.is_string(err, "error value should be a string")
  local head = ("vmtrace.%s: bad argument #%d ("):format(fname, argn)
  assert.is_truthy(err:find(head, 1, true),
    ("error %q should contain %q"):format(err, head))
  for i = 1, select("#", ...) do
    local word = select(i, ...)
    assert.is_truthy(err:find(word, 1, true),
      ("error %q should mention %q"):format(err, word))
  end
  return err
end

--- Everything a user can read about the recorded spans: completed spans plus
-- the given open ids as get() shows them.
function helper.snapshot(open_ids)
  local snap = { spans = vmtrace.spans(), open = {}, current = vmtrace.current_span_id() }
  for _, id in ipairs(open_ids or {}) do snap.open[id] = vmtrace.get(id) end
  return snap
end

function helper.assert_intact(snap, open_ids)
  assert.same(snap.spans, vmtrace.spans())
  if vmtrace.is_enabled() then -- current_span_id() is nil while tracing is off
    assert.same({ snap.current }, { vmtrace.current_span_id() })
  end
  for _, id in ipairs(open_ids or {}) do
    assert.same(snap.open[id], vmtrace.get(id))
  end
end

--- Index of completed spans by id.
function helper.by_id(spans)
  local t = {}
  for _, s in ipairs(spans) do t[s.span_id] = s end
  return t
end

------------------------------------------------------------------------------
-- serde_json-compatible rendering of the values vmtrace gives back
------------------------------------------------------------------------------

-- Shortest decimal digits that round-trip (what ryu finds), as a digit string
-- without leading/trailing zeros and the decimal exponent e such that
-- |x| = 0.d1d2... * 10^... ; here: |x| = D * 10^k with D the digit string.
local function shortest_digits(x)
  for p = 1, 17 do
    local s = string.format("%." .. (p - 1) .. "e", x)
    if tonumber(s) == x or p == 17 then
      local mant, exp = s:match("^([%d%.]+)e([-+]%d+)$")
      local digits = mant:gsub("%.", "")
      local e = tonumber(exp)
      -- mant = d1.d2...dp  =>  x = d1d2...dp * 10^(e - (p - 1))
      local trimmed = digits:gsub("0+$", "")
      local k = e - (#digits - 1) + (#digits - #trimmed)
      return trimmed, k
    end
  end
end

--- A float as serde_json (ryu 1.x `format64`) prints it.
function helper.format_float(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  local sign = ""
  if x < 0 then sign, x = "-", -x end
  local d, k = shortest_digits(x)
  local n = #d
  local kk = n + k -- 10^(kk-1) <= x < 10^kk
  local out
  if k >= 0 and kk <= 16 then
    out = d .. string.rep("0", k) .. ".0"
  elseif kk > 0 and kk <= 16 then
    out = d:sub(1, kk) .. "." .. d:sub(kk + 1)
  elseif kk > -5 and kk <= 0 then
    out = "0." .. string.rep("0", -kk) .. d
  elseif n == 1 then
    out = d .. "e" .. (kk - 1)
  else
    out = d:sub(1, 1) .. "." .. d:sub(2) .. "e" .. (kk - 1)
  end
  return sign .. out
end

local SHORT_ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

--- A string as serde_json prints it.
function helper.format_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if SHORT_ESCAPES[c] then return SHORT_ESCAPES[c] end
    if c:byte() < 0x20 then return ("\\u%04x"):format(c:byte()) end
    return c -- DEL (0x7f) is not escaped
  end) .. '"'
end

--- A metadata value (as read back from vmtrace) as compact serde_json text.
function helper.to_json(v)
  if v == vmtrace.null or v == nil then return "null" end
  local t = type(v)
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    return helper.format_float(v)
  end
  if t == "string" then return helper.format_string(v) end
  assert(t == "table", "unexpected value type " .. t)
  if next(v) == nil then return "{}" end
  local parts = {}
  if v[1] ~= nil then
    for i = 1, #v do parts[i] = helper.to_json(v[i]) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do
    parts[i] = helper.format_string(k) .. ":" .. helper.to_json(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Straightforward port of the seed's format_summary over a list of span
-- tables (as vmtrace.spans() returns them).
function helper.reference_summary(spans)
  if #spans == 0 then return "No spans recorded." end
  local lines = {}
  local total = 0
  for _, s in ipairs(spans) do
    if s.parent_id == nil then total = total + s.duration_ms end
  end
  lines[#lines + 1] = ("Trace: %d spans, %dms total"):format(#spans, total)
  lines[#lines + 1] = ""

  local function print_tree(parent_id, depth)
    for _, span in ipairs(spans) do
      if span.parent_id == parent_id then
        local meta_str = ""
        if span.metadata and next(span.metadata) ~= nil then
          local keys = {}
          for k in pairs(span.metadata) do keys[#keys + 1] = k end
          table.sort(keys) -- Lua compares strings bytewise in the C locale
          local parts = {}
          for i, k in ipairs(keys) do
            parts[i] = k .. "=" .. helper.to_json(span.metadata[k])
          end
          meta_str = " (" .. table.concat(parts, ", ") .. ")"
        end
        lines[#lines + 1] = ("%s%s %s %dms%s"):format(
          string.rep("  ", depth), span.kind, span.name, span.duration_ms, meta_str)
        print_tree(span.span_id, depth + 1)
      end
    end
  end

  print_tree(nil, 0)
  return table.concat(lines, "\n")
end

---------------------------------------------------------------------------
-- files and commands, for the specs that run the command line, child
-- processes and the OTLP receiver
---------------------------------------------------------------------------

--- The checkout's root, absolute.
do
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  local dir = src:match("^(.*)/spec/[^/]*$") or "."
  local p = io.popen("cd '" .. dir .. "' && pwd")
  helper.ROOT = p:read("l")
  p:close()
end

--- s quoted for the shell.
function helper.shq(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- A file's bytes (an error when it cannot be read).
function helper.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- A file's bytes, or nil when it does not exist.
function helper.try_read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function helper.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- Run a shell command: its exit status and its stdout.
function helper.run(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

---------------------------------------------------------------------------
-- tests/otlp/verify.js, one process for the checks of a busted process
---------------------------------------------------------------------------
--
-- Starting node and loading the OpenTelemetry definitions costs about 0.2 s
-- of CPU, the check itself a few ms: helper.verify_otlp sends the checks to
-- one `node tests/otlp/verify.js --serve` (protocol in verify.js), started at
-- the first check and kept in the registry (busted's insulation gives each
-- spec file its own copy of this module, not of the registry).
--
--   requests  a pipe (io.popen "w") to node's stdin: only this process holds
--             its write end (glibc opens it close-on-exec), so node reads end
--             of file and exits as soon as this process closes it or exits,
--             whatever children it left
--   replies   node's stdout, a named pipe (mkfifo) that the shell opens before
--             starting node, read here; once node is gone, nothing holds its
--             write end: a read meets end of file instead of waiting, and
--             the check fails with a message naming the process and its stderr
--   stderr    a file (the shell's too), read for that message
--
-- When node is gone the shell becomes `cat` (to /dev/null) until the end of
-- the requests, so that writing one never meets a pipe without a reader (the
-- SIGPIPE would kill this process). The directory holding the named pipe and
-- the stderr file is removed once both are open.

local Verifier = {}
Verifier.__index = Verifier

local VERIFIER_KEY = "vmtrace spec: the shared verify.js --serve"

--- Starts `node tests/otlp/verify.js --serve`; errors when it does not start.
function helper.verifier_start()
  local p = assert(io.popen('d=$(mktemp -d /tmp/vmtrace-verify.XXXXXX) && mkfifo "$d/reply" && echo "$d"'))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "verify.js --serve: mktemp -d or mkfifo failed")
  local fifo, log = dir .. "/reply", dir .. "/stderr"
  -- the shell's stdout and stderr first: it holds none of this process's
  -- (output read to its end would wait for the verifier), and the stderr
  -- file exists once the named pipe is open
  local req = assert(io.popen(("exec >/dev/null 2>%s; env -u LD_PRELOAD node %s --serve >%s; exec cat")
    :format(helper.shq(log), helper.shq(helper.ROOT .. "/tests/otlp/verify.js"), helper.shq(fifo)), "w"))
  local rep, err = io.open(fifo, "rb") -- waits for the shell to open the other end
  if not rep then error("verify.js --serve: cannot read its replies: " .. tostring(err), 0) end
  local logf = io.open(log, "rb")
  os.remove(fifo)
  os.remove(log)
  os.remove(dir)
  -- the metatable's __gc closes the pipes in the right order (see close), at
  -- the latest when busted closes the Lua state
  local v = setmetatable({ req = req, rep = rep, log = logf }, Verifier)
  local hello = rep:read("l")
  v.pid = tonumber(hello and hello:match("^verify%.js %-%-serve: ready (%d+)$"))
  if not v.pid then v:fail(hello and ("said %q instead of being ready"):format(hello) or "exited before it was ready") end
  return v
end

--- Ends the verifier: it reads end of file and exits. Returns when it has.
function Verifier:close()
  if self.closed then return end
  self.closed = true
  -- the reply pipe first: a verifier blocked writing a reply meets EPIPE
  self.rep:close()
  self.req:close() -- closes the pipe, then waits for the shell (and node)
  if self.log then self.log:close() end
end
Verifier.__gc = Verifier.close

--- Closes the verifier and raises an error saying what happened.
function Verifier:fail(what)
  local err = self.log and self.log:read("a") or ""
  self:close()
  error(("tests/otlp/verify.js --serve%s %s; its stderr:\n%s")
    :format(self.pid and (" (pid %d)"):format(self.pid) or "", what, err ~= "" and err or "(empty)\n"), 0)
end

--- What `node tests/otlp/verify.js [--dump] PATH` would have done: its exit
-- status, its stdout, its stderr and both as `2>&1` would have mixed them.
-- Raises an error if the verifier is gone (it is closed then).
function Verifier:check(path, dump)
  assert(not self.closed, "verify.js --serve: the verifier is closed")
  path = tostring(path)
  assert(not path:find("[\r\n]"), "verify.js --serve: a path cannot hold a line break")
  local ok = self.req:write((dump and "dump " or "check ") .. path .. "\n")
  ok = ok and self.req:flush()
  if not ok then self:fail("is gone: its request pipe is closed") end
  local header = self.rep:read("l")
  local status, n = (header or ""):match("^reply (%d+) (%d+)$")
  if not status then
    self:fail(header and ("answered " .. ("%q"):format(header)) or "exited before answering")
  end
  local out, err, all = {}, {}, {}
  for _ = 1, tonumber(n) do
    local head = self.rep:read("l")
    local fd, len = (head or ""):match("^([12]) (%d+)$")
    len = tonumber(len)
    local text = len and (len == 0 and "" or self.rep:read(len))
    if not text or #text ~= len then
      self:fail(head and "sent a truncated reply" or "exited in the middle of a reply")
    end
    local t = fd == "1" and out or err
    t[#t + 1] = text
    all[#all + 1] = text
  end
  return tonumber(status), table.concat(out), table.concat(err), table.concat(all)
end

--- The verifier this busted process shares, started at the first call (and
-- again after one died).
function helper.verifier()
  local reg = debug.getregistry()
  local v = reg[VERIFIER_KEY]
  if not v or v.closed then
    v = helper.verifier_start()
    reg[VERIFIER_KEY] = v
  end
  return v
end

--- Checks an OTLP/JSON file with the shared verifier: what
-- `node tests/otlp/verify.js [--dump] PATH` would have given (exit status,
-- stdout, stderr, and both as `2>&1` mixes them).
function helper.verify_otlp(path, dump)
  return helper.verifier():check(path, dump)
end

--- The OTLP/JSON export of the trace, checked by tests/otlp/verify.js (the
-- OpenTelemetry protobuf definitions): the spans it decoded, by name, and
-- the message. opts go to vmtrace.export.
function helper.otlp_verified(opts)
  local path = os.tmpname()
  assert.is_true(vmtrace.export("otlp", path, opts))
  local code, out, err = helper.verify_otlp(path, true)
  os.remove(path)
  assert.equal(0, code, "verify.js rejected the export:\n" .. out .. err)
  local msg = assert(vmtrace.json_decode(out))
  local spans = {}
  for _, s in ipairs(msg.resourceSpans[1].scopeSpans[1].spans or {}) do spans[s.name] = s end
  return spans, msg
end

--- An OTLP attribute list as {key = AnyValue}; a key given twice is an error.
function helper.attr_map(list)
  local t = {}
  for _, kv in ipairs(list or {}) do
    assert.is_nil(t[kv.key], "duplicate attribute " .. kv.key)
    t[kv.key] = kv.value
  end
  return t
end

return helper

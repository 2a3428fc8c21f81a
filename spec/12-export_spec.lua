-- vmtrace.export (json, otlp, chrome, folded, profile) and vmtrace.profile.
--
-- OTLP goes through a real consumer: tests/otlp/verify.js decodes it with the
-- OpenTelemetry project's own protobuf definitions (the generated types of
-- @opentelemetry/otlp-transformer 0.52.1, installed by `make check-tests`),
-- round-trips it through protobuf binary and compares every field. Those tests
-- need Node.js and fail (they are not skipped) when it is missing.
--
-- Every time below comes from the mock clock, so each number is exact.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local T0 = 1700000000000 -- the mock wall clock at the start of each trace, ms
local NS = 1000000       -- ns per ms
local LUA_ENV = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;'"

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

local shq = helper.shq

local read_file = helper.read

local write_file = helper.write

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs a shell command; its exit status and stdout.
local run = helper.run

local function ls(dir)
  local _, out = run("ls -A " .. shq(dir))
  local names = {}
  for name in out:gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local tmp_root -- one directory for the whole file, removed at the end
local tmp_n = 0
local function tmp_path(name)
  tmp_n = tmp_n + 1
  return ("%s/%d-%s"):format(tmp_root, tmp_n, name)
end

--- Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing past U+10FFFF.
-- Returns true, or false and the byte offset of the first bad sequence.
local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local need, lo, hi = 0, 0x80, 0xBF -- continuation bytes; range of the first one
    if c < 0x80 then need = 0
    elseif c >= 0xC2 and c <= 0xDF then need = 1
    elseif c == 0xE0 then need, lo = 2, 0xA0
    elseif c == 0xED then need, hi = 2, 0x9F
    elseif c >= 0xE1 and c <= 0xEF then need = 2
    elseif c == 0xF0 then need, lo = 3, 0x90
    elseif c >= 0xF1 and c <= 0xF3 then need = 3
    elseif c == 0xF4 then need, hi = 3, 0x8F
    else return false, i end
    for k = 1, need do
      local b = s:byte(i + k)
      if not b then return false, i end
      if k == 1 then
        if b < lo or b > hi then return false, i end
      elseif b < 0x80 or b > 0xBF then
        return false, i
      end
    end
    i = i + need + 1
  end
  return true
end

local function assert_utf8(s, what)
  local ok, at = utf8_valid(s)
  assert.is_true(ok, ("%s is not valid UTF-8 at byte %s: %q"):format(
    what, tostring(at), at and s:sub(math.max(1, at - 20), at + 20) or ""))
end

local function decode(text, what)
  local v, err = vmtrace.json_decode(text)
  assert.is_not_nil(v, ("%s does not parse as JSON: %s"):format(what, tostring(err)))
  return v
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if math.type(v) then return ("%s %s"):format(math.type(v), tostring(v)) end
  return tostring(v)
end

--- The differences between want and got, appended to out: values and number
-- types (integer vs float) must match; got may hold extra keys only where
-- allow(path, key) says so.
local function diff(want, got, path, allow, out)
  if type(want) ~= type(got) then
    out[#out + 1] = ("%s: want %s, got %s"):format(path, show(want), show(got))
  elseif type(want) == "number" then
    if math.type(want) ~= math.type(got) or (want ~= got and want == want) then
      out[#out + 1] = ("%s: want %s, got %s"):format(path, show(want), show(got))
    end
  elseif type(want) == "table" then
    local keys = {}
    for k in pairs(want) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      diff(want[k], got[k], path .. "." .. tostring(k), allow, out)
    end
    for k, v in pairs(got) do
      if want[k] == nil and not allow(path, k) then
        out[#out + 1] = ("%s.%s: unexpected %s"):format(path, tostring(k), show(v))
      end
    end
  elseif want ~= got then
    out[#out + 1] = ("%s: want %s, got %s"):format(path, show(want), show(got))
  end
  return out
end

local function by_name(spans)
  local t = {}
  for _, s in ipairs(spans) do t[s.name] = s end
  return t
end

-- 32 hex digits of a "trace_<uuid>" trace id.
local function trace_hex(trace_id)
  return (trace_id:gsub("^trace_", ""):gsub("-", ""))
end

------------------------------------------------------------------------------
-- OTLP: the consumer
------------------------------------------------------------------------------

local HAS_NODE = os.execute("command -v node >/dev/null 2>&1") == true

local function require_node()
  assert(HAS_NODE, "node is not on PATH: the OTLP tests decode exports with Node.js 20 " ..
    "(tools/deps.sh installs nodejs and npm; then make check-tests installs the definitions)")
end

--- Runs tests/otlp/verify.js on a file (through the verifier this busted
-- process shares: helper.verify_otlp): exit status and output, stdout and
-- stderr mixed (with dump: the decoded message as a table, and as text).
local function verify(path, dump)
  require_node()
  if not dump then
    local code, _, _, all = helper.verify_otlp(path)
    return code, all
  end
  local code, out, err = helper.verify_otlp(path, true)
  assert.equal(0, code, ("verify.js exited with status %s (1: the export was rejected):\n%s%s")
    :format(tostring(code), out, err))
  assert.matches("^verify.js: OK ", err)
  return code, decode(out, "verify.js --dump output"), out
end

--- Exports the trace as OTLP to a file, checks it with verify.js and returns
-- the message it decoded (a table, and its JSON text).
local function otlp_through_consumer(opts)
  local path = tmp_path("trace.otlp.json")
  assert.is_true(vmtrace.export("otlp", path, opts))
  local _, msg, text = verify(path, true)
  return msg, text
end

-- AnyValue list -> {key = AnyValue}; duplicate keys are an error.
local function attr_map(list)
  local t = {}
  for _, kv in ipairs(list or {}) do
    assert.is_nil(t[kv.key], "duplicate attribute " .. kv.key)
    t[kv.key] = kv.value
  end
  return t
end

local function otlp_spans(msg)
  assert.equal(1, #msg.resourceSpans)
  assert.equal(1, #msg.resourceSpans[1].scopeSpans)
  return msg.resourceSpans[1].scopeSpans[1].spans or {}
end

------------------------------------------------------------------------------
-- traces
------------------------------------------------------------------------------

local REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
local REMOTE_SPAN = "00f067aa0ba902b7"

--- A realistic agent run under the mock clock. Returns the ids by role.
local function agent_trace()
  local ids = {}
  vmtrace.mock_time(T0)
  ids.root = vmtrace.start("pipeline", "fix_failing_test")
  vmtrace.set_metadata(ids.root, "max", math.maxinteger)
  vmtrace.set_metadata(ids.root, "min", math.mininteger)
  vmtrace.set_metadata(ids.root, "nested", { a = { b = { 1, "two", { c = true } } }, x = 0.5 })
  vmtrace.set_metadata(ids.root, "list", { 1, 2, 3 })
  vmtrace.set_metadata(ids.root, "ratio", 0.1)
  vmtrace.set_metadata(ids.root, "whole", 2.0)
  vmtrace.set_metadata(ids.root, "ok", true)
  vmtrace.set_metadata(ids.root, "raw", "a\0b\255c")
  vmtrace.set_metadata(ids.root, "nothing", vmtrace.null)
  vmtrace.advance_time(1)
  ids.step = vmtrace.start("step", "plan")
  ids.llm = vmtrace.start("llm_call", "plan_call")
  vmtrace.llm_usage(ids.llm, {
    model = "claude-sonnet-4", provider = "anthropic", input_tokens = 2400,
    output_tokens = 310, cache_read_tokens = 1200, cache_write_tokens = 64,
    cost_usd = 0.0125,
  })
  vmtrace.advance_time(2)
  vmtrace.record_event(ids.llm, "first_token",
    { latency_ms = 120, streamed = true, share = 0.5, tags = { "a", "b" } })
  vmtrace.advance_time(23)
  vmtrace.finish(ids.llm)
  ids.tool = vmtrace.start("tool_call", "run_grep")
  vmtrace.set_metadata(ids.tool, "tool_name", "grep")
  vmtrace.advance_time(4)
  vmtrace.finish(ids.tool)
  ids.follow = vmtrace.start("fn_call", "follow_up", { links = {
    vmtrace.span_link(ids.step),                                 -- a local span, id as a string
    { trace_id = vmtrace.trace_id(), span_id = ids.llm },        -- a local span, id as an integer
    { trace_id = REMOTE_TRACE, span_id = REMOTE_SPAN, attributes = { origin = "queue" } },
  } })
  vmtrace.advance_time(1)
  vmtrace.finish(ids.follow)
  vmtrace.finish(ids.step)
  vmtrace.model_route("claude-sonnet-4", "claude-haiku-4", "cheap")
  ids.detached = vmtrace.start("spawn", "background", { detached = true })
  vmtrace.advance_time(2)
  vmtrace.finish(ids.detached)
  local ok, err = pcall(vmtrace.with, "tool_call", "flaky", function()
    vmtrace.advance_time(3)
    error("connection reset", 0)
  end)
  assert(not ok and err == "connection reset")
  vmtrace.advance_time(5)
  vmtrace.finish(ids.root)
  return ids
end

------------------------------------------------------------------------------
-- Chrome nesting checker
------------------------------------------------------------------------------

--- Checks that the X events of each tid are properly nested: sorted by ts
-- (longest first on ties), every event either starts after the top of the
-- stack ended or ends within it. Returns true, or false and a message.
local function check_nesting(events)
  local by_tid = {}
  for _, e in ipairs(events) do
    if e.ph == "X" then
      by_tid[e.tid] = by_tid[e.tid] or {}
      table.insert(by_tid[e.tid], e)
    end
  end
  for tid, list in pairs(by_tid) do
    table.sort(list, function(a, b)
      if a.ts ~= b.ts then return a.ts < b.ts end
      return a.dur > b.dur
    end)
    local stack = {}
    for _, e in ipairs(list) do
      while #stack > 0 and stack[#stack].ts + stack[#stack].dur <= e.ts do
        stack[#stack] = nil
      end
      local top = stack[#stack]
      if top and e.ts + e.dur > top.ts + top.dur then
        return false, ("tid %s: %q [%s, %s] overlaps %q [%s, %s]"):format(tostring(tid),
          e.name, e.ts, e.ts + e.dur, top.name, top.ts, top.ts + top.dur)
      end
      stack[#stack + 1] = e
    end
  end
  return true
end

local function chrome_doc()
  local text = vmtrace.export("chrome")
  assert_utf8(text, "the chrome export")
  local doc = decode(text, "the chrome export")
  assert.is_table(doc.traceEvents)
  return doc
end

-- Spans of the Chrome export: each span is a "B" event without args and an
-- "E" event with them; per tid, an E closes the innermost open B, which has
-- its name ("kind name"). Pairs them (raising when they do not pair) into
-- name -> {ph = "B", ts, dur, tid, pid, cat, args} (the name without its
-- kind); instants ("i") as they are. Also tid -> thread name, the process.
local function chrome_index(doc)
  local ev, threads, process, open = {}, {}, nil, {}
  local function short(e)
    local kind, name = e.name:match("^(%S+) (.*)$")
    assert.equal(e.cat, kind, "the event's name starts with its kind: " .. e.name)
    assert.is_nil(ev[name], "test setup: span names should be unique: " .. name)
    return name
  end
  for _, e in ipairs(doc.traceEvents) do
    if e.ph == "M" and e.name == "thread_name" then
      assert.is_nil(threads[e.tid], "two thread_name events for tid " .. tostring(e.tid))
      threads[e.tid] = e.args.name
    elseif e.ph == "M" and e.name == "process_name" then
      process = e
    elseif e.ph == "B" then
      assert.is_nil(e.args, "a B event carries no args (frames merge in speedscope)")
      open[e.tid] = open[e.tid] or {}
      table.insert(open[e.tid], e)
    elseif e.ph == "E" then
      local b = table.remove(open[e.tid] or {})
      assert.is_table(b, "an E event without its B: " .. e.name)
      assert.equal(b.name, e.name, "an E event closes the innermost B of its tid")
      assert.is_true(e.ts >= b.ts)
      local name = short(b)
      ev[name] = { ph = "B", name = name, ts = b.ts, dur = e.ts - b.ts, tid = b.tid, pid = b.pid,
                   cat = b.cat, args = e.args }
    elseif e.ph == "i" then
      local name = short(e)
      local copy = {}
      for k, v in pairs(e) do copy[k] = v end
      copy.name = name
      ev[name] = copy
    end
  end
  for tid, stack in pairs(open) do assert.equal(0, #stack, "B events left open on tid " .. tid) end
  return ev, threads, process
end

-- The spans of the Chrome export as intervals (for check_nesting).
local function chrome_intervals(doc)
  local list = {}
  for _, e in pairs((chrome_index(doc))) do
    if e.ph == "B" then list[#list + 1] = { ph = "X", tid = e.tid, name = e.name, ts = e.ts, dur = e.dur } end
  end
  return list
end

------------------------------------------------------------------------------
-- folded
------------------------------------------------------------------------------

local function folded_lines(opts)
  local text = vmtrace.export("folded", nil, opts)
  assert_utf8(text, "the folded export")
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  assert.equal(text, table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""),
    "every folded line ends with a newline")
  table.sort(lines)
  return lines
end

------------------------------------------------------------------------------
-- specs
------------------------------------------------------------------------------

describe("vmtrace.export", function()
  lazy_setup(function()
    local code, out = run("mktemp -d /tmp/vmtrace-export-spec.XXXXXX")
    assert(code == 0, "mktemp -d failed")
    tmp_root = out:gsub("%s+$", "")
  end)

  lazy_teardown(function()
    if tmp_root and tmp_root:match("^/tmp/vmtrace%-export%-spec%.") then
      os.execute("chmod -R u+w " .. shq(tmp_root) .. " 2>/dev/null; rm -rf " .. shq(tmp_root))
    end
  end)

  before_each(function() vmtrace.enable() end)
  after_each(function()
    while vmtrace.unmock_time() do end
    vmtrace.disable()
  end)

  ----------------------------------------------------------------------------
  describe("otlp, decoded by the OpenTelemetry protobuf definitions", function()
    it("needs node on PATH (fails, not skips, without it)", function()
      require_node()
      local code, out = run("env -u LD_PRELOAD node -e 'process.stdout.write(process.versions.node)'")
      assert.equal(0, code)
      assert.is_truthy(tonumber(out:match("^(%d+)")) >= 18, "node too old: " .. out)
    end)

    it("the verifier rejects what a collector would reject", function()
      -- a verifier that accepts anything would make the tests below vacuous
      require_node()
      local good = {
        '{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"s"},"spans":[',
        '{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"n",',
        '"kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2",',
        '"attributes":[{"key":"k","value":ATTR}]}]}]}]}',
      }
      local function doc(attr, edit)
        local s = table.concat(good):gsub("ATTR", attr)
        if edit then s = edit(s) end
        return s
      end
      local path = tmp_path("verifier.json")
      write_file(path, doc('{"intValue":"9223372036854775807"}'))
      local code, out = verify(path)
      assert.equal(0, code, out)
      local bad = {
        ["an int64 out of range"] = doc('{"intValue":"9223372036854775808"}'),
        ["a fractional intValue"] = doc('{"intValue":"1.5"}'),
        ["two oneof members"] = doc('{"intValue":"1","stringValue":"x"}'),
        ["an unknown field"] = doc('{"intValue":"1"}', function(s) return s:gsub('"name":"n"', '"name":"n","parentSpanID":"00f067aa0ba902b7"') end),
        ["a base64 span id"] = doc('{"boolValue":true}', function(s) return s:gsub("00f067aa0ba902b7", "APBnqgupArc=") end),
        ["a kind given by name"] = doc('{"boolValue":true}', function(s) return s:gsub('"kind":1', '"kind":"SPAN_KIND_INTERNAL"') end),
        ["an unknown kind"] = doc('{"boolValue":true}', function(s) return s:gsub('"kind":1', '"kind":9') end),
        ["a duplicate key"] = doc('{"boolValue":true}', function(s) return s:gsub('"name":"n"', '"name":"n","name":"m"') end),
        ["a lone surrogate"] = doc('{"stringValue":"\\ud800"}'),
        ["invalid UTF-8"] = doc('{"stringValue":"\255"}'),
        ["a short trace id"] = doc('{"boolValue":true}', function(s) return s:gsub("4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f35") end),
      }
      for what, text in pairs(bad) do
        write_file(path, text)
        code, out = verify(path)
        assert.equal(1, code, ("the verifier accepted %s:\n%s"):format(what, out))
        assert.matches("MISMATCH ", out, 1, true)
      end
    end)

    it("the shared verifier process answers exactly what the command line prints", function()
      -- the checks above and below go to one verify.js --serve (helper.verify_otlp):
      -- a bad export must be rejected there as by `node tests/otlp/verify.js`
      require_node()
      local good = tmp_path("served-good.json")
      agent_trace()
      assert.is_true(vmtrace.export("otlp", good, { service_name = "agent-svc" }))
      local bad = tmp_path("served-bad.json")
      write_file(bad, (read_file(good):gsub('"kind":%d', '"kind":9'):gsub('"traceId":"%x+"', '"traceId":"4bf92f35"', 1)))
      local missing = tmp_path("served-missing.json")
      local cases = { { good, true }, { bad, false }, { missing, false } }
      for _, c in ipairs(cases) do
        local path, dump = c[1], c[2]
        local errf = tmp_path("verify-stderr")
        local code, out = run(("env -u LD_PRELOAD node tests/otlp/verify.js %s%s 2>%s")
          :format(dump and "--dump " or "", shq(path), shq(errf)))
        local err = read_file(errf)
        local s_code, s_out, s_err, s_all = helper.verify_otlp(path, dump)
        local what = ("verify.js %s%s"):format(dump and "--dump " or "", path)
        assert.equal(code, s_code, what)
        assert.equal(out, s_out, what)
        assert.equal(err, s_err, what)
        assert.equal(out .. err, s_all, what) -- never both streams in one check
      end
      -- what each case is, so that the comparison above means something
      local code, out, err = helper.verify_otlp(good, true)
      assert.equal(0, code, err)
      assert.matches("^verify.js: OK .*: 1 resource, 1 scope, 8 spans, ", err)
      assert.equal(8, #decode(out, "the dump").resourceSpans[1].scopeSpans[1].spans)
      code, out, err = helper.verify_otlp(bad)
      assert.equal(1, code, out)
      assert.equal("", err)
      local n = 0
      for line in out:gmatch("[^\n]+") do
        if line:find("^MISMATCH ") then n = n + 1 end
      end
      assert.is_true(n >= 9, "8 kinds and a trace id rejected:\n" .. out) -- several lines, framed
      assert.matches("\nverify.js: .*served%-bad%.json: " .. n .. " mismatches\n$", out)
      code, out, err = helper.verify_otlp(missing)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("^verify.js: cannot read .*served%-missing%.json", err)
    end)

    it("a verifier process that died fails the next check with a message, and the one after starts another", function()
      require_node()
      local path = tmp_path("after-death.json")
      write_file(path, '{"resourceSpans":[]}')
      assert.equal(0, (verify(path)))
      local pid = helper.verifier().pid
      assert(os.execute("kill -9 " .. pid))
      local ok, err = pcall(helper.verify_otlp, path)
      assert.is_false(ok, "a check answered by a killed verifier")
      assert.matches("tests/otlp/verify.js --serve (pid " .. pid .. ") exited before answering", err, 1, true)
      local code, out = verify(path)
      assert.equal(0, code, out)
      assert.matches("^verify.js: OK ", out)
      assert.are_not.equal(pid, helper.verifier().pid)
    end)

    it("a verifier process ends with the process that started it, whatever that one left running", function()
      require_node()
      local path = tmp_path("child-verifier.json")
      write_file(path, '{"resourceSpans":[]}')
      local script = tmp_path("child-verifier.lua")
      -- the child exits without closing anything, leaving a process that
      -- inherited its open descriptors: the verifier must not wait for that one
      write_file(script, [[
        local helper = require "spec.helper"
        local v = helper.verifier_start()
        local code = v:check(arg[1])
        local p = io.popen("sleep 20 </dev/null >/dev/null 2>&1 & echo $!")
        local sleeper = p:read("l")
        p:close()
        io.write(v.pid, " ", code, " ", sleeper, "\n")
        io.stdout:flush()
        os.exit(0, false)
      ]])
      local code, out = run(("%s lua5.4 %s %s 2>&1"):format(LUA_ENV, shq(script), shq(path)))
      assert.equal(0, code, out)
      local pid, status, sleeper = out:match("^(%d+) (%d+) (%d+)\n$")
      assert.is_truthy(pid, out)
      local function exited()
        local stat = helper.try_read("/proc/" .. pid .. "/stat")
        return stat == nil or stat:match("^%d+ %b() (%a)") == "Z"
      end
      for _ = 1, helper.time_limit(40) do -- 2 s (the sleep lasts 20)
        if exited() then break end
        os.execute("sleep 0.05")
      end
      local gone = exited()
      os.execute("kill " .. sleeper)
      assert.equal("0", status)
      assert.is_true(gone, "verify.js --serve outlived the process that started it")
    end)

    it("accepts a realistic agent trace and every field survives the protobuf round trip", function()
      agent_trace()
      local path = tmp_path("agent.otlp.json")
      assert.is_true(vmtrace.export("otlp", path, { service_name = "agent-svc" }))
      local code, out = verify(path)
      assert.equal(0, code, ("verify.js exited with status %s (1: the export was rejected):\n%s")
        :format(tostring(code), out))
      assert.matches("^verify.js: OK .*: 1 resource, 1 scope, 8 spans, ", out)
      assert.equal(8, #vmtrace.spans())
    end)

    it("carries the trace id, the parent span ids, kinds and exact times", function()
      local ids = agent_trace()
      local msg = otlp_through_consumer({ service_name = "agent-svc" })
      local trace = trace_hex(vmtrace.trace_id())
      assert.matches("^%x+$", trace)
      assert.equal(32, #trace)
      local exported = {} -- local span id -> OTLP span
      local spans = vmtrace.spans()
      local seen = {}
      for _, o in ipairs(otlp_spans(msg)) do
        assert.equal(trace, o.traceId)
        assert.matches("^[0-9a-f]+$", o.spanId)
        assert.equal(16, #o.spanId)
        assert.is_nil(seen[o.spanId], "two spans share the id " .. o.spanId)
        seen[o.spanId] = true
      end
      for i, s in ipairs(spans) do -- the export keeps the finish order
        local o = otlp_spans(msg)[i]
        assert.equal(s.name, o.name)
        exported[s.span_id] = o
      end
      for _, s in ipairs(spans) do
        local o = exported[s.span_id]
        if s.parent_id then
          assert.equal(exported[s.parent_id].spanId, o.parentSpanId,
            s.name .. ": parentSpanId is the parent's spanId")
        else
          assert.is_nil(o.parentSpanId, s.name .. " is a root")
        end
        assert.equal(s.kind == "llm_call" and 3 or 1, o.kind, s.name .. ": kind")
        assert.equal(("%d"):format(s.start_unix_ms * NS), o.startTimeUnixNano, s.name)
        assert.equal(("%d"):format((s.start_unix_ms + s.duration_ms) * NS), o.endTimeUnixNano, s.name)
        assert.same({ stringValue = s.kind }, attr_map(o.attributes)["vmtrace.kind"])
      end
      -- the hand-computed times of two spans
      assert.equal(("%d"):format((T0 + 1) * NS), exported[ids.llm].startTimeUnixNano)
      assert.equal(("%d"):format((T0 + 26) * NS), exported[ids.llm].endTimeUnixNano)
      assert.is_nil(exported[ids.detached].parentSpanId, "a detached span is a root")
      assert.equal(exported[ids.root].spanId, exported[ids.step].parentSpanId)
    end)

    it("adds the GenAI attributes to llm_call and tool_call spans", function()
      local ids = agent_trace()
      local msg = otlp_through_consumer()
      local o = by_name(otlp_spans(msg))
      local llm = attr_map(o.plan_call.attributes)
      assert.same({ stringValue = "chat" }, llm["gen_ai.operation.name"])
      assert.same({ stringValue = "anthropic" }, llm["gen_ai.provider.name"])
      assert.same({ stringValue = "claude-sonnet-4" }, llm["gen_ai.request.model"])
      -- the conventions' input_tokens includes the cached input: 2400 + 1200 + 64
      assert.same({ intValue = "3664" }, llm["gen_ai.usage.input_tokens"])
      assert.same({ intValue = "310" }, llm["gen_ai.usage.output_tokens"])
      assert.same({ intValue = "1200" }, llm["gen_ai.usage.cache_read.input_tokens"])
      assert.same({ intValue = "64" }, llm["gen_ai.usage.cache_write.input_tokens"])
      assert.same({ intValue = "64" }, llm["gen_ai.usage.cache_creation.input_tokens"]) -- the older name
      assert.same({ stringValue = "llm_call" }, llm["vmtrace.kind"])
      assert.same({ doubleValue = 0.0125 }, llm.cost_usd)
      local tool = attr_map(o.run_grep.attributes)
      assert.same({ stringValue = "execute_tool" }, tool["gen_ai.operation.name"])
      assert.same({ stringValue = "grep" }, tool["gen_ai.tool.name"])
      local flaky = attr_map(o.flaky.attributes) -- no tool_name: the span's name
      assert.same({ stringValue = "execute_tool" }, flaky["gen_ai.operation.name"])
      assert.same({ stringValue = "flaky" }, flaky["gen_ai.tool.name"])
      for _, name in ipairs({ "fix_failing_test", "plan", "follow_up", "background" }) do
        local a = attr_map(o[name].attributes)
        assert.is_nil(a["gen_ai.operation.name"], name .. " is neither an llm nor a tool call")
      end
      assert.is_number(ids.llm)
    end)

    it("types metadata values: exact 64-bit integers, doubles, booleans, arrays, kvlists", function()
      agent_trace()
      local msg, text = otlp_through_consumer()
      -- NUL kept, the bad byte replaced (read in the text: a decoded Lua table
      -- would go through vmtrace.json_decode)
      assert.truthy(text:find('{"key":"raw","value":{"stringValue":"a\\u0000b\u{FFFD}c"}}', 1, true),
        "the raw string as decoded by protobuf")
      local root = attr_map(by_name(otlp_spans(msg)).fix_failing_test.attributes)
      assert.same({ intValue = "9223372036854775807" }, root.max)
      assert.same({ intValue = "-9223372036854775808" }, root.min)
      assert.same({ doubleValue = 0.1 }, root.ratio)
      assert.same({ doubleValue = 2 }, root.whole) -- a Lua float stays a double
      assert.same({ boolValue = true }, root.ok)
      assert.same({}, root.nothing) -- null: a value with nothing set
      assert.same({ arrayValue = { values = {
        { intValue = "1" }, { intValue = "2" }, { intValue = "3" } } } }, root.list)
      local nested = root.nested.kvlistValue
      assert.is_table(nested, "a table with string keys is a kvlistValue")
      local n = attr_map(nested.values)
      assert.same({ doubleValue = 0.5 }, n.x)
      local b = attr_map(n.a.kvlistValue.values).b
      assert.same({ arrayValue = { values = {
        { intValue = "1" }, { stringValue = "two" },
        { kvlistValue = { values = { { key = "c", value = { boolValue = true } } } } },
      } } }, b)
    end)

    it("exports events with their time and typed attributes", function()
      agent_trace()
      local msg = otlp_through_consumer()
      local events = by_name(otlp_spans(msg)).plan_call.events
      assert.equal(1, #events)
      local e = events[1]
      assert.equal("first_token", e.name)
      assert.equal(("%d"):format((T0 + 3) * NS), e.timeUnixNano)
      local a = attr_map(e.attributes)
      assert.same({ intValue = "120" }, a.latency_ms)
      assert.same({ boolValue = true }, a.streamed)
      assert.same({ doubleValue = 0.5 }, a.share)
      assert.same({ arrayValue = { values = { { stringValue = "a" }, { stringValue = "b" } } } }, a.tags)
    end)

    it("links to a local span with that span's exported span id", function()
      agent_trace()
      local msg = otlp_through_consumer()
      local o = by_name(otlp_spans(msg))
      local links = o.follow_up.links
      assert.equal(3, #links)
      local trace = trace_hex(vmtrace.trace_id())
      assert.same({ traceId = trace, spanId = o.plan.spanId }, links[1])
      assert.same({ traceId = trace, spanId = o.plan_call.spanId }, links[2])
      assert.same({ traceId = REMOTE_TRACE, spanId = REMOTE_SPAN,
        attributes = { { key = "origin", value = { stringValue = "queue" } } } }, links[3])
    end)

    it("gives an errored span status code 2 with the error message", function()
      agent_trace()
      local msg = otlp_through_consumer()
      for _, o in ipairs(otlp_spans(msg)) do
        if o.name == "flaky" then
          assert.same({ code = 2, message = "connection reset" }, o.status)
        else
          assert.is_true(o.status == nil or (o.status.code or 0) ~= 2, o.name .. " did not fail")
        end
      end
    end)

    it("has a vmtrace scope with a version, and service.name from opts", function()
      agent_trace()
      local msg = otlp_through_consumer({ service_name = "agent-svc",
        resource = { ["deployment.environment"] = "prod", replicas = 3 } })
      local rs = msg.resourceSpans[1]
      local scope = rs.scopeSpans[1].scope
      assert.equal("vmtrace", scope.name)
      assert.matches("^%d+%.%d+", scope.version)
      local res = attr_map(rs.resource.attributes)
      assert.same({ stringValue = "agent-svc" }, res["service.name"])
      assert.same({ stringValue = "prod" }, res["deployment.environment"])
      assert.same({ intValue = "3" }, res.replicas)
    end)

    it("takes service.name from OTEL_SERVICE_NAME and attributes from OTEL_RESOURCE_ATTRIBUTES", function()
      require_node()
      local script = tmp_path("env.lua")
      local out_env, out_opts, out_attr, out_none =
        tmp_path("env.json"), tmp_path("opts.json"), tmp_path("attr.json"), tmp_path("none.json")
      write_file(script, [[
        local vmtrace = require "vmtrace"
        vmtrace.enable()
        vmtrace.finish(vmtrace.start("pipeline", "p"))
        local path, opts = arg[1], arg[2] and { service_name = arg[2] } or nil
        assert(vmtrace.export("otlp", path, opts))
      ]])
      local function child(env, path, svc)
        local code = run(("env -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES %s %s lua5.4 %s %s %s 2>&1")
          :format(env, LUA_ENV, shq(script), shq(path), svc and shq(svc) or ""))
        assert.equal(0, code, "the child process failed")
      end
      local attrs = "OTEL_RESOURCE_ATTRIBUTES='deployment.environment=staging,team=agents%2Ccore'"
      child("OTEL_SERVICE_NAME=svc-from-env " .. attrs, out_env)
      child("OTEL_SERVICE_NAME=svc-from-env", out_opts, "svc-from-opts")
      child("OTEL_RESOURCE_ATTRIBUTES='service.name=svc-from-attrs'", out_attr)
      child("", out_none)
      local function resource(path)
        local _, msg = verify(path, true)
        return attr_map(msg.resourceSpans[1].resource.attributes)
      end
      local r = resource(out_env)
      assert.same({ stringValue = "svc-from-env" }, r["service.name"])
      assert.same({ stringValue = "staging" }, r["deployment.environment"])
      assert.same({ stringValue = "agents,core" }, r.team) -- percent-decoded
      assert.same({ stringValue = "svc-from-opts" }, resource(out_opts)["service.name"])
      assert.same({ stringValue = "svc-from-attrs" }, resource(out_attr)["service.name"])
      local none = resource(out_none)["service.name"]
      assert.is_table(none, "service.name is always set")
      assert.matches("^unknown_service", none.stringValue)
    end)

    it("accepts an empty trace", function()
      local msg = otlp_through_consumer()
      assert.same({}, otlp_spans(msg))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("json", function()
    local SPAN_EXTRA = { start_ns = true, start_unix_ns = true, duration_ns = true,
      track = true, otel_span_id = true }
    local EVENT_EXTRA = { time_unix_ns = true, offset_ns = true }
    local function allow(path, key)
      if path:match("^%[%d+%]$") then return SPAN_EXTRA[key] end
      if path:match("^%[%d+%]%.events%.%d+$") then return EVENT_EXTRA[key] end
      return false
    end

    local function json_trace()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      vmtrace.set_metadata(root, "max", math.maxinteger)
      vmtrace.set_metadata(root, "min", math.mininteger)
      vmtrace.set_metadata(root, "small", 42)
      vmtrace.set_metadata(root, "float", 0.1)
      vmtrace.set_metadata(root, "whole_float", 3.0)
      vmtrace.set_metadata(root, "flag", false)
      vmtrace.set_metadata(root, "nul", "a\0b")
      vmtrace.set_metadata(root, "utf8", "héllo €")
      vmtrace.set_metadata(root, "array", { 1, "x", { y = 2 } })
      vmtrace.set_metadata(root, "empty", {})
      vmtrace.set_metadata(root, "null", vmtrace.null)
      vmtrace.advance_time(3)
      local c = vmtrace.start("llm_call", "call", { links = { vmtrace.span_link(root),
        { trace_id = REMOTE_TRACE, span_id = REMOTE_SPAN, attributes = { n = "1" } } } })
      vmtrace.llm_usage(c, { model = "m", input_tokens = 10, output_tokens = 2, cost_usd = 0.5 })
      vmtrace.advance_time(4)
      vmtrace.record_event(c, "chunk", { bytes = 512, big = math.maxinteger })
      vmtrace.advance_time(6)
      vmtrace.finish(c)
      pcall(vmtrace.with, "tool_call", "fails", function() error("nope", 0) end)
      vmtrace.marker("user_timing", "mark", { k = "v" })
      vmtrace.advance_time(7)
      vmtrace.finish(root)
      local open = vmtrace.start("fn_call", "still_open") -- not exported: not completed
      return open
    end

    it("is the completed spans with the Lua table shape, field by field", function()
      json_trace()
      local text = vmtrace.export("json")
      assert_utf8(text, "the json export")
      local got = decode(text, "the json export")
      local want = vmtrace.spans()
      assert.equal(#want, #got)
      local out = {}
      for i = 1, #want do diff(want[i], got[i], ("[%d]"):format(i), allow, out) end
      assert.equal(0, #out, #out .. " differences:\n" .. table.concat(out, "\n", 1, math.min(#out, 40)))
    end)

    it("reads back 64-bit integers exactly with vmtrace.json_decode", function()
      json_trace()
      local got = decode(vmtrace.export("json"), "the json export")
      local root = got[#got]
      assert.equal("run", root.name)
      assert.equal("integer", math.type(root.metadata.max))
      assert.equal(math.maxinteger, root.metadata.max)
      assert.equal(math.mininteger, root.metadata.min)
      assert.equal("integer", math.type(root.span_id))
      assert.equal("float", math.type(root.metadata.whole_float))
    end)

    it("keeps math.maxinteger exact in the text", function()
      json_trace()
      local text = vmtrace.export("json")
      assert.truthy(text:find('"max":9223372036854775807', 1, true))
      assert.truthy(text:find('"min":-9223372036854775808', 1, true))
    end)

    it("adds nanosecond times, the track and the OTLP span id", function()
      json_trace()
      local text = vmtrace.export("json")
      local got = decode(text, "the json export")
      -- the nanosecond integers, read from the text (one span a line) so that
      -- they do not depend on how json_decode reads large integers
      local lines = {}
      for line in text:gmatch('[^\n]*"span_id"[^\n]*') do lines[#lines + 1] = line end
      assert.equal(#got, #lines)
      local function int(line, key)
        local v = math.tointeger(tonumber(line:match('"' .. key .. '":(%-?%d+)[,}]')))
        assert.is_number(v, key .. " in " .. line)
        return v
      end
      local otlp = decode(vmtrace.export("otlp"), "the otlp export")
      local otlp_ids = {}
      for _, o in ipairs(otlp_spans(otlp)) do otlp_ids[#otlp_ids + 1] = o.spanId end
      for i, s in ipairs(vmtrace.spans()) do
        local g, line = got[i], lines[i]
        assert.equal(s.span_id, int(line, "span_id"))
        assert.equal(s.start_unix_ms * NS, int(line, "start_unix_ns"))
        assert.equal(s.duration_ms * NS, int(line, "duration_ns"))
        assert.equal(s.start_ms, int(line, "start_ns") // NS)
        assert.equal(0, int(line, "track"), "every span here ran on the main thread")
        assert.equal(otlp_ids[i], g.otel_span_id)
        for _, e in ipairs(s.events or {}) do
          assert.equal(e.time_unix_ms * NS, int(line, "time_unix_ns"))
          assert.equal(e.offset_ms * NS, int(line, "offset_ns"))
        end
      end
    end)

    it("is an empty array for an empty trace", function()
      assert.same({}, decode(vmtrace.export("json"), "the json export"))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("chrome", function()
    it("the nesting checker catches overlapping events", function()
      assert.is_true((check_nesting({
        { ph = "X", tid = 1, name = "a", ts = 0, dur = 10 },
        { ph = "X", tid = 1, name = "b", ts = 2, dur = 3 },
        { ph = "X", tid = 1, name = "c", ts = 5, dur = 5 },
        { ph = "X", tid = 2, name = "d", ts = 5, dur = 50 },
      })))
      assert.is_false((check_nesting({
        { ph = "X", tid = 1, name = "a", ts = 0, dur = 10 },
        { ph = "X", tid = 1, name = "b", ts = 5, dur = 10 },
      })))
    end)

    it("has B/E events with ts in microseconds and instant events for markers", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      vmtrace.advance_time(10)
      local child = vmtrace.start("llm_call", "call")
      vmtrace.advance_time(25)
      vmtrace.finish(child)
      vmtrace.model_route("a", "b", "cheap")
      vmtrace.advance_time(5)
      vmtrace.tool_mount({ "read", "write" }, "mcp")
      vmtrace.deferred_tool_load("grep", "search", 0.75)
      vmtrace.advance_time(60)
      vmtrace.finish(root)
      local doc = chrome_doc()
      local ev, threads, process = chrome_index(doc)
      assert.is_table(process, "a process_name metadata event")
      assert.same({ "B", 0, 100000 }, { ev.run.ph, ev.run.ts, ev.run.dur })
      assert.same({ "B", 10000, 25000 }, { ev.call.ph, ev.call.ts, ev.call.dur })
      assert.equal(10000, ev.call.ts - ev.run.ts)
      assert.equal("llm_call", ev.call.cat)
      for name, ts in pairs({ model_route = 35000, tool_mount = 40000, deferred_tool_load = 40000 }) do
        local e = ev[name]
        assert.is_table(e, name .. " is exported")
        assert.equal("i", e.ph, name .. " is an instant event")
        assert.equal(ts, e.ts, name)
        assert.is_nil(e.dur, name .. " has no duration")
      end
      for _, e in pairs(ev) do
        assert.equal(1, e.pid)
        assert.is_string(threads[e.tid], "tid " .. tostring(e.tid) .. " has a thread_name")
      end
      assert.equal(ev.run.tid, ev.call.tid)
      assert.is_true(check_nesting(chrome_intervals(doc)))
    end)

    it("puts each coroutine on its own track, every track properly nested", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "main.root")
      local inner = vmtrace.start("step", "main.step")
      local function body(tag)
        return function()
          local a = vmtrace.start("fn_call", tag .. ".a")
          coroutine.yield()
          vmtrace.advance_time(3)
          local b = vmtrace.start("tool_call", tag .. ".b")
          coroutine.yield()
          vmtrace.advance_time(2)
          vmtrace.finish(b)
          coroutine.yield()
          vmtrace.advance_time(1)
          vmtrace.finish(a)
        end
      end
      local co1 = vmtrace.coroutine.create(body("co1"))
      local co2 = vmtrace.coroutine.create(body("co2"))
      for _ = 1, 4 do
        vmtrace.advance_time(1)
        assert(coroutine.resume(co1))
        vmtrace.advance_time(1)
        assert(coroutine.resume(co2))
      end
      vmtrace.advance_time(1)
      vmtrace.finish(inner)
      vmtrace.finish(root)
      local doc = chrome_doc()
      local ev, threads = chrome_index(doc)
      local tid = {}
      for _, tag in ipairs({ "main", "co1", "co2" }) do
        local first = ev[tag == "main" and "main.root" or tag .. ".a"].tid
        for name, e in pairs(ev) do
          if name:sub(1, #tag + 1) == tag .. "." then
            assert.equal(first, e.tid, name .. " is on its coroutine's track")
          end
        end
        tid[tag] = first
      end
      assert.are_not.equal(tid.main, tid.co1)
      assert.are_not.equal(tid.main, tid.co2)
      assert.are_not.equal(tid.co1, tid.co2)
      assert.are_not.equal(threads[tid.co1], threads[tid.co2], "the tracks have distinct names")
      local ok, err = check_nesting(chrome_intervals(doc))
      assert.is_true(ok, err)
    end)

    it("keeps a track nested when spans finish out of order", function()
      vmtrace.mock_time(T0)
      local a = vmtrace.start("fn_call", "a")
      vmtrace.advance_time(10)
      local b = vmtrace.start("fn_call", "b")
      vmtrace.advance_time(10)
      vmtrace.finish(a) -- a ends while b, started inside it, is still open
      vmtrace.advance_time(10)
      vmtrace.finish(b)
      vmtrace.advance_time(10)
      local c = vmtrace.start("fn_call", "c")
      vmtrace.advance_time(5)
      vmtrace.finish(c)
      local doc = chrome_doc()
      local ev, threads = chrome_index(doc)
      assert.same({ 0, 20000 }, { ev.a.ts, ev.a.dur })
      assert.same({ 10000, 20000 }, { ev.b.ts, ev.b.dur })
      assert.same({ 40000, 5000 }, { ev.c.ts, ev.c.dur })
      local ok, err = check_nesting(chrome_intervals(doc))
      assert.is_true(ok, err)
      assert.are_not.equal(ev.a.tid, ev.b.tid, "b cannot nest in a on one track")
      for _, e in pairs(ev) do
        assert.is_string(threads[e.tid], "tid " .. tostring(e.tid) .. " has a thread_name")
      end
    end)

    it("merges identical calls for speedscope: begin events hold only kind and name", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      for i = 1, 3 do
        local id = vmtrace.start("tool_call", "grep")
        vmtrace.set_metadata(id, "i", i)
        vmtrace.advance_time(1)
        vmtrace.finish(id)
      end
      vmtrace.finish(root)
      local begins, ends = {}, {}
      for _, e in ipairs(chrome_doc().traceEvents) do
        if e.ph == "B" then begins[#begins + 1] = e.name end
        if e.ph == "E" and e.name == "tool_call grep" then ends[#ends + 1] = e.args.metadata.i end
      end
      assert.same({ "pipeline run", "tool_call grep", "tool_call grep", "tool_call grep" }, begins)
      assert.same({ 1, 2, 3 }, ends, "the details are in the end events' args")
    end)

    it("has only metadata events for an empty trace", function()
      local doc = chrome_doc()
      for _, e in ipairs(doc.traceEvents) do assert.equal("M", e.ph) end
    end)
  end)

  ----------------------------------------------------------------------------
  describe("folded", function()
    it("weights stacks by self time in microseconds", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      vmtrace.advance_time(10)
      local child = vmtrace.start("step", "child")
      vmtrace.advance_time(4)
      local leaf = vmtrace.start("tool_call", "leaf")
      vmtrace.advance_time(2)
      vmtrace.finish(leaf)
      vmtrace.advance_time(4)
      vmtrace.finish(child)
      vmtrace.advance_time(10)
      vmtrace.finish(root) -- 30 ms, with a 10 ms child holding a 2 ms leaf
      assert.same({
        "pipeline run 20000",
        "pipeline run;step child 8000",
        "pipeline run;step child;tool_call leaf 2000",
      }, folded_lines())
      assert.same(folded_lines(), folded_lines({ weight = "time" }))
    end)

    it("weights stacks by tokens (input + output + cache read + cache write)", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      local step = vmtrace.start("step", "plan")
      local a = vmtrace.start("llm_call", "a")
      vmtrace.llm_usage(a, { model = "m", input_tokens = 1000, output_tokens = 200,
        cache_read_tokens = 30, cache_write_tokens = 4, cost_usd = 0.0125 })
      vmtrace.advance_time(5)
      vmtrace.finish(a)
      vmtrace.finish(step)
      local b = vmtrace.start("llm_call", "b")
      vmtrace.llm_usage(b, { model = "m", input_tokens = 7, output_tokens = 3, cost_usd = 0.25 })
      vmtrace.advance_time(5)
      vmtrace.finish(b)
      vmtrace.advance_time(5)
      vmtrace.finish(root)
      assert.same({
        "pipeline run;llm_call b 10",
        "pipeline run;step plan;llm_call a 1234",
      }, folded_lines({ weight = "tokens" }))
      assert.same({ -- micro-USD
        "pipeline run;llm_call b 250000",
        "pipeline run;step plan;llm_call a 12500",
      }, folded_lines({ weight = "cost" }))
    end)

    it("never lets a name split a stack or a line", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "r;x")
      local t = vmtrace.start("tool_call", "a;b\nc")
      vmtrace.advance_time(2)
      vmtrace.finish(t)
      vmtrace.advance_time(1)
      vmtrace.finish(root)
      local lines = folded_lines()
      assert.equal(2, #lines, "one line per span")
      local stacks = {}
      for _, line in ipairs(lines) do
        local stack, weight = line:match("^(.+) (%d+)$")
        assert.is_string(stack, "line " .. line)
        local frames = {}
        for f in (stack .. ";"):gmatch("([^;]*);") do frames[#frames + 1] = f end
        stacks[#stacks + 1] = { frames = frames, weight = tonumber(weight) }
      end
      table.sort(stacks, function(a, b) return #a.frames < #b.frames end)
      assert.same({ 1, 2 }, { #stacks[1].frames, #stacks[2].frames }, "frames per line")
      assert.matches("^pipeline r[^;]x$", stacks[1].frames[1])
      assert.equal(1000, stacks[1].weight)
      assert.equal(stacks[1].frames[1], stacks[2].frames[1])
      assert.matches("^tool_call a[^;]b[^;\n]c$", stacks[2].frames[2])
      assert.equal(2000, stacks[2].weight)
    end)

    it("never ends a frame in blanks and a number, which flamegraph.pl reads as a second count", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run 2")
      for _, name in ipairs { "iteration 1", "retry\t7", "half 1.5", "v2", "x 10 y", "42" } do
        local id = vmtrace.start("step", name)
        vmtrace.advance_time(1)
        vmtrace.finish(id)
      end
      vmtrace.advance_time(1)
      vmtrace.finish(root)
      local frames = {}
      for _, line in ipairs(folded_lines()) do
        -- flamegraph.pl: the count, then the same pattern again on the stack
        local stack, count = line:match("^(.*)%s+(%d+)$")
        assert.is_string(stack, line)
        assert.matches("^%d+$", count, 1, false, "an integer count (speedscope reads no decimals)")
        assert.is_nil(stack:match("%s%d+%.?%d*$"), "a frame ends in a number: " .. line)
        for f in stack:gmatch("[^;]+") do frames[f] = true end
      end
      for _, f in ipairs { "pipeline run_2", "step iteration_1", "step retry_7", "step half_1.5", "step v2",
                            "step x 10 y", "step_42" } do
        assert.is_true(frames[f], f .. " in " .. table.concat((function()
          local t = {}
          for k in pairs(frames) do t[#t + 1] = k end
          table.sort(t)
          return t
        end)(), " | "))
      end
    end)

    it("is empty for an empty trace", function()
      assert.equal("", vmtrace.export("folded"))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("profile", function()
    --[[ The trace, in ms from T0:
      run (pipeline)                 0 .. 130
        plan (step)                  0 .. 60
          think (llm_call, model-a)  0 .. 40
          grep (tool_call)          45 .. 55
        act (step)                  65 .. 120
          write (llm_call, model-b) 65 .. 85
          edit (tool_call)          85 .. 110
          helper (fn_call)         110 .. 118
            test (tool_call)       112 .. 117
    ]]
    local function profile_trace()
      vmtrace.mock_time(T0)
      local run_ = vmtrace.start("pipeline", "run")
      local plan = vmtrace.start("step", "plan")
      local think = vmtrace.start("llm_call", "think")
      vmtrace.llm_usage(think, { model = "model-a", provider = "p", input_tokens = 100,
        output_tokens = 10, cache_read_tokens = 5, cache_write_tokens = 1, cost_usd = 0.25 })
      vmtrace.advance_time(40)
      vmtrace.finish(think)
      vmtrace.advance_time(5)
      local grep = vmtrace.start("tool_call", "grep")
      vmtrace.set_metadata(grep, "tool_name", "grep")
      vmtrace.advance_time(10)
      vmtrace.finish(grep)
      vmtrace.advance_time(5)
      vmtrace.finish(plan)
      vmtrace.advance_time(5)
      local act = vmtrace.start("step", "act")
      local write = vmtrace.start("llm_call", "write")
      vmtrace.llm_usage(write, { model = "model-b", provider = "p", input_tokens = 200,
        output_tokens = 50, cost_usd = 0.5 })
      vmtrace.advance_time(20)
      vmtrace.finish(write)
      local edit = vmtrace.start("tool_call", "edit")
      vmtrace.advance_time(25)
      vmtrace.finish(edit)
      local helper_ = vmtrace.start("fn_call", "helper")
      vmtrace.advance_time(2)
      local test = vmtrace.start("tool_call", "test")
      vmtrace.advance_time(5)
      vmtrace.finish(test)
      vmtrace.advance_time(1)
      vmtrace.finish(helper_)
      vmtrace.advance_time(2)
      vmtrace.finish(act)
      vmtrace.advance_time(10)
      vmtrace.finish(run_)
      return { plan = plan, act = act, think = think, write = write, grep = grep,
        edit = edit, test = test }
    end

    local function near(want, got, what)
      assert.is_number(got, what)
      assert.is_true(math.abs(want - got) < 1e-9, ("%s: want %s, got %s"):format(what, want, got))
    end

    it("has wall time, time by kind and the residual", function()
      profile_trace()
      local p = vmtrace.profile()
      assert.equal(vmtrace.trace_id(), p.trace_id)
      assert.equal(9, p.spans)
      assert.equal(0, p.dropped)
      assert.equal(130, p.wall_ms)
      local want = { -- longest first
        { "pipeline", 130, 1 }, { "step", 115, 2 }, { "llm_call", 60, 2 },
        { "tool_call", 40, 3 }, { "fn_call", 8, 1 },
      }
      assert.equal(#want, #p.by_kind)
      for i, w in ipairs(want) do
        local k = p.by_kind[i]
        assert.equal(w[1], k.kind)
        assert.equal(w[2], k.total_ms, w[1])
        assert.equal(w[3], k.count, w[1])
        near(100 * w[2] / 130, k.percent, w[1] .. " percent")
      end
      assert.equal(15, p.residual_ms) -- 60..65 and 120..130
      near(100 * 15 / 130, p.residual_percent, "residual_percent")
    end)

    it("lists the top LLM and tool calls, longest first", function()
      local ids = profile_trace()
      local p = vmtrace.profile()
      assert.equal(2, #p.top_llm_calls)
      local t = p.top_llm_calls[1]
      assert.same({ ids.think, "think", 40, "model-a", 100, 10, 0.25 },
        { t.span_id, t.name, t.duration_ms, t.model, t.input_tokens, t.output_tokens, t.cost_usd })
      t = p.top_llm_calls[2]
      assert.same({ ids.write, "write", 20, "model-b", 200, 50, 0.5 },
        { t.span_id, t.name, t.duration_ms, t.model, t.input_tokens, t.output_tokens, t.cost_usd })
      local names, durs = {}, {}
      for i, c in ipairs(p.top_tool_calls) do names[i], durs[i] = c.name, c.duration_ms end
      assert.same({ "edit", "grep", "test" }, names)
      assert.same({ 25, 10, 5 }, durs)
      assert.equal("grep", p.top_tool_calls[2].tool_name)
    end)

    it("keeps only the 5 longest calls of each kind", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      for _, d in ipairs({ 3, 1, 7, 5, 2, 6, 4 }) do
        local id = vmtrace.start("llm_call", "l" .. d)
        vmtrace.advance_time(d)
        vmtrace.finish(id)
      end
      for _, d in ipairs({ 2, 9, 4, 1, 8, 6 }) do
        local id = vmtrace.start("tool_call", "t" .. d)
        vmtrace.advance_time(d)
        vmtrace.finish(id)
      end
      vmtrace.finish(root)
      local p = vmtrace.profile()
      local function names(list)
        local t = {}
        for i, c in ipairs(list) do t[i] = ("%s=%g"):format(c.name, c.duration_ms) end
        return t
      end
      assert.same({ "l7=7", "l6=6", "l5=5", "l4=4", "l3=3" }, names(p.top_llm_calls))
      assert.same({ "t9=9", "t8=8", "t6=6", "t4=4", "t2=2" }, names(p.top_tool_calls))
    end)

    it("totals each step's llm, tool and other time and calls", function()
      local ids = profile_trace()
      local p = vmtrace.profile()
      assert.equal(2, #p.steps)
      local function row(s)
        return { s.span_id, s.name, s.duration_ms, s.llm_ms, s.llm_calls, s.tool_ms,
          s.tool_calls, s.other_ms }
      end
      assert.same({ ids.plan, "plan", 60, 40, 1, 10, 1, 10 }, row(p.steps[1]))
      -- the tool call inside helper (a fn_call) still counts for its step
      assert.same({ ids.act, "act", 55, 20, 1, 30, 2, 5 }, row(p.steps[2]))
    end)

    it("totals LLM tokens and cost, overall and by model", function()
      profile_trace()
      local l = vmtrace.profile().llm
      assert.same({ 2, 300, 60, 5, 1, 0.75 }, { l.calls, l.input_tokens, l.output_tokens,
        l.cache_read_tokens, l.cache_write_tokens, l.cost_usd })
      assert.equal(0, l.unpriced)
      assert.same({
        ["model-a"] = { calls = 1, input_tokens = 100, output_tokens = 10,
          cache_read_tokens = 5, cache_write_tokens = 1, cost_usd = 0.25, unpriced = 0 },
        ["model-b"] = { calls = 1, input_tokens = 200, output_tokens = 50,
          cache_read_tokens = 0, cache_write_tokens = 0, cost_usd = 0.5, unpriced = 0 },
      }, l.by_model)
    end)

    it("counts overlapping children once in the residual", function()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "run")
      local function body(name)
        return function()
          local id = vmtrace.start("fn_call", name)
          coroutine.yield()
          vmtrace.finish(id)
        end
      end
      local c1 = vmtrace.coroutine.create(body("c1"))
      local c2 = vmtrace.coroutine.create(body("c2"))
      vmtrace.advance_time(10)
      assert(coroutine.resume(c1)) -- c1 from 10
      vmtrace.advance_time(10)
      assert(coroutine.resume(c2)) -- c2 from 20
      vmtrace.advance_time(20)
      assert(coroutine.resume(c1)) -- c1 to 40
      vmtrace.advance_time(10)
      assert(coroutine.resume(c2)) -- c2 to 50
      vmtrace.advance_time(10)
      vmtrace.finish(root)         -- run to 60: children cover 10..50
      for _, s in ipairs(vmtrace.spans()) do
        if s.kind == "fn_call" then assert.equal(1, s.parent_id, "test setup") end
      end
      local p = vmtrace.profile()
      assert.equal(60, p.wall_ms)
      assert.equal(20, p.residual_ms)
    end)

    it("prints those numbers in export('profile')", function()
      profile_trace()
      local text = vmtrace.export("profile")
      assert_utf8(text, "the profile export")
      local function has(pattern, what)
        for line in text:gmatch("[^\n]+") do
          if line:find(pattern) then return end
        end
        error(("the profile text has no line for %s (%s):\n%s"):format(what, pattern, text), 2)
      end
      has("wall time 130%.000 ms, 9 spans, 0 dropped", "the wall time")
      has("^%s+pipeline%s+130%.000%s+1%s+100%.0$", "pipeline")
      has("^%s+step%s+115%.000%s+2%s+88%.5$", "step")
      has("^%s+llm_call%s+60%.000%s+2%s+46%.2$", "llm_call")
      has("^%s+tool_call%s+40%.000%s+3%s+30%.8$", "tool_call")
      has("^%s+fn_call%s+8%.000%s+1%s+6%.2$", "fn_call")
      has("residual.-15%.000 ms, 11%.5%%", "the residual")
      has("^%s+think%s+40%.000 ms%s+model%-a%s+100 in%s+10 out%s+%$0%.2500$", "think")
      has("^%s+write%s+20%.000 ms%s+model%-b%s+200 in%s+50 out%s+%$0%.5000$", "write")
      has("^%s+edit%s+25%.000 ms$", "edit")
      has("^%s+plan%s+60%.000%s+40%.000 %(1%)%s+10%.000 %(1%)%s+10%.000$", "the plan step")
      has("^%s+act%s+55%.000%s+20%.000 %(1%)%s+30%.000 %(2%)%s+5%.000$", "the act step")
      has("^llm: 2 calls, 300 input, 60 output, 5 cache read, 1 cache write tokens, %$0%.7500$", "llm totals")
      has("^%s+model%-a%s+1 calls%s+100 in%s+10 out%s+%$0%.2500$", "model-a")
      assert.equal(text, vmtrace.export("profile", nil))
    end)

    it("is all zeros for an empty trace", function()
      local p = vmtrace.profile()
      assert.same({ 0, 0, 0, 0 }, { p.spans, p.wall_ms, p.residual_ms, p.llm.calls })
      assert.same({}, p.by_kind)
      assert.same({}, p.top_llm_calls)
      assert.same({}, p.steps)
      assert.is_string(vmtrace.export("profile"))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("all outputs", function()
    local BAD = { "\255", "\192\128", "\237\160\128", "\244\144\128\128", "\226\130", "\128" }
    local GOOD = "é€😀"

    local function messy_trace()
      vmtrace.mock_time(T0)
      local root = vmtrace.start("pipeline", "root" .. BAD[1] .. GOOD)
      local step = vmtrace.start("step", "step" .. BAD[5])
      vmtrace.set_metadata(root, "value", table.concat(BAD, "|") .. "\0" .. GOOD)
      vmtrace.set_metadata(root, "key" .. BAD[2], { BAD[3], { ["k" .. BAD[4]] = BAD[6] } })
      local c = vmtrace.start("llm_call", "call" .. BAD[3], { links = {
        { trace_id = REMOTE_TRACE, span_id = REMOTE_SPAN, attributes = { ["a" .. BAD[1]] = "b" .. BAD[2] } },
      } })
      vmtrace.llm_usage(c, { model = "model" .. BAD[4], provider = "prov" .. BAD[1],
        input_tokens = 5, output_tokens = 1, cost_usd = 0.001 })
      vmtrace.record_event(c, "event" .. BAD[6], { ["attr" .. BAD[1]] = "v" .. BAD[2] })
      vmtrace.advance_time(3)
      vmtrace.finish(c)
      local t = vmtrace.start("tool_call", "tool" .. BAD[2])
      vmtrace.set_metadata(t, "tool_name", "name" .. BAD[1])
      vmtrace.advance_time(2)
      vmtrace.finish(t)
      vmtrace.model_route("from" .. BAD[1], "to" .. BAD[2], "why" .. BAD[3])
      vmtrace.advance_time(1)
      vmtrace.finish(step)
      vmtrace.finish(root)
    end

    local EXPORTS = {
      { "json" }, { "otlp" }, { "chrome" }, { "folded" }, { "folded", { weight = "tokens" } },
      { "folded", { weight = "cost" } }, { "profile" },
    }

    it("the UTF-8 checker knows valid from invalid", function()
      assert.is_true(utf8_valid("plain " .. GOOD .. "\0\127\u{10FFFF}\u{D7FF}\u{E000}"))
      for _, b in ipairs(BAD) do
        assert.is_false(utf8_valid("x" .. b .. "y"), ("%q"):format(b))
        assert.is_nil(utf8.len("x" .. b .. "y"), ("%q"):format(b)) -- Lua agrees
      end
    end)

    for _, e in ipairs(EXPORTS) do
      local what = e[1] .. (e[2] and (" by " .. e[2].weight) or "")
      it(("are valid UTF-8 whatever bytes the trace holds: %s"):format(what), function()
        messy_trace()
        local text = vmtrace.export(e[1], nil, e[2])
        assert_utf8(text, what)
        assert.is_truthy(#text > 0)
        if e[1] == "json" or e[1] == "otlp" or e[1] == "chrome" then
          decode(text, what)
        end
        -- (the profile names steps, calls and models, none of which holds GOOD)
        if e[1] ~= "profile" and (e[1] ~= "folded" or not e[2]) then
          assert.truthy(text:find(GOOD, 1, true), what .. " keeps valid UTF-8 as it is")
        end
      end)
    end

    it("replace invalid sequences with U+FFFD and keep the rest", function()
      messy_trace()
      local text = vmtrace.export("json")
      assert.truthy(text:find('\\u0000' .. GOOD, 1, true), "NUL and valid text are kept")
      local spans = decode(text, "json")
      local root = spans[#spans]
      assert.equal("root\u{FFFD}" .. GOOD, root.name)
      assert.equal("step\u{FFFD}", spans[#spans - 1].name)
      local v = root.metadata.value
      assert.is_string(v)
      assert_utf8(v, "the metadata value")
      assert.truthy(v:find("\u{FFFD}|", 1, true), "an invalid sequence becomes U+FFFD")
    end)

    it("the OTLP export with those bytes passes the consumer", function()
      messy_trace()
      otlp_through_consumer()
    end)
  end)

  ----------------------------------------------------------------------------
  describe("destinations", function()
    local function small_trace()
      vmtrace.mock_time(T0)
      local r = vmtrace.start("pipeline", "run")
      vmtrace.advance_time(2)
      vmtrace.finish(r)
    end

    it("returns the text for a nil destination and writes the same text to a path", function()
      small_trace()
      for _, f in ipairs({ "json", "otlp", "chrome", "folded", "profile" }) do
        local path = tmp_path("out." .. f)
        write_file(path, "old content")
        local text = vmtrace.export(f)
        assert.is_string(text)
        assert.same({ true }, { vmtrace.export(f, path) })
        assert.equal(text, read_file(path), f)
      end
    end)

    it("writes to an open file handle and leaves it open", function()
      small_trace()
      for _, f in ipairs({ "json", "folded", "profile" }) do
        local path = tmp_path("handle." .. f)
        local h = assert(io.open(path, "wb"))
        h:write("before\n")
        assert.same({ true }, { vmtrace.export(f, h) })
        assert.is_truthy(h:write("after\n"), "the handle is still open")
        h:close()
        assert.equal("before\n" .. vmtrace.export(f) .. "after\n", read_file(path), f)
      end
    end)

    it("raises on a closed file handle, naming vmtrace.export and argument #2", function()
      local h = assert(io.open(tmp_path("closed"), "wb"))
      h:close()
      for _, f in ipairs({ "json", "otlp", "chrome", "folded", "profile" }) do
        helper.assert_bad_argument(function() vmtrace.export(f, h) end, "export", 2, "closed")
      end
    end)

    it("raises on an unknown format or weight, naming the argument", function()
      helper.assert_bad_argument(function() vmtrace.export("xml") end, "export", 1, "xml")
      helper.assert_bad_argument(function() vmtrace.export(nil) end, "export", 1)
      helper.assert_bad_argument(function() vmtrace.export("folded", nil, { weight = "bytes" }) end,
        "export", 3, "weight", "bytes")
      helper.assert_bad_argument(function() vmtrace.export("json", nil, 5) end, "export", 3)
    end)

    it("returns nil and a message naming the path when the directory does not exist", function()
      small_trace()
      local path = tmp_root .. "/no/such/dir/trace.json"
      for _, f in ipairs({ "json", "otlp", "profile" }) do
        local ok, msg = vmtrace.export(f, path)
        assert.is_nil(ok)
        assert.is_string(msg)
        assert.truthy(msg:find(path, 1, true), msg)
      end
      assert.is_false(exists(tmp_root .. "/no"), "no directory is created")
    end)

    it("returns nil and a message on a full device", function()
      small_trace()
      for _, f in ipairs({ "json", "otlp", "chrome", "folded", "profile" }) do
        local ok, msg = vmtrace.export(f, "/dev/full")
        assert.is_nil(ok, f)
        assert.is_string(msg, f)
        assert.truthy(msg:find("No space left on device", 1, true), msg)
        assert.truthy(msg:find("/dev/full", 1, true), msg)
      end
    end)

    it("never leaves a partial file: a failed write keeps the old file and no temporary", function()
      -- a child process whose file size limit stops the export part way
      local dir = tmp_path("atomic")
      assert(os.execute("mkdir " .. shq(dir)))
      local path = dir .. "/trace.json"
      local script = tmp_path("fsize.lua")
      write_file(script, [[
        local vmtrace = require "vmtrace"
        vmtrace.enable()
        vmtrace.mock_time(1700000000000)
        for i = 1, 500 do
          local id = vmtrace.start("fn_call", "span number " .. i)
          vmtrace.advance_time(1)
          vmtrace.finish(id)
        end
        local ok, msg = vmtrace.export(arg[2], arg[1])
        io.write(tostring(ok), "\n", tostring(msg), "\n")
      ]])
      for _, f in ipairs({ "json", "otlp", "chrome", "folded" }) do
        small_trace()
        assert.is_true(vmtrace.export(f, path))
        local good = read_file(path)
        local code, out = run(("%s sh -c \"trap '' XFSZ; ulimit -f 2; exec lua5.4 %s %s %s\" 2>&1")
          :format(LUA_ENV, shq(script), shq(path), f))
        assert.equal(0, code, out)
        local ok, msg = out:match("^(.-)\n(.-)\n$")
        assert.equal("nil", ok, f .. ": the export should fail past the size limit:\n" .. out)
        assert.truthy(msg:find(path, 1, true), msg)
        assert.equal(good, read_file(path), f .. ": the old file is untouched")
        assert.same({ "trace.json" }, ls(dir), f .. ": no temporary file is left")
      end
    end)

    it("returns nil and a message for a path that is a directory", function()
      small_trace()
      local ok, msg = vmtrace.export("json", tmp_root)
      assert.is_nil(ok)
      assert.truthy(msg:find(tmp_root, 1, true), msg)
      assert.is_true(exists(tmp_root))
    end)
  end)
end)

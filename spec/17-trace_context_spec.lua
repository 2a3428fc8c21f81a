-- W3C trace context: vmtrace.traceparent, vmtrace.continue_trace and the
-- TRACEPARENT environment variable read by vmtrace.enable().
--
-- What a user sees: the header a span propagates (its span part is the span's
-- exported OTLP id), the trace id taken over from a remote parent, root spans
-- parented to the remote span in every export (OTLP parentSpanId, JSON
-- remote_parent_span_id, Chrome args), invalid headers ignored as the W3C
-- specification says with one warning on stderr, and the join kept by the
-- NDJSON stream and by loading it back. Anything about stderr or the
-- environment runs in a child lua5.4 process.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
local REMOTE_TRACE_ID = "trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
local REMOTE_SPAN = "00f067aa0ba902b7"
local HEADER = ("00-%s-%s-01"):format(REMOTE_TRACE, REMOTE_SPAN)

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

local ROOT = helper.ROOT

local q = helper.shq

local read = helper.try_read

local write = helper.write

local run = helper.run

local function decode(text, what)
  local v, err = vmtrace.json_decode(text)
  assert(v ~= nil, ("%s is not JSON (%s): %s"):format(what, tostring(err), tostring(text):sub(1, 300)))
  return v
end

local TMP
local tmp_n = 0
local function tmp(name)
  tmp_n = tmp_n + 1
  return ("%s/%d-%s"):format(TMP, tmp_n, name)
end

local function trace_hex(trace_id) return (trace_id:gsub("^trace_", ""):gsub("-", "")) end

local HEX32, HEX16 = ("[0-9a-f]"):rep(32), ("[0-9a-f]"):rep(16)
local FORMAT = "^00%-(" .. HEX32 .. ")%-(" .. HEX16 .. ")%-(%x%x)$"

--- The parts of a traceparent header this module wrote (asserting its format).
local function parts(tp)
  assert.is_string(tp)
  local trace, span, flags = tp:match(FORMAT)
  assert.is_truthy(trace, "not 00-<32 lowercase hex>-<16 lowercase hex>-<flags>: " .. tp)
  return trace, span, flags
end

--- The OTLP export decoded: spans by name.
local function otlp_by_name()
  local msg = decode(vmtrace.export("otlp"), "the OTLP export")
  local t = {}
  for _, s in ipairs(msg.resourceSpans[1].scopeSpans[1].spans or {}) do t[s.name] = s end
  return t
end

--- The JSON export decoded: spans by name.
local function json_by_name()
  local t = {}
  for _, s in ipairs(decode(vmtrace.export("json"), "the JSON export")) do
    if s.name then t[s.name] = s end
  end
  return t
end

--- The Chrome export decoded: the end (E) and instant (i) events, which carry
-- the args, by span name (their name is "kind name").
local function chrome_by_name()
  local t = {}
  for _, e in ipairs(decode(vmtrace.export("chrome"), "the Chrome export").traceEvents) do
    if e.ph == "E" or e.ph == "i" then t[e.name:match("^%S+ (.*)$")] = e end
  end
  return t
end

--- Everything the trace context shows: compared before and after an
-- ignored header.
local function context_snapshot(open_id)
  return {
    trace_id = vmtrace.trace_id(),
    current = vmtrace.traceparent(),
    of_open = open_id and vmtrace.traceparent(open_id) or nil,
    json = vmtrace.export("json"),
    otlp = vmtrace.export("otlp"),
    chrome = vmtrace.export("chrome"),
  }
end

-- child processes ---------------------------------------------------------

local CLEAN_ENV = { "TRACEPARENT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG" }

local PRELUDE = [[
local vmtrace = require "vmtrace"
local function report(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do io.write(k, "=", tostring(t[k]), "\n") end
end
local function otlp_by_name()
  local msg = vmtrace.json_decode(vmtrace.export("otlp"))
  local t = {}
  for _, s in ipairs(msg.resourceSpans[1].scopeSpans[1].spans or {}) do t[s.name] = s end
  return t
end
]]

--- Runs source (after PRELUDE) in a child lua5.4 with env added (nil: unset):
-- {code, out, err, report}.
local function lua_child(source, env)
  local script, out, err = tmp("child.lua"), tmp("child.out"), tmp("child.err")
  write(script, PRELUDE .. source)
  local cmd = { "timeout -k 5 300 env" } -- a child that never ends fails instead of hanging
  for _, v in ipairs(CLEAN_ENV) do cmd[#cmd + 1] = "-u " .. v end
  cmd[#cmd + 1] = "LUA_PATH=" .. q(package.path)
  cmd[#cmd + 1] = "LUA_CPATH=" .. q(package.cpath)
  for k, v in pairs(env or {}) do cmd[#cmd + 1] = q(k .. "=" .. v) end
  cmd[#cmd + 1] = ("lua5.4 %s >%s 2>%s"):format(q(script), q(out), q(err))
  local _, _, code = os.execute(table.concat(cmd, " "))
  local res = { code = code, out = read(out) or "", err = read(err) or "" }
  res.report = {}
  for k, v in res.out:gmatch("([%w_%.]+)=([^\n]*)") do res.report[k] = v end
  assert.equal(0, code, ("the child failed (exit %s):\nstdout: %s\nstderr: %s")
    :format(tostring(code), res.out, res.err))
  return res
end

local function warnings(stderr)
  local n = 0
  for line in stderr:gmatch("[^\n]+") do
    if line:find("traceparent", 1, true) then n = n + 1 end
  end
  return n
end

------------------------------------------------------------------------------
-- invalid headers (W3C Trace Context, level 1, section 3.2)
------------------------------------------------------------------------------

local T, S = REMOTE_TRACE, REMOTE_SPAN
local INVALID = {
  { "version ff", ("ff-%s-%s-01"):format(T, S) },
  { "all-zero trace id", ("00-%s-%s-01"):format(("0"):rep(32), S) },
  { "all-zero parent id", ("00-%s-%s-01"):format(T, ("0"):rep(16)) },
  { "54 characters", ("00-%s-%s-0"):format(T, S) },
  { "56 characters for version 00", ("00-%s-%s-010"):format(T, S) },
  { "version 00 with an extra field", ("00-%s-%s-01-extra"):format(T, S) },
  { "a trailing space (56 characters)", HEADER .. " " },
  { "a future version shorter than 55", ("01-%s-%s-0"):format(T, S) },
  { "a future version with no dash after the flags", ("01-%s-%s-01x"):format(T, S) },
  { "uppercase hex in the trace id", ("00-%s-%s-01"):format(T:upper(), S) },
  { "uppercase hex in the parent id", ("00-%s-%s-01"):format(T, "00F067AA0BA902B7") },
  { "uppercase hex in the flags", ("00-%s-%s-0A"):format(T, S) },
  { "uppercase hex in the version", ("0A-%s-%s-01"):format(T, S) },
  { "'_' as the first separator", ("00_%s-%s-01"):format(T, S) },
  { "':' as the second separator", ("00-%s:%s-01"):format(T, S) },
  { "' ' as the third separator", ("00-%s-%s 01"):format(T, S) },
  { "a non-hex trace id", ("00-%s-%s-01"):format(T:sub(1, 31) .. "g", S) },
  { "a non-hex parent id", ("00-%s-%s-01"):format(T, S:sub(1, 15) .. "z") },
  { "non-hex flags", ("00-%s-%s-0z"):format(T, S) },
  { "a non-hex version", ("0x-%s-%s-01"):format(T, S) },
  { "a trace id one digit short", ("00-%s-%s-01"):format(T:sub(2), S .. "0") },
  { "an empty string", "" },
  { "the trace id alone", T },
}

------------------------------------------------------------------------------
-- specs
------------------------------------------------------------------------------

describe("W3C trace context", function()
  lazy_setup(function()
    local code, out = run("mktemp -d /tmp/vmtrace-trace-context-spec.XXXXXX")
    assert(code == 0, "mktemp -d failed")
    TMP = out:gsub("%s+$", "")
  end)

  lazy_teardown(function()
    if TMP and TMP:match("^/tmp/vmtrace%-trace%-context%-spec%.") then os.execute("rm -rf " .. q(TMP)) end
  end)

  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.stream(nil)
    vmtrace.enable() -- forget any joined trace
    vmtrace.disable()
    if TMP then os.execute("rm -rf " .. q(TMP) .. "/*") end
  end)

  ----------------------------------------------------------------------------
  describe("vmtrace.traceparent", function()
    it("is nil with no span and no remote parent", function()
      assert.is_nil(vmtrace.traceparent())
      local id = vmtrace.start("pipeline", "run")
      vmtrace.finish(id)
      assert.is_nil(vmtrace.traceparent(), "no current span once the last one finished")
    end)

    it("is 00-<trace id>-<span id>-01 with the span's exported id", function()
      local run_id = vmtrace.start("pipeline", "run")
      local step = vmtrace.start("step", "plan")
      local tp_run, tp_step = vmtrace.traceparent(run_id), vmtrace.traceparent(step)
      vmtrace.finish(step)
      vmtrace.finish(run_id)
      local otlp, json = otlp_by_name(), json_by_name()
      for name, tp in pairs({ run = tp_run, plan = tp_step }) do
        assert.equal(55, #tp)
        local trace, span, flags = parts(tp)
        assert.equal("01", flags)
        assert.equal(trace_hex(vmtrace.trace_id()), trace)
        assert.equal(otlp[name].traceId, trace)
        assert.equal(otlp[name].spanId, span)
        assert.equal(json[name].otel_span_id, span)
      end
      assert.not_equal(tp_run, tp_step)
    end)

    it("defaults to the current span", function()
      local outer = vmtrace.start("pipeline", "outer")
      assert.equal(vmtrace.traceparent(outer), vmtrace.traceparent())
      local inner = vmtrace.start("step", "inner")
      assert.equal(vmtrace.traceparent(inner), vmtrace.traceparent())
      vmtrace.finish(inner)
      assert.equal(vmtrace.traceparent(outer), vmtrace.traceparent())
      -- a finished span keeps its header when asked by id
      local _, span = parts(vmtrace.traceparent(inner))
      vmtrace.finish(outer)
      assert.equal(otlp_by_name().inner.spanId, span)
    end)

    it("inside a coroutine, defaults to the coroutine's current span", function()
      local outer = vmtrace.start("pipeline", "outer")
      local inside, own
      local co = vmtrace.coroutine.wrap(function()
        own = vmtrace.start("step", "in_coroutine")
        inside = vmtrace.traceparent()
        vmtrace.finish(own)
      end)
      co()
      assert.equal(vmtrace.traceparent(own), inside)
      assert.equal(vmtrace.traceparent(outer), vmtrace.traceparent())
      vmtrace.finish(outer)
    end)

    it("is nil for an unknown id, and raises on a bad argument", function()
      vmtrace.start("pipeline", "run")
      assert.is_nil(vmtrace.traceparent(987654))
      helper.assert_bad_argument(function() vmtrace.traceparent("x") end, "traceparent", 1)
      helper.assert_bad_argument(function() vmtrace.traceparent({}) end, "traceparent", 1)
    end)

    it("gives a different span id to every span", function()
      local seen = {}
      for i = 1, 1000 do
        local id = vmtrace.start("fn_call", "f")
        local _, span = parts(vmtrace.traceparent(id))
        assert.is_nil(seen[span], "span id repeated at " .. i)
        seen[span] = true
        vmtrace.finish(id)
      end
    end)

    it("with a remote parent and no span, is the remote parent's header", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      assert.equal(HEADER, vmtrace.traceparent())
      local id = vmtrace.start("pipeline", "run")
      local trace, span = parts(vmtrace.traceparent())
      assert.equal(REMOTE_TRACE, trace)
      assert.not_equal(REMOTE_SPAN, span)
      assert.equal(vmtrace.traceparent(id), vmtrace.traceparent())
    end)
  end)

  ----------------------------------------------------------------------------
  describe("vmtrace.continue_trace", function()
    it("takes over the trace id", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      local id = vmtrace.start("pipeline", "run")
      assert.equal(REMOTE_TRACE_ID, vmtrace.get(id).trace_id)
      assert.equal(REMOTE_TRACE_ID, vmtrace.span_link(id).trace_id)
      vmtrace.finish(id)
      assert.equal(REMOTE_TRACE_ID, vmtrace.spans()[1].trace_id)
    end)

    it("parents root spans to the remote span in the OTLP, JSON and Chrome exports", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      local root = vmtrace.start("pipeline", "root")
      local child = vmtrace.start("step", "child")
      local detached = vmtrace.start("tool_call", "detached", { detached = true })
      vmtrace.finish(detached)
      vmtrace.finish(child)
      vmtrace.finish(root)
      local second = vmtrace.start("pipeline", "second_root")
      vmtrace.finish(second)

      local otlp = otlp_by_name()
      for _, name in ipairs({ "root", "detached", "second_root" }) do
        assert.equal(REMOTE_TRACE, otlp[name].traceId)
        assert.equal(REMOTE_SPAN, otlp[name].parentSpanId, name)
      end
      assert.equal(REMOTE_TRACE, otlp.child.traceId)
      assert.equal(otlp.root.spanId, otlp.child.parentSpanId)

      local json = json_by_name()
      for _, name in ipairs({ "root", "detached", "second_root" }) do
        assert.equal(REMOTE_SPAN, json[name].remote_parent_span_id, name)
        assert.is_nil(json[name].parent_id)
        assert.equal(REMOTE_TRACE_ID, json[name].trace_id)
      end
      assert.is_nil(json.child.remote_parent_span_id)
      assert.equal(root, json.child.parent_id)

      local chrome = chrome_by_name()
      for _, name in ipairs({ "root", "detached", "second_root" }) do
        assert.equal(REMOTE_SPAN, chrome[name].args.remote_parent_span_id, name)
      end
      assert.is_nil(chrome.child.args.remote_parent_span_id)
      assert.equal(root, chrome.child.args.parent_id)
    end)

    it("a coroutine's first span with nothing open is a root of the remote span", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      local co = vmtrace.coroutine.wrap(function() vmtrace.finish(vmtrace.start("step", "in_coroutine")) end)
      co()
      assert.equal(REMOTE_SPAN, otlp_by_name().in_coroutine.parentSpanId)
    end)

    it("the OTLP export of a joined trace passes verify.js", function()
      assert.is_true(os.execute("command -v node >/dev/null 2>&1"), "node is not on PATH")
      assert.is_true(vmtrace.continue_trace(HEADER))
      local root = vmtrace.start("pipeline", "root")
      vmtrace.finish(vmtrace.start("step", "child"))
      vmtrace.finish(root)
      local path = tmp("joined.otlp.json")
      assert.is_true(vmtrace.export("otlp", path))
      local code, _, _, out = helper.verify_otlp(path) -- tests/otlp/verify.js PATH 2>&1
      assert.equal(0, code, out)
      assert.matches("^verify.js: OK .* 2 spans", out)
    end)

    it("a reset starts a new trace without the remote parent", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      vmtrace.finish(vmtrace.start("pipeline", "joined"))
      vmtrace.reset()
      assert.not_equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      assert.is_nil(vmtrace.traceparent())
      local root = vmtrace.start("pipeline", "own")
      local trace = parts(vmtrace.traceparent(root))
      assert.equal(trace_hex(vmtrace.trace_id()), trace)
      vmtrace.finish(root)
      assert.is_nil(otlp_by_name().own.parentSpanId)
      assert.is_nil(json_by_name().own.remote_parent_span_id)
      assert.is_nil(chrome_by_name().own.args.remote_parent_span_id)
      assert.is_nil(json_by_name().joined, "the joined trace's spans went with the reset")
    end)

    it("a later valid header replaces the earlier one", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      local other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      assert.is_true(vmtrace.continue_trace(other))
      assert.equal("trace_0af76519-16cd-43dd-8448-eb211c80319c", vmtrace.trace_id())
      vmtrace.finish(vmtrace.start("pipeline", "root"))
      assert.equal("b7ad6b7169203331", otlp_by_name().root.parentSpanId)
    end)

    it("accepts any flags for version 00 and propagates the sampled bit", function()
      assert.is_true(vmtrace.continue_trace(("00-%s-%s-09"):format(T, S)))
      assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      local _, _, flags = parts(vmtrace.traceparent(vmtrace.start("pipeline", "run")))
      assert.equal("01", flags)
    end)

    for _, case in ipairs({
      { "a future version with extra fields", ("01-%s-%s-01-extra"):format(T, S) },
      { "version fe with several extra fields", ("fe-%s-%s-01-what-ever"):format(T, S) },
      { "a future version of exactly 55 characters", ("cc-%s-%s-01"):format(T, S) },
    }) do
      it("accepts " .. case[1], function()
        assert.is_true(vmtrace.continue_trace(case[2]))
        assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
        vmtrace.finish(vmtrace.start("pipeline", "root"))
        assert.equal(REMOTE_SPAN, otlp_by_name().root.parentSpanId)
        -- what this process sends on is version 00
        assert.equal(HEADER, vmtrace.traceparent())
      end)
    end

    for _, case in ipairs(INVALID) do
      it(("ignores an invalid header (%s): false, and nothing changes"):format(case[1]), function()
        -- in a trace of its own
        local open = vmtrace.start("pipeline", "open")
        vmtrace.finish(vmtrace.start("step", "done"))
        local before = context_snapshot(open)
        assert.is_false(vmtrace.continue_trace(case[2]))
        assert.same(before, context_snapshot(open))
        assert.is_nil(json_by_name().open, "still open")
        vmtrace.finish(open)
        assert.is_nil(json_by_name().open.remote_parent_span_id)
        assert.is_nil(otlp_by_name().open.parentSpanId)

        -- in a joined trace: it stays joined
        vmtrace.reset()
        assert.is_true(vmtrace.continue_trace(HEADER))
        open = vmtrace.start("pipeline", "open")
        before = context_snapshot(open)
        assert.is_false(vmtrace.continue_trace(case[2]))
        assert.same(before, context_snapshot(open))
        vmtrace.finish(open)
        assert.equal(REMOTE_SPAN, otlp_by_name().open.parentSpanId)
      end)
    end

    it("raises on an argument that is not a string", function()
      helper.assert_bad_argument(function() vmtrace.continue_trace() end, "continue_trace", 1, "string")
      helper.assert_bad_argument(function() vmtrace.continue_trace(42) end, "continue_trace", 1, "string")
      helper.assert_bad_argument(function() vmtrace.continue_trace({}) end, "continue_trace", 1, "string")
    end)

    it("prints ONE warning on stderr for several invalid headers, none for valid ones", function()
      local headers = {}
      for i, case in ipairs(INVALID) do headers[i] = ("%q"):format(case[2]) end
      local res = lua_child(([[
vmtrace.enable()
local ok = vmtrace.continue_trace(%q)
local results = {}
for i, h in ipairs({ %s }) do results[i] = tostring(vmtrace.continue_trace(h)) end
report { first_valid = ok, invalid = table.concat(results, ","), trace = vmtrace.trace_id() }
]]):format(HEADER, table.concat(headers, ", ")))
      assert.equal("true", res.report.first_valid)
      assert.equal(("false,"):rep(#INVALID - 1) .. "false", res.report.invalid)
      assert.equal(REMOTE_TRACE_ID, res.report.trace)
      assert.equal(1, warnings(res.err), "stderr: " .. res.err)
      assert.matches("^vmtrace: ", res.err)

      res = lua_child(([[
vmtrace.enable()
report { a = vmtrace.continue_trace(%q), b = vmtrace.continue_trace(%q) }
]]):format(HEADER, ("01-%s-%s-01-extra"):format(T, S)))
      assert.same({ a = "true", b = "true" }, res.report)
      assert.equal("", res.err)
    end)
  end)

  ----------------------------------------------------------------------------
  describe("TRACEPARENT in the environment", function()
    local JOIN = [[
vmtrace.enable()
local before_span = vmtrace.traceparent()
local root = vmtrace.start("pipeline", "root")
local child = vmtrace.start("step", "child")
local tp = vmtrace.traceparent()
vmtrace.finish(child)
vmtrace.finish(root)
local otlp = otlp_by_name()
report {
  trace = vmtrace.trace_id(), before_span = before_span, tp = tp,
  root_parent = otlp.root.parentSpanId, child_parent = otlp.child.parentSpanId,
  root_id = otlp.root.spanId, child_id = otlp.child.spanId,
}
]]

    it("is joined at enable", function()
      local res = lua_child(JOIN, { TRACEPARENT = HEADER })
      local r = res.report
      assert.equal(REMOTE_TRACE_ID, r.trace)
      assert.equal(HEADER, r.before_span)
      assert.equal(REMOTE_SPAN, r.root_parent)
      assert.equal(r.root_id, r.child_parent)
      assert.equal(("00-%s-%s-01"):format(REMOTE_TRACE, r.child_id), r.tp)
      assert.equal("", res.err)
    end)

    it("is read again by every enable, and a reset starts a new trace without the remote parent", function()
      local res = lua_child([[
vmtrace.enable()
vmtrace.finish(vmtrace.start("pipeline", "joined"))
local joined = otlp_by_name().joined.parentSpanId
vmtrace.reset()
local after_reset = vmtrace.trace_id()
local tp_reset = vmtrace.traceparent()
local root = vmtrace.start("pipeline", "own")
local tp_own = vmtrace.traceparent(root)
vmtrace.finish(root)
local own = otlp_by_name().own
local json = vmtrace.json_decode(vmtrace.export("json"))
vmtrace.enable()
local again = vmtrace.trace_id()
report {
  joined = joined, after_reset = after_reset, tp_reset = tp_reset, tp_own = tp_own,
  own_parent = own.parentSpanId, own_trace = own.traceId,
  json_remote = json[1].remote_parent_span_id, again = again,
}
]], { TRACEPARENT = HEADER })
      local r = res.report
      assert.equal(REMOTE_SPAN, r.joined)
      assert.not_equal(REMOTE_TRACE_ID, r.after_reset)
      assert.matches("^trace_", r.after_reset)
      assert.is_nil(r.tp_reset)
      assert.is_nil(r.own_parent)
      assert.is_nil(r.json_remote)
      assert.equal(trace_hex(r.after_reset), r.own_trace)
      local trace = parts(r.tp_own)
      assert.equal(trace_hex(r.after_reset), trace)
      assert.equal(REMOTE_TRACE_ID, r.again)
    end)

    it("an invalid one is ignored with one warning naming TRACEPARENT", function()
      local res = lua_child([[
vmtrace.enable()
vmtrace.enable()
vmtrace.finish(vmtrace.start("pipeline", "root"))
report { trace = vmtrace.trace_id(), tp = vmtrace.traceparent(), parent = otlp_by_name().root.parentSpanId }
]], { TRACEPARENT = ("00-%s-%s-01"):format(T:upper(), S) })
      assert.not_equal(REMOTE_TRACE_ID, res.report.trace)
      assert.is_nil(res.report.tp)
      assert.is_nil(res.report.parent)
      assert.equal(1, warnings(res.err), res.err)
      assert.matches("TRACEPARENT", res.err, 1, true)
    end)

    it("an empty one is no header at all: no join, no warning", function()
      local res = lua_child([[
vmtrace.enable()
report { tp = vmtrace.traceparent() }
]], { TRACEPARENT = "" })
      assert.is_nil(res.report.tp)
      assert.equal("", res.err)
    end)
  end)

  ----------------------------------------------------------------------------
  describe("the NDJSON stream", function()
    local function lines_of(path)
      local t = {}
      for line in (read(path) or ""):gmatch("([^\n]*)\n") do t[#t + 1] = decode(line, "a stream line") end
      return t
    end

    it("records the join as a context line, and loading it back keeps the remote parent", function()
      local path = tmp("run.ndjson")
      assert.is_true(vmtrace.stream(path))
      assert.is_true(vmtrace.continue_trace(HEADER))
      local root = vmtrace.start("pipeline", "root")
      vmtrace.finish(vmtrace.start("step", "child"))
      vmtrace.finish(root)
      assert.is_true(vmtrace.stream(nil))

      local context
      for _, l in ipairs(lines_of(path)) do
        if l.type == "context" then
          assert.is_nil(context, "one context line")
          context = l
        end
      end
      assert.is_table(context, "no context line in the stream")
      assert.equal(REMOTE_TRACE_ID, context.trace_id)
      assert.equal(REMOTE_SPAN, context.remote_parent_span_id)

      local want_otlp = otlp_by_name()
      vmtrace.enable()
      assert.not_equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      assert.equal(2, vmtrace.load(path))
      assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      local otlp = otlp_by_name()
      assert.equal(REMOTE_SPAN, otlp.root.parentSpanId)
      assert.equal(otlp.root.spanId, otlp.child.parentSpanId)
      assert.equal(want_otlp.root.spanId, otlp.root.spanId, "the same exported ids")
      assert.equal(REMOTE_SPAN, json_by_name().root.remote_parent_span_id)
      assert.equal(REMOTE_SPAN, chrome_by_name().root.args.remote_parent_span_id)
    end)

    it("a stream cut short while the root is open still loads with the remote parent", function()
      local path, cut = tmp("run.ndjson"), tmp("cut.ndjson")
      assert.is_true(vmtrace.stream(path))
      assert.is_true(vmtrace.continue_trace(HEADER))
      local root = vmtrace.start("pipeline", "root")
      vmtrace.finish(vmtrace.start("step", "child"))
      write(cut, read(path)) -- what a crash here would leave
      vmtrace.finish(root)
      assert.is_true(vmtrace.stream(nil))
      vmtrace.enable()
      assert.equal(2, vmtrace.load(cut))
      local json = json_by_name()
      assert.is_true(json.root.metadata.unfinished)
      assert.equal(REMOTE_SPAN, json.root.remote_parent_span_id)
      assert.equal(REMOTE_SPAN, otlp_by_name().root.parentSpanId)
      assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
    end)

    it("a stream opened after the join loads back with the remote parent", function()
      assert.is_true(vmtrace.continue_trace(HEADER))
      local path = tmp("run.ndjson")
      assert.is_true(vmtrace.stream(path))
      vmtrace.finish(vmtrace.start("pipeline", "root"))
      assert.is_true(vmtrace.stream(nil))
      vmtrace.enable()
      assert.equal(1, vmtrace.load(path))
      assert.equal(REMOTE_TRACE_ID, vmtrace.trace_id())
      assert.equal(REMOTE_SPAN, otlp_by_name().root.parentSpanId)
    end)

    it("bin/vmtrace convert --to otlp keeps the remote parent of a joined stream and JSON file", function()
      local path, json_path = tmp("run.ndjson"), tmp("run.json")
      assert.is_true(vmtrace.stream(path))
      assert.is_true(vmtrace.continue_trace(HEADER))
      local root = vmtrace.start("pipeline", "root")
      vmtrace.finish(vmtrace.start("step", "child"))
      vmtrace.finish(root)
      assert.is_true(vmtrace.stream(nil))
      assert.is_true(vmtrace.export("json", json_path))
      for _, input in ipairs({ path, json_path }) do
        local code, out = run(("%s convert %s --to otlp 2>&1"):format(q(ROOT .. "/bin/vmtrace"), q(input)))
        assert.equal(0, code, out)
        local msg = decode(out, "vmtrace convert's output")
        local by = {}
        for _, s in ipairs(msg.resourceSpans[1].scopeSpans[1].spans) do by[s.name] = s end
        assert.equal(REMOTE_TRACE, by.root.traceId)
        assert.equal(REMOTE_SPAN, by.root.parentSpanId, input)
        assert.equal(by.root.spanId, by.child.parentSpanId)
      end
    end)
  end)
end)
